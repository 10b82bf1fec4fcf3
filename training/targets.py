"""Training samples from shard arrays: iDetex spatial perturbation and dense targets.

Shards hold 352x352 images with 44x44 per-type coverage and severity grids (8 px
cells, see var/data shard format). A sample is a 320x320 crop whose offsets are
multiples of 8, so the grids crop exactly to 40x40 cells and pool 2x2 to the
model's 20x20 output grid. Spatial perturbation (a random crop offset plus a
horizontal flip, masks moved alongside) is applied to a fraction of samples; the
rest use the centre crop. No photometric augmentation: brightness, contrast or
noise changes would contradict the exposure and noise labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.domain.taxonomy import mos_to_fine_index

SRC = 352
CROP = 320
CELL = 8
CENTER = (SRC - CROP) // 2  # 16, a multiple of CELL
MAX_OFFSET_CELLS = (SRC - CROP) // CELL  # 4
NUM_FINE = 10


@dataclass(frozen=True)
class Crop:
    x: int  # left offset in pixels, multiple of CELL
    y: int
    flip: bool

    def __post_init__(self) -> None:
        for v in (self.x, self.y):
            if v % CELL or not 0 <= v <= SRC - CROP:
                raise ValueError(f"crop offset {v} must be a multiple of {CELL} in [0, {SRC - CROP}]")


CENTER_CROP = Crop(CENTER, CENTER, False)


def draw_crop(rng: np.random.Generator, perturb_prob: float) -> Crop:
    """Centre crop, or with probability ``perturb_prob`` a random grid-aligned crop and a coin-flip mirror."""
    if rng.random() >= perturb_prob:
        return CENTER_CROP
    x, y = (int(v) * CELL for v in rng.integers(0, MAX_OFFSET_CELLS + 1, size=2))
    return Crop(x, y, bool(rng.random() < 0.5))


@dataclass(frozen=True)
class Batch:
    images: np.ndarray  # float32 [B, 3, 320, 320], 0..1
    coverage: np.ndarray  # float32 [B, 10, 20, 20], 0..1
    severity: np.ndarray  # float32 [B, 10, 20, 20], 0 slight .. 2 severe (where weight > 0)
    severity_weight: np.ndarray  # float32 [B, 10, 20, 20], fraction of the cell with a severity label
    present: np.ndarray  # float32 [B, 10]
    key: np.ndarray  # float32 [B, 10]
    fine: np.ndarray  # int64 [B], 0..9
    mos: np.ndarray  # float32 [B]


def _pool2(a: np.ndarray) -> np.ndarray:
    """Average 2x2 blocks over the last two axes."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


def crop_sample(
    image: np.ndarray, mask: np.ndarray, sev: np.ndarray, present: np.ndarray, key: np.ndarray, crop: Crop
) -> tuple[np.ndarray, ...]:
    """Crop (and mirror) one sample; labels of a type whose region falls outside the crop are cleared."""
    cx, cy, n = crop.x // CELL, crop.y // CELL, CROP // CELL
    img = image[crop.y : crop.y + CROP, crop.x : crop.x + CROP]
    m = mask[:, cy : cy + n, cx : cx + n]
    s = sev[:, cy : cy + n, cx : cx + n]
    if crop.flip:
        img, m, s = img[:, ::-1], m[:, :, ::-1], s[:, :, ::-1]
    lost = (mask.reshape(len(mask), -1).max(axis=1) > 0) & (m.reshape(len(m), -1).max(axis=1) == 0)
    present = np.where(lost, 0, present)
    key = np.where(lost, 0, key)
    return img, m, s, present, key


def fine_targets(mos: np.ndarray) -> np.ndarray:
    return np.array([mos_to_fine_index(float(v)) for v in mos], dtype=np.int64)


def smoothed_fine(fine: np.ndarray, neighbour: float = 0.1) -> np.ndarray:
    """Neighbour label smoothing: ``neighbour`` mass on each adjacent level, the rest on the true one."""
    out = np.zeros((len(fine), NUM_FINE), dtype=np.float32)
    for i, k in enumerate(fine):
        out[i, k] = 1.0
        for j in (k - 1, k + 1):
            if 0 <= j < NUM_FINE:
                out[i, j] = neighbour
                out[i, k] -= neighbour
    return out


def build_batch(
    images: np.ndarray,
    masks: np.ndarray,
    sev_maps: np.ndarray,
    present: np.ndarray,
    key: np.ndarray,
    mos: np.ndarray,
    crops: list[Crop],
) -> Batch:
    """Stack cropped samples and turn 44-grid labels into the model's 20x20 targets."""
    parts = [
        crop_sample(images[i], masks[i], sev_maps[i], present[i], key[i], c) for i, c in enumerate(crops)
    ]
    img = np.stack([p[0] for p in parts]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    m = np.stack([p[1] for p in parts]).astype(np.float32) / 255.0
    s = np.stack([p[2] for p in parts]).astype(np.float32)
    labelled = (s > 0).astype(np.float32)
    weight = _pool2(labelled)
    sev_sum = _pool2((s - 1.0) * labelled)
    severity = np.where(weight > 0, sev_sum / np.maximum(weight, 1e-6), 0.0).astype(np.float32)
    return Batch(
        images=np.ascontiguousarray(img),
        coverage=_pool2(m).astype(np.float32),
        severity=severity,
        severity_weight=weight.astype(np.float32),
        present=np.stack([p[3] for p in parts]).astype(np.float32),
        key=np.stack([p[4] for p in parts]).astype(np.float32),
        fine=fine_targets(mos),
        mos=mos.astype(np.float32),
    )
