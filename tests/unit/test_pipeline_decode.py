"""One job through service.pipeline on a 12 MP JPEG: decoded reduced, reported in the original's frame."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from service import pipeline
from service.adapters.blobs import LocalBlobStore
from service.adapters.db import make_engine
from service.adapters.inference import Inference
from service.adapters.publisher import InMemoryPublisher
from service.adapters.unit_of_work import sql_unit_of_work_factory
from service.adapters.webhook import HttpWebhookSender
from service.deps import Deps
from service.domain.annotate import annotate, annotate_canvas, canvas
from service.domain.imaging import ImageLimits
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


def test_a_phone_photo_is_reported_in_its_own_frame(tmp_path):
    """A 4032x3024 JPEG: the report keeps 4032x3024 and original-pixel boxes; annotated copy 2016 px."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    inference = TopLeftUnderexposure()
    deps = Deps(
        uow=sql_unit_of_work_factory(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"), InMemoryPublisher()),
        blobs=blobs,
        inference=inference,
        model_version=lambda: "1",
        limits=ImageLimits(),
        api_key_pepper="test",
        webhook_sender=HttpWebhookSender(1.0),
    )
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
    prediction = TopLeftUnderexposure().infer(np.zeros((1, 3, 320, 320), np.float32))
    pred = postprocess({k: v[0] for k, v in prediction.items()}, 2500, 1200)
    assert annotate_canvas(canvas(rgb), pred) == annotate(rgb, pred)
