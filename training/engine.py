"""Synthetic distortion engine: the ten taxonomy distortions at graded strength, global or regional.

Every distortion is a pure function `(image, strength, rng) -> image` applied to the whole frame,
then blended into the clean image through a feathered mask (rectangles or ellipses with soft edges).
Strength is continuous in [0, 1]; `severity_for_strength` turns it into slight / moderate / severe.
Images are uint8 RGB arrays [H, W, 3]; masks are float32 [H, W] in 0..1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from service.domain.taxonomy import DISTORTIONS, SEVERITIES

Image = np.ndarray
Rng = np.random.Generator

# Strength thresholds between slight | moderate | severe.
SEVERITY_THRESHOLDS: tuple[float, float] = (1 / 3, 2 / 3)
# Types that are usually global or cover a large part of the frame.
EXPOSURE_TYPES = frozenset({"Underexposure", "Overexposure"})
# Types that only make sense on part of the frame.
REGIONAL_ONLY_TYPES = frozenset({"Meaningless solid color"})
# Application order: capture-time effects first, processing and compression last.
PIPELINE_ORDER: tuple[str, ...] = (
    "Underexposure",
    "Overexposure",
    "Out of focus blur",
    "Motion blur",
    "Low clarity",
    "Edge aliasing effect",
    "Edge ringing effect",
    "Noise",
    "Meaningless solid color",
    "Blocking artifacts",
)


def severity_for_strength(strength: float) -> str:
    """Map a strength in [0, 1] to slight (<1/3), moderate (<2/3) or severe."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength out of [0, 1]: {strength}")
    if strength < SEVERITY_THRESHOLDS[0]:
        return SEVERITIES[0]
    if strength < SEVERITY_THRESHOLDS[1]:
        return SEVERITIES[1]
    return SEVERITIES[2]


@dataclass(frozen=True)
class AppliedDistortion:
    """One distorted region: its type, strength, severity, pixel box and soft mask."""

    distortion: str
    strength: float
    severity: str
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive end) in the image's pixel frame
    mask: np.ndarray = field(repr=False)  # float32 [H, W], 0..1

    def to_json(self, key: bool, scale: float = 1.0) -> dict[str, object]:
        x1, y1, x2, y2 = self.box
        return {
            "distortion": self.distortion,
            "severity": self.severity,
            "box": [round(x1 * scale), round(y1 * scale), round(x2 * scale), round(y2 * scale)],
            "strength": round(self.strength, 4),
            "key": key,
        }


# ---------------------------------------------------------------- the ten global distortions


def _f32(img: Image) -> np.ndarray:
    return img.astype(np.float32)


def _u8(arr: np.ndarray) -> Image:
    return np.clip(arr + 0.5, 0, 255).astype(np.uint8)


def low_clarity(img: Image, s: float, rng: Rng) -> Image:
    """Loss of detail: area downscale by 1.5..8x, bilinear upscale, mild softening."""
    h, w = img.shape[:2]
    factor = 1.5 + 6.5 * s
    small = cv2.resize(
        img, (max(2, round(w / factor)), max(2, round(h / factor))), interpolation=cv2.INTER_AREA
    )
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(up, (0, 0), 0.4 + 0.6 * s)


def noise(img: Image, s: float, rng: Rng) -> Image:
    """Sensor noise: signal-dependent luminance noise plus coarser chroma noise."""
    h, w = img.shape[:2]
    x = _f32(img)
    sigma = 2.0 + 20.0 * s
    shot = np.sqrt(np.maximum(x.mean(axis=2, keepdims=True), 1.0) / 128.0)
    lum = rng.standard_normal((h, w, 1), dtype=np.float32) * sigma * (0.6 + 0.4 * shot)
    ch, cw = max(2, h // 2), max(2, w // 2)
    chroma = cv2.resize(
        rng.standard_normal((ch, cw, 3), dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR
    )
    chroma = chroma * (sigma * float(rng.uniform(0.2, 0.7)))
    return _u8(x + lum + chroma)


def underexposure(img: Image, s: float, rng: Rng) -> Image:
    """Too dark: lower gain, steeper gamma and crushed shadows."""
    x = _f32(img) / 255.0
    gain = 1.0 - 0.5 * s
    gamma = 1.0 + 0.7 * s
    floor = 0.06 * s
    y = np.clip((np.power(x, gamma) * gain - floor) / (1.0 - floor), 0.0, 1.0)
    return _u8(y * 255.0)


def overexposure(img: Image, s: float, rng: Rng) -> Image:
    """Too bright: higher gain, flatter gamma and clipped highlights."""
    x = _f32(img) / 255.0
    gain = 1.0 + 1.0 * s
    gamma = 1.0 - 0.3 * s
    lift = 0.04 * s
    y = np.clip(np.power(x, gamma) * gain + lift, 0.0, 1.0)
    return _u8(y * 255.0)


def blocking(img: Image, s: float, rng: Rng) -> Image:
    """JPEG at quality 28 down to 2: visible 8x8 blocks and colour bleeding."""
    quality = round(28 - 26 * s**0.6)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def edge_aliasing(img: Image, s: float, rng: Rng) -> Image:
    """Jagged edges: nearest-neighbour decimation by 1.5..3.8x and nearest upscale, blended in."""
    h, w = img.shape[:2]
    factor = 1.5 + 2.3 * s
    small = cv2.resize(
        img, (max(2, round(w / factor)), max(2, round(h / factor))), interpolation=cv2.INTER_NEAREST
    )
    jagged = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    alpha = 0.45 + 0.55 * s
    return _u8(_f32(img) * (1.0 - alpha) + _f32(jagged) * alpha)


def edge_ringing(img: Image, s: float, rng: Rng) -> Image:
    """Over-sharpening: strong unsharp mask, bright and dark halos along edges."""
    x = _f32(img)
    sigma = 1.2 + 1.8 * s
    amount = 1.0 + 3.5 * s
    blurred = cv2.GaussianBlur(x, (0, 0), sigma)
    return _u8(x + amount * (x - blurred))


def _disk_kernel(radius: float) -> np.ndarray:
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
    k = np.clip(radius + 0.5 - np.sqrt(xx * xx + yy * yy), 0.0, 1.0)
    return (k / k.sum()).astype(np.float32)


def out_of_focus(img: Image, s: float, rng: Rng) -> Image:
    """Defocus: convolution with a disk kernel of radius 1..10 px."""
    return cv2.filter2D(img, -1, _disk_kernel(1.0 + 9.0 * s), borderType=cv2.BORDER_REFLECT)


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    size = int(np.ceil(length)) | 1
    k: np.ndarray = np.zeros((size, size), dtype=np.float32)
    c = size // 2
    cv2.line(k, (0, c), (size - 1, c), (1.0,), 1, lineType=cv2.LINE_AA)
    rot = cv2.getRotationMatrix2D((c, c), angle_deg, 1.0)
    k = cv2.warpAffine(k, rot, (size, size), flags=cv2.INTER_LINEAR)
    return k / max(float(k.sum()), 1e-6)


def motion_blur(img: Image, s: float, rng: Rng) -> Image:
    """Camera shake: convolution with a line kernel of 2.5..28.5 px at a random angle."""
    angle = float(rng.uniform(0.0, 180.0))
    return cv2.filter2D(img, -1, _line_kernel(2.5 + 26.0 * s, angle), borderType=cv2.BORDER_REFLECT)


def solid_color(img: Image, s: float, rng: Rng) -> Image:
    """A flat, near-uniform colour replacing the content (texture left fades out with strength)."""
    h, w = img.shape[:2]
    choice = rng.uniform()
    if choice < 0.4:
        colour = rng.uniform(0, 255, 3)
    elif choice < 0.7:
        colour = np.full(3, rng.choice([0.0, 255.0, float(rng.uniform(20, 235))]))
    else:
        colour = img.reshape(-1, 3).mean(axis=0)
    x = _f32(img)
    detail = x - cv2.GaussianBlur(x, (0, 0), 3.0)
    grain = rng.standard_normal((h, w, 1), dtype=np.float32) * 1.5
    return _u8(colour.astype(np.float32)[None, None, :] + detail * 0.35 * (1.0 - s) + grain)


DISTORTION_FUNCTIONS: dict[str, Callable[[Image, float, Rng], Image]] = {
    "Low clarity": low_clarity,
    "Noise": noise,
    "Underexposure": underexposure,
    "Overexposure": overexposure,
    "Blocking artifacts": blocking,
    "Edge aliasing effect": edge_aliasing,
    "Edge ringing effect": edge_ringing,
    "Out of focus blur": out_of_focus,
    "Motion blur": motion_blur,
    "Meaningless solid color": solid_color,
}
assert tuple(sorted(DISTORTION_FUNCTIONS)) == tuple(sorted(DISTORTIONS))
assert sorted(PIPELINE_ORDER) == sorted(DISTORTIONS)


# ---------------------------------------------------------------- regions


def region_mask(
    shape: tuple[int, int],
    box: tuple[int, int, int, int],
    ellipse: bool,
    feather: float,
) -> np.ndarray:
    """A soft mask for one rectangle or ellipse inscribed in `box`, feathered by `feather` px."""
    h, w = shape
    # Wide feathering is done at 1/4 scale and upsampled: same look, ~16x cheaper.
    f = 4 if feather >= 8.0 else 1
    sh, sw = -(-h // f), -(-w // f)
    x1, y1, x2, y2 = (round(v / f) for v in box)
    hard: np.ndarray = np.zeros((sh, sw), dtype=np.float32)
    if ellipse:
        centre = ((x1 + x2) // 2, (y1 + y2) // 2)
        axes = (max(1, (x2 - x1) // 2), max(1, (y2 - y1) // 2))
        cv2.ellipse(hard, centre, axes, 0.0, 0.0, 360.0, (1.0,), -1)
    else:
        hard[y1:y2, x1:x2] = 1.0
    if feather > 0.5:
        hard = cv2.GaussianBlur(hard, (0, 0), feather / f)
    if f > 1:
        hard = cv2.resize(hard, (w, h), interpolation=cv2.INTER_LINEAR)
    return hard


def random_box(
    shape: tuple[int, int], rng: Rng, min_frac: float = 0.2, max_frac: float = 0.65
) -> tuple[int, int, int, int]:
    """A random box inside the frame whose sides are min_frac..max_frac of the frame's."""
    h, w = shape
    bw = max(8, round(w * rng.uniform(min_frac, max_frac)))
    bh = max(8, round(h * rng.uniform(min_frac, max_frac)))
    x1 = int(rng.integers(0, max(1, w - bw + 1)))
    y1 = int(rng.integers(0, max(1, h - bh + 1)))
    return (x1, y1, min(w, x1 + bw), min(h, y1 + bh))


def apply_distortion(img: Image, distortion: str, strength: float, mask: np.ndarray, rng: Rng) -> Image:
    """Apply one distortion at `strength` everywhere, then blend it in through `mask`."""
    distorted = DISTORTION_FUNCTIONS[distortion](img, float(strength), rng)
    if float(mask.min()) >= 1.0:
        return distorted
    ys, xs = np.nonzero(mask.max(axis=1) > 1e-3)[0], np.nonzero(mask.max(axis=0) > 1e-3)[0]
    if ys.size == 0:
        return img.copy()
    y1, y2, x1, x2 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    out = img.copy()
    m = mask[y1:y2, x1:x2, None]
    base = _f32(img[y1:y2, x1:x2])
    out[y1:y2, x1:x2] = _u8(base + (_f32(distorted[y1:y2, x1:x2]) - base) * m)
    return out


@dataclass(frozen=True)
class DistortionPlan:
    """What to apply: one type at one strength over one or several regions (None = global)."""

    distortion: str
    strength: float
    boxes: tuple[tuple[int, int, int, int], ...] | None
    ellipses: tuple[bool, ...] = ()
    feather: float = 0.0


def plan_mask(plan: DistortionPlan, shape: tuple[int, int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The union mask of a plan and the mask of each region."""
    if plan.boxes is None:
        full = np.ones(shape, dtype=np.float32)
        return full, [full]
    parts = [
        region_mask(shape, box, plan.ellipses[i] if i < len(plan.ellipses) else False, plan.feather)
        for i, box in enumerate(plan.boxes)
    ]
    union = parts[0].copy()
    for p in parts[1:]:
        np.maximum(union, p, out=union)
    return union, parts


def execute(img: Image, plans: list[DistortionPlan], rng: Rng) -> tuple[Image, list[AppliedDistortion]]:
    """Apply plans in pipeline order; return the image and one record per region."""
    shape = (img.shape[0], img.shape[1])
    out = img
    applied: list[AppliedDistortion] = []
    for plan in sorted(plans, key=lambda p: PIPELINE_ORDER.index(p.distortion)):
        union, parts = plan_mask(plan, shape)
        out = apply_distortion(out, plan.distortion, plan.strength, union, rng)
        severity = severity_for_strength(plan.strength)
        boxes = plan.boxes if plan.boxes is not None else ((0, 0, shape[1], shape[0]),)
        for box, part in zip(boxes, parts, strict=True):
            applied.append(AppliedDistortion(plan.distortion, plan.strength, severity, box, part))
    return out, applied


def random_plan(
    distortion: str, shape: tuple[int, int], rng: Rng, strength: float | None = None
) -> DistortionPlan:
    """A random global or regional plan for one type (exposure mostly global, solid colour regional)."""
    h, w = shape
    s = float(rng.uniform(0.02, 1.0)) if strength is None else strength
    if distortion in EXPOSURE_TYPES:
        global_p, n_max, frac = 0.65, 1, (0.45, 0.85)
    elif distortion in REGIONAL_ONLY_TYPES:
        global_p, n_max, frac = 0.0, 2, (0.08 + 0.17 * s, 0.18 + 0.27 * s)
    else:
        global_p, n_max, frac = 0.35, 3, (0.2, 0.6)
    if rng.uniform() < global_p:
        return DistortionPlan(distortion, s, None)
    n = int(rng.choice(np.arange(1, n_max + 1), p=_region_count_probs(n_max)))
    boxes = tuple(random_box(shape, rng, *frac) for _ in range(n))
    ellipses = tuple(bool(rng.uniform() < 0.4) for _ in range(n))
    soft = distortion not in REGIONAL_ONLY_TYPES
    feather = float(rng.uniform(0.02, 0.06) * min(h, w)) if soft else float(rng.uniform(0.0, 1.5))
    return DistortionPlan(distortion, s, boxes, ellipses, feather)


def _region_count_probs(n_max: int) -> np.ndarray:
    p = np.array([0.6, 0.3, 0.1][:n_max], dtype=np.float64)
    return p / p.sum()


def random_plans(shape: tuple[int, int], rng: Rng, clean_p: float = 0.12) -> list[DistortionPlan]:
    """Zero (clean, with probability clean_p) or 1..3 distinct types with random plans."""
    if rng.uniform() < clean_p:
        return []
    n = int(rng.choice([1, 2, 3], p=[0.55, 0.32, 0.13]))
    types = list(rng.choice(len(DISTORTIONS), size=n, replace=False))
    names = [DISTORTIONS[int(i)] for i in types]
    if "Underexposure" in names and "Overexposure" in names:
        names.remove("Overexposure")
    return [random_plan(name, shape, rng) for name in names]


def distort(
    img: Image, rng: Rng, clean_p: float = 0.12
) -> tuple[Image, list[AppliedDistortion], list[DistortionPlan]]:
    """Randomly distort an image; return the result, the per-region records and the plans used."""
    plans = random_plans((img.shape[0], img.shape[1]), rng, clean_p)
    out, applied = execute(img, plans, rng)
    return out, applied, plans
