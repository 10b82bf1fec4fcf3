"""build_report end to end on a decoded image; the JSON form round-trips exactly."""

from __future__ import annotations

import json

import pytest

from service.domain.errors import InvalidRequest
from service.domain.imaging import decode_image
from service.domain.prediction import DetectedDistortion, Prediction
from service.domain.report import Report, build_report
from tests import imagefactory as f

W, H = 1200, 1000


@pytest.fixture(scope="module")
def image():
    return decode_image(f.jpeg_bytes(f.product_on_white(W, H, 0.9), quality=92))


def prediction(fine_index=7, distortions=None):
    if distortions is None:
        distortions = (
            DetectedDistortion("Motion blur", "moderate", 0.81234, (700, 600, 1190, 990), key=True),
            DetectedDistortion("Noise", "slight", 0.5, (0, 0, W, H)),
        )
    return Prediction(W, H, tuple(distortions), fine_index, 3.87654, tuple([0.1] * 10))


@pytest.mark.parametrize("profile", ["default", "amazon_main", "ebay", "google_merchant"])
def test_report_json_round_trips(image, profile):
    """Report.from_json(r.to_json()) == r, also through a JSON string."""
    r = build_report(prediction(), image, profile, "idetex_lite:3")
    assert Report.from_json(r.to_json()) == r
    assert Report.from_json(json.loads(json.dumps(r.to_json()))) == r


def test_report_carries_grade_distortions_and_facts(image):
    """Grade, fine level, rounded score, distortions in words, image facts and model version."""
    r = build_report(prediction(), image, "default", "idetex_lite:3")
    assert (r.grade, r.fine_level, r.score, r.model_version) == ("good", "h", 3.8765, "idetex_lite:3")
    first = r.distortions[0]
    assert (first.type, first.severity, first.key, first.confidence) == (
        "Motion blur",
        "moderate",
        True,
        0.8123,
    )
    assert first.region == "in the lower right corner" and first.impact
    assert r.key_distortions == (first,)
    assert (r.image.width, r.image.height, r.image.source_format, r.image.jpeg_quality) == (W, H, "JPEG", 92)
    assert r.image.sha256 == image.sha256
    assert r.description.lines[-1] == "Thus, the quality of the image is good."


def test_verdict_follows_the_profile(image):
    """The same prediction: warn on default (moderate key blur); compliance decides amazon_main."""
    assert build_report(prediction(), image, "default", "m").verdict == "warn"
    clean = prediction(fine_index=9, distortions=())
    assert build_report(clean, image, "default", "m").verdict == "accept"
    amazon = build_report(clean, image, "amazon_main", "m")
    assert amazon.verdict == "accept"  # 1200 px, white background, 90% fill; text rule not checked
    assert {c.code: c.passed for c in amazon.compliance}["IMG_TEXT_OR_WATERMARK"] is None


def test_small_grey_photo_is_rejected_for_amazon_with_guidance():
    """A 600 px photo on grey fails white background and fill; guidance lists the failed rules."""
    img = decode_image(f.png_bytes(f.product_on_white(600, 600, 0.5, background=(200, 200, 200))))
    r = build_report(Prediction(600, 600, (), 9, 4.6), img, "amazon_main", "m")
    assert r.verdict == "reject"
    codes = [g.code for g in r.guidance]
    assert "IMG_NOT_WHITE_BACKGROUND" in codes and "IMG_PRODUCT_TOO_SMALL" in codes
    assert "IMG_BELOW_ZOOM_SIZE" in codes
    assert any("IMG_NOT_WHITE_BACKGROUND" in reason for reason in r.verdict_reasons)


def test_boxes_are_clipped_to_the_image(image):
    """A box reaching past the frame is clipped to the image's pixels."""
    p = prediction(distortions=(DetectedDistortion("Noise", "moderate", 0.6, (-20, 900, 1300, 1100)),))
    (d,) = build_report(p, image, "default", "m").distortions
    assert d.box == (0, 900, W, H)


def test_unknown_profile_is_rejected(image):
    """An unknown profile name raises InvalidRequest."""
    with pytest.raises(InvalidRequest):
        build_report(prediction(), image, "etsy", "m")


def test_from_json_refuses_an_unknown_verdict(image):
    """A stored report with a verdict outside accept/warn/reject does not load silently."""
    data = build_report(prediction(), image, "default", "m").to_json()
    data["verdict"] = "maybe"
    with pytest.raises(ValueError):
        Report.from_json(data)


def test_white_background_is_expected_on_amazon_not_a_defect(image):
    """A 'Meaningless solid color' box over the white margin gives no guidance or verdict on amazon_main."""
    margin = DetectedDistortion("Meaningless solid color", "severe", 0.9, (0, 0, W, 40), key=True)
    p = prediction(fine_index=9, distortions=(margin,))
    amazon = build_report(p, image, "amazon_main", "m")
    (d,) = amazon.distortions
    assert d.expected and "white background" in d.impact
    assert amazon.verdict == "accept"
    assert "IMG_SOLID_COLOR_AREA" not in [g.code for g in amazon.guidance]
    assert Report.from_json(amazon.to_json()) == amazon
    default = build_report(p, image, "default", "m")
    assert not default.distortions[0].expected
    assert default.verdict == "reject"
    assert default.guidance[0].code == "IMG_SOLID_COLOR_AREA"


def test_coloured_solid_area_is_still_a_defect_on_amazon():
    """A solid non-white area stays a distortion with guidance under amazon_main."""
    rgb = f.product_on_white(W, H, 0.9)
    rgb[60:300, 60:600] = (200, 0, 0)
    img = decode_image(f.png_bytes(rgb))
    area = DetectedDistortion("Meaningless solid color", "moderate", 0.9, (60, 60, 600, 300), key=True)
    r = build_report(prediction(fine_index=9, distortions=(area,)), img, "amazon_main", "m")
    assert not r.distortions[0].expected
    assert "IMG_SOLID_COLOR_AREA" in [g.code for g in r.guidance]
