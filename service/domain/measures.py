"""Measurable facts about the pixels: brightness, contrast, colourfulness and the background.

There is no captioner: the brief description of an image (description step 1) and the
marketplace checks are built from these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WHITE_LEVEL = 250  # a channel value counted as white (Amazon asks for 255; JPEG moves it a little)


@dataclass(frozen=True)
class ImageStats:
    brightness: float  # mean luma, 0..255
    contrast: float  # standard deviation of luma
    colourfulness: float  # Hasler & Suesstrunk (2003) M metric; < 15 is nearly grey, > 60 is vivid
    border_white_fraction: float  # share of the border band whose pixels are >= WHITE_LEVEL on all channels
    border_color: tuple[int, int, int]  # median colour of the border band
    border_uniformity: float  # mean per-channel standard deviation in the border band (0 = flat)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma as float32."""
    f = rgb.astype(np.float32)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def border_band(rgb: np.ndarray, share: float = 0.02) -> np.ndarray:
    """The pixels within `share` of the shorter side (at least 1 px) of any edge, as an Nx3 array."""
    h, w = rgb.shape[:2]
    t = max(1, round(min(h, w) * share))
    parts = (rgb[:t], rgb[-t:], rgb[t:-t, :t], rgb[t:-t, -t:])
    return np.concatenate([p.reshape(-1, 3) for p in parts], axis=0)


def colourfulness(rgb: np.ndarray) -> float:
    f = rgb.astype(np.float32)
    rg = f[..., 0] - f[..., 1]
    yb = 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def measure(rgb: np.ndarray) -> ImageStats:
    """Compute ImageStats for an HxWx3 uint8 image (subsampled to about 1 MP for speed)."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 1_000_000)))
    small = rgb[::step, ::step]
    y = luma(small)
    band = border_band(small)
    r, g, b = (int(v) for v in np.median(band, axis=0))
    return ImageStats(
        brightness=round(float(y.mean()), 2),
        contrast=round(float(y.std()), 2),
        colourfulness=round(colourfulness(small), 2),
        border_white_fraction=round(float((band >= WHITE_LEVEL).all(axis=1).mean()), 4),
        border_color=(r, g, b),
        border_uniformity=round(float(band.astype(np.float32).std(axis=0).mean()), 2),
    )


def white_share(rgb: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Share of the pixels inside `box` (x1, y1, x2, y2) that are white (>= WHITE_LEVEL on all channels)."""
    x1, y1, x2, y2 = box
    region = rgb[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)]
    if region.size == 0:
        return 0.0
    step = max(1, int(np.sqrt(region.shape[0] * region.shape[1] / 250_000)))
    return float((region[::step, ::step] >= WHITE_LEVEL).all(axis=2).mean())
