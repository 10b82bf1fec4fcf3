"""Build test images in code: good ones, bad ones and awkward ones (no binary fixtures).

Every builder returns either an RGB uint8 array or the encoded file bytes.
Shared by all test suites; e.g. `from tests.imagefactory import jpeg_bytes, truncated_jpeg`.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageCms

# ---------------------------------------------------------------- pixel arrays


def gradient(width: int = 320, height: int = 240) -> np.ndarray:
    """A smooth colour gradient with some texture: a plausible, clean photo stand-in."""
    x = np.arange(width, dtype=np.float32)[None, :]
    y = np.arange(height, dtype=np.float32)[:, None]
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[..., 0] = 40 + 180 * x / max(width - 1, 1)
    out[..., 1] = 40 + 180 * y / max(height - 1, 1)
    out[..., 2] = 128 + 60 * np.sin(x / 9.0) * np.cos(y / 7.0)
    return out


def solid(width: int, height: int, color: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    return np.full((height, width, 3), color, dtype=np.uint8)


def product_on_white(
    width: int = 1200,
    height: int = 1200,
    fill: float = 0.9,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """A textured 'product' rectangle centred on a background; `fill` is its share of each side."""
    img = solid(width, height, background)
    pw, ph = max(1, round(width * fill)), max(1, round(height * fill))
    x0, y0 = (width - pw) // 2, (height - ph) // 2
    img[y0 : y0 + ph, x0 : x0 + pw] = gradient(pw, ph) // 2 + 40
    return img


def with_border(rgb: np.ndarray, thickness: int = 12, color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Draw a uniform frame of `thickness` px inside the image's edges."""
    out = rgb.copy()
    out[:thickness, :] = color
    out[-thickness:, :] = color
    out[:, :thickness] = color
    out[:, -thickness:] = color
    return out


# ---------------------------------------------------------------- encoded files


def encode(rgb: np.ndarray | Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    im = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    if fmt == "PNG":
        params.setdefault("compress_level", 1)  # fast; tests do not need small files
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def jpeg_bytes(rgb: np.ndarray | None = None, quality: int = 95, **params: object) -> bytes:
    return encode(gradient() if rgb is None else rgb, "JPEG", quality=quality, **params)


def png_bytes(rgb: np.ndarray | None = None) -> bytes:
    return encode(gradient() if rgb is None else rgb, "PNG")


def truncated_jpeg(keep: float = 0.5) -> bytes:
    data = jpeg_bytes(gradient(400, 300))
    return data[: int(len(data) * keep)]


def truncated_png(keep: float = 0.5) -> bytes:
    data = png_bytes(gradient(400, 300))
    return data[: int(len(data) * keep)]


def random_bytes(n: int = 4096, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def text_bytes() -> bytes:
    return b"This is a plain text file that somebody named product.jpg\n" * 20


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png(ihdr: bytes, idat: bytes) -> bytes:
    chunks = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header declares width x height greyscale pixels; only a few rows of data follow.

    A decoder that trusts the header would allocate width*height bytes before noticing anything.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return _png(ihdr, rows)


def sixteen_bit_gray_png(width: int = 256, height: int = 32) -> bytes:
    """A 16-bit greyscale ramp: column x has value x*257 (so 8-bit x after correct scaling)."""
    ramp = (np.arange(width, dtype=np.uint32) % 256 * 257).astype(np.uint16)
    return encode(Image.fromarray(np.tile(ramp, (height, 1))), "PNG")


def sixteen_bit_rgb_png(color16: tuple[int, int, int] = (200 * 257, 0, 50 * 257), size: int = 32) -> bytes:
    """A solid 48-bit RGB PNG (written by hand: Pillow cannot create RGB;16 images)."""
    ihdr = struct.pack(">IIBBBBB", size, size, 16, 2, 0, 0, 0)
    row = b"\x00" + struct.pack(">3H", *color16) * size
    idat = zlib.compress(row * size)
    return _png(ihdr, idat)


def cmyk_jpeg(cmyk: tuple[int, int, int, int] = (0, 255, 255, 0), size: int = 64, **params: object) -> bytes:
    """A solid CMYK JPEG (Pillow writes Adobe-inverted CMYK with an APP14 marker)."""
    return encode(Image.new("CMYK", (size, size), cmyk), "JPEG", quality=95, **params)


def cmyk_jpeg_without_adobe_marker(
    cmyk: tuple[int, int, int, int] = (0, 255, 255, 0), size: int = 64
) -> bytes:
    """A solid CMYK JPEG holding plain (non-inverted) CMYK and no Adobe APP14 marker."""
    inverted = tuple(255 - v for v in cmyk)
    data = encode(Image.new("CMYK", (size, size), inverted), "JPEG", quality=95)  # Pillow inverts on write
    start = data.index(b"\xff\xee")  # the APP14 "Adobe" segment
    length = int.from_bytes(data[start + 2 : start + 4], "big")
    return data[:start] + data[start + 2 + length :]


def corrupt_png(size: int = 64) -> bytes:
    """A PNG with a valid header whose image data is not a deflate stream."""
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return _png(ihdr, b"\x78\x9c" + b"garbage that is not deflate data" * 50)


def zero_size_png(width: int = 0, height: int = 0) -> bytes:
    """A PNG header declaring a zero width or height."""
    return _png(struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0), zlib.compress(b""))


def palette_png_with_transparency(size: int = 64) -> bytes:
    """A P-mode PNG: left half transparent (index 0), right half opaque blue (index 1)."""
    im = Image.new("P", (size, size), 0)
    im.putpalette([0, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    im.paste(1, (size // 2, 0, size, size))
    return encode(im, "PNG", transparency=0)


def rgba_png(size: int = 64, alpha: int = 0) -> bytes:
    """An RGBA PNG: red everywhere, with the left half at `alpha` opacity and the right half opaque."""
    arr = np.zeros((size, size, 4), dtype=np.uint8)
    arr[..., 0] = 255
    arr[..., 3] = 255
    arr[:, : size // 2, 3] = alpha
    return encode(Image.fromarray(arr, "RGBA"), "PNG")


def la_png(size: int = 64) -> bytes:
    """A grey+alpha PNG: black, fully transparent on the top half."""
    arr = np.zeros((size, size, 2), dtype=np.uint8)
    arr[size // 2 :, :, 1] = 255
    return encode(Image.fromarray(arr, "LA"), "PNG")


def animated(fmt: str = "GIF", frames: int = 3, size: int = 48) -> bytes:
    """An animation whose first frame is red and later frames are green/blue."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    ims = [Image.new("RGB", (size, size), colours[i % 3]) for i in range(frames)]
    params: dict[str, object] = {"save_all": True, "append_images": ims[1:], "duration": 100, "loop": 0}
    if fmt == "WEBP":
        params["lossless"] = True
    return encode(ims[0], fmt, **params)


def exif_rotated_jpeg(orientation: int = 6, width: int = 80, height: int = 40) -> bytes:
    """A width x height JPEG, red on its left half, with an EXIF orientation tag."""
    arr = solid(width, height, (0, 0, 255))
    arr[:, : width // 2] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg_bytes(arr, exif=exif.tobytes())


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def _desc_tag(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    body = b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_)) + ascii_
    body += b"\0" * 8 + b"\0" * 3 + b"\0" * 67  # empty unicode and scriptcode descriptions
    return body


def swapped_primaries_icc() -> bytes:
    """A display ICC v2 profile whose red and green primaries are sRGB's green and red.

    An image tagged with it that stores (255, 0, 0) means sRGB green: a decoder that
    honours the profile must return green.
    """
    red, green, blue = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 0x0233) + b"\0\0"  # gamma 2.2, padded to 4
    tags = [
        (b"desc", _desc_tag("Swapped primaries test profile")),
        (b"cprt", b"text" + b"\0" * 4 + b"public domain\0\0\0\0"),
        (b"wtpt", _xyz_tag(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz_tag(*green)),
        (b"gXYZ", _xyz_tag(*red)),
        (b"bXYZ", _xyz_tag(*blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    return _icc(b"mntr", b"RGB ", b"XYZ ", tags)


def _icc(device_class: bytes, space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """Assemble an ICC v2.1 profile: 128-byte header, tag table, 4-byte aligned tag data."""
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, payload in tags:
        padded = payload + b"\0" * (-len(payload) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(payload))
        data += padded
    size = offset + len(data)
    header = struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + device_class + space + pcs
    header += struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"APPL" + b"\0" * 4
    header += b"\0" * 4 + b"\0" * 4 + b"\0" * 8 + b"\0" * 4
    header += _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def _srgb_to_lab_d50(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    m = (
        (0.4360747, 0.3850649, 0.1430804),
        (0.2225045, 0.7168786, 0.0606169),
        (0.0139322, 0.0971045, 0.7141733),
    )
    x, y, z = (sum(row[i] * lin[i] for i in range(3)) for row in m)

    def f(t: float) -> float:
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    fx, fy, fz = f(x / 0.9642), f(y / 1.0), f(z / 0.8249)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def swapped_cmyk_icc() -> bytes:
    """A CMYK printer profile (lut8 A2B0, 2-point grid) in which cyan and magenta trade places.

    Under it, magenta+yellow ink (which is red in plain CMYK) is green: a decoder that
    honours an embedded CMYK profile returns green, a plain conversion returns red.
    """
    clut = b""
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    rgb = ((1 - m) * (1 - k), (1 - c) * (1 - k), (1 - y) * (1 - k))  # c and m swapped
                    lab = _srgb_to_lab_d50(rgb)
                    clut += bytes(
                        min(255, max(0, round(v))) for v in (lab[0] * 255 / 100, lab[1] + 128, lab[2] + 128)
                    )
    identity = bytes(range(256))
    matrix = b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    lut = b"mft1" + b"\0" * 4 + bytes([4, 3, 2, 0]) + matrix + identity * 4 + clut + identity * 3
    tags = [
        (b"desc", _desc_tag("Swapped cyan/magenta test profile")),
        (b"cprt", b"text" + b"\0" * 4 + b"public domain\0\0\0\0"),
        (b"wtpt", _xyz_tag(0.9642, 1.0, 0.8249)),
        (b"A2B0", lut),
    ]
    return _icc(b"prtr", b"CMYK", b"Lab ", tags)
