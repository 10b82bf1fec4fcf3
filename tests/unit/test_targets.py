"""training.targets: spatial perturbation moves labels with the pixels; dense targets match the grid."""

import numpy as np
import pytest

from training.targets import CENTER_CROP, Crop, build_batch, draw_crop, smoothed_fine


def one_sample(t=1, rows=(4, 12), cols=(30, 38), severity=3):
    """A 352x352 image whose labelled region (8-px cells) is painted white."""
    image = np.zeros((1, 352, 352, 3), np.uint8)
    masks = np.zeros((1, 10, 44, 44), np.uint8)
    sev = np.zeros((1, 10, 44, 44), np.uint8)
    masks[0, t, rows[0] : rows[1], cols[0] : cols[1]] = 255
    sev[0, t, rows[0] : rows[1], cols[0] : cols[1]] = severity
    image[0, rows[0] * 8 : rows[1] * 8, cols[0] * 8 : cols[1] * 8] = 255
    present = np.zeros((1, 10), np.uint8)
    present[0, t] = 1
    return image, masks, sev, present, present.copy(), np.array([3.0], np.float32)


def region_of(grid):
    ys, xs = np.nonzero(grid > 0.5)
    return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1


@pytest.mark.parametrize(
    "crop", [CENTER_CROP, Crop(0, 0, False), Crop(32, 8, False), Crop(8, 24, True), Crop(32, 32, True)]
)
def test_coverage_targets_follow_the_pixels_through_crop_and_flip(crop):
    """The white pixels and the coverage target land on the same 16-px cells after any crop/flip."""
    b = build_batch(*one_sample(), crops=[crop])
    img_cells = b.images[0, 0].reshape(20, 16, 20, 16).mean(axis=(1, 3))
    assert region_of(img_cells) == region_of(b.coverage[0, 1])
    assert b.coverage[0, 1].max() == pytest.approx(1.0)
    assert b.coverage[0, [0, *range(2, 10)]].max() == 0.0


def test_severity_target_is_the_label_minus_one_where_labelled():
    """Severity label 3 (severe) becomes 2.0 on covered cells, weight 1 there and 0 elsewhere."""
    b = build_batch(*one_sample(severity=3), crops=[CENTER_CROP])
    covered = b.severity_weight[0, 1] > 0
    assert covered.any()
    assert np.allclose(b.severity[0, 1][covered], 2.0)
    assert np.all(b.severity_weight[0, 1][~covered] == 0)


def test_a_region_cropped_away_is_no_longer_present():
    """A region inside the 32-px margin that the crop drops clears presence and key."""
    sample = one_sample(rows=(0, 2), cols=(0, 2))
    kept = build_batch(*sample, crops=[Crop(0, 0, False)])
    lost = build_batch(*sample, crops=[Crop(32, 32, False)])
    assert kept.present[0, 1] == 1 and kept.key[0, 1] == 1
    assert lost.present[0, 1] == 0 and lost.key[0, 1] == 0


def test_crop_offsets_must_be_grid_aligned():
    """Offsets off the 8-px grid or outside the margin are rejected."""
    with pytest.raises(ValueError):
        Crop(4, 0, False)
    with pytest.raises(ValueError):
        Crop(40, 0, False)


def test_perturbation_rate_is_about_the_requested_fraction():
    """With probability 0.3, about 30% of draws leave the centre crop."""
    rng = np.random.default_rng(0)
    crops = [draw_crop(rng, 0.3) for _ in range(4000)]
    moved = np.mean([c != CENTER_CROP for c in crops])
    assert 0.25 < moved < 0.32  # a random draw can land on the centre crop itself
    assert all(c.x % 8 == 0 and c.y % 8 == 0 for c in crops)


def test_neighbour_label_smoothing_keeps_mass_on_the_scale():
    """Level e gets 0.8 with 0.1 on d and f; the end levels keep the missing neighbour's mass."""
    q = smoothed_fine(np.array([4, 0, 9]))
    assert np.allclose(q.sum(axis=1), 1.0)
    assert q[0, 4] == pytest.approx(0.8) and q[0, 3] == pytest.approx(0.1) and q[0, 5] == pytest.approx(0.1)
    assert q[1, 0] == pytest.approx(0.9) and q[1, 1] == pytest.approx(0.1)
    assert q[2, 9] == pytest.approx(0.9)


def test_fine_levels_come_from_the_pseudo_mos():
    """MOS 1.0 -> a, 3.0 -> f, 5.0 -> j."""
    image, masks, sev, present, key, _ = one_sample()
    rep = [np.repeat(a, 3, axis=0) for a in (image, masks, sev, present, key)]
    b = build_batch(*rep, mos=np.array([1.0, 3.0, 5.0], np.float32), crops=[CENTER_CROP] * 3)
    assert b.fine.tolist() == [0, 5, 9]
