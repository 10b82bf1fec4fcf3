"""The classical baselines react to the distortion each feature is meant for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from service.domain.taxonomy import mos_to_grade
from training.baselines import (
    blockiness,
    brisque_predict,
    brisque_to_score,
    find_brisque_models,
    heuristic_features,
    heuristic_predict,
    noise_sigma,
)

OPENCV_DOC = Path(__file__).resolve().parents[2] / "var" / "sources" / "opencv-doc"


def scene(width: int = 480, height: int = 360, seed: int = 0) -> np.ndarray:
    """A sharp, mid-grey 'photo': random flat patches with hard edges plus fine texture."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), 110, dtype=np.float64)
    for _ in range(40):
        x, y = rng.integers(0, width - 20), rng.integers(0, height - 20)
        w, h = rng.integers(10, 120), rng.integers(10, 120)
        img[y : y + h, x : x + w] = rng.integers(40, 200, size=3)
    yy, xx = np.mgrid[0:height, 0:width]
    img += (18 * np.sin(xx / 1.7) * np.cos(yy / 2.3))[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def kinds(pred: dict[str, Any]) -> set[str]:
    return {d["distortion"] for d in pred["distortions"]}


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def test_clean_scene_has_no_detections_and_a_good_score() -> None:
    """A sharp, well exposed, clean image triggers no threshold."""
    pred = heuristic_predict(scene(), "clean.png")
    assert pred["distortions"] == [] and pred["key_distortions"] == []
    assert pred["score"] > 3.4 and pred["image_quality"] in {"good", "excellent"}


def test_gaussian_blur_is_found_and_lowers_the_score() -> None:
    """Blur drops the Laplacian variance under its threshold; stronger blur scores lower."""
    clean = scene()
    scores = [heuristic_predict(clean)["score"]]
    for sigma in (1.5, 3.0, 6.0):
        pred = heuristic_predict(cv2.GaussianBlur(clean, (0, 0), sigma))
        scores.append(pred["score"])
    assert "Out of focus blur" in kinds(heuristic_predict(cv2.GaussianBlur(clean, (0, 0), 3.0)))
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4


def test_horizontal_motion_blur_reads_as_motion_blur() -> None:
    """A long 1-D kernel leaves one gradient direction: coherence picks Motion blur."""
    kernel = np.full((1, 31), 1 / 31)
    assert "Motion blur" in kinds(heuristic_predict(cv2.filter2D(scene(), -1, kernel)))


def test_additive_noise_is_found() -> None:
    """Gaussian noise of sigma 12 is estimated near 12 and detected as Noise."""
    rng = np.random.default_rng(1)
    noisy = np.clip(scene().astype(np.float64) + rng.normal(0, 12, (360, 480, 3)), 0, 255).astype(np.uint8)
    grey = cv2.cvtColor(noisy, cv2.COLOR_RGB2GRAY)
    assert 6 < noise_sigma(grey) < 14
    assert "Noise" in kinds(heuristic_predict(noisy))


def test_strong_jpeg_is_blocking() -> None:
    """JPEG at quality 8 raises the 8x8 boundary ratio well above 1."""
    coded = jpeg(cv2.GaussianBlur(scene(), (0, 0), 1.0), 8)
    assert blockiness(cv2.cvtColor(coded, cv2.COLOR_RGB2GRAY)) > 1.35
    assert "Blocking artifacts" in kinds(heuristic_predict(coded))


def test_exposure_errors_are_found() -> None:
    """A quarter of the brightness is underexposed, a doubled one overexposed."""
    clean = scene().astype(np.float64)
    assert "Underexposure" in kinds(heuristic_predict((clean * 0.25).astype(np.uint8)))
    assert "Overexposure" in kinds(heuristic_predict(np.clip(clean * 2.3, 0, 255).astype(np.uint8)))


def test_prediction_has_the_predict_format() -> None:
    """Whole-image boxes, confidences above 0.5, the most confident one as key, grade from score."""
    img = (cv2.GaussianBlur(scene(), (0, 0), 4.0) * 0.3).astype(np.uint8)
    pred = heuristic_predict(img, "x.png")
    assert pred["image"] == "x.png" and (pred["width"], pred["height"]) == (480, 360)
    assert all(d["coordinates"] == [0, 0, 480, 360] for d in pred["distortions"])
    assert all(0.5 <= d["confidence"] <= 1.0 for d in pred["distortions"])
    assert pred["key_distortions"] == pred["distortions"][:1]
    top = max(d["confidence"] for d in pred["distortions"])
    assert pred["key_distortions"][0]["confidence"] == top
    assert 1.0 <= pred["score"] <= 5.0
    assert pred["image_quality"] == mos_to_grade(pred["score"])


def test_features_reject_non_rgb_input() -> None:
    """A grey or float image is a ValueError, not a wrong answer."""
    with pytest.raises(ValueError, match="RGB uint8"):
        heuristic_features(np.zeros((64, 64), dtype=np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        heuristic_features(np.zeros((64, 64, 3), dtype=np.float32))


def test_brisque_score_mapping_is_linear_and_clipped() -> None:
    """0 -> 5, 50 -> 3, 100 and beyond -> 1, negatives -> 5."""
    assert brisque_to_score(0) == 5.0
    assert brisque_to_score(50) == pytest.approx(3.0)
    assert brisque_to_score(140) == 1.0
    assert brisque_to_score(-5) == 5.0


def test_missing_brisque_models_say_where_to_get_them(tmp_path: Path) -> None:
    """Without the opencv-doc files the error names the package."""
    with pytest.raises(FileNotFoundError, match="opencv-doc"):
        find_brisque_models(tmp_path, bundled=False)


def test_brisque_models_fall_back_to_the_committed_copy(tmp_path: Path) -> None:
    """Without an extracted opencv-doc, the LIVE files committed in training/brisque are used."""
    model, rng_file = find_brisque_models(tmp_path)
    assert model.name == "brisque_model_live.yml" and rng_file.name == "brisque_range_live.yml"
    assert model.parent.name == "brisque"


def test_brisque_scores_blur_and_noise_lower_than_the_clean_image() -> None:
    """Real BRISQUE with the LIVE model on a real photo: distorted versions score lower, no boxes."""
    model, rng_file = find_brisque_models(OPENCV_DOC)
    photo = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "fruits.jpg"
    clean = np.ascontiguousarray(cv2.imread(str(photo))[:, :, ::-1])
    rng = np.random.default_rng(2)
    noisy = np.clip(clean.astype(np.float64) + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    base = brisque_predict(clean, model, rng_file, "c.png")
    assert base["distortions"] == [] and base["key_distortions"] == []
    assert isinstance(base["brisque"], float)
    assert brisque_predict(cv2.GaussianBlur(clean, (0, 0), 4.0), model, rng_file)["score"] < base["score"]
    assert brisque_predict(noisy, model, rng_file)["score"] < base["score"]
