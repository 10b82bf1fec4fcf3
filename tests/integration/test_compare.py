"""Compare through gRPC on the real model: the in-process API (as `idetex serve` wires it) calls the
session's real Triton (root conftest) for both images of a real photograph and its degraded copies."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image, ImageFilter

from service.api.app import build_server
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.api.gen.idetex.v1 import validation_pb2_grpc as pb_grpc
from service.bootstrap import build
from service.domain.taxonomy import DISTORTIONS, GRADES
from service.settings import Settings
from tests import imagefactory
from tests.support.photos import photo_paths

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(celery_worker: Any) -> Iterator[tuple[pb_grpc.ValidationServiceStub, tuple[tuple[str, str], ...]]]:
    settings = Settings.from_env({**celery_worker.env, "IDETEX_UNARY_LIMIT_BYTES": str(8 * 1024 * 1024)})
    container = build(settings)
    server = build_server(container, settings, address="127.0.0.1:0", health_interval_s=0.5)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 60
        while health.Check(health_pb2.HealthCheckRequest(), timeout=5).status != 1:
            assert time.monotonic() < deadline, "the API never became SERVING"
            time.sleep(0.25)
        _merchant, key = container.create_merchant("compare-shop")
        yield pb_grpc.ValidationServiceStub(channel), (("x-api-key", key),)
    finally:
        channel.close()
        server.stop(grace_s=1)
        container.close()


def _photo() -> Image.Image:
    paths = photo_paths(1)
    if paths:
        img = Image.open(Path(paths[0])).convert("RGB")
    else:
        img = Image.fromarray(imagefactory.product_on_white(900, 700))
    img.thumbnail((1024, 1024))
    return img


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _compare(api, original: bytes, processed: bytes, language: str = "") -> pb.CompareResponse:
    stub, metadata = api
    request = pb.CompareRequest(original=original, processed=processed, language=language)
    return stub.Compare(request, timeout=120, metadata=metadata)


def test_a_low_quality_reencode_adds_blocking_by_metric_and_the_model_grades_both(api):
    """Quality 5 re-encode of a real JPEG: blockiness up, PSNR/SSIM down, LOSS_BLOCKING guidance,
    real grades for both images and any change named with taxonomy strings."""
    photo = _photo()
    response = _compare(api, _jpeg(photo, 95), _jpeg(photo, 5))
    assert response.grade_original in GRADES and response.grade_processed in GRADES
    assert response.blockiness_processed > response.blockiness_original * 1.25
    assert response.psnr_db < 35 and response.ssim < 0.95
    codes = [g.code for g in response.guidance]
    assert "LOSS_BLOCKING" in codes, response
    assert all(c.type in DISTORTIONS for c in response.changes)
    assert response.score_processed <= response.score_original + 0.5


def test_a_blurred_copy_loses_edge_sharpness_and_says_so_in_german(api):
    """Gaussian blur (radius 3) of a real photo: most edge energy gone, said in German."""
    photo = _photo()
    response = _compare(api, _jpeg(photo, 95), _jpeg(photo.filter(ImageFilter.GaussianBlur(3)), 95), "de")
    assert response.sharpness_loss_percent > 50 and response.language == "de"
    sharp = next(g for g in response.guidance if g.code == "LOSS_SHARPNESS")
    assert sharp.message.startswith("Der Verarbeitungsschritt hat ") and "Kantenschärfe" in sharp.message
    assert sharp.severity == "severe"
    for change in response.changes:
        assert change.change in ("added", "worsened", "improved", "removed")


def test_a_bad_processed_image_is_invalid_argument(api):
    with pytest.raises(grpc.RpcError) as caught:
        _compare(api, _jpeg(_photo(), 90), imagefactory.truncated_jpeg())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
