"""Every request field the service stores or works on has a size limit, answered with a typed
error through the real gRPC API (docs/reliability.md, "Security": the table of limits)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service.api.gen.idetex.v1 import validation_pb2 as pb
from tests.imagefactory import gradient, jpeg_bytes
from tests.support.api_stack import running_api

IMAGE = jpeg_bytes(gradient(64, 48))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_api(tmp_path_factory.mktemp("limits")) as s:
        yield s


def _violation(err: grpc.RpcError) -> tuple[str, str]:
    status = rpc_status.from_call(err)
    bad = error_details_pb2.BadRequest()
    assert status is not None and any(d.Unpack(bad) for d in status.details), err
    return bad.field_violations[0].field, bad.field_violations[0].reason


LONG_S3 = "s3://b/" + "k" * 2000
OVER = [
    (
        "product_id",
        "Validate",
        pb.ValidateRequest(image=IMAGE, product_id="p" * 201),
        ("product_id", "TOO_LONG"),
    ),
    (
        "idempotency_key",
        "Validate",
        pb.ValidateRequest(image=IMAGE, idempotency_key="k" * 201),
        ("idempotency_key", "TOO_LONG"),
    ),
    ("s3_uri", "Validate", pb.ValidateRequest(s3_uri=LONG_S3), ("s3_uri", "TOO_LONG")),
    (
        "streamed header product_id",
        "UploadImage",
        [pb.UploadChunk(header=pb.UploadHeader(product_id="p" * 201)), pb.UploadChunk(chunk=IMAGE)],
        ("product_id", "TOO_LONG"),
    ),
    (
        "question",
        "AskQuality",
        pb.AskQualityRequest(image=IMAGE, question="q" * 4001, options=["a", "b"]),
        ("question", "TOO_LONG"),
    ),
    (
        "option count",
        "AskQuality",
        pb.AskQualityRequest(image=IMAGE, question="Blurred?", options=["o"] * 27),
        ("options", "COUNT"),
    ),
    (
        "option length",
        "AskQuality",
        pb.AskQualityRequest(image=IMAGE, question="Blurred?", options=["a", "b" * 501]),
        ("options", "INVALID"),
    ),
    (
        "webhook url",
        "CreateWebhook",
        pb.CreateWebhookRequest(url="https://example.com/" + "u" * 2000),
        ("url", "BAD_URL"),
    ),
    (
        "audit source",
        "StartAudit",
        pb.StartAuditRequest(source=LONG_S3, destination="s3://b/out/"),
        ("source", "TOO_LONG"),
    ),
    (
        "audit destination",
        "StartAudit",
        pb.StartAuditRequest(source="s3://b/in/", destination=LONG_S3),
        ("destination", "TOO_LONG"),
    ),
]


@pytest.mark.parametrize(("name", "method", "request_", "expected"), OVER, ids=[o[0] for o in OVER])
def test_a_field_over_its_limit_is_invalid_argument(stack, name, method, request_, expected):
    call = getattr(stack.stub, method)
    with pytest.raises(grpc.RpcError) as err:
        call(iter(request_) if isinstance(request_, list) else request_, timeout=10, metadata=stack.auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert _violation(err.value) == expected


def test_fields_at_their_limit_are_accepted(stack):
    response = stack.stub.Validate(
        pb.ValidateRequest(image=IMAGE, product_id="p" * 200, idempotency_key="k" * 200, mode=pb.MODE_ASYNC),
        timeout=10,
        metadata=stack.auth(),
    )
    assert response.job_id


def test_an_inline_image_over_the_unary_limit_is_resource_exhausted(stack):
    limit = stack.settings.unary_limit_bytes
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.Validate(
            pb.ValidateRequest(image=b"\xff" * (limit + 1)), timeout=10, metadata=stack.auth()
        )
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _violation(err.value) == ("image", "TOO_MANY_BYTES")


def test_page_sizes_are_capped_not_refused(stack):
    """A page size of a million lists at most 100 reports; a delivery limit at most 1000."""
    reports = stack.stub.ListReports(
        pb.ListReportsRequest(page_size=1_000_000), timeout=10, metadata=stack.auth()
    )
    assert len(reports.reports) <= 100
    deliveries = stack.stub.ListWebhookDeliveries(
        pb.ListWebhookDeliveriesRequest(limit=1_000_000), timeout=10, metadata=stack.auth()
    )
    assert len(deliveries.deliveries) <= 1000


def test_oversized_metadata_is_refused_by_the_transport(stack):
    """A 64 KB API key header: grpc's metadata limit (8 KB by default) refuses the call."""
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.GetReport(
            pb.GetReportRequest(job_id="x"), timeout=10, metadata=(("x-api-key", "k" * 65536),)
        )
    assert err.value.code() in (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
    )
