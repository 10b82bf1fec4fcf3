"""Bad uploads against the real stack: in-process gRPC server, real Container, a real Celery
worker (tests/integration/conftest.py: SQLite or TEST_DATABASE_URL, the embedded broker or
TEST_BROKER_URL) and the real Triton from the wheel (root conftest).

Each bad input gets its typed status and details (or is accepted and graded), and a good
image sent afterwards still succeeds: the service stays up and no other job is affected.
"""

from __future__ import annotations

import threading
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
from tests import hostile
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
        stub = pb_grpc.ValidationServiceStub(channel)
        stub.channel = channel  # for raw calls and health checks (hostile-input tests)
        yield stub, (("x-api-key", key),)
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


# ---------------------------------------------------------------- hostile input (docs/reliability.md)

VALIDATE_METHOD = "/idetex.v1.ValidationService/Validate"


def assert_serving(api) -> None:
    """Health says SERVING and a good image is graded: the service is up after the hostile call."""
    stub, _metadata = api
    health = health_pb2_grpc.HealthStub(stub.channel)
    assert (
        health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    assert_good_image_still_succeeds(api)


def _raw_call(api, raw: bytes, timeout: float = 30.0) -> bytes:
    """Send `raw` as the Validate request body, bypassing the client's protobuf serializer."""
    stub, metadata = api
    call = stub.channel.unary_unary(VALIDATE_METHOD, request_serializer=None, response_deserializer=None)
    return call(raw, timeout=timeout, metadata=metadata)


@pytest.mark.parametrize("case", hostile.REJECTED, ids=[c.name for c in hostile.REJECTED])
def test_hostile_upload_is_a_typed_error_and_the_service_stays_up(api, case):
    """Each malformed-input class: INVALID_ARGUMENT with BadRequest(image, its reason) and
    ErrorInfo; health stays SERVING and a good image is graded afterwards."""
    with pytest.raises(grpc.RpcError) as err:
        validate(api, case.build(), product_id=case.name[:100])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    v = violation(err.value)
    assert v.field == "image" and v.reason in case.reasons, v
    status = rpc_status.from_call(err.value)
    assert any(d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR) for d in status.details)
    assert_serving(api)


@pytest.mark.parametrize("case", hostile.TOLERATED, ids=[c.name for c in hostile.TOLERATED])
def test_hostile_metadata_on_a_good_image_is_graded(api, case):
    """Absurd EXIF, garbage ICC, polyglots: the pixels are fine, so the image is graded."""
    response = validate(api, case.build(), product_id=case.name[:100])
    assert response.status == pb.JOB_STATUS_DONE, response
    assert response.report.width >= 16 and response.report.height >= 16


@pytest.mark.parametrize("case", hostile.LARGE_TOLERATED, ids=[c.name for c in hostile.LARGE_TOLERATED])
def test_bulky_metadata_streams_through_upload_image(api, case):
    """3.6 MB of APP segments around a tiny JPEG: above the unary limit, graded when streamed."""
    stub, metadata = api
    data = case.build()
    assert UNARY_LIMIT < len(data) < UPLOAD_LIMIT
    header = pb.UploadHeader(product_id="bulky", mode=pb.MODE_SYNC, total_size=len(data))
    response = stub.UploadImage(upload_chunks(header, data), timeout=60, metadata=metadata)
    assert response.status == pb.JOB_STATUS_DONE


def test_a_message_over_the_transport_limit_is_resource_exhausted(api):
    """Raw bytes above grpc.max_receive_message_length: grpc refuses them before our code runs
    (RESOURCE_EXHAUSTED, no details possible); the service stays up."""
    from service.api.app import ENVELOPE_BYTES

    with pytest.raises(grpc.RpcError) as err:
        _raw_call(api, b"\x0a" + b"\x00" * (UNARY_LIMIT + ENVELOPE_BYTES + 1024))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_serving(api)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # an over-long varint tag
        b"\x0a\xff\xff\xff\xff\x0f" + b"\x00" * 16,  # image field claiming 4 GB
        b"\x22\x03\xff\xfe\xfd",  # product_id that is not UTF-8
        b"".join([b"\xa3\x06"] * 300) + b"".join([b"\xa4\x06"] * 300),  # 300 nested groups
    ],
    ids=["over-long varint", "4 GB length prefix", "invalid UTF-8 string", "300 nested groups"],
)
def test_malformed_protobuf_on_the_wire_is_invalid_argument(api, raw):
    """Bytes that do not parse as a ValidateRequest: INVALID_ARGUMENT with BadRequest(request,
    MALFORMED_MESSAGE) (service.api.interceptors), not grpc's bare INTERNAL; the service stays up."""
    with pytest.raises(grpc.RpcError) as err:
        _raw_call(api, raw)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    v = violation(err.value)
    assert (v.field, v.reason) == ("request", "MALFORMED_MESSAGE")
    assert_serving(api)


def _stream(*parts: pb.UploadChunk):
    yield from parts


STREAMS = [
    ("empty stream", lambda: _stream(), "MISSING_HEADER"),
    ("chunk before the header", lambda: _stream(pb.UploadChunk(chunk=b"\xff\xd8")), "MISSING_HEADER"),
    (
        "second header",
        lambda: _stream(
            pb.UploadChunk(header=pb.UploadHeader(product_id="x")),
            pb.UploadChunk(header=pb.UploadHeader(product_id="y")),
        ),
        "DUPLICATE_HEADER",
    ),
    (
        "stream ends before total_size",
        lambda: _stream(
            pb.UploadChunk(header=pb.UploadHeader(product_id="short", total_size=10_000)),
            pb.UploadChunk(chunk=f.jpeg_bytes(f.gradient(64, 48))[:500]),
        ),
        "SIZE_MISMATCH",
    ),
]


@pytest.mark.parametrize(("name", "build", "reason"), STREAMS, ids=[s[0] for s in STREAMS])
def test_malformed_upload_stream_is_invalid_argument(api, name, build, reason):
    stub, metadata = api
    with pytest.raises(grpc.RpcError) as err:
        stub.UploadImage(build(), timeout=30, metadata=metadata)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert violation(err.value).reason == reason
    assert_serving(api)


def test_declared_oversize_stream_is_refused_before_reading_it(api):
    """A header declaring more than the upload limit is RESOURCE_EXHAUSTED at once."""
    stub, metadata = api
    header = pb.UploadHeader(product_id="declared-huge", total_size=UPLOAD_LIMIT * 100)
    with pytest.raises(grpc.RpcError) as err:
        stub.UploadImage(_stream(pb.UploadChunk(header=header)), timeout=30, metadata=metadata)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert_serving(api)


def test_a_stream_the_client_abandons_midway_leaves_no_job(api):
    """The client cancels after half an upload: nothing is stored and the service stays up."""
    stub, metadata = api
    data = f.jpeg_bytes(f.gradient(800, 600))
    stop = threading.Event()

    def half_then_wait():
        yield pb.UploadChunk(
            header=pb.UploadHeader(product_id="abandoned", total_size=len(data), mode=pb.MODE_SYNC)
        )
        yield pb.UploadChunk(chunk=data[: len(data) // 2])
        stop.wait(30)  # the client never sends the rest

    future = stub.UploadImage.future(half_then_wait(), timeout=60, metadata=metadata)
    time.sleep(0.5)
    future.cancel()
    stop.set()
    with pytest.raises(grpc.FutureCancelledError):
        future.result()
    time.sleep(0.5)
    listed = stub.ListReports(pb.ListReportsRequest(product_id="abandoned"), timeout=10, metadata=metadata)
    assert list(listed.reports) == []
    assert_serving(api)


def test_a_stream_cut_by_its_deadline_leaves_no_job(api):
    """A stream that stalls until its deadline: DEADLINE_EXCEEDED for the client, nothing stored."""
    stub, metadata = api

    def stall():
        yield pb.UploadChunk(header=pb.UploadHeader(product_id="stalled", mode=pb.MODE_SYNC))
        yield pb.UploadChunk(chunk=b"\xff\xd8\xff\xe0")
        time.sleep(3)

    with pytest.raises(grpc.RpcError) as err:
        stub.UploadImage(stall(), timeout=1, metadata=metadata)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(2.5)
    listed = stub.ListReports(pb.ListReportsRequest(product_id="stalled"), timeout=10, metadata=metadata)
    assert list(listed.reports) == []
    assert_serving(api)
