"""Global aspect scores: each moves the way its name says on controlled changes of one photo."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from service.domain.aspects import AspectScores, aspect_scores, noise_sigma
from service.domain.imaging import decode_image
from service.domain.measures import measure
from service.domain.prediction import Prediction
from service.domain.report import Report, build_report

PHOTO = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "fruits.jpg"


def _photo() -> Image.Image:
    return Image.open(PHOTO).convert("RGB").resize((1024, 960))


def _scores(im: Image.Image, fmt: str = "JPEG", quality: int = 92) -> AspectScores:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    image = decode_image(buf.getvalue())
    return aspect_scores(image, measure(image.rgb))


def test_every_score_is_between_zero_and_one():
    """All seven scores of a real photo lie in 0..1."""
    scores = _scores(_photo()).to_json()
    assert set(scores) == {
        "focus",
        "noise",
        "exposure",
        "contrast",
        "saturation",
        "jpeg_quality",
        "resolution",
    }
    assert all(0.0 <= v <= 1.0 for v in scores.values()), scores


def test_blur_lowers_focus_step_by_step():
    """Sharp > slightly blurred > heavily blurred; the heavy blur scores near 0."""
    sharp, soft, mush = (_scores(_photo().filter(ImageFilter.GaussianBlur(r))).focus for r in (0.01, 3, 8))
    assert sharp > soft > mush and sharp >= 0.9 and mush <= 0.1


def test_added_noise_lowers_the_noise_score():
    """Gaussian noise of sigma 10 and 25 per channel: the score falls each time."""
    rng = np.random.default_rng(0)
    base = np.asarray(_photo(), dtype=np.float32)
    noisy = [
        Image.fromarray(np.clip(base + rng.normal(0, s, base.shape), 0, 255).astype(np.uint8))
        for s in (10, 25)
    ]
    clean, mid, heavy = _scores(_photo(), quality=95).noise, *(_scores(n, quality=95).noise for n in noisy)
    assert clean > mid > heavy and clean >= 0.9 and heavy <= 0.4


def test_noise_estimate_recovers_a_known_sigma_on_a_flat_image():
    """Immerkaer's estimator on flat grey plus N(0, 5) noise returns about 5."""
    rng = np.random.default_rng(1)
    grey = (128 + rng.normal(0, 5, (400, 400))).astype(np.float32)
    assert noise_sigma(grey) == pytest.approx(5.0, rel=0.1)


def test_a_dark_photo_has_low_exposure_and_a_grey_one_no_saturation():
    """15% brightness: exposure below 0.2; a greyscale copy: saturation 0; the original is neither."""
    dark = Image.fromarray((np.asarray(_photo()) * 0.15).astype(np.uint8))
    original = _scores(_photo())
    assert _scores(dark).exposure < 0.2 < original.exposure
    assert _scores(_photo().convert("L").convert("RGB")).saturation == 0.0 < original.saturation


def test_jpeg_quality_and_resolution_follow_the_file():
    """Quality 30 scores 0.3, PNG 1.0; 2000 px long side scores 1, 256 px scores 0."""
    assert _scores(_photo(), quality=30).jpeg_quality == pytest.approx(0.3, abs=0.02)
    assert _scores(_photo(), fmt="PNG").jpeg_quality == 1.0
    assert _scores(_photo().resize((2000, 1875))).resolution == 1.0
    assert _scores(_photo().resize((256, 240))).resolution == 0.0


def test_reports_carry_aspects_through_json_and_older_ones_have_none():
    """A report's aspects survive to_json/from_json; a stored report without them reads as None."""
    image = decode_image(PHOTO.read_bytes())
    sample_report = build_report(Prediction(image.width, image.height, (), 7, 4.2), image, "default", "m")
    assert sample_report.aspects is not None
    again = Report.from_json(sample_report.to_json())
    assert again.aspects == sample_report.aspects
    legacy = sample_report.to_json()
    legacy.pop("aspects")
    assert Report.from_json(legacy).aspects is None


def test_the_page_and_the_proto_show_the_same_aspects():
    """The report page lists all seven scores; the gRPC Report carries them and converts back."""
    from service.api.convert import report_from_pb, report_to_pb
    from service.domain.report_html import PageContext, render_report

    image = decode_image(PHOTO.read_bytes())
    report = build_report(Prediction(image.width, image.height, (), 7, 4.2), image, "default", "m")
    assert report.aspects is not None
    html = render_report(report, PageContext(job_id="j"), "data:image/jpeg;base64,AAAA")
    for key, value in report.aspects.to_json().items():
        assert f'data-aspect="{key}"><th>' in html and f"<td>{value:.2f}</td>" in html
    proto = report_to_pb(report)
    assert proto.aspects.focus == pytest.approx(report.aspects.focus, abs=1e-6)
    assert report_from_pb(proto).aspects == report.aspects
