"""Hostile uploads built in code: one builder per malformed-input class (no binary fixtures).

`REJECTED` lists classes that must be refused with a typed BadImage reason; `TOLERATED` lists
hostile-looking files whose pixels are fine: they must decode (absurd metadata ignored).
Shared by the table-driven decode test (tests/unit/test_hostile_decode.py), the gRPC test
(tests/integration/test_grpc_bad_input.py) and the fuzz seeds (tests/fuzz/). The list is
documented in docs/reliability.md ("Hostile input").
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, features

from tests import imagefactory as f


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], bytes]
    reasons: frozenset[str]  # accepted BadImage reasons; empty: the file must decode


def _rejected(name: str, build: Callable[[], bytes], *reasons: str) -> Case:
    return Case(name, build, frozenset(reasons))


# ---------------------------------------------------------------- helpers


def _small(fmt: str, **params: object) -> bytes:
    return f.encode(f.gradient(64, 48), fmt, **params)


def _flip(data: bytes, start: int, length: int, value: int = 0xFF) -> bytes:
    """`data` with `length` bytes from `start` overwritten by `value`."""
    return data[:start] + bytes([value]) * length + data[start + length :]


def _cut(data: bytes, keep: float) -> bytes:
    return data[: max(1, int(len(data) * keep))]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _png_with(extra_chunks: bytes, size: int = 32) -> bytes:
    """A valid grey PNG with `extra_chunks` inserted before IDAT."""
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\x00" + bytes(range(size)) for _ in range(size)))
    return (
        PNG_SIG
        + _png_chunk(b"IHDR", ihdr)
        + extra_chunks
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    """(offset, marker) of each JPEG marker segment before the scan data."""
    out, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        out.append((i, marker))
        if marker == 0xDA:
            break
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return out


def _jpeg_sof_offset(data: bytes) -> int:
    return next(off for off, marker in _jpeg_segments(data) if marker in (0xC0, 0xC1, 0xC2))


# ---------------------------------------------------------------- JPEG


def jpeg_truncated_in_scan() -> bytes:
    return f.truncated_jpeg(0.5)


def jpeg_header_only() -> bytes:
    """SOI and the headers up to the start of scan, no entropy-coded data."""
    data = f.jpeg_bytes(f.gradient(64, 48))
    sos = next(off for off, marker in _jpeg_segments(data) if marker == 0xDA)
    return data[:sos]


def jpeg_soi_only() -> bytes:
    return b"\xff\xd8\xff"


def jpeg_corrupt_quant_table() -> bytes:
    """The DQT segment's length says 2 bytes: the table is missing."""
    data = f.jpeg_bytes(f.gradient(64, 48))
    dqt = next(off for off, marker in _jpeg_segments(data) if marker == 0xDB)
    return data[: dqt + 2] + b"\x00\x02" + data[dqt + 4 :]


def jpeg_zero_dimensions() -> bytes:
    data = f.jpeg_bytes(f.gradient(64, 48))
    sof = _jpeg_sof_offset(data)
    return data[: sof + 5] + b"\x00\x00\x00\x00" + data[sof + 9 :]


def jpeg_huge_dimensions() -> bytes:
    """A 2 KB JPEG whose frame header declares 65500 x 65500 pixels."""
    data = f.jpeg_bytes(f.gradient(64, 48))
    sof = _jpeg_sof_offset(data)
    return data[: sof + 5] + struct.pack(">HH", 65500, 65500) + data[sof + 9 :]


def jpeg_garbage_scan() -> bytes:
    """Valid headers, then random bytes as entropy-coded data and no EOI."""
    data = f.jpeg_bytes(f.gradient(64, 48))
    sos = next(off for off, marker in _jpeg_segments(data) if marker == 0xDA)
    length = int.from_bytes(data[sos + 2 : sos + 4], "big")
    return data[: sos + 2 + length] + f.random_bytes(200, seed=3).replace(b"\xff", b"\x00")


# ---------------------------------------------------------------- PNG


def png_truncated() -> bytes:
    return f.truncated_png(0.5)


def png_bad_ihdr_crc() -> bytes:
    data = _small("PNG")
    return _flip(data, 29, 4, 0x00)  # the CRC of IHDR


def png_undecodable_idat() -> bytes:
    return f.corrupt_png()


def png_zero_dimensions() -> bytes:
    return f.zero_size_png(0, 0)


def png_header_bomb() -> bytes:
    """30000 x 30000 declared, a few rows of data."""
    return f.bomb_png(30000, 30000)


def png_zlib_bomb() -> bytes:
    """A real deflate bomb: 20000 x 20000 zero bytes (400 MB) compress to ~400 KB."""
    width = height = 20000
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    body = b"".join(compressor.compress(row * 500) for _ in range(height // 500)) + compressor.flush()
    return PNG_SIG + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def png_bad_bit_depth() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 32, 32, 3, 2, 0, 0, 0)  # bit depth 3 does not exist
    return PNG_SIG + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 200))


def png_no_idat() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 32, 32, 8, 0, 0, 0, 0)
    return PNG_SIG + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def png_ztxt_bomb() -> bytes:
    """A compressed text chunk that inflates to 64 MB of metadata."""
    payload = b"Comment\x00\x00" + zlib.compress(b"A" * (64 * 1024 * 1024), 9)
    return _png_with(_png_chunk(b"zTXt", payload))


def png_huge_icc_bomb() -> bytes:
    """An iCCP chunk whose compressed profile inflates to 64 MB."""
    payload = b"icc\x00\x00" + zlib.compress(b"\x00" * (64 * 1024 * 1024), 9)
    return _png_with(_png_chunk(b"iCCP", payload))


def png_many_text_chunks() -> bytes:
    """70 zTXt chunks of just under 1 MB each once inflated (70 KB on the wire): 70 MB of metadata."""
    chunk = _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"B" * (1024 * 1024 - 64), 9))
    return _png_with(chunk * 70)


# ---------------------------------------------------------------- GIF


def gif_truncated() -> bytes:
    return _cut(f.animated("GIF", frames=2, size=64), 0.4)


def gif_cut_in_second_frame() -> bytes:
    """An animation cut inside its second image descriptor (found by fuzzing: Pillow raised
    IndexError while counting the frames)."""
    data = f.animated("GIF", frames=2, size=20)
    return data[: data.rfind(b",\x00\x00\x00\x00\x14\x00\x14\x00") + 9]


def gif_zero_screen() -> bytes:
    """Logical screen and image descriptor both declare 0 x 0."""
    data = _small("GIF")
    data = data[:6] + b"\x00\x00\x00\x00" + data[10:]
    desc = data.index(b"\x2c\x00\x00\x00\x00")
    return data[: desc + 5] + b"\x00\x00\x00\x00" + data[desc + 9 :]


def gif_huge_screen() -> bytes:
    """Logical screen and image descriptor both declare 65535 x 65535."""
    data = _small("GIF")
    data = data[:6] + b"\xff\xff\xff\xff" + data[10:]
    desc = data.index(b"\x2c\x00\x00\x00\x00")
    return data[: desc + 5] + b"\xff\xff\xff\xff" + data[desc + 9 :]


def gif_js_polyglot() -> bytes:
    """`GIF89a/*` ... `*/=alert(1);`: a header whose width bytes start a JS comment."""
    return b"GIF89a/*\x0a\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00*/=alert(document.domain);//;"


# ---------------------------------------------------------------- WebP


def webp_truncated() -> bytes:
    return _cut(f.encode(f.gradient(200, 150), "WEBP", quality=90), 0.5)


def webp_corrupt_vp8_header() -> bytes:
    data = _small("WEBP", quality=90)
    return _flip(data, 20, 10, 0x00)  # the VP8 frame tag and start code


def webp_huge_canvas() -> bytes:
    """An extended (VP8X) WebP whose canvas is declared 16384 x 16384 around a 64 x 48 frame."""
    data = _small("WEBP", lossless=True)
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (16383).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + data[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ---------------------------------------------------------------- TIFF


def tiff_truncated() -> bytes:
    return _cut(f.encode(f.gradient(200, 150), "TIFF"), 0.5)


def tiff_bad_ifd_offset() -> bytes:
    data = f.encode(f.gradient(64, 48), "TIFF")
    order = "<" if data[:2] == b"II" else ">"
    return data[:4] + struct.pack(order + "I", 0x7FFFFFF0) + data[8:]


def tiff_huge_dimensions() -> bytes:
    """A minimal TIFF whose tags declare 100000 x 100000 pixels and hold 16 bytes of data."""
    entries = [
        (256, 4, 1, 100_000),  # ImageWidth
        (257, 4, 1, 100_000),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 8 + 2 + 9 * 12 + 4),  # StripOffsets
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, 100_000),  # RowsPerStrip
        (279, 4, 1, 16),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00" + b"\x00" * 16


def tiff_zero_dimensions() -> bytes:
    data = tiff_huge_dimensions()
    return data.replace(struct.pack("<HHII", 256, 4, 1, 100_000), struct.pack("<HHII", 256, 4, 1, 0))


# ---------------------------------------------------------------- BMP


def bmp_truncated() -> bytes:
    return _cut(f.encode(f.gradient(200, 150), "BMP"), 0.5)


def bmp_huge_dimensions() -> bytes:
    data = _small("BMP")
    return data[:18] + struct.pack("<ii", 60000, 60000) + data[26:]


def bmp_zero_dimensions() -> bytes:
    data = _small("BMP")
    return data[:18] + struct.pack("<ii", 0, 0) + data[26:]


def bmp_bad_bit_depth() -> bytes:
    data = _small("BMP")
    return data[:28] + struct.pack("<H", 7) + data[30:]


# ---------------------------------------------------------------- AVIF


def avif_truncated() -> bytes:
    return _cut(_small("AVIF"), 0.5)


def avif_corrupt_planes() -> bytes:
    """Scrambled coded data (found by fuzzing: libavif's RuntimeError escaped decode_image)."""
    data = _small("AVIF")
    at = data.index(b"mdat") + 8
    return data[:at] + bytes(b ^ 0x5A for b in data[at : at + 40]) + data[at + 40 :]


def avif_missing_item() -> bytes:
    """The item location box renamed: no image item (found by fuzzing: RuntimeError at open)."""
    return _small("AVIF").replace(b"iloc", b"ilo\x00")


# ---------------------------------------------------------------- wrong magic, other formats


def png_magic_jpeg_body() -> bytes:
    return PNG_SIG + f.jpeg_bytes(f.gradient(64, 48))[2:]


def jpeg_magic_png_body() -> bytes:
    return b"\xff\xd8" + _small("PNG")[8:]


def bmp_magic_random() -> bytes:
    return b"BM" + f.random_bytes(2000, seed=5)


def html_with_image_extension() -> bytes:
    return b"<!DOCTYPE html><html><script>alert(1)</script></html>" * 10


def zip_archive() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.txt", "not an image")
    return buf.getvalue()


def svg_with_script() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def pdf_document() -> bytes:
    return b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF"


def heic_brand() -> bytes:
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


# ---------------------------------------------------------------- tolerated (pixels are fine)


def _exif_jpeg(exif: bytes) -> bytes:
    return f.jpeg_bytes(f.gradient(64, 48), exif=exif)


def exif_orientation_9999() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 9999
    return _exif_jpeg(exif.tobytes())


def exif_huge_ifd_offset() -> bytes:
    """EXIF whose first IFD offset points 2 GB past the end of the segment."""
    return _exif_jpeg(b"Exif\x00\x00II*\x00" + struct.pack("<I", 0x7FFFFFF0))


def exif_ifd_loop() -> bytes:
    """An IFD whose next-IFD offset points back at itself, and an EXIF sub-IFD pointing at itself."""
    ifd = struct.pack("<H", 2)
    ifd += struct.pack("<HHII", 0x0112, 3, 1, 6)  # orientation 6
    ifd += struct.pack("<HHII", 0x8769, 4, 1, 8)  # ExifIFD -> this same IFD
    ifd += struct.pack("<I", 8)  # next IFD -> this same IFD
    return _exif_jpeg(b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd)


def exif_huge_counts() -> bytes:
    """A tag that claims 2^31 values stored far past the end."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x010E, 2, 0x7FFFFFFF, 0x7FFFFF00) + b"\x00" * 4
    return _exif_jpeg(b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd)


def exif_max_segment() -> bytes:
    """A 64 KB EXIF blob (the largest APP1 segment) of junk after a valid IFD."""
    exif = Image.Exif()
    exif[0x010E] = "x" * 65000  # ImageDescription
    return _exif_jpeg(exif.tobytes())


def icc_garbage() -> bytes:
    return f.jpeg_bytes(f.gradient(64, 48), icc_profile=f.random_bytes(3000, seed=7))


def icc_truncated_header() -> bytes:
    """A profile whose header declares 1 GB and holds 200 bytes of a real profile."""
    icc = bytearray(f.srgb_icc()[:200])
    icc[0:4] = struct.pack(">I", 1 << 30)
    return f.jpeg_bytes(f.gradient(64, 48), icc_profile=bytes(icc))


def jpeg_zip_polyglot() -> bytes:
    """A valid JPEG with a ZIP archive appended (readable as both)."""
    return f.jpeg_bytes(f.gradient(64, 48)) + zip_archive()


def png_html_polyglot() -> bytes:
    """A valid PNG whose tEXt chunk holds an HTML page with a script."""
    return _png_with(_png_chunk(b"tEXt", b"Comment\x00<html><script>alert(1)</script></html>"))


def many_app_segments() -> bytes:
    """A JPEG with 60 APP segments of 60 KB each (3.6 MB of metadata) before its frame."""
    data = f.jpeg_bytes(f.gradient(64, 48))
    segment = b"\xff\xe5" + struct.pack(">H", 60002) + b"\x00" * 60000
    return data[:2] + segment * 60 + data[2:]


# ---------------------------------------------------------------- the tables


REJECTED: list[Case] = [
    _rejected("empty body", lambda: b"", "EMPTY"),
    _rejected("random bytes", f.random_bytes, "NOT_AN_IMAGE"),
    _rejected("text named .jpg", f.text_bytes, "NOT_AN_IMAGE"),
    _rejected("HTML named .jpg", html_with_image_extension, "NOT_AN_IMAGE"),
    _rejected("ZIP archive", zip_archive, "NOT_AN_IMAGE"),
    _rejected("JPEG truncated in the scan", jpeg_truncated_in_scan, "TRUNCATED"),
    _rejected("JPEG headers only", jpeg_header_only, "CORRUPT"),
    _rejected("JPEG SOI only", jpeg_soi_only, "CORRUPT"),
    _rejected("JPEG corrupt quantisation table", jpeg_corrupt_quant_table, "CORRUPT"),
    _rejected("JPEG zero dimensions", jpeg_zero_dimensions, "TOO_SMALL"),
    _rejected("JPEG 65500x65500 in 2 KB", jpeg_huge_dimensions, "DECOMPRESSION_BOMB"),
    _rejected("JPEG garbage scan data", jpeg_garbage_scan, "TRUNCATED"),
    _rejected("PNG truncated", png_truncated, "TRUNCATED"),
    _rejected("PNG bad IHDR CRC", png_bad_ihdr_crc, "CORRUPT"),
    _rejected("PNG undecodable IDAT", png_undecodable_idat, "CORRUPT"),
    _rejected("PNG zero dimensions", png_zero_dimensions, "TOO_SMALL"),
    _rejected("PNG header bomb 30000x30000", png_header_bomb, "DECOMPRESSION_BOMB"),
    _rejected("PNG deflate bomb 400 MB", png_zlib_bomb, "DECOMPRESSION_BOMB"),
    _rejected("PNG invalid bit depth", png_bad_bit_depth, "CORRUPT"),
    _rejected("PNG without image data", png_no_idat, "CORRUPT"),
    _rejected("PNG zTXt metadata bomb", png_ztxt_bomb, "CORRUPT"),
    _rejected("PNG iCCP profile bomb", png_huge_icc_bomb, "CORRUPT"),
    _rejected("PNG 70 MB of zTXt chunks", png_many_text_chunks, "CORRUPT"),
    _rejected("GIF truncated", gif_truncated, "TRUNCATED"),
    _rejected("GIF cut in a frame descriptor", gif_cut_in_second_frame, "CORRUPT"),
    _rejected("GIF zero screen size", gif_zero_screen, "TOO_SMALL"),
    _rejected("GIF 65535x65535 screen", gif_huge_screen, "DECOMPRESSION_BOMB"),
    _rejected("GIF/JavaScript polyglot", gif_js_polyglot, "CORRUPT"),
    _rejected("WebP truncated", webp_truncated, "CORRUPT"),
    _rejected("WebP corrupt VP8 header", webp_corrupt_vp8_header, "CORRUPT"),
    _rejected("WebP 16384x16384 canvas", webp_huge_canvas, "DECOMPRESSION_BOMB"),
    _rejected("TIFF truncated", tiff_truncated, "TRUNCATED"),
    _rejected("TIFF IFD offset past the end", tiff_bad_ifd_offset, "CORRUPT"),
    _rejected("TIFF 100000x100000 in 150 bytes", tiff_huge_dimensions, "DECOMPRESSION_BOMB"),
    _rejected("TIFF zero dimensions", tiff_zero_dimensions, "CORRUPT"),
    _rejected("BMP truncated", bmp_truncated, "TRUNCATED"),
    _rejected("BMP 60000x60000 header", bmp_huge_dimensions, "DECOMPRESSION_BOMB"),
    _rejected("BMP zero dimensions", bmp_zero_dimensions, "TOO_SMALL"),
    _rejected("BMP invalid bit depth", bmp_bad_bit_depth, "CORRUPT"),
    _rejected("PNG magic, JPEG body", png_magic_jpeg_body, "CORRUPT"),
    _rejected("JPEG magic, PNG body", jpeg_magic_png_body, "NOT_AN_IMAGE"),
    _rejected("BMP magic, random body", bmp_magic_random, "CORRUPT"),
    _rejected("SVG with a script", svg_with_script, "UNSUPPORTED_FORMAT"),
    _rejected("PDF document", pdf_document, "UNSUPPORTED_FORMAT"),
    _rejected("HEIC brand", heic_brand, "UNSUPPORTED_FORMAT"),
]
if features.check("avif"):
    REJECTED += [
        _rejected("AVIF truncated", avif_truncated, "CORRUPT"),
        _rejected("AVIF scrambled colour planes", avif_corrupt_planes, "CORRUPT"),
        _rejected("AVIF without an image item", avif_missing_item, "CORRUPT"),
    ]

TOLERATED: list[Case] = [
    Case("EXIF orientation 9999", exif_orientation_9999, frozenset()),
    Case("EXIF IFD offset 2 GB past the end", exif_huge_ifd_offset, frozenset()),
    Case("EXIF IFD pointing at itself", exif_ifd_loop, frozenset()),
    Case("EXIF tag with 2^31 values", exif_huge_counts, frozenset()),
    Case("EXIF 64 KB description", exif_max_segment, frozenset()),
    Case("ICC profile of random bytes", icc_garbage, frozenset()),
    Case("ICC header declaring 1 GB", icc_truncated_header, frozenset()),
    Case("JPEG+ZIP polyglot", jpeg_zip_polyglot, frozenset()),
    Case("PNG+HTML polyglot", png_html_polyglot, frozenset()),
]

# Fine when streamed (over a 1 MiB unary limit, under a 4 MiB upload limit).
LARGE_TOLERATED: list[Case] = [
    Case("JPEG with 3.6 MB of APP segments", many_app_segments, frozenset()),
]
