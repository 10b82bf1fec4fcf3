"""Pseudo-MOS: a 1..5 quality score from full-reference comparison with the clean image.

Computed at an analysis scale (long side <= 352 px, the model's input scale) from four per-pixel damage maps:

- structure: 1 - SSIM (Gaussian window, sigma 1.5) on luma, averaged over two scales;
- gradients: 1 - gradient magnitude similarity (the GMSD map, Prewitt, c = 170) on half-scale luma;
- luminance: |local mean luma difference| / 64 (exposure shifts, flat patches), capped at 1;
- chroma: |local mean chroma difference| / 48, capped at 1.

Damage d = 0.45 structure + 0.30 gradients + 0.35 luminance + 0.15 chroma per pixel, pooled as
P = 0.5 * mean(d) + 0.5 * mean(worst 25% of d) so a damaged region counts more than its bare area.
MOS = 1 + (MOS_CLEAN - 1) * exp(-P / TAU): a clean image scores MOS_CLEAN (4.85), heavy global
damage approaches 1. Every map grows with distortion strength, so the score falls monotonically.
"""

from __future__ import annotations

import cv2
import numpy as np

MOS_CLEAN = 4.85
TAU = 0.2
GAMMA = 1.0
ANALYSIS_LONG_SIDE = 352
WEIGHTS = {"structure": 0.15, "gradient": 1.0, "luminance": 0.35, "chroma": 0.10}
WORST_FRACTION = 0.25


def _analysis_scale(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    scale = ANALYSIS_LONG_SIDE / max(h, w)
    if scale >= 1.0:
        return img
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _ycc(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.float32)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM map of two float32 luma images on a 0..255 scale."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), 1.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return np.asarray(num / den, dtype=np.float32)


def gms_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Gradient magnitude similarity map (GMSD's, Prewitt filters, c = 170) of two luma images."""
    kx = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], dtype=np.float32) / 3.0
    ky = kx.T.copy()

    def mag(x: np.ndarray) -> np.ndarray:
        return np.sqrt(cv2.filter2D(x, -1, kx) ** 2 + cv2.filter2D(x, -1, ky) ** 2)

    ga, gb = mag(a), mag(b)
    c = 170.0
    return np.asarray((2 * ga * gb + c) / (ga * ga + gb * gb + c), dtype=np.float32)


def damage_map(ref: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Per-pixel damage in [0, ~1.25] at analysis scale (see the module docstring)."""
    if ref.shape != dist.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {dist.shape}")
    r, d = _ycc(_analysis_scale(ref)), _ycc(_analysis_scale(dist))
    ry, dy = r[:, :, 0], d[:, :, 0]
    h, w = ry.shape
    s1 = 1.0 - np.clip(ssim_map(ry, dy), 0.0, 1.0)
    half = (max(1, w // 2), max(1, h // 2))
    ry2 = cv2.resize(ry, half, interpolation=cv2.INTER_AREA)
    dy2 = cv2.resize(dy, half, interpolation=cv2.INTER_AREA)
    s2 = cv2.resize(1.0 - np.clip(ssim_map(ry2, dy2), 0.0, 1.0), (w, h), interpolation=cv2.INTER_LINEAR)
    structure = 0.5 * (s1 + s2)
    gradient = cv2.resize(1.0 - gms_map(ry2, dy2), (w, h), interpolation=cv2.INTER_LINEAR)
    sigma = max(1.0, min(h, w) / 128)  # on the half-scale image: about 1/64 of the short side
    mean_r = cv2.resize(
        cv2.GaussianBlur(cv2.resize(r, half, interpolation=cv2.INTER_AREA), (0, 0), sigma), (w, h)
    )
    mean_d = cv2.resize(
        cv2.GaussianBlur(cv2.resize(d, half, interpolation=cv2.INTER_AREA), (0, 0), sigma), (w, h)
    )
    luminance = np.minimum(np.abs(mean_r[:, :, 0] - mean_d[:, :, 0]) / 128.0, 1.0)
    chroma = np.minimum(np.abs(mean_r[:, :, 1:] - mean_d[:, :, 1:]).sum(axis=2) / 48.0, 1.0)
    return np.asarray(
        WEIGHTS["structure"] * structure
        + WEIGHTS["gradient"] * gradient
        + WEIGHTS["luminance"] * luminance
        + WEIGHTS["chroma"] * chroma,
        dtype=np.float32,
    )


def pooled_damage(ref: np.ndarray, dist: np.ndarray) -> float:
    """Mean damage blended with the mean of the worst quarter of pixels."""
    d = damage_map(ref, dist).ravel()
    k = max(1, int(d.size * WORST_FRACTION))
    worst = np.partition(d, d.size - k)[d.size - k :]
    return float(0.5 * d.mean() + 0.5 * worst.mean())


def pseudo_mos(ref: np.ndarray, dist: np.ndarray) -> float:
    """Pseudo-MOS in [1, MOS_CLEAN] of `dist` against its clean reference `ref` (uint8 RGB)."""
    return float(1.0 + (MOS_CLEAN - 1.0) * np.exp(-((pooled_damage(ref, dist) / TAU) ** GAMMA)))


KEY_RELATIVE = 0.5
KEY_FLOOR = 0.25


def key_types(impacts: dict[str, float]) -> set[str]:
    """Key distortions: impact >= KEY_RELATIVE x the largest impact and above KEY_FLOOR MOS points.

    `impacts` maps each present type to its MOS drop when applied alone to the clean image.
    If every impact is below the floor, the strongest type is still key (the image is distorted).
    """
    if not impacts:
        return set()
    top = max(impacts.values())
    keys = {t for t, v in impacts.items() if v >= KEY_RELATIVE * top and v >= KEY_FLOOR}
    if not keys:
        keys = {max(impacts, key=lambda t: impacts[t])}
    return keys
