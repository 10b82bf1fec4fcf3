"""Distortion engine: every type is local to its region, graded, and labelled consistently."""

from __future__ import annotations

import numpy as np
import pytest

from service.domain.taxonomy import DISTORTIONS, SEVERITIES
from training import engine


def _photo_like(h: int = 96, w: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([60 + 100 * xx / w, 80 + 90 * yy / h, 140 - 60 * xx / w], axis=2)
    texture = rng.normal(0, 25, (h // 4, w // 4, 1)).repeat(4, 0).repeat(4, 1)
    stripes = 30 * np.sign(np.sin(xx / 3.0 + yy / 5.0))[:, :, None]
    return np.clip(base + texture + stripes, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("distortion", DISTORTIONS)
def test_each_type_changes_its_region_and_leaves_far_pixels_untouched(distortion: str) -> None:
    """Inside the box the image changes clearly; beyond the feather margin it is bit-identical."""
    img = _photo_like()
    box = (24, 24, 72, 72)
    plan = engine.DistortionPlan(distortion, 0.8, (box,), (False,), feather=2.0)
    out, applied = engine.execute(img, [plan], np.random.default_rng(1))
    diff = np.abs(out.astype(np.int16) - img.astype(np.int16)).max(axis=2)
    assert diff[28:68, 28:68].mean() > 3.0
    outside = np.ones_like(diff, dtype=bool)
    outside[24 - 10 : 72 + 10, 24 - 10 : 72 + 10] = False
    assert diff[outside].max() == 0
    assert [a.box for a in applied] == [box]


@pytest.mark.parametrize(
    ("strength", "severity"),
    [
        (0.0, "slight"),
        (0.33, "slight"),
        (0.34, "moderate"),
        (0.66, "moderate"),
        (0.67, "severe"),
        (1.0, "severe"),
    ],
)
def test_strength_maps_to_severity_by_thirds(strength: float, severity: str) -> None:
    """Strength below 1/3 is slight, below 2/3 moderate, otherwise severe."""
    assert engine.severity_for_strength(strength) == severity


def test_strength_outside_unit_interval_is_rejected() -> None:
    """A strength outside [0, 1] raises ValueError."""
    with pytest.raises(ValueError):
        engine.severity_for_strength(1.2)


def test_random_distortions_have_valid_boxes_inside_the_image() -> None:
    """Every recorded region has a non-empty box inside the frame and a mask of the image's size."""
    img = _photo_like(80, 120)
    for seed in range(40):
        out, applied, plans = engine.distort(img, np.random.default_rng(seed))
        assert out.shape == img.shape and out.dtype == np.uint8
        for a in applied:
            x1, y1, x2, y2 = a.box
            assert 0 <= x1 < x2 <= 120 and 0 <= y1 < y2 <= 80
            assert a.mask.shape == (80, 120)
            assert a.distortion in DISTORTIONS and a.severity in SEVERITIES
            assert a.severity == engine.severity_for_strength(a.strength)
        assert len({p.distortion for p in plans}) == len(plans) <= 3


def test_global_plan_records_the_whole_frame() -> None:
    """A global distortion is one record whose box is the full image and mask all ones."""
    img = _photo_like(64, 80)
    _, applied = engine.execute(img, [engine.DistortionPlan("Noise", 0.5, None)], np.random.default_rng(0))
    assert len(applied) == 1
    assert applied[0].box == (0, 0, 80, 64)
    assert float(applied[0].mask.min()) == 1.0


def test_clean_samples_occur_at_about_the_requested_rate() -> None:
    """With clean_p=0.12, roughly one sample in eight has no distortion."""
    rng = np.random.default_rng(3)
    clean = sum(not engine.random_plans((64, 64), rng, clean_p=0.12) for _ in range(1000))
    assert 80 <= clean <= 160


def test_stronger_distortion_moves_pixels_further() -> None:
    """For each type, strength 0.9 changes the image more than strength 0.1."""
    img = _photo_like()
    for name in DISTORTIONS:
        weak = engine.DISTORTION_FUNCTIONS[name](img, 0.1, np.random.default_rng(0))
        strong = engine.DISTORTION_FUNCTIONS[name](img, 0.9, np.random.default_rng(0))
        d_weak = np.abs(weak.astype(np.float32) - img).mean()
        d_strong = np.abs(strong.astype(np.float32) - img).mean()
        assert d_strong > d_weak, name
