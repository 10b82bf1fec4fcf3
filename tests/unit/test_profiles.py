"""Marketplace profiles: the named profiles exist and unknown names are a typed error."""

from __future__ import annotations

import pytest

from service.domain.errors import InvalidRequest
from service.domain.profiles import PROFILES, get_profile


def test_the_marketplace_profiles_exist():
    """default (quality only), amazon_main, amazon_additional, ebay, google_merchant and generic."""
    assert set(PROFILES) == {
        "default",
        "amazon_main",
        "amazon_additional",
        "ebay",
        "google_merchant",
        "generic",
    }
    assert PROFILES["amazon_additional"].white_background is False
    assert not PROFILES["amazon_additional"].no_text_or_watermarks


def test_profile_names_are_case_insensitive_and_empty_means_default():
    """' Amazon_Main ' finds amazon_main; '' finds default."""
    assert get_profile(" Amazon_Main ").name == "amazon_main"
    assert get_profile("").name == "default"


def test_unknown_profile_is_an_invalid_request():
    """An unknown name raises InvalidRequest on field 'profile'."""
    with pytest.raises(InvalidRequest) as info:
        get_profile("etsy")
    assert info.value.field == "profile"
    assert info.value.reason == "UNKNOWN_PROFILE"
    assert "amazon_main" in info.value.message


def test_profile_thresholds_follow_the_marketplaces():
    """The published numbers: Amazon 85% fill and 1000/500 px, eBay quality 90, Google 64 MP / 16 MB."""
    amazon, ebay, google = PROFILES["amazon_main"], PROFILES["ebay"], PROFILES["google_merchant"]
    assert (amazon.min_long_side, amazon.recommended_long_side, amazon.min_product_fill) == (500, 1000, 0.85)
    assert amazon.white_background
    assert (ebay.min_long_side, ebay.recommended_long_side, ebay.min_jpeg_quality) == (500, 1000, 90)
    assert ebay.no_borders
    assert (google.max_megapixels, google.max_file_bytes, google.no_borders) == (64.0, 16 * 1024 * 1024, True)
