"""S3 audits over local adapters: moto's in-process S3, SQLite, the fake model; steps run by hand."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import grpc
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from service import audits, handlers, webhooks
from service.adapters.publisher import AUDIT_STEP, DELIVER_WEBHOOK, PROCESS_IMAGE
from service.adapters.s3catalogue import S3Catalogue
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.domain.errors import InferenceUnavailable, InvalidRequest, NotFound
from tests.imagefactory import gradient, png_bytes
from tests.support.api_stack import running_api
from tests.unit.test_handlers import run_queued


def image(i: int) -> bytes:
    rgb = gradient(64, 48)
    rgb[0, 0] = (i % 256, i // 256, 3)
    return png_bytes(rgb)


@pytest.fixture
def s3(env):
    deps, *_ = env
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="shop")
        client.create_bucket(Bucket="out")
        deps.s3 = S3Catalogue(lambda: client)
        yield client


def drive(deps: Any, publisher: Any, audit_id: str, max_rounds: int = 50) -> audits.AuditView:
    """Play the worker: run queued image jobs and audit steps until the audit stops."""
    for _ in range(max_rounds):
        steps = [m for m in publisher.sent if m.name == AUDIT_STEP]
        for m in steps:
            publisher.sent.remove(m)
        run_queued(deps, publisher)
        for m in steps[:1]:  # one chain: the step queues its successor itself
            audits.step(deps, *m.args, window=4)
        view = audits.get_audit(deps, view_merchant(deps, audit_id), audit_id)
        if view.status != "RUNNING":
            return view
    raise AssertionError(f"audit still running after {max_rounds} rounds: {view.counts}")


def view_merchant(deps: Any, audit_id: str) -> str:
    with deps.uow() as uow:
        audit = uow.repo.audit(audit_id)
        assert audit is not None
        return audit.merchant_id


def test_an_audit_grades_skips_fails_reports_and_announces(env, merchant, s3):
    deps, publisher, *_ = env
    for i in range(6):
        s3.put_object(Bucket="shop", Key=f"cat/{i}.png", Body=image(i))
    s3.put_object(Bucket="shop", Key="cat/notes.txt", Body=b"price list")
    s3.put_object(Bucket="shop", Key="cat/copy.png", Body=image(2))
    s3.put_object(Bucket="shop", Key="cat/sub/", Body=b"")  # a "folder" marker is not an object
    endpoint = webhooks.create_endpoint(deps, merchant, "http://127.0.0.1:9/h", ["audit.completed"])
    started = audits.start_audit(deps, merchant, "s3://shop/cat/", "amazon_main", "s3://out/runs/")
    assert started.status == "RUNNING" and started.destination_uri == "s3://out/runs"
    view = drive(deps, publisher, started.id)
    assert view.status == "DONE"
    assert view.counts == {"DONE": 6, "SKIPPED": 1, "DUPLICATE": 1}
    assert view.total == 8 and view.remaining == 0 and view.images_per_s > 0
    report = s3.get_object(Bucket="out", Key=f"runs/{started.id}/report.csv")["Body"].read().decode()
    lines = report.strip().splitlines()
    assert lines[0] == "bucket,key,version,status,verdict,grade,guidance_codes,error" and len(lines) == 9
    summary = json.loads(s3.get_object(Bucket="out", Key=f"runs/{started.id}/summary.json")["Body"].read())
    assert summary["per_status"] == {"DONE": 6, "DUPLICATE": 1, "SKIPPED": 1}
    assert sum(summary["per_verdict"].values()) == 6 and summary["per_distortion_type"] == {
        "Underexposure": 6
    }
    (event,) = [m for m in publisher.sent if m.name == DELIVER_WEBHOOK]
    assert event.args[0] == endpoint.id and event.args[2:4] == ("audit.completed", started.id)
    assert webhooks.deliver(deps, *event.args).outcome == "delivered"


class DeniedClient:
    """A boto3 client whose GetObject is denied for keys containing 'secret'."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_object(self, **kwargs: Any) -> Any:
        if "secret" in kwargs["Key"]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")
        return self.inner.get_object(**kwargs)


def test_denied_and_vanished_objects_fail_alone(env, merchant, s3):
    deps, publisher, *_ = env
    deps.s3 = S3Catalogue(lambda: DeniedClient(s3))
    s3.put_object(Bucket="shop", Key="a.png", Body=image(1))
    s3.put_object(Bucket="shop", Key="secret.png", Body=image(2))
    s3.put_object(
        Bucket="shop", Key="m/manifest.csv", Body=b"shop,a.png\nshop,secret.png\nshop,vanished.png\n"
    )
    started = audits.start_audit(deps, merchant, "s3://shop/m/manifest.csv", "default", "s3://out/x")
    view = drive(deps, publisher, started.id)
    assert view.status == "DONE" and view.counts == {"DONE": 1, "FAILED": 2}
    with deps.uow() as uow:
        errors = {o.key: o.error for o in uow.repo.audit_objects(started.id)}
    assert errors["secret.png"].startswith("ACCESS_DENIED") and errors["vanished.png"].startswith("NOT_FOUND")


def test_an_unreadable_source_fails_the_audit_and_says_why(env, merchant, s3):
    deps, publisher, *_ = env
    started = audits.start_audit(deps, merchant, "s3://shop/none/manifest.json", "default", "s3://out/x")
    view = drive(deps, publisher, started.id)
    assert view.status == "FAILED" and "cannot read" in (view.error or "")


def test_start_checks_its_arguments_and_tenancy(env, merchant, s3):
    deps, *_ = env
    with pytest.raises(InvalidRequest):
        audits.start_audit(deps, merchant, "https://shop/cat", "default", "s3://out/x")
    with pytest.raises(InvalidRequest):
        audits.start_audit(deps, merchant, "s3://shop/cat/", "etsy", "s3://out/x")
    started = audits.start_audit(deps, merchant, "s3://shop/cat/", "default", "s3://out/x")
    from service import handlers

    other, _ = handlers.create_merchant(deps, "Other")
    with pytest.raises(NotFound):
        audits.get_audit(deps, other, started.id)


def test_cancel_stops_queueing_and_resume_finishes_the_rest(env, merchant, s3):
    deps, publisher, *_ = env
    for i in range(10):
        s3.put_object(Bucket="shop", Key=f"c/{i}.png", Body=image(100 + i))
    started = audits.start_audit(deps, merchant, "s3://shop/c/", "default", "s3://out/y")
    (first,) = [m for m in publisher.sent if m.name == AUDIT_STEP]
    publisher.sent.remove(first)
    audits.step(deps, started.id, window=4)  # lists all 10, queues 4
    assert audits.cancel_audit(deps, merchant, started.id).status == "CANCELLED"
    assert audits.step(deps, started.id, window=4).next_in_s is None  # a cancelled audit stops
    view = audits.get_audit(deps, merchant, started.id)
    assert view.counts == {"QUEUED": 4, "PENDING": 6}
    audits.resume_audit(deps, merchant, started.id)
    view = drive(deps, publisher, started.id)
    assert view.status == "DONE" and view.counts == {"DONE": 10}
    with pytest.raises(InvalidRequest):
        audits.resume_audit(deps, merchant, started.id)


def test_a_lost_step_chain_is_restarted_and_steps_never_overlap(env, merchant, s3):
    deps, publisher, *_ = env
    started = audits.start_audit(deps, merchant, "s3://shop/c/", "default", "s3://out/y")
    publisher.sent.clear()  # the first step's message is lost
    assert audits.requeue_stale(deps, quiet_s=3600) == []
    assert audits.requeue_stale(deps, quiet_s=-1) == [started.id]
    assert [m.name for m in publisher.sent] == [AUDIT_STEP]
    now = dt.datetime.now(dt.UTC)
    with deps.uow() as uow:
        assert uow.repo.lease_audit(started.id, now, now + dt.timedelta(seconds=60))
        uow.commit()
    publisher.sent.clear()
    held = audits.step(deps, started.id)
    assert held.status == "RUNNING" and held.next_in_s == pytest.approx(30.0)  # looks again later
    assert [m for m in publisher.sent if m.name == PROCESS_IMAGE] == []


def test_audits_over_grpc(tmp_path):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="shop")
        with running_api(tmp_path) as stack:
            stack.container.deps.s3 = S3Catalogue(lambda: client)
            auth = stack.auth("acme")
            audit = stack.stub.StartAudit(
                pb.StartAuditRequest(source="s3://shop/cat/", profile="ebay", destination="s3://shop/out"),
                metadata=auth,
                timeout=5,
            )
            assert audit.status == "RUNNING" and audit.profile == "ebay" and not audit.listing_done
            got = stack.stub.GetAudit(pb.AuditRequest(audit_id=audit.id), metadata=auth, timeout=5)
            assert (got.id, got.total, got.remaining) == (audit.id, 0, 0)
            cancelled = stack.stub.CancelAudit(pb.AuditRequest(audit_id=audit.id), metadata=auth)
            assert cancelled.status == "CANCELLED"
            assert (
                stack.stub.ResumeAudit(pb.AuditRequest(audit_id=audit.id), metadata=auth).status == "RUNNING"
            )
            with pytest.raises(grpc.RpcError) as err:
                stack.stub.GetAudit(pb.AuditRequest(audit_id=audit.id), metadata=stack.auth("globex"))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.RpcError) as err:
                stack.stub.StartAudit(pb.StartAuditRequest(source="s3://shop/x/"), metadata=auth)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_an_object_deleted_after_listing_fails_alone(env, merchant, s3):
    """Listed, then deleted before a step reads it: that object FAILS with NOT_FOUND, the rest pass."""
    deps, publisher, *_ = env
    for i in range(8):
        s3.put_object(Bucket="shop", Key=f"v/{i}.png", Body=image(300 + i))
    started = audits.start_audit(deps, merchant, "s3://shop/v/", "default", "s3://out/v")
    (first,) = [m for m in publisher.sent if m.name == AUDIT_STEP]
    publisher.sent.remove(first)
    audits.step(deps, started.id, window=4)  # lists all eight, reads the first four
    s3.delete_object(Bucket="shop", Key="v/6.png")
    view = drive(deps, publisher, started.id)
    assert view.status == "DONE" and view.counts == {"DONE": 7, "FAILED": 1}
    with deps.uow() as uow:
        failed = [(o.key, o.error) for o in uow.repo.audit_objects(started.id) if o.status == "FAILED"]
    assert failed[0][0] == "v/6.png" and failed[0][1].startswith("NOT_FOUND")


def test_an_object_met_by_a_broker_outage_is_queued_again_not_failed(env, merchant, s3, monkeypatch):
    """The broker refuses one object's job message: the outage is the service's, so that object
    stays PENDING, the step is tried again, and every object ends DONE (none FAILED with
    BROKER_UNAVAILABLE in the merchant's report)."""
    deps, publisher, *_ = env
    for i in range(6):
        s3.put_object(Bucket="shop", Key=f"b/{i}.png", Body=image(400 + i))
    started = audits.start_audit(deps, merchant, "s3://shop/b/", "default", "s3://out/b")
    real_publish, refused = publisher.publish, []

    def publish(message):
        if message.name == PROCESS_IMAGE and len(refused) < 1:
            refused.append(message)
            raise ConnectionRefusedError("broker connection refused")
        real_publish(message)

    monkeypatch.setattr(publisher, "publish", publish)
    view = drive(deps, publisher, started.id)
    assert refused, "the outage was not met"
    assert view.status == "DONE" and view.counts == {"DONE": 6}
    with deps.uow() as uow:
        errors = [o.error for o in uow.repo.audit_objects(started.id)]
    assert errors == [None] * 6


def _inference_down_for(deps: Any, inference: Any, runs: int | None, monkeypatch: Any) -> None:
    """Triton answers UNAVAILABLE to the first `runs` jobs (every job when None), each on its last
    Celery retry, so the job ends FAILED with INFERENCE_UNAVAILABLE; the model version stays known
    (the service's cached version never raises)."""
    real_infer, real_process = inference.infer, handlers.process_job
    failures = {"left": runs}

    def infer(images):
        if failures["left"] is None or failures["left"] > 0:
            if failures["left"] is not None:
                failures["left"] -= 1
            raise InferenceUnavailable("Triton is restarting")
        return real_infer(images)

    monkeypatch.setattr(inference, "infer", infer)
    monkeypatch.setattr(deps, "model_version", lambda: "7")
    last_retry = lambda d, job_id: real_process(d, job_id, final_attempt=True)  # noqa: E731
    monkeypatch.setattr(handlers, "process_job", last_retry)


def test_objects_whose_jobs_failed_on_a_triton_outage_are_submitted_again(env, merchant, s3, monkeypatch):
    """Triton is down for the first three jobs: their objects go back to PENDING, are submitted
    again once it is back, and the audit ends with every object DONE and no error."""
    deps, publisher, inference, _ = env
    for i in range(5):
        s3.put_object(Bucket="shop", Key=f"t/{i}.png", Body=image(500 + i))
    _inference_down_for(deps, inference, 3, monkeypatch)
    started = audits.start_audit(deps, merchant, "s3://shop/t/", "default", "s3://out/t")
    view = drive(deps, publisher, started.id)
    assert view.status == "DONE" and view.counts == {"DONE": 5}
    with deps.uow() as uow:
        facts = [(o.resubmits, o.error) for o in uow.repo.audit_objects(started.id)]
    assert sum(n for n, _ in facts) == 3 and [e for _, e in facts] == [None] * 5


def test_an_outage_that_outlasts_the_resubmits_fails_the_objects_and_ends_the_audit(
    env, merchant, s3, monkeypatch
):
    """Triton never comes back: each object is submitted again MAX_RESUBMITS times, then counts as
    FAILED with INFERENCE_UNAVAILABLE, and the audit still finishes with its report."""
    deps, publisher, inference, _ = env
    for i in range(3):
        s3.put_object(Bucket="shop", Key=f"u/{i}.png", Body=image(600 + i))
    _inference_down_for(deps, inference, None, monkeypatch)
    started = audits.start_audit(deps, merchant, "s3://shop/u/", "default", "s3://out/u")
    view = drive(deps, publisher, started.id)
    assert view.status == "DONE" and view.counts == {"FAILED": 3}
    with deps.uow() as uow:
        facts = [(o.resubmits, o.error or "") for o in uow.repo.audit_objects(started.id)]
    assert [n for n, _ in facts] == [audits.MAX_RESUBMITS] * 3
    assert all(e.startswith("INFERENCE_UNAVAILABLE") for _, e in facts)
