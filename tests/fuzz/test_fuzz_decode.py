"""Fuzz the decode/normalise path: any bytes -> a DecodedImage or a typed BadImage/ImageTooLarge.

Inputs are valid files of every accepted format and the hostile classes of tests/hostile.py,
mutated (bytes flipped, inserted, deleted, spliced, cut, header fields set to extremes), plus
raw bytes behind each format's signature. Never another exception, never a hang (each example
under FUZZ_EXAMPLE_TIMEOUT_S), never a warning (pytest turns them into errors). The run lasts
FUZZ_SECONDS (`make fuzz`: 600).
"""

from __future__ import annotations

import struct
import warnings
from functools import cache

import numpy as np
import pytest
from hypothesis import strategies as st
from PIL import features

from service.domain.errors import BAD_IMAGE_REASONS, BadImage, ImageTooLarge
from service.domain.imaging import ImageLimits, decode_image
from tests import hostile
from tests import imagefactory as f
from tests.fuzz.fuzzing import EXAMPLE_TIMEOUT_S, FUZZ_SECONDS, fuzz

LIMITS = ImageLimits(max_bytes=8 * 1024 * 1024, max_pixels=4_000_000)
MAGICS = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    b"II*\x00",
    b"BM",
    b"\x00\x00\x00 ftypavif",
]


@cache
def seeds() -> tuple[bytes, ...]:
    """Small valid files of each accepted format and mode, and the hostile classes that fit."""
    img = f.gradient(40, 30)
    out = [
        f.jpeg_bytes(img, quality=80),
        f.jpeg_bytes(img, quality=80, progressive=True),
        f.exif_rotated_jpeg(6, 40, 24),
        f.cmyk_jpeg(size=24),
        f.png_bytes(img),
        f.palette_png_with_transparency(24),
        f.la_png(24),
        f.sixteen_bit_rgb_png(size=20),
        f.encode(img, "GIF"),
        f.animated("GIF", frames=2, size=20),
        f.encode(img, "WEBP", quality=70),
        f.encode(img, "WEBP", lossless=True),
        f.encode(img, "TIFF"),
        f.encode(img, "TIFF", compression="tiff_lzw"),
        f.encode(img, "BMP"),
        f.jpeg_bytes(img, icc_profile=f.swapped_primaries_icc()),
    ]
    if features.check("avif"):
        out.append(f.encode(img, "AVIF"))
    out += [c.build() for c in hostile.REJECTED + hostile.TOLERATED]
    return tuple(d for d in out if len(d) <= 200_000)


EXTREMES = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]

mutation = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 256)),
    st.tuples(st.just("cut"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("int"), st.floats(0, 0.2), st.sampled_from(EXTREMES)),
    st.tuples(st.just("repeat"), st.floats(0, 1), st.integers(2, 50)),
)


def mutate(data: bytes, ops: list[tuple[str, float, object]]) -> bytes:
    for op, where, arg in ops:
        i = min(len(data), int(where * len(data)))
        if op == "flip" and data:
            i = min(i, len(data) - 1)
            data = data[:i] + bytes([int(arg)]) + data[i + 1 :]  # type: ignore[call-overload]
        elif op == "insert":
            data = data[:i] + bytes(arg) + data[i:]  # type: ignore[call-overload]
        elif op == "delete":
            data = data[:i] + data[i + int(arg) :]  # type: ignore[call-overload]
        elif op == "cut":
            data = data[:i]
        elif op == "int":  # a header field set to an extreme, either byte order
            value = int(arg)  # type: ignore[call-overload]
            packed = struct.pack(">I" if i % 2 else "<I", value & 0xFFFFFFFF)
            data = data[:i] + packed + data[i + 4 :]
        elif op == "repeat":  # a chunk or segment repeated
            chunk = data[i : i + 16]
            data = data[:i] + chunk * int(arg) + data[i:]  # type: ignore[call-overload]
    return data


# deferred: the seeds are built on first use, not when pytest imports this module
mutated = st.builds(
    mutate, st.deferred(lambda: st.sampled_from(seeds())), st.lists(mutation, min_size=1, max_size=6)
)
behind_magic = st.builds(lambda m, b: m + b, st.sampled_from(MAGICS), st.binary(max_size=2048))
raw = st.binary(max_size=4096)
uploads = st.one_of(mutated, mutated, mutated, behind_magic, raw)


def decode_outcome(data: bytes) -> str:
    """One example: a decoded image obeying the contract, or a typed error; its outcome label."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping decode_image is a finding
        try:
            image = decode_image(data, LIMITS, max_side=64 if len(data) % 2 else None)
        except BadImage as err:
            assert err.reason in BAD_IMAGE_REASONS and err.message
            return err.reason
        except ImageTooLarge:
            return "TOO_MANY_BYTES"
    assert image.rgb.dtype == np.uint8 and image.rgb.ndim == 3 and image.rgb.shape[2] == 3
    assert not image.rgb.flags.writeable
    assert image.width >= LIMITS.min_side and image.height >= LIMITS.min_side
    assert image.width * image.height <= LIMITS.max_pixels
    return f"ok:{image.source_format}"


@pytest.mark.timeout(FUZZ_SECONDS + 10 * EXAMPLE_TIMEOUT_S + 120)
def test_fuzz_decode_never_crashes_or_hangs():
    """Mutated and random uploads: only DecodedImage, BadImage or ImageTooLarge, each in time."""
    assert fuzz("decode", uploads, decode_outcome).examples > 0
