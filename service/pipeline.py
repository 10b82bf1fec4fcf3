"""One job through the model: original -> decode -> model input -> Triton -> prediction -> report.

Pure orchestration over ports; process_job in service.handlers stores the outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from service.adapters.db import DistortionRow
from service.domain.annotate import annotate
from service.domain.imaging import decode_image
from service.domain.prediction import Prediction
from service.domain.report import Report, build_report
from service.iqa.postprocess import postprocess
from service.iqa.preprocess import to_model_input

if TYPE_CHECKING:
    from service.handlers import Deps


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    merchant_id: str
    original_uri: str
    profile: str


@dataclass(frozen=True)
class Outcome:
    report: Report
    prediction: Prediction
    annotated_uri: str
    model_version: str


def first_item(outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Item 0 of a batch of model outputs."""
    return {name: np.asarray(value)[0] for name, value in outputs.items()}


def run(deps: Deps, spec: JobSpec) -> Outcome:
    image = decode_image(deps.blobs.get(spec.original_uri), deps.limits)
    batch = to_model_input(image.rgb)[None, ...]
    outputs = first_item(deps.inference.infer(batch))
    if deps.postprocess_params is None:
        prediction = postprocess(outputs, image.width, image.height)
    else:
        prediction = postprocess(outputs, image.width, image.height, params=deps.postprocess_params)
    version = deps.model_version()
    report = build_report(prediction, image, spec.profile, version)
    annotated = annotate(image.rgb, prediction)
    uri = deps.blobs.put(f"annotated/{spec.merchant_id}/{spec.job_id}.jpg", annotated, "image/jpeg")
    return Outcome(report, prediction, uri, version)


def distortion_rows(job_id: str, report: Report) -> list[DistortionRow]:
    """Queryable rows of the report's distortions (boxes in the original's pixel frame)."""
    return [
        DistortionRow(
            job_id=job_id,
            type=d.type,
            severity=d.severity,
            x1=int(d.box[0]),
            y1=int(d.box[1]),
            x2=int(d.box[2]),
            y2=int(d.box[3]),
            confidence=float(d.confidence),
            key=bool(d.key),
        )
        for d in report.distortions
    ]
