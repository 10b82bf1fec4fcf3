"""Marketplace checks measured on real decoded images built in code."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from service.domain.compliance import (
    check_jpeg_quality,
    check_max_file_bytes,
    check_max_megapixels,
    check_min_long_side,
    check_no_border,
    check_product_fill,
    check_recommended_long_side,
    check_white_background,
    run_checks,
)
from service.domain.guidance import COMPLIANCE_CODES
from service.domain.imaging import decode_image
from service.domain.layout import detect_border, product_box
from service.domain.measures import measure
from service.domain.profiles import PROFILES
from tests import imagefactory as f


def decoded(rgb: np.ndarray, fmt: str = "PNG", **params):
    return decode_image(f.encode(rgb, fmt, **params))


def by_code(checks):
    return {c.code: c for c in checks}


def test_white_background_passes_for_a_product_on_pure_white():
    """A product centred on RGB 255 passes the white background rule."""
    img = decoded(f.product_on_white(800, 800, 0.9))
    check = check_white_background(measure(img.rgb), 0.95)
    assert check.passed is True and check.measured == 1.0


def test_white_background_survives_jpeg_noise():
    """JPEG at quality 90 moves white to ~252-255: still white."""
    img = decoded(f.product_on_white(800, 800, 0.9), "JPEG", quality=90)
    assert check_white_background(measure(img.rgb), 0.95).passed is True


@pytest.mark.parametrize("background", [(240, 240, 240), (255, 250, 200), (20, 20, 20)])
def test_off_white_backgrounds_fail(background):
    """Light grey, cream and black backgrounds are not pure white."""
    img = decoded(f.product_on_white(800, 800, 0.9, background=background))
    check = check_white_background(measure(img.rgb), 0.95)
    assert check.passed is False
    assert check.code == "IMG_NOT_WHITE_BACKGROUND" and check.required


def test_product_filling_90_percent_passes_and_60_percent_fails():
    """Product fill is the product's larger extent over the frame side."""
    big = decoded(f.product_on_white(1000, 1000, 0.9))
    small = decoded(f.product_on_white(1000, 1000, 0.6))
    ok = check_product_fill(big, measure(big.rgb), 0.85)
    bad = check_product_fill(small, measure(small.rgb), 0.85)
    assert ok.passed is True and ok.measured == pytest.approx(0.9, abs=0.01)
    assert bad.passed is False and bad.measured == pytest.approx(0.6, abs=0.01)
    assert "60%" in bad.message


def test_product_fill_on_a_busy_background_is_not_checked():
    """Without a plain background the product cannot be found: passed is None, not True."""
    img = decoded(f.gradient(800, 800))
    check = check_product_fill(img, measure(img.rgb), 0.85)
    assert check.passed is None


def test_a_blank_white_image_has_no_product():
    """A plain white picture fails the fill rule: there is no product."""
    img = decoded(f.solid(600, 600))
    check = check_product_fill(img, measure(img.rgb), 0.85)
    assert check.passed is False and check.measured == 0.0


def test_product_box_ignores_specks():
    """A few stray dark pixels on the white background do not widen the product box."""
    rgb = f.product_on_white(1000, 1000, 0.5)
    rgb[5, 5] = 0
    rgb[990, 990] = 0
    assert product_box(rgb, (255, 255, 255)) == (250, 250, 750, 750)


def test_long_side_rules():
    """500 px minimum is required; 1000 px is a recommendation."""
    img = decoded(f.gradient(800, 400))
    minimum, zoom = check_min_long_side(img, 500), check_recommended_long_side(img, 1000)
    assert minimum.passed is True and minimum.required
    assert zoom.passed is False and not zoom.required and zoom.measured == 800
    assert check_min_long_side(decoded(f.gradient(400, 300)), 500).passed is False


@pytest.mark.parametrize(("quality", "passed"), [(95, True), (90, True), (89, False), (60, False)])
def test_jpeg_quality_rule(quality, passed):
    """eBay: JPEG quality >= 90, from the estimated IJG quality."""
    img = decode_image(f.jpeg_bytes(quality=quality))
    check = check_jpeg_quality(img, 90)
    assert check.passed is passed and check.measured == quality


def test_jpeg_quality_rule_does_not_apply_to_png():
    """A PNG passes the JPEG quality rule (it does not apply) with a message saying so."""
    check = check_jpeg_quality(decode_image(f.png_bytes()), 90)
    assert check.passed is True and "does not apply" in check.message


@pytest.mark.parametrize("colour", [(0, 0, 0), (200, 30, 30), (255, 255, 255)])
def test_uniform_frames_are_borders(colour):
    """A 12 px frame in black, red or white around a photo is a border."""
    img = decoded(f.with_border(f.gradient(800, 600), 12, colour))
    check = check_no_border(img)
    assert check.passed is False and check.measured == 12


def test_black_letterbox_bars_are_borders():
    """Black bars above and below a photo are a border."""
    rgb = f.gradient(800, 600)
    rgb[:60] = 0
    rgb[-60:] = 0
    border = detect_border(rgb)
    assert border is not None and border.sides == ("top", "bottom")


@pytest.mark.parametrize("fill", [0.6, 0.9])
def test_white_margins_around_a_product_are_not_a_border(fill):
    """A product on a white background (even a rectangular one) has no border."""
    assert check_no_border(decoded(f.product_on_white(1000, 1000, fill))).passed is True


def test_plain_photo_has_no_border():
    """A photo with content up to its edges has no border."""
    assert check_no_border(decoded(f.gradient(800, 600))).passed is True


def test_megapixel_and_file_size_limits():
    """Google: more than 64 MP or more than 16 MB fails (facts replaced to avoid huge test files)."""
    img = decoded(f.gradient(100, 100))
    big = dataclasses.replace(img, width=9000, height=8000)
    assert check_max_megapixels(big, 64).passed is False
    assert check_max_megapixels(img, 64).passed is True
    heavy = dataclasses.replace(img, byte_size=17 * 1024 * 1024)
    assert check_max_file_bytes(heavy, 16 * 1024 * 1024).passed is False
    assert "17 MB" in check_max_file_bytes(heavy, 16 * 1024 * 1024).message
    assert check_max_file_bytes(img, 16 * 1024 * 1024).passed is True


def test_default_profile_runs_no_rules():
    """The default profile is about quality only."""
    assert run_checks(decoded(f.gradient()), PROFILES["default"]) == ()


def test_amazon_profile_checks_and_text_rule_is_not_checked():
    """amazon_main: size, zoom, white background, fill and format measured; text/watermarks not
    checked without the scene analysis."""
    img = decoded(f.product_on_white(1200, 1200, 0.9))
    checks = by_code(run_checks(img, PROFILES["amazon_main"]))
    assert set(checks) == {
        "IMG_LOW_RESOLUTION",
        "IMG_BELOW_ZOOM_SIZE",
        "IMG_NOT_WHITE_BACKGROUND",
        "IMG_PRODUCT_TOO_SMALL",
        "IMG_TEXT_OR_WATERMARK",
        "IMG_FORMAT_NOT_ALLOWED",
    }
    assert all(c.passed is True for code, c in checks.items() if code != "IMG_TEXT_OR_WATERMARK")
    assert checks["IMG_TEXT_OR_WATERMARK"].passed is None


def test_ebay_profile_flags_low_quality_jpeg_with_border():
    """eBay: a framed quality-70 JPEG fails the quality and border rules."""
    img = decode_image(f.jpeg_bytes(f.with_border(f.gradient(1200, 900), 10), quality=70))
    checks = by_code(run_checks(img, PROFILES["ebay"]))
    assert checks["IMG_JPEG_QUALITY_LOW"].passed is False
    assert checks["IMG_HAS_BORDER"].passed is False
    assert checks["IMG_LOW_RESOLUTION"].passed is True


def test_every_check_uses_a_documented_code_and_has_a_fix():
    """All codes come from the guidance registry, and fixes are not empty."""
    img = decoded(f.product_on_white(600, 600, 0.5))
    for profile in PROFILES.values():
        for check in run_checks(img, profile):
            assert check.code in COMPLIANCE_CODES
            assert check.fix == COMPLIANCE_CODES[check.code]
            assert check.rule and check.message


def test_a_format_outside_the_profile_fails_the_format_rule():
    """amazon_main takes JPEG, PNG, TIFF, GIF: a WebP fails and names its format; a PNG passes;
    generic takes WebP."""
    rgb = f.product_on_white(800, 800, 0.9)
    webp = decode_image(f.encode(rgb, "WEBP", quality=90))
    failed = by_code(run_checks(webp, PROFILES["amazon_main"]))["IMG_FORMAT_NOT_ALLOWED"]
    assert failed.passed is False and "WEBP" in failed.message and "JPEG" in failed.rule
    assert by_code(run_checks(decode_image(f.png_bytes(rgb)), PROFILES["amazon_main"]))[
        "IMG_FORMAT_NOT_ALLOWED"
    ].passed
    assert by_code(run_checks(webp, PROFILES["generic"]))["IMG_FORMAT_NOT_ALLOWED"].passed


def test_a_merchant_can_narrow_the_allowed_formats():
    """An override allowed_formats=jpeg makes a PNG fail under amazon_main."""
    from service.domain.policy import apply_overrides, parse_assignments

    profile = apply_overrides(PROFILES["amazon_main"], parse_assignments(["allowed_formats=jpeg"]))
    png = decode_image(f.png_bytes(f.product_on_white(800, 800, 0.9)))
    assert by_code(run_checks(png, profile))["IMG_FORMAT_NOT_ALLOWED"].passed is False
