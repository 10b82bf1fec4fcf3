"""Pipeline loss metrics (PSNR, SSIM, edge sharpness, blockiness) against known values, and the
distortion changes and guidance of a comparison."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from service.domain import loss
from service.domain.prediction import DetectedDistortion, Prediction
from tests.support.photos import photo_paths


def textured(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A grey test image with edges at every scale: smoothed noise plus shapes."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)), (0, 0), 3) * 0.6 + 50
    cv2.rectangle(base, (43, 29), (149, 139), 230, -1)  # edges off the 8x8 grid
    cv2.circle(base, (229, 149), 60, 20, -1)
    return np.clip(base, 0, 255)


def jpeg_round_trip(grey: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(grey.astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())), np.float64)


def test_psnr_of_a_known_error_is_its_formula():
    """A constant error of 5 grey levels: 10 log10(255^2 / 25) = 34.15 dB; identical is the cap."""
    a = np.full((16, 16), 100.0)
    assert loss.psnr(a, a + 5) == pytest.approx(10 * math.log10(255**2 / 25))
    assert loss.psnr(a, a) == loss.MAX_PSNR_DB
    with pytest.raises(ValueError):
        loss.psnr(a, np.zeros((8, 8)))


def test_ssim_of_identical_images_is_one_and_of_flat_images_is_the_luminance_term():
    """Flat 100 vs flat 110: SSIM = (2*100*110 + C1) / (100^2 + 110^2 + C1) (no variance)."""
    img = textured()
    assert loss.ssim(img, img) == pytest.approx(1.0)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert loss.ssim(np.full((32, 32), 100.0), np.full((32, 32), 110.0)) == pytest.approx(expected)


def test_ssim_falls_with_stronger_noise():
    """Noise of sigma 5 keeps SSIM high; sigma 25 lowers it far more."""
    img = textured()
    rng = np.random.default_rng(1)
    slight = np.clip(img + rng.normal(0, 5, img.shape), 0, 255)
    strong = np.clip(img + rng.normal(0, 25, img.shape), 0, 255)
    s_slight, s_strong = loss.ssim(img, slight), loss.ssim(img, strong)
    assert 1.0 > s_slight > s_strong and s_slight > 0.5


def test_ssim_matches_scikit_image_when_it_is_installed():
    """Against the reference implementation (gaussian_weights, sigma 1.5, no sample covariance)."""
    metrics = pytest.importorskip("skimage.metrics")
    img = textured()
    other = jpeg_round_trip(img, 20)
    reference = metrics.structural_similarity(
        img, other, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert loss.ssim(img, other) == pytest.approx(reference, abs=0.01)


def test_blur_loses_sharpness_in_percent_and_sharpening_is_negative():
    img = textured()
    blurred = cv2.GaussianBlur(img, (0, 0), 2)
    lost = loss.sharpness_loss_percent(img, blurred)
    assert 50 < lost < 100
    assert loss.sharpness_loss_percent(img, cv2.GaussianBlur(img, (0, 0), 0.7)) < lost
    sharpened = np.clip(img + (img - cv2.GaussianBlur(img, (0, 0), 1.5)), 0, 255)
    assert loss.sharpness_loss_percent(img, sharpened) < 0
    assert loss.sharpness_loss_percent(np.zeros((20, 20)), np.zeros((20, 20))) == 0.0


def test_low_jpeg_quality_is_blocky_and_a_clean_image_is_not():
    """Blockiness ~1 for the source and a quality-95 copy; clearly above for quality 10."""
    img = textured()
    clean = loss.blockiness(img)
    assert 0.8 < clean < 1.15
    assert loss.blockiness(jpeg_round_trip(img, 95)) < 1.15
    assert loss.blockiness(jpeg_round_trip(img, 10)) > 1.4


def test_luma_and_resize_helpers():
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 255
    assert loss.luma(rgb)[0, 0] == pytest.approx(0.299 * 255)
    small = loss.resize_to(textured(), (120, 160))
    assert small.shape == (120, 160) and loss.resize_to(small, (240, 320)).shape == (240, 320)


def _pred(w: int, h: int, *found: DetectedDistortion) -> Prediction:
    return Prediction(w, h, tuple(found), 6, 3.5)


def test_changes_say_what_the_step_added_worsened_improved_and_removed():
    """Boxes of the processed image come back in the original's frame (here: half size -> x2)."""
    before = _pred(
        800,
        600,
        DetectedDistortion("Noise", "moderate", 0.8, (0, 0, 800, 600)),
        DetectedDistortion("Motion blur", "slight", 0.6, (0, 0, 100, 100)),
        DetectedDistortion("Underexposure", "moderate", 0.7, (0, 0, 200, 200)),
    )
    after = _pred(
        400,
        300,
        DetectedDistortion("Blocking artifacts", "severe", 0.9, (200, 150, 400, 300)),
        DetectedDistortion("Motion blur", "moderate", 0.6, (0, 0, 50, 50)),
        DetectedDistortion("Noise", "slight", 0.5, (0, 0, 400, 300)),
    )
    changes = {c.type: c for c in loss.distortion_changes(before, after)}
    assert changes["Blocking artifacts"] == loss.DistortionChange(
        "Blocking artifacts", "added", "", "severe", (400, 300, 800, 600)
    )
    assert (changes["Motion blur"].change, changes["Motion blur"].severity_before) == ("worsened", "slight")
    assert changes["Noise"].change == "improved"
    assert changes["Underexposure"] == loss.DistortionChange("Underexposure", "removed", "moderate", "", None)
    order = [c.change for c in loss.distortion_changes(before, after)]
    assert order == ["added", "worsened", "improved", "removed"]


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_blurring_transcoder_gets_sharpness_and_added_distortion_guidance(language):
    """The guidance names the share of edge sharpness removed, and what the model saw added."""
    img = textured(480, 640)
    rgb = np.repeat(img[..., None], 3, axis=2).astype(np.uint8)
    blurred = cv2.GaussianBlur(rgb, (0, 0), 2.5)
    before = _pred(640, 480)
    after = _pred(640, 480, DetectedDistortion("Out of focus blur", "moderate", 0.8, (0, 0, 640, 480)))
    result = loss.compare(rgb, blurred, before, after, language)
    assert result.sharpness_loss_percent > 50 and result.ssim < 1 and result.psnr_db < 40
    codes = [g.code for g in result.guidance]
    assert "LOSS_SHARPNESS" in codes and "LOSS_DISTORTION_ADDED" in codes
    sharp = next(g for g in result.guidance if g.code == "LOSS_SHARPNESS")
    percent = f"{result.sharpness_loss_percent:.0f}"
    expected = {
        "en": f"The processing step removed {percent}% of the edge sharpness.",
        "de": f"Der Verarbeitungsschritt hat {percent} % der Kantenschärfe entfernt.",
    }
    assert sharp.message == expected[language] and sharp.severity == "severe"
    added = next(g for g in result.guidance if g.code == "LOSS_DISTORTION_ADDED")
    assert added.distortion == "Out of focus blur" and added.box == (0, 0, 640, 480)
    word = {"en": "out of focus blur", "de": "Fokusunschärfe"}[language]
    assert word in added.message


def test_an_untouched_copy_gets_no_loss():
    img = textured()
    rgb = np.repeat(img[..., None], 3, axis=2).astype(np.uint8)
    result = loss.compare(rgb, rgb.copy(), _pred(320, 240), _pred(320, 240))
    assert result.psnr_db == loss.MAX_PSNR_DB and result.ssim == pytest.approx(1.0)
    assert [g.code for g in result.guidance] == ["LOSS_NONE"]


def test_a_real_photo_recompressed_at_low_quality_gets_blocking_guidance():
    """A real photograph (when the sources were fetched) re-encoded at quality 8."""
    paths = photo_paths(1)
    if not paths:
        pytest.skip("no real photographs fetched (make data)")
    rgb = np.asarray(Image.open(paths[0]).convert("RGB"))[:600, :800]
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=8)
    low = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    h, w = rgb.shape[:2]
    result = loss.compare(rgb, low, _pred(w, h), _pred(w, h))
    assert "LOSS_BLOCKING" in [g.code for g in result.guidance], result
    assert result.blockiness_processed > result.blockiness_original


def test_large_images_are_measured_at_a_bounded_size_and_blockiness_keeps_the_grid():
    """A 3000 px original is compared at METRIC_SIDE; the blockiness crop starts on the 8x8 grid."""
    big = cv2.resize(textured(), (3000, 2250), interpolation=cv2.INTER_CUBIC)
    assert loss.fit_side(big).shape == (1536, 2048)
    crop = loss.grid_crop(np.arange(2250 * 3000, dtype=np.float64).reshape(2250, 3000))
    assert crop.shape == (1024, 1024) and crop[0, 0] % 3000 % 8 == 0 and crop[0, 0] // 3000 % 8 == 0
    rgb = np.repeat(big[..., None], 3, axis=2).astype(np.uint8)
    result = loss.compare(rgb, rgb.copy(), _pred(3000, 2250), _pred(3000, 2250))
    assert result.psnr_db == loss.MAX_PSNR_DB and result.scale == 1.0
