"""Image -> model input for idetex_lite (pure numpy + OpenCV, no torch).

The EXIF-rotated RGB image of any size and aspect ratio is resized to 320x320
with area interpolation (aspect not kept); boxes map back by scaling x by W/320
and y by H/320 (service.iqa.postprocess). A direct area resize is both the
exact box filter and the fastest path for huge inputs (8000x8000 in ~0.2 s with
only the 320x320 output allocated), so no separate pre-reduction is done here;
decoding may already have reduced a huge JPEG (service.domain.imaging).
A side under 320 px is enlarged bilinearly after the other side was area-reduced.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from service.iqa.contract import INPUT_SIZE


class PreprocessError(ValueError):
    """The array is not an RGB image the model can take."""


def _check(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise PreprocessError(f"expected an HxWx3 RGB array, got shape {getattr(rgb, 'shape', None)}")
    if rgb.dtype != np.uint8:
        raise PreprocessError(f"expected uint8 pixels, got {rgb.dtype}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise PreprocessError(f"empty image: {rgb.shape}")


def resize_to_input(rgb: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 -> uint8 320x320x3: area interpolation on shrinking axes, bilinear on growing ones."""
    _check(rgb)
    h, w = rgb.shape[:2]
    out = np.ascontiguousarray(rgb)
    if h > INPUT_SIZE or w > INPUT_SIZE:
        out = cv2.resize(out, (min(w, INPUT_SIZE), min(h, INPUT_SIZE)), interpolation=cv2.INTER_AREA)
    if out.shape[:2] != (INPUT_SIZE, INPUT_SIZE):
        out = cv2.resize(out, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    return np.asarray(out, dtype=np.uint8).reshape(INPUT_SIZE, INPUT_SIZE, 3)


def to_model_input(rgb: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB of any size -> contiguous uint8 [3, 320, 320], RGB 0..255, channels first.

    No float work here: the model casts to float and divides by 255 itself (service/iqa/contract.py).
    """
    small = resize_to_input(rgb)
    return np.ascontiguousarray(small.transpose(2, 0, 1))


def stack(batch: Sequence[np.ndarray]) -> np.ndarray:
    """Model inputs (uint8 [3, 320, 320]) -> one contiguous uint8 [N, 3, 320, 320] batch."""
    if not batch:
        raise PreprocessError("empty batch")
    for item in batch:
        if item.shape != (3, INPUT_SIZE, INPUT_SIZE):
            raise PreprocessError(f"expected [3, {INPUT_SIZE}, {INPUT_SIZE}] items, got {item.shape}")
        if item.dtype != np.uint8:
            raise PreprocessError(f"expected uint8 items, got {item.dtype}")
    return np.ascontiguousarray(np.stack(batch))
