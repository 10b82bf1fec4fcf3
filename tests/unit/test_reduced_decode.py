"""decode_image with max_side: a large JPEG decodes reduced, keeps the original's facts, and fails
on bad input exactly as a full decode does; reports built on it stay in the original's frame."""

from __future__ import annotations

import numpy as np
import pytest

from service.domain.compliance import check_no_border, check_product_fill
from service.domain.errors import BadImage
from service.domain.imaging import ImageLimits, decode_image
from service.domain.measures import measure
from tests import imagefactory as f


def test_a_large_jpeg_decodes_reduced_with_the_original_size():
    """A 4400x2400 JPEG asked for >= 1000 px decodes at 1/4 scale; width and height stay 4400x2400."""
    data = f.jpeg_bytes(f.gradient(4400, 2400), quality=90)
    full = decode_image(data)
    small = decode_image(data, max_side=1000)
    assert (small.width, small.height) == (4400, 2400) and small.reduced
    assert small.rgb.shape == (600, 1100, 3) and max(small.rgb.shape) >= 1000
    assert (small.jpeg_quality, small.sha256, small.byte_size) == (
        full.jpeg_quality,
        full.sha256,
        full.byte_size,
    )
    assert not full.reduced


@pytest.mark.parametrize("size", [(1024, 815), (815, 1024), (1023, 1023), (2049, 1537)])
def test_an_odd_short_side_does_not_stop_a_reduced_decode(size):
    """A 1024x815 JPEG asked for >= 512 px decodes at 1/2 like a 1024x816 one: the short side's
    rounding must not hold the scale down (it decoded in full before)."""
    width, height = size
    data = f.jpeg_bytes(f.gradient(width, height), quality=90)
    image = decode_image(data, max_side=512)
    long_side = max(image.rgb.shape[:2])
    assert image.reduced == (max(size) >= 1024)
    assert 512 <= long_side < 1024 or not image.reduced  # the largest scale the long side allows


def test_small_jpegs_and_other_formats_decode_in_full():
    """Below twice max_side, or for a PNG, the pixels are the full image."""
    assert not decode_image(f.jpeg_bytes(f.gradient(1500, 1000)), max_side=1000).reduced
    assert not decode_image(f.png_bytes(f.gradient(2400, 600)), max_side=100).reduced


def test_a_rotated_jpeg_keeps_its_rotated_original_size():
    """EXIF orientation 6 (a quarter turn): the reported size is the upright original's."""
    data = f.exif_rotated_jpeg(6, width=800, height=400)
    image = decode_image(data, max_side=100)
    assert (image.width, image.height) == (400, 800)
    assert image.rgb.shape[:2] == (100, 50)  # 1/8 scale, turned upright


@pytest.mark.parametrize(
    "data",
    [
        f.truncated_jpeg(0.3),
        f.truncated_jpeg(0.6),
        f.truncated_jpeg(0.95),
        f.jpeg_bytes()[:200],
        f.random_bytes(),
        f.truncated_png(0.5),
        f.corrupt_png(),
    ],
    ids=["jpeg-30", "jpeg-60", "jpeg-95", "jpeg-header", "noise", "png-half", "png-corrupt"],
)
def test_bad_input_fails_the_same_when_reduced(data):
    """The smallest DCT scale still reads the whole file: every bad input fails with the same reason."""
    reasons = []
    for max_side in (None, 1):
        with pytest.raises(BadImage) as info:
            decode_image(data, ImageLimits(), max_side=max_side)
        reasons.append(info.value.reason)
    assert reasons[0] == reasons[1]


def test_the_pixel_limit_holds_for_reduced_decodes():
    """The pixel limit is the original's, read from the header, whatever the decode scale."""
    data = f.jpeg_bytes(f.gradient(1000, 800))
    with pytest.raises(BadImage) as info:
        decode_image(data, ImageLimits(max_pixels=500_000), max_side=16)
    assert info.value.reason == "DECOMPRESSION_BOMB"


def test_compliance_on_reduced_pixels_is_in_the_original_frame():
    """Product fill and border thickness from a 1/4-scale decode are measured in original pixels."""
    framed = decode_image(f.jpeg_bytes(f.with_border(f.gradient(4000, 3000), 40), quality=95), max_side=1000)
    assert framed.reduced
    assert check_no_border(framed).measured == 40
    product = decode_image(f.jpeg_bytes(f.product_on_white(4000, 4000, 0.6), quality=95), max_side=1000)
    check = check_product_fill(product, measure(product.rgb), 0.85)
    assert check.measured == pytest.approx(0.6, abs=0.01)
    box = [int(v) for v in check.message.split("box ")[1].rstrip(")").split(",")]
    assert np.allclose(box, [800, 800, 3200, 3200], atol=8)
