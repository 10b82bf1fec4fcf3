"""Composition measurements for marketplace rules: where the product is, and whether a frame surrounds it."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from service.domain.measures import sample
from service.domain.prediction import Box

BACKGROUND_TOLERANCE = 30  # max channel difference still counted as background
MAX_BORDER_SHARE = 0.15  # a frame is at most this thick (share of the side)
MAX_WHITE_FRAME_SHARE = 0.02  # thicker white "frames" are the white margins of a product shot
_LINE_UNIFORM = 0.98  # share of a frame line's pixels matching the frame colour
_TRANSITION = 0.9  # share of the first inner line's middle that differs from the frame colour
_COLOUR_MATCH = 16
_CHUNK = 8  # lines tested at once


def product_box(rgb: np.ndarray, background: tuple[int, int, int]) -> Box | None:
    """Bounding box of everything that is not `background`, ignoring specks; None if nothing is found.

    Found on a strided sample (measures.sample) and scaled back: exact to the sample's step.
    """
    small, step = sample(rgb)
    colour = np.array(background, dtype=np.int16)
    lo = np.clip(colour - BACKGROUND_TOLERANCE, 0, 255).astype(np.uint8)
    hi = np.clip(colour + BACKGROUND_TOLERANCE, 0, 255).astype(np.uint8)
    mask = cv2.inRange(small, lo, hi) == 0  # some channel differs by more than the tolerance
    h, w = mask.shape
    rows = np.flatnonzero(mask.sum(axis=1) > max(1, 0.002 * w))
    cols = np.flatnonzero(mask.sum(axis=0) > max(1, 0.002 * h))
    if rows.size == 0 or cols.size == 0:
        return None
    full_h, full_w = rgb.shape[:2]
    # a product reaching the sample's last row or column reaches the edge (the sample drops a remainder)
    x2 = full_w if cols[-1] == w - 1 else (int(cols[-1]) + 1) * step
    y2 = full_h if rows[-1] == h - 1 else (int(rows[-1]) + 1) * step
    return (int(cols[0]) * step, int(rows[0]) * step, x2, y2)


def product_fill(box: Box, width: int, height: int) -> float:
    """The product's larger extent as a share of the frame (Amazon's "fills 85% of the frame")."""
    x1, y1, x2, y2 = box
    return max((x2 - x1) / width, (y2 - y1) / height)


@dataclass(frozen=True)
class Border:
    sides: tuple[str, ...]  # which of top, bottom, left, right carry a frame
    thickness: dict[str, int]  # px per side
    color: tuple[int, int, int]


def _uniform_run(lines: np.ndarray, color: np.ndarray) -> int:
    """How many lines from the edge inward have nearly all pixels within _COLOUR_MATCH of `color`."""
    # |v - color| <= _COLOUR_MATCH on integer pixels, as integer bounds for cv2.inRange
    lo = np.clip(np.ceil(color - _COLOUR_MATCH), 0, 255).astype(np.uint8)
    hi = np.clip(np.floor(color + _COLOUR_MATCH), 0, 255).astype(np.uint8)
    depth = 0
    for start in range(0, len(lines), _CHUNK):  # a few lines at a time: views of huge images stay views
        chunk = np.ascontiguousarray(lines[start : start + _CHUNK])
        matching = cv2.inRange(chunk, lo, hi).mean(axis=1) / 255.0
        short = np.flatnonzero(matching < _LINE_UNIFORM)
        if short.size:
            return depth + int(short[0])
        depth += len(chunk)
    return depth


def _side_depth(lines: np.ndarray) -> tuple[int, np.ndarray]:
    """lines: (depth, length, 3) from the edge inward. Return the frame thickness (0 if none) and colour."""
    color = np.median(lines[0], axis=0)
    depth = _uniform_run(lines, color)
    if depth == 0 or depth >= len(lines):
        return 0, color
    # The inner edge must be a straight, full-length change of colour. JPEG ringing can blur
    # it over a few lines, so look at up to three lines past the uniform run.
    n = lines.shape[1]
    middle = slice(n // 10, n - n // 10) if n >= 10 else slice(0, n)
    inner = lines[depth : depth + 3, middle].astype(np.int16)
    differs = (np.abs(inner - color).max(axis=2) > 2 * _COLOUR_MATCH).mean(axis=1).max()
    return (depth if differs >= _TRANSITION else 0), color


def detect_border(rgb: np.ndarray) -> Border | None:
    """Find a uniform frame (all four sides) or bars on two opposite sides; None if there is none.

    White margins around a product on a white background are a background, not a
    border: white bars on two opposite sides never count, and a white frame counts
    only when it is thin (<= 2% of the side) and equally thick all round.
    """
    h, w = rgb.shape[:2]
    dh, dw = max(2, int(h * MAX_BORDER_SHARE)), max(2, int(w * MAX_BORDER_SHARE))
    views = {
        "top": rgb[:dh],
        "bottom": rgb[::-1][:dh],
        "left": rgb[:, :dw].transpose(1, 0, 2),
        "right": rgb[:, ::-1][:, :dw].transpose(1, 0, 2),
    }
    found = {side: _side_depth(v) for side, v in views.items()}
    framed = {s: (d, c) for s, (d, c) in found.items() if d > 0}

    def same_colour(sides: tuple[str, ...]) -> bool:
        colours = np.array([framed[s][1] for s in sides])
        return bool((colours.max(axis=0) - colours.min(axis=0)).max() <= 2 * _COLOUR_MATCH)

    for sides in (("top", "bottom", "left", "right"), ("top", "bottom"), ("left", "right")):
        if not all(s in framed for s in sides) or not same_colour(sides):
            continue
        r, g, b = (int(v) for v in framed[sides[0]][1])
        thickness = {s: framed[s][0] for s in sides}
        if min(r, g, b) >= 235 and not _thin_even_frame(thickness, h, w):
            continue
        return Border(sides=sides, thickness=thickness, color=(r, g, b))
    return None


def _thin_even_frame(thickness: dict[str, int], height: int, width: int) -> bool:
    if len(thickness) < 4 or max(thickness.values()) - min(thickness.values()) > 2:
        return False
    return (
        max(thickness["top"], thickness["bottom"]) <= MAX_WHITE_FRAME_SHARE * height
        and max(thickness["left"], thickness["right"]) <= MAX_WHITE_FRAME_SHARE * width
    )
