"""PP-OCR text detector (DBNet) input and post-processing, pure numpy + OpenCV.

The detector (PP-OCRv4 det, shipped in rapidocr-onnxruntime's wheel) outputs a text
probability map the size of its input. Differentiable-binarisation post-processing
(Liao et al. 2020, as PaddleOCR's DBPostProcess does it):

1. threshold the map at `thresh` and dilate it 2x2 (joins the strokes of a word);
2. each outer contour's minimum-area rectangle is a candidate; sides under `min_size` px
   are dropped;
3. its score is the mean probability inside the contour; under `box_thresh` it is dropped;
4. the rectangle is unclipped (grown by area * unclip_ratio / perimeter on every side: the
   map marks a shrunk text kernel); one whose long side is under `min_aspect` x its short side
   is dropped (a line of text is long; textures of the product give squat blobs);
5. it is scaled back to the original pixels and turned into an axis-aligned box; boxes under
   `min_area` of the frame are dropped.

Our own implementation: the rapidocr Python pipeline is not used (it needs opencv-python,
which clashes with opencv-contrib-python-headless, and pyclipper/shapely).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from service.domain.prediction import Box
from service.domain.scene import TextBox

_MEAN = np.array([0.5, 0.5, 0.5], dtype=np.float32)
_STD = np.array([0.5, 0.5, 0.5], dtype=np.float32)


@dataclass(frozen=True)
class DbParams:
    max_side: int = 960  # the detector sees the image resized to at most this long side (multiple of 32)
    thresh: float = 0.3  # probability counted as text
    box_thresh: float = 0.5  # minimum mean probability of a kept box
    unclip_ratio: float = 1.6
    min_size: int = 3  # px of the detector's input: shorter sides are noise
    min_aspect: float = 1.5  # long / short side of the unclipped rotated box: a line of text is long
    min_area: float = 0.0002  # share of the frame: smaller boxes are specks
    max_candidates: int = 200


def det_input(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """HxWx3 uint8 RGB -> 1x3xhxw float32 BGR tensor, sides multiples of 32, long side <= max_side."""
    h, w = rgb.shape[:2]
    ratio = min(1.0, max_side / max(h, w))
    rh = max(32, round(h * ratio / 32) * 32)
    rw = max(32, round(w * ratio / 32) * 32)
    small = cv2.resize(rgb, (rw, rh), interpolation=cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR)
    bgr = small[..., ::-1].astype(np.float32) / 255.0
    return np.ascontiguousarray(((bgr - _MEAN) / _STD).transpose(2, 0, 1)[None])


def _unclip(rect: tuple[Sequence[float], Sequence[float], float], ratio: float) -> np.ndarray:
    """Grow a rotated rectangle by area * ratio / perimeter on every side; its 4 corners."""
    (cx, cy), (rw, rh), angle = rect
    distance = rw * rh * ratio / max(2 * (rw + rh), 1e-6)
    grown = ((cx, cy), (rw + 2 * distance, rh + 2 * distance), angle)
    return np.asarray(cv2.boxPoints(grown), dtype=np.float32)


def _contour_score(prob: np.ndarray, contour: np.ndarray) -> float:
    """Mean probability inside the contour (over its bounding rectangle's mask)."""
    x, y, w, h = cv2.boundingRect(contour)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, [contour.reshape(-1, 2) - (x, y)], (1,))
    return float(cv2.mean(prob[y : y + h, x : x + w], mask=mask)[0])


@dataclass(frozen=True, eq=False)
class Candidate:
    quad: np.ndarray  # 4x2 corners of the unclipped rotated box, in the probability map's pixels
    score: float


def db_candidates(prob: np.ndarray, params: DbParams | None = None) -> list[Candidate]:
    """Steps 1-4: rotated text boxes in the map's pixels, with their scores."""
    p = params or DbParams()
    prob = np.asarray(prob, dtype=np.float32)
    bitmap = cv2.dilate((prob > p.thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    found: list[Candidate] = []
    for contour in contours[: p.max_candidates]:
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) < p.min_size:
            continue
        score = _contour_score(prob, contour)
        if score < p.box_thresh:
            continue
        corners = _unclip(rect, p.unclip_ratio)
        sides = cv2.minAreaRect(corners)[1]
        if min(sides) < p.min_size + 2 or max(sides) < p.min_aspect * min(sides):
            continue
        found.append(Candidate(corners, score))
    return found


def db_boxes(
    prob: np.ndarray, width: int, height: int, params: DbParams | None = None
) -> tuple[TextBox, ...]:
    """Text boxes (axis-aligned, pixels of a width x height original) from an hxw probability map
    (steps 1-5). Sorted top to bottom, then left to right."""
    p = params or DbParams()
    mh, mw = np.shape(prob)
    found = []
    for c in db_candidates(prob, p):
        box = to_original(c.quad, (mw, mh), width, height)
        if (box[2] - box[0]) * (box[3] - box[1]) >= p.min_area * width * height:
            found.append(TextBox(box, round(c.score, 4)))
    return tuple(sorted(found, key=lambda t: (t.box[1], t.box[0])))


def to_original(quad: np.ndarray, map_size: tuple[int, int], width: int, height: int) -> Box:
    """A quad in the map's (w, h) pixels -> its axis-aligned box in a width x height original."""
    return _to_original(quad, width / map_size[0], height / map_size[1], width, height)


def _to_original(corners: np.ndarray, sx: float, sy: float, width: int, height: int) -> Box:
    xs, ys = corners[:, 0] * sx, corners[:, 1] * sy
    return (
        max(0, int(np.floor(xs.min()))),
        max(0, int(np.floor(ys.min()))),
        min(width, int(np.ceil(xs.max()))),
        min(height, int(np.ceil(ys.max()))),
    )


def merge_lines(boxes: tuple[TextBox, ...], gap: float = 0.5) -> tuple[TextBox, ...]:
    """Join boxes that overlap or sit within `gap` x their height of each other on the same line
    (the words of one overlay read as one finding). Scores: the larger of the joined ones."""
    items = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                if _near(items[i].box, items[j].box, gap):
                    a, b = items[i].box, items[j].box
                    joined = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    text = f"{items[i].text} {items[j].text}".strip()
                    items[i] = TextBox(joined, max(items[i].score, items[j].score), text)
                    del items[j]
                    merged = True
                    break
            if merged:
                break
    return tuple(sorted(items, key=lambda t: (t.box[1], t.box[0])))


def _near(a: Box, b: Box, gap: float) -> bool:
    ha, hb = a[3] - a[1], b[3] - b[1]
    overlap_y = min(a[3], b[3]) - max(a[1], b[1])
    if overlap_y < 0.5 * min(ha, hb):  # not on the same line
        return False
    dx = max(a[0], b[0]) - min(a[2], b[2])
    return dx <= gap * max(ha, hb)
