"""Every malformed-input class of tests/hostile.py through decode_image: a typed BadImage with
the expected reason, quickly, and nothing else (no other exception, no warning escapes, since
pytest turns warnings into errors). Hostile metadata on good pixels is ignored, not fatal."""

from __future__ import annotations

import time

import pytest

from service.domain.errors import BadImage
from service.domain.imaging import ImageLimits, decode_image
from tests import hostile

MiB = 1024 * 1024
LIMITS = ImageLimits(max_bytes=16 * MiB)
# CPU seconds of this process per case (wall time varies with the machine's other work): a bomb
# that inflated would take far longer
SECONDS = 5.0


@pytest.mark.parametrize("case", hostile.REJECTED, ids=[c.name for c in hostile.REJECTED])
def test_malformed_upload_is_a_typed_bad_image(case):
    """The class is refused with its BadImage reason, naming the image field, in seconds."""
    data = case.build()
    start = time.process_time()
    with pytest.raises(BadImage) as err:
        decode_image(data, LIMITS)
    assert time.process_time() - start < SECONDS
    assert err.value.reason in case.reasons, err.value
    assert err.value.field == "image" and err.value.message


@pytest.mark.parametrize(
    "case",
    hostile.TOLERATED + hostile.LARGE_TOLERATED,
    ids=[c.name for c in hostile.TOLERATED + hostile.LARGE_TOLERATED],
)
def test_hostile_metadata_on_good_pixels_is_ignored(case):
    """Absurd EXIF, garbage ICC profiles, polyglots and bulky metadata: the pixels decode."""
    start = time.process_time()
    image = decode_image(case.build(), LIMITS)
    assert time.process_time() - start < SECONDS
    assert image.rgb.shape == (image.height, image.width, 3)
    assert min(image.width, image.height) >= LIMITS.min_side


def test_at_least_thirty_classes_are_refused():
    """The issue's bar: 30 distinct malformed-input classes, each with a typed answer."""
    assert len({c.name for c in hostile.REJECTED}) >= 30


def test_absurd_orientation_is_not_applied():
    """EXIF orientation 9999 is not one of the eight: the image keeps its frame."""
    image = decode_image(hostile.exif_orientation_9999())
    assert (image.width, image.height) == (64, 48) and not image.exif_transposed


def test_a_deflate_bomb_is_refused_before_inflating():
    """400 MB of pixels in a ~400 KB file is refused from the header, in well under a CPU second."""
    data = hostile.png_zlib_bomb()
    start = time.process_time()
    with pytest.raises(BadImage, match="pixels"):
        decode_image(data, LIMITS)
    assert time.process_time() - start < 1.0
