"""Bad uploads against the real stack: in-process gRPC server, real Container, a real Celery
worker (tests/integration/conftest.py: SQLite or TEST_DATABASE_URL, the embedded broker or
TEST_BROKER_URL) and the real Triton from the wheel (root conftest).

Each bad input gets its typed status and details (or is accepted and graded), and a good
image sent afterwards still succeeds: the service stays up and no other job is affected.
"""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from PIL import features

from service.api.app import build_server
from service.api.client import upload_chunks
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.api.gen.idetex.v1 import validation_pb2_grpc as pb_grpc
from service.bootstrap import build
from service.settings import Settings
from tests import imagefactory as f

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
UNARY_LIMIT = 1 * MiB
UPLOAD_LIMIT = 4 * MiB


def _wait_serving(channel: grpc.Channel, timeout_s: float) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        if status == health_pb2.HealthCheckResponse.SERVING:
            return
        time.sleep(0.25)
    raise AssertionError("the API never became SERVING")


@pytest.fixture(scope="module")
def api(celery_worker):
    """The API as `idetex serve` wires it, on the integration worker's database, broker, queue and Triton."""
    env = {
        **celery_worker.env,
        "IDETEX_UNARY_LIMIT_BYTES": str(UNARY_LIMIT),
        "IDETEX_UPLOAD_LIMIT_BYTES": str(UPLOAD_LIMIT),
    }
    settings = Settings.from_env(env)
    container = build(settings)
    server = build_server(container, settings, address="127.0.0.1:0", health_interval_s=0.5)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        _wait_serving(channel, 60)
        _merchant, key = container.create_merchant("bad-input-shop")
        yield pb_grpc.ValidationServiceStub(channel), (("x-api-key", key),)
    finally:
        channel.close()
        server.stop(grace_s=1)
        container.close()


def validate(api, data: bytes, timeout: float = 60.0, **fields) -> pb.ValidateResponse:
    stub, metadata = api
    request = pb.ValidateRequest(image=data, mode=pb.MODE_SYNC, **fields)
    return stub.Validate(request, timeout=timeout, metadata=metadata)


def violation(err: grpc.RpcError) -> error_details_pb2.BadRequest.FieldViolation:
    status = rpc_status.from_call(err)
    assert status is not None, "no google.rpc.Status in the trailers"
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return bad.field_violations[0]
    raise AssertionError("no BadRequest detail")


def assert_good_image_still_succeeds(api) -> None:
    response = validate(api, f.jpeg_bytes(f.gradient(400, 300)))
    assert response.status == pb.JOB_STATUS_DONE, response
    assert response.report.grade in ("bad", "poor", "fair", "good", "excellent")


REJECTED = [
    ("empty body", b"", {"EMPTY"}),
    ("random bytes", f.random_bytes(), {"NOT_AN_IMAGE"}),
    ("text file named .jpg", f.text_bytes(), {"NOT_AN_IMAGE"}),
    ("truncated JPEG", f.truncated_jpeg(), {"TRUNCATED"}),
    ("30000x30000 PNG bomb", f.bomb_png(30000, 30000), {"DECOMPRESSION_BOMB"}),
    ("1x1 image", f.png_bytes(f.solid(1, 1)), {"TOO_SMALL"}),
]


def test_a_burst_of_bad_uploads_does_not_affect_a_queued_job(api):
    """An async job queued before a burst of bad uploads still completes."""
    stub, metadata = api
    queued = stub.Validate(
        pb.ValidateRequest(image=f.jpeg_bytes(f.gradient(500, 400)), mode=pb.MODE_ASYNC),
        timeout=30,
        metadata=metadata,
    )
    for _name, data, _reasons in REJECTED:
        with pytest.raises(grpc.RpcError):
            validate(api, data)
    deadline = time.monotonic() + 60
    report = stub.GetReport(pb.GetReportRequest(job_id=queued.job_id), timeout=10, metadata=metadata)
    while report.status != pb.JOB_STATUS_DONE and time.monotonic() < deadline:
        time.sleep(0.1)
        report = stub.GetReport(pb.GetReportRequest(job_id=queued.job_id), timeout=10, metadata=metadata)
    assert report.status == pb.JOB_STATUS_DONE and report.report.grade


@pytest.mark.parametrize(("name", "data", "reasons"), REJECTED, ids=[r[0] for r in REJECTED])
def test_bad_upload_is_invalid_argument_and_the_service_stays_up(api, name, data, reasons):
    """The bad upload gets INVALID_ARGUMENT with a BadRequest violation; a good image then succeeds."""
    with pytest.raises(grpc.RpcError) as err:
        validate(api, data, product_id=name)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    v = violation(err.value)
    assert v.field == "image" and v.reason in reasons, v
    assert_good_image_still_succeeds(api)


def _avif() -> bytes:
    return f.encode(f.gradient(64, 48), "AVIF")


ACCEPTED = [
    ("16-bit PNG", f.sixteen_bit_gray_png, (256, 32)),
    ("48-bit RGB PNG", f.sixteen_bit_rgb_png, (32, 32)),
    ("CMYK JPEG", f.cmyk_jpeg, (64, 64)),
    ("palette PNG with transparency", f.palette_png_with_transparency, (64, 64)),
    ("animated GIF", lambda: f.animated("GIF"), (48, 48)),
    ("animated WebP", lambda: f.animated("WEBP"), (48, 48)),
    ("WebP", lambda: f.encode(f.gradient(64, 48), "WEBP"), (64, 48)),
    ("AVIF", _avif, (64, 48)),
]


@pytest.mark.parametrize(("name", "build_bytes", "size"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_awkward_but_valid_image_is_graded(api, name, build_bytes, size):
    """Unusual encodings are normalised and graded: DONE with the decoded size."""
    if name == "AVIF" and not features.check("avif"):
        pytest.skip("this Pillow cannot read AVIF")
    response = validate(api, build_bytes(), product_id=name)
    assert response.status == pb.JOB_STATUS_DONE, response
    assert (response.report.width, response.report.height) == size


def test_exif_rotated_jpeg_is_graded_in_the_rotated_frame(api):
    """An 80x40 JPEG with orientation 6 is a 40x80 image; every box lies inside that frame."""
    response = validate(api, f.exif_rotated_jpeg(orientation=6, width=80, height=40))
    assert response.status == pb.JOB_STATUS_DONE
    report = response.report
    assert (report.width, report.height) == (40, 80)
    for d in report.distortions:
        assert 0 <= d.box.x1 <= d.box.x2 <= 40 and 0 <= d.box.y1 <= d.box.y2 <= 80, d


def test_missing_s3_object_is_a_typed_error(api, monkeypatch):
    """An s3:// URI to a missing object -> INVALID_ARGUMENT naming s3_uri; the service stays up."""
    from moto import mock_aws

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)

    stub, metadata = api
    with mock_aws():
        import boto3

        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="catalogue")
        request = pb.ValidateRequest(s3_uri="s3://catalogue/missing/photo.jpg", mode=pb.MODE_SYNC)
        with pytest.raises(grpc.RpcError) as err:
            stub.Validate(request, timeout=30, metadata=metadata)
    assert err.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    assert violation(err.value).field == "s3_uri"
    assert_good_image_still_succeeds(api)


def test_oversize_inline_upload_is_resource_exhausted(api):
    """An inline image above the unary limit -> RESOURCE_EXHAUSTED; the service stays up."""
    with pytest.raises(grpc.RpcError) as err:
        validate(api, f.random_bytes(UNARY_LIMIT + 1024))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_good_image_still_succeeds(api)


def test_oversize_streamed_upload_is_resource_exhausted(api):
    """A stream above the total upload limit -> RESOURCE_EXHAUSTED; the service stays up."""
    stub, metadata = api
    header = pb.UploadHeader(product_id="huge", mode=pb.MODE_SYNC)
    data = f.random_bytes(UPLOAD_LIMIT + MiB)
    with pytest.raises(grpc.RpcError) as err:
        stub.UploadImage(upload_chunks(header, data), timeout=30, metadata=metadata)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_good_image_still_succeeds(api)


def test_large_valid_image_streams_through_upload_image(api):
    """An image above the unary limit but within the upload limit is graded via UploadImage."""
    stub, metadata = api
    noise = np.random.default_rng(1).integers(0, 256, (700, 1000, 3), dtype=np.uint8)
    data = f.png_bytes(noise)
    assert UNARY_LIMIT < len(data) < UPLOAD_LIMIT
    header = pb.UploadHeader(product_id="big", mode=pb.MODE_SYNC, total_size=len(data))
    response = stub.UploadImage(upload_chunks(header, data), timeout=60, metadata=metadata)
    assert response.status == pb.JOB_STATUS_DONE
    assert (response.report.width, response.report.height) == (1000, 700)
