"""One job through the model: original -> decode -> model input -> Triton -> prediction -> report.

Pure orchestration over ports; process_job in service.handlers stores the outcome.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from service.deps import Deps
from service.domain import vlm_report
from service.domain.annotate import MAX_SIDE, annotate_canvas, canvas
from service.domain.errors import InferenceUnavailable
from service.domain.imaging import DecodedImage, decode_image
from service.domain.policy import apply_overrides
from service.domain.prediction import Prediction
from service.domain.profiles import get_profile
from service.domain.prompts import description_prompt
from service.domain.report import Report, build_report, measure_image
from service.domain.scene import SceneNeeds, needs_for, wants_faces, with_faces
from service.domain.vlm_report import description_from_text, merge, prediction_from_text
from service.domain.vlm_text import ParsedDescription, parse_description
from service.iqa.postprocess import postprocess
from service.iqa.preprocess import to_model_input

# A profile with scene analysis (product mask, text detector) decodes to at least DECODE_SIDE:
# the detectors find small text and thin product edges there, and the annotated copy is at most
# MAX_SIDE px. 5% below MAX_SIDE so that 12 MP phone photos (4032 px) decode at half size.
DECODE_SIDE = round(0.95 * MAX_SIDE)
# Without scene analysis nothing needs more than Deps.work_side (512 by default): the model sees
# 320x320, the aspect scores a 512 px grey copy (ASPECT_SIDE) and the statistics a sample, so a
# large JPEG decodes at 1/2, 1/4 or 1/8 scale to a long side of 512-1023 px, and the annotated
# copy is that working copy. A JPEG twice as large decodes reduced (decode_image's max_side);
# sizes and boxes stay in the original's frame.
# The API only checks that an upload decodes: the smallest DCT scale reads the whole file too.
CHECK_SIDE = 1


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    merchant_id: str
    original_uri: str
    profile: str
    model_choice: str = "default"  # default | mllm | both (Deps.choose_model)
    # the merchant's overrides of the profile (service/domain/policy.py), {} for none
    overrides: Mapping[str, Any] = field(default_factory=dict)
    # the original's sha256 from the job row ("" = hash the bytes): the worker need not hash again
    image_sha256: str = ""


@dataclass(frozen=True)
class Outcome:
    """The job's results. The annotated copy is drawn, encoded and stored on the helper thread
    while the caller stores the report: `annotated_uri` waits for it (and raises its error)."""

    report: Report
    prediction: Prediction
    annotated: Future[str]
    model_version: str
    stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def annotated_uri(self) -> str:
        return self.annotated.result()


def first_item(outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Item 0 of a batch of model outputs."""
    return {name: np.asarray(value)[0] for name, value in outputs.items()}


def decode_side(profile: str, overrides: Mapping[str, Any], work_side: int) -> int:
    """The long side a large JPEG decodes to for a job under `profile` with the merchant's
    `overrides`: DECODE_SIDE when the profile's rules need the scene analysis, else `work_side`."""
    needs = needs_for(apply_overrides(get_profile(profile), overrides))
    return max(DECODE_SIDE, work_side) if (needs.product or needs.text) else work_side


def working_image(deps: Deps, spec: JobSpec) -> DecodedImage:
    """The API's hand-off pixels when they are detailed enough for this job, else a decode of
    the original (the API decodes for the profile alone; a merchant's overrides may ask more)."""
    side = decode_side(spec.profile, spec.overrides, deps.work_side)
    handed = deps.pixels.take(spec.job_id)
    if handed is not None and (not handed.reduced or max(handed.rgb.shape[:2]) >= side):
        return handed
    data = deps.blobs.get(spec.original_uri)
    return decode_image(data, deps.limits, max_side=side, sha256=spec.image_sha256 or None)


class Stopwatch:
    """Milliseconds per named stage, for the worker log."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = round((now - self._last) * 1000, 1)
        self._last = now


log = logging.getLogger(__name__)
_helpers = threading.local()
HELPER_NICE = 10


def _lower_priority() -> None:
    """Run this helper thread at nice 10 (Linux: priorities are per thread): while inference runs
    on the same cores, the scheduler gives onnxruntime's threads the CPU and the measurements take
    the gaps, instead of both slowing down (the caller waits for inference first)."""
    with contextlib.suppress(OSError, AttributeError):
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, max(HELPER_NICE, os.getpriority(os.PRIO_PROCESS, me)))


def _background() -> ThreadPoolExecutor:
    """A helper thread for the calling thread (one per prefork process, one per thread of a
    threads pool), made in this process: never a parent's across a fork."""
    if getattr(_helpers, "pid", None) != os.getpid():
        _helpers.executor = ThreadPoolExecutor(
            1, thread_name_prefix="idetex-measure", initializer=_lower_priority
        )
        _helpers.pid = os.getpid()
    executor: ThreadPoolExecutor = _helpers.executor
    return executor


def run(deps: Deps, spec: JobSpec) -> Outcome:
    """Stage times are in Outcome.stage_ms; "report" is what remains after inference: the image
    measurements, the marketplace checks and the annotation canvas are made on a helper
    thread while the model runs, and the annotated copy is drawn and stored there while the
    caller stores the report (numpy, OpenCV, Pillow and the Triton client release the GIL)."""
    watch = Stopwatch()
    image = working_image(deps, spec)
    watch.lap("decode")
    # started before pre-processing: mostly done by the time inference needs both cores
    # the scene analysis (product mask, text detector, faces: service.adapters.vision) runs there too
    base = _background().submit(canvas, image.rgb)  # first: the annotated copy must not wait on models
    measured = _background().submit(measure_image, image, spec.profile, spec.overrides, deps.scene)
    batch = to_model_input(image.rgb)[None, ...]
    watch.lap("preprocess")
    parsed = mllm_description(deps, spec) if spec.model_choice in ("mllm", "both") else None
    if parsed is not None:
        watch.lap("mllm")
    if spec.model_choice == "mllm" and parsed is not None:
        prediction = prediction_from_text(parsed, image.width, image.height)
    else:
        outputs = first_item(deps.inference.infer(batch))
        watch.lap("infer")
        if deps.postprocess_params is None:
            prediction = postprocess(outputs, image.width, image.height)
        else:
            prediction = postprocess(outputs, image.width, image.height, params=deps.postprocess_params)
        if parsed is not None:  # both: the default model's boxes, the MLLM's grade
            prediction = merge(prediction, parsed)
        watch.lap("postprocess")
    version = deps.model_version()
    key = f"annotated/{spec.merchant_id}/{spec.job_id}.jpg"
    # queued after `base` on the same single helper thread, so base.result() is ready by then
    annotated = _background().submit(
        lambda: deps.blobs.put(key, annotate_canvas(base.result(), prediction), "image/jpeg")
    )
    measures = measured.result()
    if deps.scene is not None and wants_faces(prediction):  # only blur makes faces matter
        faces = deps.scene.analyse(image, SceneNeeds(faces=True)).faces
        measures = replace(measures, scene=with_faces(measures.scene, faces))
    report = build_report(prediction, image, spec.profile, version, measures, spec.overrides)
    if parsed is not None:
        produced_by = vlm_report.MLLM if spec.model_choice == "mllm" else vlm_report.BOTH
        report = replace(report, description=description_from_text(parsed), produced_by=produced_by)
    watch.lap("report")
    return Outcome(report, prediction, annotated, version, watch.ms)


def mllm_description(deps: Deps, spec: JobSpec) -> ParsedDescription | None:
    """The MLLM's four-step description of the original, or None (it is unavailable or its text
    states no grade): the default model then writes the report, which says so (produced_by)."""
    try:
        text = deps.vlm.generate(deps.blobs.get(spec.original_uri), description_prompt())
    except InferenceUnavailable as exc:
        log.warning("job %s: MLLM unavailable (%s); the default model answers", spec.job_id, exc.message)
        return None
    parsed = parse_description(text)
    if not vlm_report.usable(parsed):
        log.warning("job %s: the MLLM's description states no grade; the default model answers", spec.job_id)
        return None
    return parsed


def distortion_rows(job_id: str, report: Report) -> list[dict[str, Any]]:
    """Queryable rows of the report's distortions (boxes in the original's pixel frame), as the
    column values of the distortions table."""
    return [
        {
            "job_id": job_id,
            "type": d.type,
            "severity": d.severity,
            "x1": int(d.box[0]),
            "y1": int(d.box[1]),
            "x2": int(d.box[2]),
            "y2": int(d.box[3]),
            "confidence": float(d.confidence),
            "key": bool(d.key),
        }
        for d in report.distortions
    ]
