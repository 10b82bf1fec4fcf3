"""PP-OCR text recogniser (CRNN/SVTR + CTC) input and decoding, pure numpy + OpenCV.

Used to verify the detector's boxes: a box is text when the recogniser reads characters in
it with confidence. Textures of a product (stripes, grass, the arms of a candlestick) give
long thin blobs the detector scores high, but the recogniser reads nothing sure there.

The model (ch_PP-OCRv4_rec_infer.onnx, rapidocr-onnxruntime's wheel) takes 1x3x48xW BGR
normalised to [-1, 1] and outputs, per horizontal step, probabilities over blank (index 0),
its character list (stored in the model's metadata under "character") and a space.
"""

from __future__ import annotations

import cv2
import numpy as np

from service.domain.prediction import Box

REC_HEIGHT = 48
REC_MAX_WIDTH = 640


def rec_input(rgb: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of `box` (in `rgb`'s frame) as a 1x3x48xW tensor, W a multiple of 8 keeping the ratio.
    Taller-than-wide crops (vertical text) are rotated to read left to right."""
    x1, y1, x2, y2 = box
    crop = rgb[max(0, y1) : max(y1 + 1, y2), max(0, x1) : max(x1 + 1, x2)]
    if crop.shape[0] > 1.5 * crop.shape[1]:
        crop = np.ascontiguousarray(np.rot90(crop))
    h, w = crop.shape[:2]
    width = int(min(REC_MAX_WIDTH, max(16, round(REC_HEIGHT * w / max(h, 1) / 8) * 8)))
    small = cv2.resize(crop, (width, REC_HEIGHT), interpolation=cv2.INTER_LINEAR)
    bgr = small[..., ::-1].astype(np.float32) / 255.0
    return np.ascontiguousarray(((bgr - 0.5) / 0.5).transpose(2, 0, 1)[None])


def ctc_decode(probs: np.ndarray, charset: list[str]) -> tuple[str, float]:
    """Greedy CTC: best class per step, repeats collapsed, blanks (0) dropped. Returns the text and
    the mean probability of its characters (0.0 for no text). `charset[i - 1]` is class i."""
    best = probs.argmax(axis=-1)
    conf = probs.max(axis=-1)
    chars: list[str] = []
    scores: list[float] = []
    previous = -1
    for index, p in zip(best.tolist(), conf.tolist(), strict=True):
        if index != previous and index != 0:
            chars.append(charset[index - 1] if index - 1 < len(charset) else " ")
            scores.append(float(p))
        previous = index
    return "".join(chars).strip(), (float(np.mean(scores)) if scores else 0.0)


def charset_from_metadata(metadata: dict[str, str]) -> list[str]:
    """The model's character list (its "character" metadata, one per line) plus the trailing space."""
    return [*metadata.get("character", "").splitlines(), " "]


def order_quad(quad: np.ndarray) -> np.ndarray:
    """4x2 corners -> top-left, top-right, bottom-right, bottom-left."""
    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    s, d = q.sum(axis=1), q[:, 1] - q[:, 0]
    return np.array([q[s.argmin()], q[d.argmin()], q[s.argmax()], q[d.argmax()]], dtype=np.float32)


def rec_input_quad(rgb: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The pixels inside a rotated quad (in `rgb`'s frame), straightened by a perspective warp,
    as the recogniser's 1x3x48xW tensor (PaddleOCR's rotate-crop)."""
    tl, tr, br, bl = order_quad(quad)
    w = int(max(float(np.linalg.norm(tr - tl)), float(np.linalg.norm(br - bl)), 2.0))
    h = int(max(float(np.linalg.norm(bl - tl)), float(np.linalg.norm(br - tr)), 2.0))
    target = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(np.array([tl, tr, br, bl]), target)
    crop = cv2.warpPerspective(rgb, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    return rec_input(crop, (0, 0, w, h))
