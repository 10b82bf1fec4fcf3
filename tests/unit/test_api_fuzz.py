"""Random field values on every RPC of the real API stack: the answer is a typed status, never
INTERNAL or UNKNOWN (an exception our code did not translate). No request reaches S3: s3://
URIs with a valid bucket name are left out (they would leave the machine)."""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.api.gen.idetex.v1 import validation_pb2 as pb
from tests.support.api_stack import running_api

UNTRANSLATED = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_api(tmp_path_factory.mktemp("api-fuzz")) as s:
        s.publisher.hold()  # queued jobs stay queued: the fuzz is about the API's answers
        yield s


text = st.text(max_size=300)
ids = st.one_of(text, st.uuids().map(str), st.just(""))
not_s3 = text.filter(lambda t: not t.strip().lower().startswith("s3:"))
enum_value = st.integers(-5, 20)
images = st.one_of(st.binary(max_size=512), st.just(b""))

requests = st.one_of(
    st.builds(
        lambda image, product, profile, mode, key: (
            "Validate",
            pb.ValidateRequest(
                image=image, product_id=product, profile=profile, mode=mode, idempotency_key=key
            ),
        ),
        images,
        text,
        text,
        enum_value,
        text,
    ),
    st.builds(lambda uri: ("Validate", pb.ValidateRequest(s3_uri=uri, mode=pb.MODE_ASYNC)), not_s3),
    st.builds(lambda job: ("GetReport", pb.GetReportRequest(job_id=job)), ids),
    st.builds(
        lambda product, grade, verdict, token, size: (
            "ListReports",
            pb.ListReportsRequest(
                product_id=product, grade=grade, verdict=verdict, page_token=token, page_size=size
            ),
        ),
        text,
        text,
        enum_value,
        text,
        st.integers(-(2**31), 2**31 - 1),
    ),
    st.builds(
        lambda job, question, options: (
            "AskQuality",
            pb.AskQualityRequest(job_id=job, question=question, options=options),
        ),
        ids,
        text,
        st.lists(st.text(max_size=40), max_size=30),
    ),
    st.builds(
        lambda url, events: ("CreateWebhook", pb.CreateWebhookRequest(url=url, events=events)),
        text,
        st.lists(text, max_size=5),
    ),
    st.builds(
        lambda endpoint, url: ("UpdateWebhook", pb.UpdateWebhookRequest(id=endpoint, url=url)), ids, text
    ),
    st.builds(lambda endpoint: ("DeleteWebhook", pb.DeleteWebhookRequest(id=endpoint)), ids),
    st.builds(
        lambda endpoint, message, limit: (
            "ListWebhookDeliveries",
            pb.ListWebhookDeliveriesRequest(endpoint_id=endpoint, webhook_id=message, limit=limit),
        ),
        ids,
        ids,
        st.integers(-(2**31), 2**31 - 1),
    ),
    st.builds(lambda message: ("RedeliverWebhook", pb.RedeliverWebhookRequest(webhook_id=message)), ids),
    st.builds(
        lambda source, destination, profile: (
            "StartAudit",
            pb.StartAuditRequest(source=source, destination=destination, profile=profile),
        ),
        not_s3,
        text,
        text,
    ),
    st.builds(lambda audit: ("GetAudit", pb.AuditRequest(audit_id=audit)), ids),
    st.builds(lambda audit: ("CancelAudit", pb.AuditRequest(audit_id=audit)), ids),
    st.builds(lambda audit: ("ResumeAudit", pb.AuditRequest(audit_id=audit)), ids),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests)
def test_random_requests_get_typed_answers(stack, call):
    method, request = call
    try:
        getattr(stack.stub, method)(request, timeout=20, metadata=stack.auth())
    except grpc.RpcError as err:
        assert err.code() not in UNTRANSLATED, (method, request, err.details())
