"""Tenant isolation and SSRF guards through the real gRPC API (real worker, Triton, moto S3).

Merchant A owns a validated job (with an idempotency key), a webhook endpoint with a logged
delivery and an S3 audit. Merchant B, holding a valid key of its own, calls every RPC that reads
or changes stored data with A's ids: each answers NOT_FOUND (single objects) or leaves A's out
(lists), exactly as for ids that do not exist, and A's data is unchanged afterwards. Compare reads
no stored data (both images travel in the request) and so has no row here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from service.api.app import build_server
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.api.gen.idetex.v1 import validation_pb2_grpc as pb_grpc
from service.bootstrap import build
from service.settings import Settings
from tests import imagefactory as f

pytestmark = pytest.mark.integration


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class World:
    stub: pb_grpc.ValidationServiceStub
    a: tuple[tuple[str, str], ...]  # merchant A's metadata
    b: tuple[tuple[str, str], ...]  # merchant B's
    job_id: str
    product_id: str
    idempotency_key: str
    endpoint_id: str
    webhook_id: str
    audit_id: str


@pytest.fixture(scope="module")
def world(celery_worker, s3_server) -> Iterator[World]:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    settings = Settings.from_env(celery_worker.env)
    container = build(settings)
    server = build_server(container, settings, address="127.0.0.1:0", health_interval_s=0.5)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 60
        while (
            health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            != health_pb2.HealthCheckResponse.SERVING
        ):
            assert time.monotonic() < deadline
            time.sleep(0.25)
        stub = pb_grpc.ValidationServiceStub(channel)
        _, key_a = container.create_merchant("tenant-a")
        _, key_b = container.create_merchant("tenant-b")
        a, b = (("x-api-key", key_a),), (("x-api-key", key_b),)
        endpoint = stub.CreateWebhook(
            pb.CreateWebhookRequest(url=f"http://127.0.0.1:{receiver.server_port}/a"), timeout=10, metadata=a
        )
        image = f.jpeg_bytes(f.gradient(300, 200))
        request = pb.ValidateRequest(
            image=image, product_id="a-secret-sku", idempotency_key="a-key-1", mode=pb.MODE_SYNC
        )
        job = stub.Validate(request, timeout=60, metadata=a)
        assert job.status == pb.JOB_STATUS_DONE, job
        deliveries: Any = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            deliveries = stub.ListWebhookDeliveries(
                pb.ListWebhookDeliveriesRequest(), timeout=10, metadata=a
            ).deliveries
            if deliveries:
                break
            time.sleep(0.2)
        assert deliveries, "A's webhook was never attempted"
        s3 = s3_server.client()
        s3.create_bucket(Bucket="tenant-a-catalogue")
        s3.put_object(Bucket="tenant-a-catalogue", Key="shop/p1.jpg", Body=image)
        audit = stub.StartAudit(
            pb.StartAuditRequest(
                source="s3://tenant-a-catalogue/shop/", destination="s3://tenant-a-catalogue/out/"
            ),
            timeout=30,
            metadata=a,
        )
        yield World(
            stub, a, b, job.job_id, "a-secret-sku", "a-key-1", endpoint.id, deliveries[0].webhook_id, audit.id
        )
    finally:
        channel.close()
        server.stop(grace_s=1)
        container.close()
        receiver.shutdown()
        receiver.server_close()


def _not_found(call: Callable[[], Any]) -> None:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.NOT_FOUND, (err.value.code(), err.value.details())


# (name, what B does with A's ids, what B must get: "not_found" or a check of the answer)
CASES: list[tuple[str, Callable[[World], Any], Callable[[World, Any], bool] | str]] = [
    (
        "GetReport",
        lambda w: w.stub.GetReport(pb.GetReportRequest(job_id=w.job_id), timeout=10, metadata=w.b),
        "not_found",
    ),
    (
        "ListReports",
        lambda w: w.stub.ListReports(pb.ListReportsRequest(), timeout=10, metadata=w.b),
        lambda w, r: all(x.job_id != w.job_id for x in r.reports),
    ),
    (
        "ListReports by A's product",
        lambda w: w.stub.ListReports(
            pb.ListReportsRequest(product_id=w.product_id), timeout=10, metadata=w.b
        ),
        lambda w, r: len(r.reports) == 0,
    ),
    (
        "AskQuality",
        lambda w: w.stub.AskQuality(
            pb.AskQualityRequest(job_id=w.job_id, question="Is the image blurred?", options=["Yes", "No"]),
            timeout=30,
            metadata=w.b,
        ),
        "not_found",
    ),
    (
        "ListWebhooks",
        lambda w: w.stub.ListWebhooks(pb.ListWebhooksRequest(), timeout=10, metadata=w.b),
        lambda w, r: all(x.id != w.endpoint_id for x in r.webhooks),
    ),
    (
        "UpdateWebhook",
        lambda w: w.stub.UpdateWebhook(
            pb.UpdateWebhookRequest(id=w.endpoint_id, url="http://127.0.0.1:9/b", enabled=False),
            timeout=10,
            metadata=w.b,
        ),
        "not_found",
    ),
    (
        "DeleteWebhook",
        lambda w: w.stub.DeleteWebhook(pb.DeleteWebhookRequest(id=w.endpoint_id), timeout=10, metadata=w.b),
        "not_found",
    ),
    (
        "ListWebhookDeliveries by A's endpoint",
        lambda w: w.stub.ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(endpoint_id=w.endpoint_id), timeout=10, metadata=w.b
        ),
        lambda w, r: len(r.deliveries) == 0,
    ),
    (
        "ListWebhookDeliveries by A's message",
        lambda w: w.stub.ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(webhook_id=w.webhook_id), timeout=10, metadata=w.b
        ),
        lambda w, r: len(r.deliveries) == 0,
    ),
    (
        "RedeliverWebhook",
        lambda w: w.stub.RedeliverWebhook(
            pb.RedeliverWebhookRequest(webhook_id=w.webhook_id), timeout=10, metadata=w.b
        ),
        "not_found",
    ),
    (
        "GetAudit",
        lambda w: w.stub.GetAudit(pb.AuditRequest(audit_id=w.audit_id), timeout=10, metadata=w.b),
        "not_found",
    ),
    (
        "CancelAudit",
        lambda w: w.stub.CancelAudit(pb.AuditRequest(audit_id=w.audit_id), timeout=10, metadata=w.b),
        "not_found",
    ),
    (
        "ResumeAudit",
        lambda w: w.stub.ResumeAudit(pb.AuditRequest(audit_id=w.audit_id), timeout=10, metadata=w.b),
        "not_found",
    ),
    (
        "Validate with A's idempotency key",
        lambda w: w.stub.Validate(
            pb.ValidateRequest(
                image=f.png_bytes(f.gradient(64, 48)), idempotency_key=w.idempotency_key, mode=pb.MODE_ASYNC
            ),
            timeout=10,
            metadata=w.b,
        ),
        lambda w, r: r.job_id != w.job_id and not r.deduplicated,
    ),
    (
        "Validate of A's very image",
        lambda w: w.stub.Validate(
            pb.ValidateRequest(image=f.jpeg_bytes(f.gradient(300, 200)), mode=pb.MODE_ASYNC),
            timeout=10,
            metadata=w.b,
        ),
        lambda w, r: r.job_id != w.job_id and not r.deduplicated,
    ),
]


@pytest.mark.parametrize(("name", "call", "expect"), CASES, ids=[c[0] for c in CASES])
def test_another_merchant_cannot_reach_the_data(world, name, call, expect):
    """B with A's ids: NOT_FOUND for one object, A's rows absent from lists, its own new job on Validate."""
    if expect == "not_found":
        _not_found(lambda: call(world))
    else:
        assert expect(world, call(world)), name


def test_the_owners_data_is_unchanged_afterwards(world):
    """After B's attempts A still reads its report, its enabled endpoint, its deliveries and its audit."""
    stub, a = world.stub, world.a
    assert (
        stub.GetReport(pb.GetReportRequest(job_id=world.job_id), timeout=10, metadata=a).status
        == pb.JOB_STATUS_DONE
    )
    hooks = {h.id: h for h in stub.ListWebhooks(pb.ListWebhooksRequest(), timeout=10, metadata=a).webhooks}
    assert world.endpoint_id in hooks and hooks[world.endpoint_id].enabled
    assert "127.0.0.1:9/b" not in hooks[world.endpoint_id].url
    assert (
        stub.GetAudit(pb.AuditRequest(audit_id=world.audit_id), timeout=10, metadata=a).status != "CANCELLED"
    )


def test_every_data_rpc_of_the_service_is_covered():
    """A new RPC that reads stored data must get a row in CASES (or be named here as reading none)."""
    reads_nothing_stored = {"Validate", "UploadImage", "CreateWebhook", "StartAudit", "Compare"}
    methods = set(pb.DESCRIPTOR.services_by_name["ValidationService"].methods_by_name)
    covered = {name.split(" ")[0] for name, _, _ in CASES}
    assert methods - reads_nothing_stored <= covered, methods - reads_nothing_stored - covered


# ---------------------------------------------------------------- SSRF


def _violation(err: grpc.RpcError) -> error_details_pb2.BadRequest.FieldViolation:
    status = rpc_status.from_call(err)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details), status
    return bad.field_violations[0]


WEBHOOK_TARGETS = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fd00:ec2::254]/latest/meta-data/",  # AWS metadata over IPv6
    "http://10.0.0.1/hook",
    "http://192.168.1.1/hook",
    "http://127.0.0.2:8080/hook",  # loopback outside 127.0.0.1/32 (the tests' IDETEX_WEBHOOK_ALLOW_NETWORKS)
    "http://[::1]:8080/hook",
    "http://0.0.0.0:8080/hook",
    "http://localhost:6379/",  # a name that resolves to loopback (Redis here)
    "http://2130706434/hook",  # 127.0.0.2 as one decimal number
    "http://0x7f.0.0.2/hook",  # and in hex
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://example.com/hook",
]


@pytest.mark.parametrize("url", WEBHOOK_TARGETS)
def test_webhooks_to_private_or_odd_targets_are_refused(world, url):
    """Creating (or moving) an endpoint to a private, loopback, link-local or non-HTTP target fails."""
    with pytest.raises(grpc.RpcError) as err:
        world.stub.CreateWebhook(pb.CreateWebhookRequest(url=url), timeout=10, metadata=world.b)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert _violation(err.value).field == "url"
    with pytest.raises(grpc.RpcError) as err:
        world.stub.UpdateWebhook(
            pb.UpdateWebhookRequest(id=world.endpoint_id, url=url), timeout=10, metadata=world.a
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


URI_INPUTS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://example.com/photo.jpg",
    "file:///etc/passwd",
    "/etc/passwd",
    "s3:/catalogue/photo.jpg",
    "S3://catalogue/photo.jpg",
    "s3://",
    "s3://catalogue",  # no key
    "s3://user:secret@evil.example/photo.jpg",  # credentials and a host in the bucket's place
    "s3://catalogue:99999/photo.jpg",
    "s3://169.254.169.254/latest/meta-data",  # an IP as the bucket name
    "s3://a/photo.jpg",  # a bucket name S3 does not allow
    "s3://catalogue/%00/../../etc/passwd",
    "s3://[/photo.jpg",  # an unclosed IPv6 bracket (urlsplit raised ValueError: INTERNAL)
]


@pytest.mark.parametrize("uri", URI_INPUTS)
def test_only_s3_uris_are_fetched(world, uri):
    """Validate fetches nothing but s3:// objects from the configured endpoint: other schemes are
    INVALID_ARGUMENT on s3_uri before any request leaves the service."""
    with pytest.raises(grpc.RpcError) as err:
        world.stub.Validate(pb.ValidateRequest(s3_uri=uri, mode=pb.MODE_ASYNC), timeout=10, metadata=world.b)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violation(err.value).field == "s3_uri"


@pytest.mark.parametrize(
    "source",
    [
        "http://169.254.169.254/latest/",
        "file:///etc/",
        "https://example.com/manifest.json",
        "s3://user:secret@evil.example/shop/",
        "s3://catalogue:99999/shop/",
    ],
)
def test_audit_sources_must_be_s3(world, source):
    with pytest.raises(grpc.RpcError) as err:
        world.stub.StartAudit(
            pb.StartAuditRequest(source=source, destination="s3://tenant-b/out/"),
            timeout=10,
            metadata=world.b,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
