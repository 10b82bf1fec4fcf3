"""Pipeline loss analysis: what a processing step (transcoder, resizer, CDN) did to an image.

Pure: the original's and the processed image's pixels and the model's predictions for each in,
a Comparison out. Full-reference metrics run on luma (BT.601) after the processed image is
resized to the original's size (INTER_AREA down, INTER_CUBIC up); an original larger than
METRIC_SIDE on its long side is first reduced to it (INTER_AREA), which bounds memory and time:

- PSNR in dB (MAX 255; 100 dB when the images are identical);
- SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03, mean of the map);
- edge sharpness: variance of the Laplacian; the loss is 1 - processed / original, in %
  (negative when the step sharpened);
- blockiness on each image's own pixel grid (before any resizing; a central crop of at most
  BLOCKINESS_SIDE px, aligned to the 8x8 grid): mean absolute luma step across 8x8 block
  boundaries over the mean step inside blocks (about 1.0 without blocking).

Guidance uses the catalogue's LOSS_* keys, in the caller's language.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from service.domain import i18n
from service.domain.findings import Guidance
from service.domain.guidance import DISTORTION_CODES
from service.domain.localize import region as local_region
from service.domain.prediction import Box, DetectedDistortion, Prediction
from service.domain.regions import describe_region
from service.domain.taxonomy import SEVERITIES

MAX_PSNR_DB: Final = 100.0
SSIM_SIGMA: Final = 1.5
SSIM_C1: Final = (0.01 * 255) ** 2
SSIM_C2: Final = (0.03 * 255) ** 2
BLOCK: Final = 8
METRIC_SIDE: Final = 2048  # PSNR, SSIM and sharpness at most at this long side
BLOCKINESS_SIDE: Final = 1024  # blockiness on a grid-aligned central crop at most this large
# guidance thresholds
SHARPNESS_LOSS_PCT: Final = 15.0  # below this an edge loss is not worth a line
BLOCKING_FACTOR: Final = 1.25  # processed blockiness / original's
BLOCKING_MIN: Final = 1.15  # and visibly blocky in itself
FIDELITY_SSIM: Final = 0.90

_RANK: Final = {s: i for i, s in enumerate(SEVERITIES)}


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an HxWx3 RGB image (any numeric dtype, 0..255) as float64."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim == 2:
        return rgb
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two same-shaped images; MAX_PSNR_DB when identical."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    if mse == 0.0:
        return MAX_PSNR_DB
    return min(MAX_PSNR_DB, 10.0 * math.log10(peak * peak / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two same-shaped grey images (0..255), Gaussian-weighted windows."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (11, 11), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    num = (2 * mx * my + SSIM_C1) * (2 * cxy + SSIM_C2)
    den = (mx * mx + my * my + SSIM_C1) * (vx + vy + SSIM_C2)
    return float(np.mean(num / den))


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian (3x3): the edge energy a blur removes."""
    return float(cv2.Laplacian(np.asarray(grey, np.float64), cv2.CV_64F, ksize=3).var())


def sharpness_loss_percent(original: np.ndarray, processed: np.ndarray) -> float:
    """Edge sharpness the processed image lost against the original (same shape), in %."""
    before = sharpness(original)
    if before <= 1e-9:
        return 0.0
    return 100.0 * (1.0 - sharpness(processed) / before)


def blockiness(grey: np.ndarray) -> float:
    """Mean |luma step| across 8x8 block boundaries / mean |step| inside blocks (1.0: no blocks)."""
    g = np.asarray(grey, np.float64)
    dx = np.abs(np.diff(g, axis=1))  # dx[:, j] = step between columns j and j+1
    dy = np.abs(np.diff(g, axis=0))
    if dx.shape[1] < 2 * BLOCK or dy.shape[0] < 2 * BLOCK:
        return 1.0
    cols = np.arange(dx.shape[1]) % BLOCK == BLOCK - 1
    rows = np.arange(dy.shape[0]) % BLOCK == BLOCK - 1
    across = np.concatenate([dx[:, cols].ravel(), dy[rows, :].ravel()])
    inside = np.concatenate([dx[:, ~cols].ravel(), dy[~rows, :].ravel()])
    inner = float(inside.mean())
    if inner <= 1e-6:
        return 1.0 if float(across.mean()) <= 1e-6 else float(across.mean()) / 1e-3
    return float(across.mean()) / inner


def grid_crop(grey: np.ndarray, side: int = BLOCKINESS_SIDE) -> np.ndarray:
    """A central crop of at most side x side whose origin lies on the 8x8 block grid."""
    h, w = grey.shape[:2]
    top = max(0, (h - side) // 2) // BLOCK * BLOCK
    left = max(0, (w - side) // 2) // BLOCK * BLOCK
    return grey[top : top + side, left : left + side]


def fit_side(grey: np.ndarray, side: int = METRIC_SIDE) -> np.ndarray:
    """`grey` reduced (INTER_AREA) to at most `side` px on its long side; as is when it fits."""
    h, w = grey.shape[:2]
    if max(h, w) <= side:
        return grey
    scale = side / max(h, w)
    return resize_to(grey, (max(1, round(h * scale)), max(1, round(w * scale))))


def resize_to(grey: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`grey` resized to (height, width) = shape: INTER_AREA when shrinking, INTER_CUBIC when enlarging."""
    h, w = shape
    if grey.shape[:2] == (h, w):
        return grey
    shrink = grey.shape[0] * grey.shape[1] > h * w
    return cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


@dataclass(frozen=True)
class DistortionChange:
    type: str  # taxonomy string
    change: str  # added | worsened | improved | removed
    severity_before: str  # "" when absent
    severity_after: str
    box: Box | None  # in the original's frame, where it is after the step; None when removed


@dataclass(frozen=True)
class Comparison:
    psnr_db: float
    ssim: float
    sharpness_loss_percent: float
    blockiness_original: float
    blockiness_processed: float
    scale: float  # processed size / original size (long side)
    original: Prediction
    processed: Prediction
    changes: tuple[DistortionChange, ...]
    guidance: tuple[Guidance, ...]
    language: str = "en"


def _worst(items: Iterable[DetectedDistortion]) -> dict[str, DetectedDistortion]:
    """Per type, the most severe (then most confident) detection."""
    worst: dict[str, DetectedDistortion] = {}
    for d in items:
        now = worst.get(d.distortion)
        if now is None or (_RANK[d.severity], d.confidence) > (_RANK[now.severity], now.confidence):
            worst[d.distortion] = d
    return worst


def _scaled(box: Box, sx: float, sy: float) -> Box:
    return (round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy))


def distortion_changes(original: Prediction, processed: Prediction) -> tuple[DistortionChange, ...]:
    """Per distortion type: added or worsened by the step first, then improved or removed."""
    before, after = _worst(original.distortions), _worst(processed.distortions)
    sx = original.width / processed.width if processed.width else 1.0
    sy = original.height / processed.height if processed.height else 1.0
    changes = []
    for kind in sorted(set(before) | set(after)):
        b, a = before.get(kind), after.get(kind)
        box = _scaled(a.box, sx, sy) if a is not None else None
        if b is None and a is not None:
            changes.append(DistortionChange(kind, "added", "", a.severity, box))
        elif a is None and b is not None:
            changes.append(DistortionChange(kind, "removed", b.severity, "", None))
        elif a is not None and b is not None and _RANK[a.severity] != _RANK[b.severity]:
            change = "worsened" if _RANK[a.severity] > _RANK[b.severity] else "improved"
            changes.append(DistortionChange(kind, change, b.severity, a.severity, box))
    order = {"added": 0, "worsened": 1, "improved": 2, "removed": 3}
    changes.sort(key=lambda c: (order[c.change], -_RANK[c.severity_after or c.severity_before]))
    return tuple(changes)


def _grade(value: float, moderate: float, severe: float) -> str:
    return "severe" if value >= severe else "moderate" if value >= moderate else "slight"


def loss_guidance(
    changes: Iterable[DistortionChange],
    sharpness_loss: float,
    blockiness_original: float,
    blockiness_processed: float,
    similarity: float,
    psnr_db: float,
    width: int,
    height: int,
    language: str = "en",
) -> tuple[Guidance, ...]:
    """What the step did, in `language`, worst first; LOSS_NONE when nothing stands out."""
    items: list[Guidance] = []

    def fmt(value: float, digits: int) -> str:
        return i18n.number(language, f"{value:.{digits}f}")

    if sharpness_loss >= SHARPNESS_LOSS_PCT:
        items.append(
            Guidance(
                "LOSS_SHARPNESS",
                i18n.render(language, "LOSS_SHARPNESS.message", percent=f"{sharpness_loss:.0f}"),
                i18n.text(language, "LOSS_SHARPNESS.fix"),
                severity=_grade(sharpness_loss, 30.0, 50.0),
            )
        )
    factor = blockiness_processed / max(blockiness_original, 1e-6)
    if factor >= BLOCKING_FACTOR and blockiness_processed >= BLOCKING_MIN:
        items.append(
            Guidance(
                "LOSS_BLOCKING",
                i18n.render(language, "LOSS_BLOCKING.message", factor=fmt(factor, 1)),
                i18n.text(language, "LOSS_BLOCKING.fix"),
                severity=_grade(factor, 1.5, 2.0),
            )
        )
    for c in changes:
        if c.change not in ("added", "worsened") or c.box is None:
            continue
        code = DISTORTION_CODES[c.type]
        where = local_region(language, describe_region(c.box, width, height))
        what = i18n.word(language, "type", c.type)
        before = i18n.word(language, "severity", c.severity_before)
        after = i18n.word(language, "severity", c.severity_after)
        if c.change == "added":
            code_key = "LOSS_DISTORTION_ADDED"
            message = i18n.render(
                language, f"{code_key}.message", sentence=True, severity=after, distortion=what, region=where
            )
        else:
            code_key = "LOSS_DISTORTION_WORSENED"
            message = i18n.render(
                language,
                f"{code_key}.message",
                sentence=True,
                distortion=what,
                region=where,
                before=before,
                after=after,
            )
        items.append(
            Guidance(
                code_key,
                message,
                i18n.text(language, f"{code}.fix"),
                distortion=c.type,
                box=c.box,
                severity=c.severity_after,
            )
        )
    if similarity < FIDELITY_SSIM:
        items.append(
            Guidance(
                "LOSS_FIDELITY",
                i18n.render(language, "LOSS_FIDELITY.message", psnr=fmt(psnr_db, 1), ssim=fmt(similarity, 3)),
                i18n.text(language, "LOSS_FIDELITY.fix"),
                severity=_grade(1.0 - similarity, 0.15, 0.3),
            )
        )
    if not items:
        items.append(
            Guidance(
                "LOSS_NONE",
                i18n.text(language, "LOSS_NONE.message"),
                i18n.text(language, "LOSS_NONE.fix"),
                severity="slight",
            )
        )
    items.sort(key=lambda g: -_RANK[g.severity])
    return tuple(items)


def compare(
    original_rgb: np.ndarray,
    processed_rgb: np.ndarray,
    original: Prediction,
    processed: Prediction,
    language: str = "en",
) -> Comparison:
    """The processing step's losses: metrics on the pixels, changes between the two predictions.

    The predictions' frames are the images' full sizes (Prediction.width/height); the pixel
    arrays may be those sizes or any other (metrics compare at the original array's size).
    """
    grey_o, grey_p = luma(original_rgb), luma(processed_rgb)
    block_o, block_p = blockiness(grid_crop(grey_o)), blockiness(grid_crop(grey_p))
    grey_o = fit_side(grey_o)
    grey_p_at_o = resize_to(grey_p, (grey_o.shape[0], grey_o.shape[1]))
    p_db, s = psnr(grey_o, grey_p_at_o), ssim(grey_o, grey_p_at_o)
    loss = sharpness_loss_percent(grey_o, grey_p_at_o)
    changes = distortion_changes(original, processed)
    scale = max(processed.width, processed.height) / max(original.width, original.height, 1)
    guidance = loss_guidance(
        changes, loss, block_o, block_p, s, p_db, original.width, original.height, language
    )
    return Comparison(
        psnr_db=round(p_db, 3),
        ssim=round(s, 4),
        sharpness_loss_percent=round(loss, 2),
        blockiness_original=round(block_o, 3),
        blockiness_processed=round(block_p, 3),
        scale=round(scale, 4),
        original=original,
        processed=processed,
        changes=changes,
        guidance=guidance,
        language=language,
    )
