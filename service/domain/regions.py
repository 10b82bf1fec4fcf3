"""Put a pixel box into words a merchant understands: "in the lower right corner", "across the top"."""

from __future__ import annotations

from service.domain.prediction import Box

WHOLE_AREA = 0.8  # a box covering this share of the image is "the whole image"
SPAN = 0.8  # a box covering this share of one side spans it ("across the top")

_ROWS = ("upper", "middle", "lower")
_COLS = ("left", "center", "right")
_GRID: dict[tuple[str, str], str] = {
    ("upper", "left"): "in the upper left corner",
    ("upper", "center"): "at the top",
    ("upper", "right"): "in the upper right corner",
    ("middle", "left"): "on the left side",
    ("middle", "center"): "in the center",
    ("middle", "right"): "on the right side",
    ("lower", "left"): "in the lower left corner",
    ("lower", "center"): "at the bottom",
    ("lower", "right"): "in the lower right corner",
}
_ACROSS = {"upper": "across the top", "middle": "across the middle", "lower": "across the bottom"}
_DOWN = {"left": "down the left side", "center": "down the middle", "right": "down the right side"}


def _third(center: float, size: int) -> int:
    return min(int(3 * center / max(size, 1)), 2)


def describe_region(box: Box, width: int, height: int) -> str:
    """Return a phrase for where `box` (x1, y1, x2, y2 in pixels) lies in a width x height image."""
    x1, y1, x2, y2 = (max(0, v) for v in box)
    x2, y2 = min(x2, width), min(y2, height)
    bw, bh = max(x2 - x1, 0), max(y2 - y1, 0)
    if width <= 0 or height <= 0:
        return "in the image"
    wide, tall = bw / width >= SPAN, bh / height >= SPAN
    if (bw * bh) / (width * height) >= WHOLE_AREA or (wide and tall):
        return "across the whole image"
    row = _ROWS[_third((y1 + y2) / 2, height)]
    col = _COLS[_third((x1 + x2) / 2, width)]
    if wide:
        return _ACROSS[row]
    if tall:
        return _DOWN[col]
    return _GRID[(row, col)]
