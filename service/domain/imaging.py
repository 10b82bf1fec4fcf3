"""Decode untrusted upload bytes into a normalised 8-bit sRGB array, or fail with a typed error.

Order matters and is part of the contract:
1. byte limits (EMPTY, ImageTooLarge) before Pillow sees anything;
2. open with a whitelist of formats (Pillow's open is lazy: only the header is read);
3. pixel limit from the header (DECOMPRESSION_BOMB) and minimum side (TOO_SMALL) before decoding;
4. a full decode with truncated images refused (TRUNCATED / CORRUPT);
5. first frame only, EXIF orientation applied, alpha composited over white,
   16-bit scaled (not clipped) to 8-bit, CMYK and embedded ICC profiles converted to sRGB.

`max_side` lets a large JPEG decode reduced: libjpeg's DCT scaling (1/2, 1/4, 1/8) gives
pixels whose long side is still at least `max_side`, several times faster and smaller.
The whole file is still entropy-decoded, so truncated and corrupt data fail as before.
`width` and `height` stay the original's; only `rgb` is smaller (`DecodedImage.reduced`).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Final

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from service.domain.errors import BadImage, ImageTooLarge
from service.domain.jpegquality import estimate_quality

# Formats we accept. MPO is what many phones write for JPEG (a JPEG with extra frames).
ACCEPTED_FORMATS: Final[tuple[str, ...]] = ("JPEG", "MPO", "PNG", "GIF", "WEBP", "AVIF", "TIFF", "BMP")

# Leading bytes of image formats we recognise but do not accept -> UNSUPPORTED_FORMAT.
_KNOWN_UNSUPPORTED: Final[tuple[tuple[bytes, str], ...]] = (
    (b"8BPS", "PSD"),
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"qoif", "QOI"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),  # a bare codestream (.j2k)
    (b"DDS ", "DDS"),
    (b"\x01\xda", "SGI"),
    (b"\x76\x2f\x31\x01", "OpenEXR"),
    (b"#?RADIANCE", "Radiance HDR"),
    (b"#?RGBE", "Radiance HDR"),
    (b"\xc5\xd0\xd3\xc6", "PostScript"),  # DOS EPS binary header
)
_ISOBMFF_BRANDS: Final[dict[bytes, str]] = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"hevc": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}


# What Pillow's plugins raise on malformed data (found by fuzzing: a truncated animated GIF
# raises IndexError while counting its frames, a corrupt AVIF RuntimeError from libavif);
# each becomes BadImage CORRUPT or TRUNCATED.
DECODER_ERRORS: Final = (
    OSError,
    RuntimeError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    ZeroDivisionError,
    OverflowError,
)


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 100_000_000
    min_side: int = 16


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """An upload decoded to a read-only uint8 HxWx3 sRGB array, plus facts about its source.

    `width` x `height` is the original's size (EXIF-rotated): the frame of every box in a
    report. `rgb` is that size, or a reduced copy of it when decoded with `max_side`.
    """

    rgb: np.ndarray
    width: int
    height: int
    source_format: str  # JPEG, PNG, GIF, WEBP, AVIF, TIFF, BMP (MPO is reported as JPEG)
    source_mode: str  # Pillow mode of the file: RGB, L, P, RGBA, CMYK, I;16, ...
    bit_depth: int  # bits per sample in the file (1, 8, 16, 32)
    had_alpha: bool  # the file had an alpha channel or a transparency key (composited over white)
    frame_count: int  # > 1 for animations; only the first frame is used
    exif_transposed: bool  # an EXIF orientation other than 1 was applied
    icc_converted: bool  # an embedded non-sRGB ICC profile was converted to sRGB
    jpeg_quality: int | None  # estimated IJG quality for JPEG sources, else None
    byte_size: int
    sha256: str

    @property
    def reduced(self) -> bool:
        """`rgb` is smaller than the original (a JPEG decoded with DCT scaling)."""
        return self.rgb.shape[:2] != (self.height, self.width)

    def to_rgb_frame(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box in the original's pixels -> the same box in `rgb`'s pixels (rounded outward)."""
        sy, sx = self.rgb.shape[0] / self.height, self.rgb.shape[1] / self.width
        x1, y1, x2, y2 = box
        return (int(x1 * sx), int(y1 * sy), math.ceil(x2 * sx), math.ceil(y2 * sy))

    def to_original_frame(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box in `rgb`'s pixels -> the same box in the original's pixels, clipped to it."""
        sy, sx = self.height / self.rgb.shape[0], self.width / self.rgb.shape[1]
        x1, y1, x2, y2 = box
        return (
            round(x1 * sx),
            round(y1 * sy),
            min(self.width, round(x2 * sx)),
            min(self.height, round(y2 * sy)),
        )


def decode_image(
    data: bytes,
    limits: ImageLimits | None = None,
    *,
    max_side: int | None = None,
    sha256: str | None = None,
) -> DecodedImage:
    """Decode `data` or raise BadImage / ImageTooLarge. See the module docstring for the order.

    With `max_side`, a JPEG at least twice that size on its long side decodes reduced (to a
    long side of at least `max_side`); width and height stay the original's. `sha256` is the
    hex digest of `data` when the caller has it already (it is not computed again).
    """
    limits = limits or ImageLimits()
    if not data:
        raise BadImage("EMPTY", "the upload is empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"the upload is {len(data)} bytes; the limit is {limits.max_bytes} bytes",
            limit=limits.max_bytes,
            actual=len(data),
        )
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # a process-wide Pillow switch someone else may have set
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False for safe decoding")
    with warnings.catch_warnings():
        # We enforce limits.max_pixels ourselves; Pillow's own warning must not escape.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # Pillow warns about broken EXIF/TIFF tags it skips; the pixels decide, not the metadata.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        im = _open(data, limits)
        return _normalise(im, data, max_side, sha256)


def _open(data: bytes, limits: ImageLimits) -> Image.Image:
    canvas = _webp_canvas(data)
    if canvas is not None and canvas[0] * canvas[1] > limits.max_pixels:  # before Pillow allocates it
        raise BadImage("DECOMPRESSION_BOMB", _declares_too_many(canvas, limits))
    try:
        im = Image.open(io.BytesIO(data), formats=_available_formats())
    except Image.DecompressionBombError as exc:
        raise BadImage("DECOMPRESSION_BOMB", _too_many_pixels(data, exc, limits)) from exc
    except UnidentifiedImageError as exc:
        declared = _declared_size(data)
        if declared is not None and min(declared) == 0:
            raise BadImage(
                "TOO_SMALL", f"the image header declares a zero size {declared[0]}x{declared[1]}"
            ) from exc
        accepted = _sniff_accepted(data)
        if accepted:  # an accepted format's signature whose header Pillow cannot parse
            raise BadImage("CORRUPT", f"the {accepted} header is malformed") from exc
        unsupported = _sniff_unsupported(data)
        if unsupported:
            raise BadImage("UNSUPPORTED_FORMAT", f"{unsupported} images are not accepted") from exc
        raise BadImage("NOT_AN_IMAGE", "the upload is not a recognised image") from exc
    except DECODER_ERRORS as exc:
        if "MAX_TEXT" in str(exc):  # Pillow's guard against zTXt / iCCP chunks that inflate too far
            raise BadImage(
                "CORRUPT", "the image's metadata (text or colour profile chunks) decompresses too far"
            ) from exc
        raise BadImage("CORRUPT", f"the image header cannot be read: {exc}") from exc
    width, height = im.size
    if width * height > limits.max_pixels:
        raise BadImage("DECOMPRESSION_BOMB", _declares_too_many((width, height), limits))
    if min(width, height) < limits.min_side:
        raise BadImage(
            "TOO_SMALL", f"the image is {width}x{height}; each side must be at least {limits.min_side} px"
        )
    return im


def _declares_too_many(size: tuple[int, int], limits: ImageLimits) -> str:
    w, h = size
    return f"the image declares {w}x{h} = {w * h} pixels; the limit is {limits.max_pixels}"


def _too_many_pixels(data: bytes, exc: Exception, limits: ImageLimits) -> str:
    """The refusal of an image Pillow's own bomb guard stopped at open (past twice its
    MAX_IMAGE_PIXELS), stated against this service's limit rather than Pillow's: the size from
    the header where it is read by hand, else the pixel count from Pillow's message."""
    declared = _declared_size(data)
    if declared is not None and declared[0] * declared[1] > limits.max_pixels:
        return _declares_too_many(declared, limits)
    found = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = f"{int(found.group(1))} pixels" if found else "too many pixels"
    return f"the image declares {pixels}; the limit is {limits.max_pixels}"


@cache
def _available_formats() -> tuple[str, ...]:
    """The accepted formats this Pillow build can decode (AVIF needs a recent Pillow with libavif)."""
    Image.init()
    return tuple(f for f in ACCEPTED_FORMATS if f in Image.OPEN)


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF, BMP or JPEG header, read by hand (Pillow refuses zero
    sizes outright)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:2] == b"BM" and len(data) >= 26 and int.from_bytes(data[14:18], "little") >= 40:
        width = int.from_bytes(data[18:22], "little", signed=True)
        return abs(width), abs(int.from_bytes(data[22:26], "little", signed=True))
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_declared_size(data)
    return None


def _webp_canvas(data: bytes) -> tuple[int, int] | None:
    """The canvas of an extended (VP8X) WebP: Pillow's decoder allocates it whole when opening
    (a 30-byte file can declare 16384 x 16384 = 1 GiB of RGBA), so it is checked first."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or data[12:16] != b"VP8X" or len(data) < 30:
        return None
    return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")


def _jpeg_declared_size(data: bytes) -> tuple[int, int] | None:
    """The frame header's width and height, walking the marker segments (at most 1,000)."""
    i = 2
    for _ in range(1000):
        if i + 9 > len(data) or data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        if marker == 0xDA:
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


_BMP_HEADER_SIZES: Final = frozenset({12, 40, 52, 56, 64, 108, 124})  # the DIB header versions


def _sniff_accepted(data: bytes) -> str | None:
    """The accepted format whose signature `data` starts with, if any."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES:
        return "BMP"
    if data[4:8] == b"ftyp" and _ISOBMFF_BRANDS.get(data[8:12]) == "AVIF" and "AVIF" in _available_formats():
        return "AVIF"
    return None


def _sniff_unsupported(data: bytes) -> str | None:
    for magic, name in _KNOWN_UNSUPPORTED:
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp":
        return _ISOBMFF_BRANDS.get(data[8:12])
    head = data[:256].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        return "SVG"
    if data[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6") and data[2:3].isspace():
        return "PNM"
    if data.endswith(b"TRUEVISION-XFILE.\x00"):  # TGA has no leading signature, only this footer
        return "TGA"
    return None


def _draft(im: Image.Image, max_side: int | None) -> None:
    """Ask libjpeg for a 1/2, 1/4 or 1/8 scale decode that keeps the long side >= max_side."""
    if max_side is None or im.format not in ("JPEG", "MPO"):
        return
    width, height = im.size
    if max(width, height) < 2 * max_side:
        return
    k = max_side / max(width, height)
    # Pillow picks the largest scale s with size // s >= the requested size on both axes, so
    # the short side is requested rounded down: rounded up, an odd side (815 px asked for
    # 408 at 1/2) would forbid the scale the long side allows and decode in full
    if width >= height:
        im.draft(None, (max_side, max(1, math.floor(height * k))))
    else:
        im.draft(None, (max(1, math.floor(width * k)), max_side))


def _normalise(
    im: Image.Image, data: bytes, max_side: int | None = None, sha256: str | None = None
) -> DecodedImage:
    source_format = "JPEG" if im.format == "MPO" else str(im.format)
    source_mode = im.mode
    bit_depth = _bit_depth(im)
    jpeg_quality = _jpeg_quality(im) if source_format == "JPEG" else None
    icc = im.info.get("icc_profile")
    had_alpha = im.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in im.info
    width, height = im.size
    try:
        frame_count = int(getattr(im, "n_frames", 1))  # GIF and WebP walk their frames for this
        if frame_count > 1:
            im.seek(0)
        _draft(im, max_side)
        im.load()
    except Image.DecompressionBombError as exc:
        raise BadImage("DECOMPRESSION_BOMB", f"the image data decompresses too far: {exc}") from exc
    except DECODER_ERRORS as exc:
        text = str(exc).lower()
        if isinstance(exc, EOFError) or "truncat" in text or "premature" in text:
            # Pillow's own text ("image file is truncated (0 bytes not processed)") adds nothing
            raise BadImage(
                "TRUNCATED",
                "the image file is truncated: it ends before its image data does; upload the whole file",
            ) from exc
        raise BadImage("CORRUPT", f"the image data cannot be decoded: {exc}") from exc
    orientation = _orientation(im)
    exif_transposed = orientation in (2, 3, 4, 5, 6, 7, 8)
    if exif_transposed:
        im = ImageOps.exif_transpose(im)
    if orientation in (5, 6, 7, 8):  # a quarter turn: the original's sides swap too
        width, height = height, width
    try:
        base = _to_base_mode(im)
        rgb_image, icc_converted = _to_srgb(base, icc if isinstance(icc, bytes) else None)
    except (ValueError, OSError) as exc:  # e.g. a TIFF in LAB or another mode Pillow cannot convert
        raise BadImage(
            "UNSUPPORTED_FORMAT", f"the colour mode {source_mode} is not supported: {exc}"
        ) from exc
    # a new array over a fresh copy of Pillow's pixels (tobytes): no second copy is needed
    rgb = np.ascontiguousarray(np.asarray(rgb_image, dtype=np.uint8))
    rgb.flags.writeable = False
    return DecodedImage(
        rgb=rgb,
        width=width,
        height=height,
        source_format=source_format,
        source_mode=source_mode,
        bit_depth=bit_depth,
        had_alpha=had_alpha,
        frame_count=frame_count,
        exif_transposed=exif_transposed,
        icc_converted=icc_converted,
        jpeg_quality=jpeg_quality,
        byte_size=len(data),
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
    )


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation tag, 1 when it is absent or the EXIF block cannot be read."""
    try:
        value = im.getexif().get(0x0112, 1)
    except DECODER_ERRORS:
        return 1
    return value if isinstance(value, int) else 1


def _bit_depth(im: Image.Image) -> int:
    rawmode = ""
    tile = getattr(im, "tile", None)  # set on images opened from files (ImageFile), before load
    if tile:
        args = tile[0][3]
        rawmode = args if isinstance(args, str) else str(args[0]) if args else ""
    if ";16" in rawmode or im.mode.startswith("I;16"):
        return 16
    return {"1": 1, "I": 32, "F": 32}.get(im.mode, 8)


def _jpeg_quality(im: Image.Image) -> int | None:
    tables = getattr(im, "quantization", None)
    if not tables or 0 not in tables:
        return None
    try:
        return estimate_quality(tables[0])
    except ValueError:  # 16-bit or non-standard table: no IJG estimate
        return None


def _to_base_mode(im: Image.Image) -> Image.Image:
    """Return an RGB, L or CMYK image; alpha composited over white, high bit depths scaled."""
    mode = im.mode
    if mode == "CMYK" and im.format in ("JPEG", "MPO") and "adobe" not in im.info:
        # Pillow reads every CMYK JPEG as Adobe-inverted; without the Adobe APP14
        # marker the file holds plain CMYK, so undo that inversion.
        return Image.eval(im, lambda v: 255 - v)
    if mode in ("RGB", "L") and "transparency" in im.info:  # a transparent colour key (PNG tRNS)
        im = im.convert("RGBA")
        mode = "RGBA"
    elif mode in ("RGB", "L", "CMYK"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I") or mode == "F":
        return _scale_to_l(im)
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("La", "RGBa"):
        im = im.convert(mode.upper())
        mode = im.mode
    if mode in ("RGBA", "LA"):
        base_mode = "RGB" if mode == "RGBA" else "L"
        white = Image.new(base_mode, im.size, (255, 255, 255) if base_mode == "RGB" else 255)
        white.paste(im.convert(base_mode), mask=im.getchannel("A"))
        return white
    return im.convert("RGB")  # YCbCr, LAB, HSV and other rare modes


def _scale_to_l(im: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer or float greyscale to 8 bits by range, not by clipping."""
    arr = np.asarray(im)
    if im.mode.startswith("I;16") or (im.mode == "I" and int(arr.max(initial=0)) <= 65535 and arr.min() >= 0):
        out = np.rint(arr.astype(np.float64) / 257.0)
    elif im.mode == "F" and float(arr.max(initial=0.0)) <= 1.0 and float(arr.min(initial=0.0)) >= 0.0:
        out = np.rint(arr.astype(np.float64) * 255.0)
    else:  # 32-bit integers or floats outside 0..1: stretch the actual range
        lo, hi = float(arr.min()), float(arr.max())
        out = np.zeros(arr.shape) if hi <= lo else np.rint((arr - lo) / (hi - lo) * 255.0)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), mode="L")


@cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bool]:
    """Convert to sRGB RGB, through the embedded ICC profile when there is a usable one."""
    if icc and not _is_srgb(icc):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                im, source, _srgb_profile(), renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB"
            )
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None  # a broken or mismatched profile: fall back to a plain conversion
        if converted is not None:
            return converted, True
    return (im if im.mode == "RGB" else im.convert("RGB")), False


def _is_srgb(icc: bytes) -> bool:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(profile)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return False
    return "srgb" in description.lower().replace(" ", "")
