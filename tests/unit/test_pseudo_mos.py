"""Pseudo-MOS: clean images score at the top, quality falls as distortion strength rises."""

from __future__ import annotations

import numpy as np
import pytest

from service.domain.taxonomy import DISTORTIONS
from training import engine
from training.pseudo_mos import MOS_CLEAN, key_types, pseudo_mos


def _photo_like(h: int = 128, w: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([60 + 100 * xx / w, 80 + 90 * yy / h, 140 - 60 * xx / w], axis=2)
    texture = rng.normal(0, 8, (h // 4, w // 4, 1)).repeat(4, 0).repeat(4, 1)
    stripes = 25 * np.sign(np.sin(xx / 4.0 + yy / 7.0))[:, :, None]
    return np.clip(base + texture + stripes, 0, 255).astype(np.uint8)


def _distorted(img: np.ndarray, name: str, strength: float) -> np.ndarray:
    boxes = ((24, 24, 104, 104),) if name in engine.REGIONAL_ONLY_TYPES else None
    plan = engine.DistortionPlan(name, strength, boxes, (False,), 1.0)
    out, _ = engine.execute(img, [plan], np.random.default_rng(7))
    return out


def test_clean_image_scores_at_the_top_of_the_scale() -> None:
    """An undistorted image gets MOS_CLEAN, between 4.6 and 5."""
    img = _photo_like()
    assert pseudo_mos(img, img) == pytest.approx(MOS_CLEAN)
    assert 4.6 <= MOS_CLEAN <= 5.0


@pytest.mark.parametrize("name", DISTORTIONS)
def test_quality_falls_monotonically_with_strength(name: str) -> None:
    """For a fixed photo, MOS at strength 0.1 > 0.5 > 0.95 (with a small tolerance)."""
    img = _photo_like()
    scores = [pseudo_mos(img, _distorted(img, name, s)) for s in (0.1, 0.5, 0.95)]
    assert scores[0] >= scores[1] - 0.05 and scores[1] >= scores[2] - 0.05, scores
    assert scores[0] > scores[2], scores
    assert all(1.0 <= s <= MOS_CLEAN for s in scores)


@pytest.mark.parametrize("name", ["Noise", "Underexposure", "Overexposure", "Out of focus blur"])
def test_severe_global_damage_scores_low(name: str) -> None:
    """A severe global distortion lands in the bottom half of the scale."""
    img = _photo_like()
    assert pseudo_mos(img, _distorted(img, name, 1.0)) < 2.6


def test_regional_damage_costs_less_than_the_same_damage_everywhere() -> None:
    """Noise over a quarter of the frame scores higher than the same noise over all of it."""
    img = _photo_like()
    regional = engine.DistortionPlan("Noise", 0.7, ((0, 0, 64, 64),), (False,), 1.0)
    part, _ = engine.execute(img, [regional], np.random.default_rng(0))
    whole, _ = engine.execute(img, [engine.DistortionPlan("Noise", 0.7, None)], np.random.default_rng(0))
    assert pseudo_mos(img, part) > pseudo_mos(img, whole) + 0.3


def test_mismatched_shapes_are_rejected() -> None:
    """Comparing images of different sizes raises ValueError."""
    with pytest.raises(ValueError):
        pseudo_mos(_photo_like(64, 64), _photo_like(64, 80))


def test_key_types_keep_those_within_half_of_the_largest_impact() -> None:
    """Types whose impact is at least half the largest (and above the floor) are key."""
    assert key_types({"Noise": 1.2, "Motion blur": 0.7, "Low clarity": 0.3}) == {"Noise", "Motion blur"}


def test_key_types_fall_back_to_the_strongest_when_all_are_small() -> None:
    """When every impact is under the floor the single strongest type is still key."""
    assert key_types({"Noise": 0.1, "Low clarity": 0.05}) == {"Noise"}
    assert key_types({}) == set()
