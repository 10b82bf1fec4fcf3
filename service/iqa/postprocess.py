"""Model outputs -> Prediction in the original image's pixel frame (pure numpy + OpenCV).

Rules (one item, arrays without the batch axis; thresholds in PostprocessParams):

* A type is reported when its image-level PRESENCE reaches ``presence_threshold[t]``.
* Its boxes are the connected components (8-connectivity) of DIST_MAPS[t] after a
  bilinear upsampling of the 20x20 grid by ``upsample`` and thresholding at
  ``map_threshold[t]``; a box scales by W/grid and H/grid to the original frame.
  Components under ``min_area`` (fraction of the image) are dropped, at most
  ``max_boxes`` per type are kept (most confident first). When no component
  passes, one whole-image box is emitted (a global distortion such as exposure).
* Severity: the mean of SEVERITY_MAPS[t] over the component (over the map-weighted
  image for a whole-image box), named by taxonomy.severity_from_value.
* Confidence: sqrt(peak map value in the component * PRESENCE[t]).
* Key flag: KEY[t] >= ``key_threshold``; when distortions are reported but none
  reaches it and ``ensure_key`` is set, the reported type with the highest KEY is
  key (a described image always names what decides its quality).
* Fine level: argmax GRADE_PROBS (two fine levels per grade); score: SCORE[0].
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from service.domain.prediction import Box, DetectedDistortion, Prediction
from service.domain.taxonomy import DISTORTIONS, NUM_DISTORTIONS, severity_from_value
from service.iqa.contract import GRID, OUTPUTS


class PostprocessError(ValueError):
    """Model outputs or parameters do not have the contract's shapes."""


def _per_type(value: float) -> tuple[float, ...]:
    return (value,) * NUM_DISTORTIONS


@dataclass(frozen=True)
class PostprocessParams:
    presence_threshold: tuple[float, ...] = field(default_factory=lambda: _per_type(0.5))
    map_threshold: tuple[float, ...] = field(default_factory=lambda: _per_type(0.5))
    key_threshold: float = 0.5
    ensure_key: bool = True
    upsample: int = 4
    min_area: float = 0.0025  # fraction of the image; one grid cell is 1/400
    max_boxes: int = 3

    def __post_init__(self) -> None:
        for name in ("presence_threshold", "map_threshold"):
            values = getattr(self, name)
            if len(values) != NUM_DISTORTIONS or not all(0.0 <= v <= 1.0 for v in values):
                raise PostprocessError(f"{name} needs {NUM_DISTORTIONS} values in [0, 1], got {values}")
        if self.upsample < 1 or self.max_boxes < 1:
            raise PostprocessError("upsample and max_boxes must be >= 1")

    def to_json(self) -> dict[str, object]:
        return asdict(self)


DEFAULT = PostprocessParams()


def load_params(path: str | Path) -> PostprocessParams:
    """Read tuned parameters (JSON written beside the model); unknown keys are an error."""
    raw = json.loads(Path(path).read_text())
    if not isinstance(raw, dict):
        raise PostprocessError(f"{path} must hold a JSON object")
    fields: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if not k.startswith("_")
    }
    try:
        return PostprocessParams(**fields)
    except TypeError as exc:
        raise PostprocessError(f"bad postprocess parameters in {path}: {exc}") from exc


def save_params(params: PostprocessParams, path: str | Path, note: str = "") -> None:
    body = {"_note": note, **params.to_json()} if note else params.to_json()
    Path(path).write_text(json.dumps(body, indent=2) + "\n")


def _check(outputs: Mapping[str, np.ndarray]) -> None:
    for name, (_, shape) in OUTPUTS.items():
        if name not in outputs:
            raise PostprocessError(f"missing output {name}")
        if tuple(np.shape(outputs[name])) != shape:
            raise PostprocessError(f"{name}: expected shape {shape}, got {np.shape(outputs[name])}")


def _to_pixels(x: float, y: float, size: int, width: int, height: int) -> tuple[int, int]:
    return round(x / size * width), round(y / size * height)


def _components(
    prob: np.ndarray, sev: np.ndarray, threshold: float, params: PostprocessParams, width: int, height: int
) -> list[tuple[float, float, Box]]:
    """(peak, mean severity, pixel box) of each kept component, most confident first."""
    size = GRID * params.upsample
    if params.upsample > 1:
        prob = cv2.resize(prob, (size, size), interpolation=cv2.INTER_LINEAR)
        sev = cv2.resize(sev, (size, size), interpolation=cv2.INTER_LINEAR)
    binary = (prob >= threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    found = []
    for c in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[c])
        if area / float(size * size) < params.min_area:
            continue
        inside = labels == c
        x1, y1 = _to_pixels(x, y, size, width, height)
        x2, y2 = _to_pixels(x + w, y + h, size, width, height)
        if x2 <= x1 or y2 <= y1:
            continue
        found.append((float(prob[inside].max()), float(sev[inside].mean()), (x1, y1, x2, y2)))
    found.sort(key=lambda f: -f[0])
    return found[: params.max_boxes]


def _type_boxes(
    t: int, outputs: Mapping[str, np.ndarray], params: PostprocessParams, width: int, height: int
) -> list[DetectedDistortion]:
    prob = np.asarray(outputs["DIST_MAPS"][t], dtype=np.float32)
    sev = np.asarray(outputs["SEVERITY_MAPS"][t], dtype=np.float32)
    presence = float(outputs["PRESENCE"][t])
    found = _components(prob, sev, params.map_threshold[t], params, width, height)
    if not found:
        weights = prob + 1e-6
        found = [(float(prob.max()), float((sev * weights).sum() / weights.sum()), (0, 0, width, height))]
    return [
        DetectedDistortion(
            distortion=DISTORTIONS[t],
            severity=severity_from_value(mean_sev),
            confidence=float(np.sqrt(max(peak, 0.0) * max(presence, 0.0))),
            box=box,
        )
        for peak, mean_sev, box in found
    ]


def _key_types(reported: list[int], key: np.ndarray, params: PostprocessParams) -> set[int]:
    keys = {t for t in reported if key[t] >= params.key_threshold}
    if not keys and reported and params.ensure_key:
        keys = {max(reported, key=lambda t: float(key[t]))}
    return keys


def postprocess(
    outputs: Mapping[str, np.ndarray], width: int, height: int, params: PostprocessParams = DEFAULT
) -> Prediction:
    """One item's outputs (no batch axis) -> Prediction with boxes in the width x height frame."""
    if width < 1 or height < 1:
        raise PostprocessError(f"image size must be positive, got {width}x{height}")
    _check(outputs)
    presence = np.asarray(outputs["PRESENCE"], dtype=np.float32)
    reported = [t for t in range(NUM_DISTORTIONS) if presence[t] >= params.presence_threshold[t]]
    keys = _key_types(reported, np.asarray(outputs["KEY"], dtype=np.float32), params)
    found: list[DetectedDistortion] = []
    for t in reported:
        for d in _type_boxes(t, outputs, params, width, height):
            found.append(DetectedDistortion(d.distortion, d.severity, d.confidence, d.box, key=t in keys))
    found.sort(key=lambda d: -d.confidence)
    probs = np.asarray(outputs["GRADE_PROBS"], dtype=np.float64)
    return Prediction(
        width=width,
        height=height,
        distortions=tuple(found),
        fine_index=int(np.argmax(probs)),
        score=float(np.asarray(outputs["SCORE"]).reshape(-1)[0]),
        grade_probs=tuple(float(p) for p in probs),
    )


def postprocess_batch(
    outputs: Mapping[str, np.ndarray], sizes: Sequence[tuple[int, int]], params: PostprocessParams = DEFAULT
) -> list[Prediction]:
    """Batched outputs (batch axis first) and (width, height) per item -> one Prediction each."""
    n = len(sizes)
    for name in OUTPUTS:
        if name in outputs and len(outputs[name]) != n:
            raise PostprocessError(f"{name} has {len(outputs[name])} items for {n} sizes")
    return [
        postprocess({k: v[i] for k, v in outputs.items()}, w, h, params) for i, (w, h) in enumerate(sizes)
    ]
