"""IJG quality estimate from a luminance quantization table."""

from __future__ import annotations

import pytest

from service.domain.jpegquality import STD_LUMINANCE, estimate_quality, ijg_table


@pytest.mark.parametrize("quality", [1, 10, 25, 49, 50, 51, 75, 90, 99, 100])
def test_ijg_tables_map_back_to_their_quality(quality):
    """Every generated IJG table estimates to its own quality (ties go to the higher one)."""
    assert estimate_quality(ijg_table(quality)) >= quality
    assert ijg_table(estimate_quality(ijg_table(quality))) == ijg_table(quality)


def test_quality_50_is_the_standard_table():
    """Q50 is Annex K unscaled."""
    assert ijg_table(50) == STD_LUMINANCE


def test_order_does_not_matter():
    """Zigzag or natural order give the same estimate."""
    assert estimate_quality(list(reversed(ijg_table(80)))) == 80


def test_tables_must_have_64_entries():
    """Anything but 64 entries is rejected."""
    with pytest.raises(ValueError):
        estimate_quality([1] * 63)
