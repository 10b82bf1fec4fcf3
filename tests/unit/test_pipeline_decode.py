"""One job through service.pipeline on a 12 MP JPEG: decoded reduced (to the working size when the
profile runs no scene analysis, larger when it does), reported in the original's frame."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from service import pipeline
from service.adapters.blobs import LocalBlobStore
from service.adapters.db import make_engine
from service.adapters.inference import Inference
from service.adapters.pixels import PixelHandoff
from service.adapters.publisher import InMemoryPublisher
from service.adapters.unit_of_work import sql_unit_of_work_factory
from service.adapters.webhook import HttpWebhookSender
from service.deps import Deps
from service.domain.annotate import annotate, annotate_canvas, canvas
from service.domain.imaging import DecodedImage, ImageLimits, decode_image
from service.iqa.postprocess import postprocess
from tests import imagefactory as f
from tests.support.contract_outputs import underexposed_top_left


class TopLeftUnderexposure(Inference):
    """Contract-shaped outputs: underexposure over the top-left quarter of whatever it is shown."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, ...]] = []

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self.seen.append(images.shape)
        return underexposed_top_left(images.shape[0], key=0.97)

    def is_ready(self) -> bool:
        return True

    def model_version(self) -> str:
        return "1"


class OneHandoff(PixelHandoff):
    """The API's hand-off holding one job's pixels."""

    def __init__(self, job_id: str, image: DecodedImage) -> None:
        self.held = {job_id: image}

    def put(self, job_id: str, image: DecodedImage) -> bool:
        self.held[job_id] = image
        return True

    def take(self, job_id: str) -> DecodedImage | None:
        return self.held.pop(job_id, None)


def make_deps(tmp_path, inference: Inference, **kw) -> Deps:
    return Deps(
        uow=sql_unit_of_work_factory(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), InMemoryPublisher()),
        blobs=LocalBlobStore(tmp_path / "blobs"),
        inference=inference,
        model_version=lambda: "1",
        limits=ImageLimits(),
        api_key_pepper="test",
        webhook_sender=HttpWebhookSender(1.0),
        **kw,
    )


def annotated_size(deps: Deps, outcome: pipeline.Outcome) -> tuple[int, int]:
    return Image.open(io.BytesIO(deps.blobs.get(outcome.annotated_uri))).size


def test_a_phone_photo_is_reported_in_its_own_frame(tmp_path):
    """A 4032x3024 JPEG under a profile with a text rule (ebay): the report keeps 4032x3024 and
    original-pixel boxes; it decodes at 1/2 for the detectors, so the annotated copy is 2016 px."""
    inference = TopLeftUnderexposure()
    deps = make_deps(tmp_path, inference)
    blobs = deps.blobs
    uri = blobs.put("originals/m/photo", f.jpeg_bytes(f.gradient(4032, 3024), quality=90), "image/jpeg")
    outcome = pipeline.run(deps, pipeline.JobSpec("job-1", "m", uri, "ebay"))
    assert inference.seen == [(1, 3, 320, 320)]
    facts = outcome.report.image
    assert (facts.width, facts.height) == (4032, 3024)
    (under,) = outcome.report.distortions
    assert under.box == (0, 0, 2016, 1512)
    assert under.region == "in the upper left corner"
    annotated = Image.open(io.BytesIO(blobs.get(outcome.annotated_uri)))
    assert annotated.size == (2016, 1512)
    sizes = {c.code: c.measured for c in outcome.report.compliance}
    assert sizes["IMG_LOW_RESOLUTION"] == 4032


def test_an_annotation_canvas_made_ahead_gives_the_same_jpeg():
    """annotate_canvas on a canvas made during inference encodes the very bytes annotate() does."""
    rgb = f.gradient(2500, 1200)
    prediction = TopLeftUnderexposure().infer(np.zeros((1, 3, 320, 320), np.uint8))
    pred = postprocess({k: v[0] for k, v in prediction.items()}, 2500, 1200)
    assert annotate_canvas(canvas(rgb), pred) == annotate(rgb, pred)


def test_without_scene_analysis_a_phone_photo_decodes_to_the_working_size(tmp_path):
    """The default profile runs no scene analysis: the 4032x3024 JPEG decodes at 1/4 (1008 px, the
    smallest scale with a long side >= 512), and report, boxes and sizes stay in the original's frame."""
    deps = make_deps(tmp_path, TopLeftUnderexposure())
    uri = deps.blobs.put("originals/m/photo", f.jpeg_bytes(f.gradient(4032, 3024), quality=90), "image/jpeg")
    outcome = pipeline.run(deps, pipeline.JobSpec("job-1", "m", uri, "default"))
    assert annotated_size(deps, outcome) == (1008, 756)
    (under,) = outcome.report.distortions
    assert under.box == (0, 0, 2016, 1512)
    assert (outcome.report.image.width, outcome.report.image.height) == (4032, 3024)


def test_the_working_size_is_a_setting(tmp_path):
    """Deps.work_side 1200 keeps the same photo at 1/2 scale (2016 px >= 1200, 1008 px is not)."""
    deps = make_deps(tmp_path, TopLeftUnderexposure(), work_side=1200)
    uri = deps.blobs.put("originals/m/photo", f.jpeg_bytes(f.gradient(4032, 3024), quality=90), "image/jpeg")
    assert annotated_size(deps, pipeline.run(deps, pipeline.JobSpec("job-1", "m", uri, "default"))) == (
        2016,
        1512,
    )


def test_hand_off_pixels_too_small_for_the_merchants_overrides_are_decoded_again(tmp_path):
    """The API decodes for the profile alone (default: 512 px); a merchant whose overrides add a
    text rule needs the detectors' size, so the worker decodes the original again."""
    data = f.jpeg_bytes(f.gradient(4032, 3024), quality=90)
    handed = decode_image(data, max_side=pipeline.decode_side("default", {}, 512))
    assert handed.rgb.shape[:2] == (756, 1008)
    deps = make_deps(tmp_path, TopLeftUnderexposure(), pixels=OneHandoff("job-1", handed))
    uri = deps.blobs.put("originals/m/photo", data, "image/jpeg")
    spec = pipeline.JobSpec("job-1", "m", uri, "default", overrides={"no_text_or_watermarks": True})
    assert pipeline.decode_side(spec.profile, spec.overrides, 512) == pipeline.DECODE_SIDE
    assert annotated_size(deps, pipeline.run(deps, spec)) == (2016, 1512)


def test_hand_off_pixels_large_enough_are_used_as_they_are(tmp_path):
    """Pixels the API handed over at the job's size spare the worker its decode: the original is
    not read (a blob URI that does not exist would fail the job)."""
    data = f.jpeg_bytes(f.gradient(4032, 3024), quality=90)
    handed = decode_image(data, max_side=512)
    deps = make_deps(tmp_path, TopLeftUnderexposure(), pixels=OneHandoff("job-1", handed))
    outcome = pipeline.run(deps, pipeline.JobSpec("job-1", "m", "file:///nonexistent/original", "default"))
    assert annotated_size(deps, outcome) == (1008, 756)


def test_the_measuring_helper_thread_runs_at_lower_priority_than_the_caller():
    """The helper thread (measurements, annotation canvas) is niced so inference gets the cores
    first; the calling thread keeps its own priority."""
    import os
    import threading

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    helper = pipeline._background().submit(nice).result()
    assert helper >= pipeline.HELPER_NICE
    assert helper > nice()


def test_the_worker_takes_the_originals_digest_from_the_job_instead_of_hashing_again(tmp_path, monkeypatch):
    """The job row carries the sha256 the API computed: the worker's decode uses it (the report
    states it) and never hashes the original again."""
    import service.domain.imaging as imaging

    class NoHashing:
        @staticmethod
        def sha256(_: bytes) -> None:
            raise AssertionError("the original was hashed again")

    data = f.jpeg_bytes(f.gradient(1024, 768), quality=90)
    digest = hashlib.sha256(data).hexdigest()
    deps = make_deps(tmp_path, TopLeftUnderexposure())
    uri = deps.blobs.put("originals/m/photo", data, "image/jpeg")
    monkeypatch.setattr(imaging, "hashlib", NoHashing)
    outcome = pipeline.run(deps, pipeline.JobSpec("job-1", "m", uri, "default", image_sha256=digest))
    assert outcome.report.image.sha256 == digest
    with pytest.raises(AssertionError, match="hashed again"):  # a job without one hashes the bytes
        pipeline.run(deps, pipeline.JobSpec("job-2", "m", uri, "default"))
