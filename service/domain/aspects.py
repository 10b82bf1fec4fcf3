"""Global aspect scores beside the distortions: seven numbers in 0..1, measured on the pixels.

Each score answers "how good is this image in that respect", 1 best, except `saturation`,
which is a level (0 grey, 1 vivid) since both ends can be right for a product. They are
computed on a grey copy of at most ASPECT_SIDE px (a few ms), independent of the model,
and documented with their formulas in docs/report-format.md ("Aspect scores").

| score | measured | 0 | 1 |
|---|---|---|---|
| focus | variance of the Laplacian of luma | <= FOCUS_LOW | >= FOCUS_HIGH (log scale between) |
| noise | noise sigma (Immerkaer's fast estimate) | sigma >= NOISE_HIGH | sigma 0 |
| exposure | mean luma, share of clipped pixels | black or white frame | mid-grey mean, none clipped |
| contrast | RMS contrast (std of luma) | flat | std >= CONTRAST_FULL |
| saturation | Hasler-Suesstrunk colourfulness | grey | >= SATURATION_FULL |
| jpeg_quality | quality from the quantisation tables | quality 0 | quality 100, or lossless |
| resolution | long side | <= RESOLUTION_LOW px | >= RESOLUTION_HIGH px (log scale between) |
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np

from service.domain.imaging import DecodedImage
from service.domain.measures import ImageStats

ASPECT_SIDE = 512
FOCUS_LOW, FOCUS_HIGH = 20.0, 600.0  # variance of the Laplacian at ASPECT_SIDE px
NOISE_HIGH = 10.0  # luma sigma (0..255) at which the noise score reaches 0
CLIPPED_LOW, CLIPPED_HIGH = 4, 251  # luma at or beyond these counts as crushed / blown out
CONTRAST_FULL = 64.0  # std of luma for a full contrast score
SATURATION_FULL = 80.0  # Hasler-Suesstrunk M for a fully saturated score
RESOLUTION_LOW, RESOLUTION_HIGH = 256, 2000  # long side in pixels
LOSSLESS = frozenset({"PNG", "BMP", "TIFF", "GIF"})

# Immerkaer (1996): a Laplacian difference kernel that cancels image structure of first order
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


@dataclass(frozen=True)
class AspectScores:
    focus: float
    noise: float
    exposure: float
    contrast: float
    saturation: float
    jpeg_quality: float
    resolution: float

    def to_json(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AspectScores:
        return cls(**{f.name: float(d[f.name]) for f in fields(cls)})


def _clip01(x: float) -> float:
    return round(min(1.0, max(0.0, x)), 3)


def _log_ramp(value: float, low: float, high: float) -> float:
    """0 at or below `low`, 1 at or above `high`, linear in log(value) between."""
    if value <= low:
        return 0.0
    return _clip01(math.log(value / low) / math.log(high / low))


def grey_copy(rgb: np.ndarray, side: int = ASPECT_SIDE) -> np.ndarray:
    """Luma of `rgb` with its long side at most `side` (area-averaged), float32."""
    h, w = rgb.shape[:2]
    ratio = min(1.0, side / max(h, w))
    small = (
        rgb
        if ratio == 1.0
        else cv2.resize(
            rgb, (max(1, round(w * ratio)), max(1, round(h * ratio))), interpolation=cv2.INTER_AREA
        )
    )
    return cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2GRAY).astype(np.float32)


def laplacian_variance(grey: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_32F, ksize=3).var())


def noise_sigma(grey: np.ndarray) -> float:
    """Immerkaer's estimate of the standard deviation of white noise in `grey` (0..255)."""
    h, w = grey.shape
    if h < 3 or w < 3:
        return 0.0
    response = cv2.filter2D(grey, cv2.CV_32F, _NOISE_KERNEL)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2) * np.abs(response).sum() / (6.0 * (w - 2) * (h - 2)))


def exposure_score(grey: np.ndarray) -> float:
    """1 for a mean near mid-grey with nothing clipped; falls with the distance of the mean from
    128 and with the share of crushed or blown-out pixels."""
    mean = float(grey.mean())
    clipped = float(((grey <= CLIPPED_LOW) | (grey >= CLIPPED_HIGH)).mean())
    balance = 1.0 - abs(mean - 128.0) / 128.0
    return _clip01(balance * (1.0 - clipped))


def aspect_scores(image: DecodedImage, stats: ImageStats) -> AspectScores:
    grey = grey_copy(image.rgb)
    if image.source_format in LOSSLESS:
        jpeg = 1.0
    elif image.jpeg_quality is not None:
        jpeg = image.jpeg_quality / 100.0
    else:
        jpeg = 0.5  # lossy with non-standard tables, or a format whose quality cannot be read
    return AspectScores(
        focus=_log_ramp(laplacian_variance(grey), FOCUS_LOW, FOCUS_HIGH),
        noise=_clip01(1.0 - noise_sigma(grey) / NOISE_HIGH),
        exposure=exposure_score(grey),
        contrast=_clip01(stats.contrast / CONTRAST_FULL),
        saturation=_clip01(stats.colourfulness / SATURATION_FULL),
        jpeg_quality=_clip01(jpeg),
        resolution=_log_ramp(float(max(image.width, image.height)), RESOLUTION_LOW, RESOLUTION_HIGH),
    )
