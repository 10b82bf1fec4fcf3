"""Estimate the IJG quality setting (1-100) a JPEG was saved with, from its luminance table.

The IJG library (libjpeg, Pillow, most cameras' software) scales the Annex K
luminance table by S = 5000/Q for Q < 50 and S = 200 - 2Q otherwise, then
clips each entry to 1..255. We regenerate that table for every Q and keep the
one closest to the file's table, compared as sorted multisets so the answer
does not depend on zigzag or natural order. Ties go to the higher quality.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

# ITU-T T.81 Annex K, table K.1 (luminance), natural order.
STD_LUMINANCE: tuple[int, ...] = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip


@cache
def ijg_table(quality: int) -> tuple[int, ...]:
    """The luminance table libjpeg writes for `quality` (baseline, 1..255)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality out of range: {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return tuple(min(max((v * scale + 50) // 100, 1), 255) for v in STD_LUMINANCE)


@cache
def _sorted_tables() -> np.ndarray:
    return np.array([sorted(ijg_table(q)) for q in range(1, 101)], dtype=np.int64)


def estimate_quality(luminance_table: Sequence[int]) -> int:
    """Return the IJG quality 1..100 whose luminance table best matches `luminance_table`."""
    values = np.sort(np.asarray(list(luminance_table), dtype=np.int64))
    if values.shape != (64,):
        raise ValueError("a JPEG quantization table has 64 entries")
    errors = np.abs(_sorted_tables() - values).sum(axis=1)
    best = np.flatnonzero(errors == errors.min())
    return int(best.max()) + 1
