"""Two classical no-reference baselines the trained model must beat, on the same images.

Both return items in the ``idetex predict`` format, so ``service.iqa.metrics.evaluate``
scores them exactly like the model. numpy + OpenCV only (no torch).

(a) **Heuristics** with fixed thresholds, chosen once from the literature and the
    features' physical meaning, never tuned on the evaluation set:

    ============================  ===================================  ============================
    feature (grey 0-255,           detects                              threshold
    working resolution)
    ============================  ===================================  ============================
    variance of the Laplacian      blur (Out of focus / Motion blur)    < 100 (the common rule of
                                                                        thumb, Pech-Pacheco 2000)
    gradient coherence (structure  Motion blur instead of Out of focus  >= 0.5
    tensor over the whole image)   blur, given blur
    mean luminance / share of      Underexposure                        mean < 60 or >= 35 % of
    pixels <= 16                                                        pixels <= 16
    mean luminance / share of      Overexposure                         mean > 195 or >= 20 % of
    pixels >= 250                                                       pixels >= 250
    noise sigma (Immerkaer 1996,   Noise                                sigma > 5 grey levels
    flat pixels only)
    8x8 blockiness ratio           Blocking artifacts                   > 1.35 (boundary vs inside
                                                                        column/row differences)
    ============================  ===================================  ============================

    Every detection is a whole-image box; its confidence grows with the margin past the
    threshold (0.5 at the threshold), its severity with the same margin. The most
    confident detection is the key distortion. The score is ``1 + 4 exp(-P / 3)`` where P sums
    a continuous penalty per feature (log-distance past a "clean" level), so it stays on
    1..5 without saturating; grade and fine level come from the score with the challenge
    thresholds.

(b) **BRISQUE** (Mittal et al. 2012) through ``cv2.quality.QualityBRISQUE_compute`` with the
    LIVE model files that Debian ships in ``opencv-doc``. BRISQUE gives a single number
    (0 best, about 100 worst) and no location: it predicts no distortions (distortion
    mAP 0, honestly) but its score, grade and ranking are measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from service.domain.taxonomy import fine_index_to_grade, fine_index_to_level, mos_to_fine_index

# ---- fixed thresholds (see the module docstring); never fitted to evaluation data
BLUR_LAPLACIAN_VAR = 100.0
SHARP_LAPLACIAN_VAR = 400.0  # no blur penalty above this
MOTION_COHERENCE = 0.5
DARK_MEAN, DARK_LEVEL, DARK_SHARE = 60.0, 16, 0.35
BRIGHT_MEAN, BRIGHT_LEVEL, BRIGHT_SHARE = 195.0, 250, 0.20
NOISE_SIGMA = 5.0
CLEAN_NOISE_SIGMA = 2.0
BLOCKINESS_RATIO = 1.35
CLEAN_BLOCKINESS = 1.1

BRISQUE_MODEL = "brisque_model_live.yml"
BRISQUE_RANGE = "brisque_range_live.yml"


@dataclass(frozen=True)
class HeuristicFeatures:
    laplacian_var: float
    coherence: float
    mean_luma: float
    dark_share: float
    bright_share: float
    noise_sigma: float
    blockiness: float


def _grey(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {rgb.dtype} {rgb.shape}")
    if min(rgb.shape[:2]) < 16:
        raise ValueError(f"image too small for the heuristics: {rgb.shape[:2]}")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def noise_sigma(grey: np.ndarray) -> float:
    """Immerkaer's fast noise estimate, over the flattest 50 % of pixels so edges do not count as noise."""
    g = grey.astype(np.float64)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = np.abs(cv2.filter2D(g, -1, kernel, borderType=cv2.BORDER_REFLECT))[1:-1, 1:-1]
    grad = np.hypot(cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3))[
        1:-1, 1:-1
    ]
    flat = response[grad <= np.median(grad)]
    return float(math.sqrt(math.pi / 2) * flat.mean() / 6.0)


def blockiness(grey: np.ndarray, block: int = 8) -> float:
    """Mean absolute step across 8x8 block boundaries over the mean step elsewhere (1 = no grid)."""
    g = grey.astype(np.float64)
    ratios = []
    for diff in (np.abs(np.diff(g, axis=1)).mean(axis=0), np.abs(np.diff(g, axis=0)).mean(axis=1)):
        idx = np.arange(diff.size)
        boundary = diff[idx % block == block - 1]
        inside = diff[idx % block != block - 1]
        ratios.append((boundary.mean() + 1e-3) / (inside.mean() + 1e-3))
    return float(np.mean(ratios))


def gradient_coherence(grey: np.ndarray) -> float:
    """Whole-image structure-tensor coherence in [0, 1]: 1 when all gradients share one direction."""
    g = cv2.GaussianBlur(grey.astype(np.float64), (3, 3), 0)
    gx, gy = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3)
    jxx, jyy, jxy = (gx * gx).mean(), (gy * gy).mean(), (gx * gy).mean()
    root = math.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
    return float(root / (jxx + jyy)) if jxx + jyy > 0 else 0.0


def heuristic_features(rgb: np.ndarray) -> HeuristicFeatures:
    """All features of one RGB uint8 image at its own resolution (the 8x8 grid stays aligned)."""
    grey = _grey(rgb)
    return HeuristicFeatures(
        laplacian_var=float(cv2.Laplacian(grey, cv2.CV_64F).var()),
        coherence=gradient_coherence(grey),
        mean_luma=float(grey.mean()),
        dark_share=float((grey <= DARK_LEVEL).mean()),
        bright_share=float((grey >= BRIGHT_LEVEL).mean()),
        noise_sigma=noise_sigma(grey),
        blockiness=blockiness(grey),
    )


def _confidence(margin: float) -> float:
    """0.5 at the threshold, towards 1 as the (log or relative) margin grows."""
    return 1.0 / (1.0 + math.exp(-4.0 * margin))


def _severity(margin: float) -> str:
    return "slight" if margin < 0.35 else "moderate" if margin < 1.0 else "severe"


def _detections(f: HeuristicFeatures) -> list[tuple[str, float]]:
    """(type, margin >= 0) for every threshold crossed."""
    found: list[tuple[str, float]] = []
    if f.laplacian_var < BLUR_LAPLACIAN_VAR:
        kind = "Motion blur" if f.coherence >= MOTION_COHERENCE else "Out of focus blur"
        found.append((kind, math.log(BLUR_LAPLACIAN_VAR / max(f.laplacian_var, 1e-3)) / 2))
    dark = max(
        (DARK_MEAN - f.mean_luma) / DARK_MEAN if f.mean_luma < DARK_MEAN else -1.0,
        (f.dark_share - DARK_SHARE) / DARK_SHARE if f.dark_share >= DARK_SHARE else -1.0,
    )
    if dark >= 0:
        found.append(("Underexposure", dark * 2))
    bright = max(
        (f.mean_luma - BRIGHT_MEAN) / (255 - BRIGHT_MEAN) if f.mean_luma > BRIGHT_MEAN else -1.0,
        (f.bright_share - BRIGHT_SHARE) / BRIGHT_SHARE if f.bright_share >= BRIGHT_SHARE else -1.0,
    )
    if bright >= 0:
        found.append(("Overexposure", bright * 2))
    if f.noise_sigma > NOISE_SIGMA:
        found.append(("Noise", math.log(f.noise_sigma / NOISE_SIGMA)))
    if f.blockiness > BLOCKINESS_RATIO:
        found.append(("Blocking artifacts", (f.blockiness - BLOCKINESS_RATIO) / 0.5))
    return found


def heuristic_penalty(f: HeuristicFeatures) -> float:
    """Sum of continuous, non-negative penalties, 0 for an image clean on every feature."""
    return (
        0.5 * max(0.0, math.log2(SHARP_LAPLACIAN_VAR / max(f.laplacian_var, 1e-3)))
        + max(0.0, (DARK_MEAN + 30 - f.mean_luma) / 45)
        + 3 * max(0.0, f.dark_share - 0.1)
        + max(0.0, (f.mean_luma - (BRIGHT_MEAN - 30)) / 30)
        + 4 * max(0.0, f.bright_share - 0.05)
        + max(0.0, math.log2(max(f.noise_sigma, 1e-3) / CLEAN_NOISE_SIGMA))
        + 2 * max(0.0, math.log2(f.blockiness / CLEAN_BLOCKINESS))
    )


def heuristic_score(f: HeuristicFeatures) -> float:
    """Fixed map of the penalty onto the 1-5 MOS scale: ``1 + 4 exp(-penalty / 3)``.

    Smooth and strictly decreasing, so stronger distortions keep ranking below weaker ones
    instead of all saturating at 1.
    """
    return 1.0 + 4.0 * math.exp(-heuristic_penalty(f) / 3.0)


def _item(image: str, width: int, height: int, dists: list[dict[str, Any]], score: float) -> dict[str, Any]:
    fine = mos_to_fine_index(score)
    return {
        "image": image,
        "width": width,
        "height": height,
        "distortions": dists,
        "key_distortions": dists[:1],
        "image_quality": fine_index_to_grade(fine),
        "fine_level": fine_index_to_level(fine),
        "score": round(score, 4),
    }


def heuristic_predict(rgb: np.ndarray, image: str = "") -> dict[str, Any]:
    """Heuristic baseline prediction for one RGB uint8 image, in the ``idetex predict`` format."""
    f = heuristic_features(rgb)
    h, w = rgb.shape[:2]
    found = sorted(_detections(f), key=lambda t: -t[1])
    dists = [
        {
            "distortion": kind,
            "severity": _severity(margin),
            "confidence": round(_confidence(margin), 4),
            "coordinates": [0, 0, w, h],
        }
        for kind, margin in found
    ]
    return _item(image, w, h, dists, heuristic_score(f))


# ---------------------------------------------------------------- BRISQUE


BUNDLED_BRISQUE = Path(__file__).resolve().parent / "brisque"  # same files, see brisque/SOURCE.md


def find_brisque_models(root: str | Path, *, bundled: bool = True) -> tuple[Path, Path]:
    """The LIVE model and range files under ``root`` (an extracted ``opencv-doc`` package).

    Falls back to the copy committed in ``training/brisque/`` unless ``bundled`` is False.
    """
    found = {p.name: p for p in Path(root).rglob("brisque_*_live.yml")} if Path(root).exists() else {}
    if bundled and (BRISQUE_MODEL not in found or BRISQUE_RANGE not in found):
        found = {p.name: p for p in BUNDLED_BRISQUE.glob("brisque_*_live.yml")}
    if BRISQUE_MODEL not in found or BRISQUE_RANGE not in found:
        raise FileNotFoundError(
            f"{BRISQUE_MODEL} / {BRISQUE_RANGE} not under {root}: extract Debian opencv-doc there "
            "(dpkg -x opencv-doc_*.deb var/sources/opencv-doc)"
        )
    return found[BRISQUE_MODEL], found[BRISQUE_RANGE]


def brisque_to_score(brisque: float) -> float:
    """BRISQUE 0 (best) .. 100 (worst) -> 5 .. 1 linearly, clipped."""
    return min(max(5.0 - 4.0 * brisque / 100.0, 1.0), 5.0)


def brisque_value(rgb: np.ndarray, model: Path, range_file: Path) -> float:
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    compute = cv2.quality.QualityBRISQUE_compute  # type: ignore[attr-defined]  # contrib module, no stub
    return float(compute(bgr, str(model), str(range_file))[0])


def brisque_predict(rgb: np.ndarray, model: Path, range_file: Path, image: str = "") -> dict[str, Any]:
    """BRISQUE baseline prediction: a score and a grade, no distortions."""
    h, w = rgb.shape[:2]
    raw = brisque_value(rgb, model, range_file)
    item = _item(image, w, h, [], brisque_to_score(raw))
    item["brisque"] = round(raw, 4)
    return item
