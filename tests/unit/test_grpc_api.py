"""The v1 gRPC API over the real Container on local adapters (SQLite, local blobs, fake model port)."""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from service.api import errors as api_errors
from service.api.auth import api_key_from_metadata
from service.api.client import upload_chunks
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.bootstrap import Container
from service.domain.errors import BadImage, ImageTooLarge, InvalidRequest, NotFound, Unauthenticated
from tests.imagefactory import gradient, jpeg_bytes, png_bytes
from tests.support.api_stack import running_api

KiB = 1024


def details(err: grpc.RpcError) -> dict[str, Any]:
    """The status details a client decodes, by message type name."""
    status = rpc_status.from_call(err)
    found: dict[str, Any] = {}
    for any_detail in status.details if status else ():
        for kind in (error_details_pb2.BadRequest, error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo):
            if any_detail.Is(kind.DESCRIPTOR):
                message = kind()
                any_detail.Unpack(message)
                found[kind.DESCRIPTOR.name] = message
    return found


def validate(stack, image: bytes, merchant: str = "acme", timeout: float = 10.0, **fields):
    request = pb.ValidateRequest(image=image, product_id=fields.pop("product_id", "sku-1"), **fields)
    return stack.stub.Validate(request, timeout=timeout, metadata=stack.auth(merchant))


# ---------------------------------------------------------------- auth


def test_call_without_api_key_is_unauthenticated(stack):
    """No key in the metadata -> UNAUTHENTICATED with ErrorInfo, nothing stored."""
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.Validate(pb.ValidateRequest(image=jpeg_bytes()), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details(err.value)["ErrorInfo"].reason == "UNAUTHENTICATED"
    assert stack.publisher.sent == []


def test_unknown_api_key_is_unauthenticated(stack):
    """A key we never issued is refused."""
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.GetReport(pb.GetReportRequest(job_id="x"), timeout=5, metadata=(("x-api-key", "nope"),))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_bearer_authorization_header_is_accepted(stack):
    """`authorization: Bearer <key>` works like `x-api-key`."""
    metadata = (("authorization", f"Bearer {stack.keys['acme']}"),)
    request = pb.ValidateRequest(image=jpeg_bytes(), mode=pb.MODE_ASYNC)
    response = stack.stub.Validate(request, timeout=5, metadata=metadata)
    assert response.job_id


def test_merchant_id_that_differs_from_the_key_is_unauthenticated(stack):
    """A request naming another merchant than its key's is refused."""
    with pytest.raises(grpc.RpcError) as err:
        validate(stack, jpeg_bytes(), merchant_id=stack.merchants["globex"])
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_api_key_is_read_from_either_header():
    """x-api-key wins; a Bearer token is the fallback; other schemes are ignored."""
    assert api_key_from_metadata([("x-api-key", "k1"), ("authorization", "Bearer k2")]) == "k1"
    assert api_key_from_metadata([("authorization", "bearer k2")]) == "k2"
    assert api_key_from_metadata([("authorization", "Basic abc")]) is None
    assert api_key_from_metadata(None) is None


# ---------------------------------------------------------------- validate


def test_sync_validate_returns_the_report_in_the_original_frame(stack):
    """Sync Validate waits for the worker and answers DONE with grade, boxes and guidance."""
    response = validate(stack, jpeg_bytes(gradient(640, 480)), mode=pb.MODE_SYNC)
    assert response.status == pb.JOB_STATUS_DONE
    report = response.report
    assert report.grade == "fair"
    assert (report.width, report.height) == (640, 480)
    under = [d for d in report.distortions if d.type == "Underexposure"]
    assert under, report.distortions
    box = under[0].box
    assert 0 <= box.x1 < box.x2 <= 640 and 0 <= box.y1 < box.y2 <= 480
    assert box.x2 <= 360 and box.y2 <= 280  # the fake model marks the top-left quarter
    assert report.description_steps[-1].startswith("Thus, the quality of the image is")
    assert report.verdict != pb.VERDICT_UNSPECIFIED
    assert response.product_id == "sku-1" and response.created_at.seconds > 0


def test_async_validate_answers_at_once_and_get_report_follows(stack):
    """ASYNC returns the job id before any work; GetReport later returns the report."""
    stack.publisher.hold()
    response = validate(stack, png_bytes(), mode=pb.MODE_ASYNC)
    assert response.job_id and response.status == pb.JOB_STATUS_PENDING
    stack.publisher.release()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fetched = stack.stub.GetReport(pb.GetReportRequest(job_id=response.job_id), metadata=stack.auth())
        if fetched.status == pb.JOB_STATUS_DONE:
            break
        time.sleep(0.05)
    assert fetched.status == pb.JOB_STATUS_DONE and fetched.report.grade == "fair"


def test_sync_validate_near_the_deadline_returns_pending_not_an_error(stack):
    """With the worker busy, sync Validate answers PENDING before the client's deadline."""
    stack.publisher.hold()
    started = time.monotonic()
    response = validate(stack, jpeg_bytes(), timeout=1.0, mode=pb.MODE_SYNC)
    elapsed = time.monotonic() - started
    assert response.status == pb.JOB_STATUS_PENDING and response.job_id
    assert 0.5 < elapsed < 1.0


def test_sync_validate_without_a_deadline_waits_at_most_the_sync_timeout(tmp_path):
    """No client deadline: sync waits IDETEX_SYNC_TIMEOUT_S, then answers PENDING."""
    with running_api(tmp_path, sync_timeout_s=0.5) as stack:
        stack.publisher.hold()
        started = time.monotonic()
        response = stack.stub.Validate(pb.ValidateRequest(image=jpeg_bytes()), metadata=stack.auth())
        assert response.status == pb.JOB_STATUS_PENDING
        assert 0.4 < time.monotonic() - started < 3.0


def test_sync_validate_with_inference_down_is_unavailable_and_names_the_job(stack):
    """Triton not ready and sync asked -> UNAVAILABLE with the queued job id and a retry hint."""
    stack.inference.ready = False
    time.sleep(0.2)  # the readiness monitor polls every 50 ms
    with pytest.raises(grpc.RpcError) as err:
        validate(stack, jpeg_bytes(), mode=pb.MODE_SYNC)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    found = details(err.value)
    job_id = found["ErrorInfo"].metadata["job_id"]
    assert found["RetryInfo"].retry_delay.seconds > 0
    fetched = stack.stub.GetReport(pb.GetReportRequest(job_id=job_id), metadata=stack.auth())
    assert fetched.status in (pb.JOB_STATUS_PENDING, pb.JOB_STATUS_RUNNING)


def test_repeat_with_the_same_idempotency_key_returns_the_first_job(stack):
    """The idempotency key deduplicates: same job id, flagged deduplicated."""
    first = validate(stack, jpeg_bytes(), idempotency_key="k-1")
    second = validate(stack, jpeg_bytes(), idempotency_key="k-1")
    assert second.job_id == first.job_id and second.deduplicated


def test_bad_image_is_invalid_argument_with_field_violation(stack):
    """Random bytes -> INVALID_ARGUMENT; the client decodes BadRequest(field=image, reason=NOT_AN_IMAGE)."""
    with pytest.raises(grpc.RpcError) as err:
        validate(stack, b"\x13\x37" * 500)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violation = details(err.value)["BadRequest"].field_violations[0]
    assert (violation.field, violation.reason) == ("image", "NOT_AN_IMAGE")
    assert stack.publisher.sent == []


def test_request_without_any_source_is_invalid_argument(stack):
    """Neither bytes nor URI -> INVALID_ARGUMENT naming the `source` field."""
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.Validate(pb.ValidateRequest(product_id="p"), timeout=5, metadata=stack.auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(err.value)["BadRequest"].field_violations[0].field == "source"


def test_unknown_profile_is_invalid_argument(stack):
    """A profile name outside the catalogue is refused before any work."""
    with pytest.raises(grpc.RpcError) as err:
        validate(stack, jpeg_bytes(), profile="etsy_deluxe")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_inline_image_above_the_unary_limit_is_resource_exhausted(tmp_path):
    """An inline image over the unary limit -> RESOURCE_EXHAUSTED (use UploadImage)."""
    with running_api(tmp_path, unary_limit_bytes=64 * KiB, upload_limit_bytes=512 * KiB) as stack:
        with pytest.raises(grpc.RpcError) as err:
            validate(stack, b"\xff" * (64 * KiB + 10))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert details(err.value)["ErrorInfo"].metadata["limit"] == str(64 * KiB)


# ---------------------------------------------------------------- streaming upload


def test_streamed_upload_of_a_large_image_is_validated(tmp_path):
    """UploadImage reassembles the chunks and answers like Validate."""
    with running_api(tmp_path, unary_limit_bytes=64 * KiB, upload_limit_bytes=4096 * KiB) as stack:
        data = png_bytes(gradient(900, 700))
        assert len(data) > 64 * KiB
        header = pb.UploadHeader(product_id="big", total_size=len(data), mode=pb.MODE_SYNC)
        response = stack.stub.UploadImage(
            upload_chunks(header, data, 16 * KiB), timeout=10, metadata=stack.auth()
        )
        assert response.status == pb.JOB_STATUS_DONE
        assert (response.report.width, response.report.height) == (900, 700)


def test_streamed_upload_over_the_limit_stops_as_soon_as_exceeded(tmp_path):
    """Chunks past the total limit -> RESOURCE_EXHAUSTED while the client still streams."""
    with running_api(tmp_path, unary_limit_bytes=16 * KiB, upload_limit_bytes=128 * KiB) as stack:
        sent = []

        def endless():
            yield pb.UploadChunk(header=pb.UploadHeader(product_id="huge"))
            for _ in range(10_000):
                sent.append(1)
                yield pb.UploadChunk(chunk=b"\0" * (16 * KiB))

        with pytest.raises(grpc.RpcError) as err:
            stack.stub.UploadImage(endless(), timeout=10, metadata=stack.auth())
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert len(sent) < 1000  # the server did not read the whole stream


def test_streamed_upload_declaring_too_many_bytes_is_refused_up_front(tmp_path):
    """A header whose total_size is above the limit is refused before any chunk."""
    with running_api(tmp_path, unary_limit_bytes=16 * KiB, upload_limit_bytes=128 * KiB) as stack:
        header = pb.UploadHeader(total_size=10 * 1024 * KiB)
        with pytest.raises(grpc.RpcError) as err:
            stack.stub.UploadImage(iter([pb.UploadChunk(header=header)]), timeout=5, metadata=stack.auth())
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_stream_without_an_api_key_is_unauthenticated(stack):
    """UploadImage checks the key from the metadata before it reads the stream."""
    header = pb.UploadHeader(product_id="p")
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.UploadImage(upload_chunks(header, jpeg_bytes(), 4 * KiB), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_stream_header_naming_another_merchant_is_unauthenticated(stack):
    """A header whose merchant_id is not the key's merchant is refused."""
    header = pb.UploadHeader(merchant_id=stack.merchants["globex"])
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.UploadImage(upload_chunks(header, jpeg_bytes(), 4 * KiB), timeout=5, metadata=stack.auth())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_stream_without_a_header_is_invalid_argument(stack):
    """The first message must be the header."""
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.UploadImage(iter([pb.UploadChunk(chunk=b"abc")]), timeout=5, metadata=stack.auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(err.value)["BadRequest"].field_violations[0].reason == "MISSING_HEADER"


def test_stream_shorter_than_its_declared_size_is_invalid_argument(stack):
    """total_size that does not match the bytes received is refused."""
    data = jpeg_bytes()
    header = pb.UploadHeader(total_size=len(data) + 1)
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.UploadImage(upload_chunks(header, data, 4 * KiB), timeout=5, metadata=stack.auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------- reports


def test_another_merchants_job_is_not_found(stack):
    """globex cannot read acme's job: NOT_FOUND, exactly as for an unknown id."""
    job_id = validate(stack, jpeg_bytes(), mode=pb.MODE_ASYNC).job_id
    for merchant, job in (("globex", job_id), ("acme", "00000000-0000-0000-0000-000000000000")):
        with pytest.raises(grpc.RpcError) as err:
            stack.stub.GetReport(pb.GetReportRequest(job_id=job), timeout=5, metadata=stack.auth(merchant))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_reports_filters_by_product_and_pages(stack):
    """ListReports is per merchant, filtered and paged with next_page_token."""
    for i in range(3):
        validate(stack, jpeg_bytes(gradient(300 + i, 200)), product_id="shoe")
    validate(stack, jpeg_bytes(gradient(250, 250)), product_id="hat")
    validate(stack, jpeg_bytes(gradient(260, 250)), product_id="shoe", merchant="globex")

    first = stack.stub.ListReports(
        pb.ListReportsRequest(product_id="shoe", page_size=2), metadata=stack.auth()
    )
    assert len(first.reports) == 2 and first.next_page_token
    second = stack.stub.ListReports(
        pb.ListReportsRequest(product_id="shoe", page_size=2, page_token=first.next_page_token),
        metadata=stack.auth(),
    )
    assert len(second.reports) == 1 and not second.next_page_token
    ids = {r.job_id for r in [*first.reports, *second.reports]}
    assert len(ids) == 3 and all(r.product_id == "shoe" for r in [*first.reports, *second.reports])

    by_grade = stack.stub.ListReports(pb.ListReportsRequest(grade="fair"), metadata=stack.auth())
    assert len(by_grade.reports) == 4
    none = stack.stub.ListReports(pb.ListReportsRequest(grade="excellent"), metadata=stack.auth())
    assert len(none.reports) == 0


def test_list_reports_rejects_an_unknown_grade_and_a_forged_token(stack):
    """Bad filters and page tokens are INVALID_ARGUMENT with the field named."""
    for request, field in (
        (pb.ListReportsRequest(grade="superb"), "grade"),
        (pb.ListReportsRequest(page_token="not-a-token"), "page_token"),
        (pb.ListReportsRequest(page_size=-1), "page_size"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            stack.stub.ListReports(request, timeout=5, metadata=stack.auth())
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details(err.value)["BadRequest"].field_violations[0].field == field


# ---------------------------------------------------------------- errors, health, reflection


def test_unexpected_error_is_internal_without_leaking_internals(tmp_path):
    """A bug inside a handler -> INTERNAL with a reference id only."""

    class Broken(Container):
        def submit(self, cmd):
            raise RuntimeError("secret at /srv/db password=hunter2")

    def factory(c):
        return Broken(c.settings, c.deps, c.publisher, c.close)

    with running_api(tmp_path, container_factory=factory) as stack:
        with pytest.raises(grpc.RpcError) as err:
            validate(stack, jpeg_bytes())
        assert err.value.code() == grpc.StatusCode.INTERNAL
        message = err.value.details() or ""
        assert "hunter2" not in message and "ref" in message


def test_health_is_not_serving_until_triton_is_ready(stack):
    """grpc.health.v1 follows the container's readiness."""
    health = health_pb2_grpc.HealthStub(stack.channel)

    def status() -> int:
        return health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status

    assert status() == health_pb2.HealthCheckResponse.SERVING
    stack.inference.ready = False
    time.sleep(0.3)
    assert status() == health_pb2.HealthCheckResponse.NOT_SERVING
    stack.inference.ready = True
    time.sleep(0.3)
    named = health.Check(health_pb2.HealthCheckRequest(service="idetex.v1.ValidationService"), timeout=5)
    assert named.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_validation_service(stack):
    """Server reflection names the API, health and reflection services."""
    stub = reflection_pb2_grpc.ServerReflectionStub(stack.channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"idetex.v1.ValidationService", "grpc.health.v1.Health"} <= names


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BadImage("TRUNCATED", "cut short"), code_pb2.INVALID_ARGUMENT),
        (InvalidRequest("profile", "UNKNOWN_PROFILE", "no such profile"), code_pb2.INVALID_ARGUMENT),
        (ImageTooLarge("big", limit=1, actual=2), code_pb2.RESOURCE_EXHAUSTED),
        (Unauthenticated("who?"), code_pb2.UNAUTHENTICATED),
        (NotFound("gone"), code_pb2.NOT_FOUND),
        (api_errors.SyncUnavailable("down", job_id="j1"), code_pb2.UNAVAILABLE),
        (ValueError("boom"), code_pb2.INTERNAL),
    ],
)
def test_each_error_maps_to_its_status(error, code):
    """One table maps domain errors to gRPC codes; unexpected ones hide their message."""
    status = api_errors.to_status(error)
    assert status.code == code
    if code == code_pb2.INTERNAL:
        assert "boom" not in status.message and not status.details
    else:
        assert status.message == error.message and status.details
