"""Model outputs shaped like the contract, for fakes that subclass the Inference port."""

from __future__ import annotations

import numpy as np

from service.iqa.contract import GRID, NUM_TYPES

UNDEREXPOSURE = 2  # index in the taxonomy


def underexposed_top_left(n: int, key: float = 0.95) -> dict[str, np.ndarray]:
    """Moderate underexposure over the top-left quarter, grade level f (fair), score 3.2."""
    dist = np.zeros((n, NUM_TYPES, GRID, GRID), np.float32)
    dist[:, UNDEREXPOSURE, : GRID // 2, : GRID // 2] = 0.97
    presence = np.zeros((n, NUM_TYPES), np.float32)
    presence[:, UNDEREXPOSURE] = 0.97
    keys = np.zeros((n, NUM_TYPES), np.float32)
    keys[:, UNDEREXPOSURE] = key
    grade = np.full((n, 10), 0.01, np.float32)
    grade[:, 5] = 0.91  # level f -> fair
    return {
        "DIST_MAPS": dist,
        "SEVERITY_MAPS": np.ones((n, NUM_TYPES, GRID, GRID), np.float32),
        "PRESENCE": presence,
        "KEY": keys,
        "GRADE_PROBS": grade,
        "SCORE": np.full((n, 1), 3.2, np.float32),
    }
