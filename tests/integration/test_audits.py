"""S3 batch audits end to end: moto's S3 server, a real Celery worker, the real Triton, SQL."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import pytest

from service.bootstrap import Container
from tests import imagefactory
from tests.integration.test_worker_pipeline import Receiver, wait_until

pytestmark = pytest.mark.integration

WAIT_S = 600.0  # 1,000 objects on 2 shared cores: minutes when the machine is busy


def small_jpeg(i: int) -> bytes:
    """A distinct little image per index: PNG, lossless, so distinct pixels give distinct bytes
    (JPEG quantisation would make neighbouring indices identical files)."""
    rgb = imagefactory.gradient(96, 72)
    rgb[0, 0] = (i % 256, (i // 256) % 256, (i // 65536) % 256)
    return imagefactory.png_bytes(rgb)


def wait_done(api: Container, merchant_id: str, audit_id: str, worker: Any) -> Any:
    deadline = time.monotonic() + WAIT_S
    view = api.get_audit(merchant_id, audit_id)
    while view.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
        view = api.get_audit(merchant_id, audit_id)
    assert view.status != "RUNNING", f"audit still running: {view.counts}\n{worker.log()[-3000:]}"
    return view


def read_report(s3: Any, uri: str) -> list[dict[str, str]]:
    bucket, key = uri[5:].split("/", 1)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(body)))


@pytest.fixture(scope="module")
def audit_worker(start_worker: Any, worker_env: dict[str, str], triton_grpc_url: str) -> Any:
    """A prefork worker (as `idetex serve` and deploy/ run them) on a queue of its own. The solo
    pool stalls audit steps on RabbitMQ (docs/audits.md), so audits are tested as deployed."""
    env = {
        **worker_env,
        "IDETEX_TASK_QUEUE": worker_env["IDETEX_TASK_QUEUE"] + "-audits",
        "IDETEX_TRITON_URL": triton_grpc_url,
    }
    worker = start_worker(env, pool="prefork")
    yield worker
    worker.stop()  # no idle prefork worker left competing for the CPU with later tests


@pytest.fixture(scope="module")
def api(audit_worker: Any) -> Any:
    from service.bootstrap import build

    container = build(audit_worker.settings)
    yield container
    container.close()


def test_a_prefix_of_over_a_thousand_objects_is_audited_reported_and_announced(
    api: Container, audit_worker: Any, s3_server: Any
):
    """1,010 objects over two listing pages: images graded, text skipped by content, truncated
    JPEGs failed, byte-identical copies counted once; report.csv and summary.json land in the
    destination; GetAudit's counts add up; audit.completed reaches the merchant's webhook."""
    from standardwebhooks.webhooks import Webhook

    s3 = s3_server.client()
    s3.create_bucket(Bucket="catalogue")
    s3.create_bucket(Bucket="audit-reports")
    for i in range(1000):
        s3.put_object(Bucket="catalogue", Key=f"shop/products/p{i:04d}.jpg", Body=small_jpeg(i))
    for i in range(3):
        s3.put_object(
            Bucket="catalogue", Key=f"shop/products/readme{i}.txt", Body=f"not an image, note {i}".encode()
        )
    for i in range(2):
        s3.put_object(Bucket="catalogue", Key=f"shop/products/broken{i}.jpg", Body=small_jpeg(5000 + i)[:300])
    for i in range(5):
        s3.put_object(Bucket="catalogue", Key=f"shop/products/copy{i}.jpg", Body=small_jpeg(i))
    receiver = Receiver()
    try:
        merchant_id, _ = api.create_merchant("Catalogue shop")
        endpoint = api.create_webhook(merchant_id, receiver.url, ["audit.completed", "audit.failed"])
        started = api.start_audit(
            merchant_id, "s3://catalogue/shop/products/", "default", "s3://audit-reports/runs"
        )
        view = wait_done(api, merchant_id, started.id, audit_worker)
        assert view.status == "DONE", view.error
        assert view.total == 1010 and view.remaining == 0
        assert view.counts == {"DONE": 1000, "SKIPPED": 3, "FAILED": 2, "DUPLICATE": 5}
        rows = read_report(s3, view.report_uri)
        assert len(rows) == 1010 and {r["bucket"] for r in rows} == {"catalogue"}
        by_key = {r["key"]: r for r in rows}
        assert by_key["shop/products/p0010.jpg"]["status"] == "DONE"
        assert by_key["shop/products/p0010.jpg"]["grade"] and by_key["shop/products/p0010.jpg"]["verdict"]
        assert by_key["shop/products/readme0.txt"]["status"] == "SKIPPED"
        assert by_key["shop/products/readme0.txt"]["error"].startswith("NOT_AN_IMAGE")
        assert by_key["shop/products/broken0.jpg"]["status"] == "FAILED"
        # copyN.jpg holds pN's bytes and is listed first: one of each pair is graded, the other
        # points at it
        assert by_key["shop/products/copy3.jpg"]["status"] == "DONE"
        assert by_key["shop/products/p0003.jpg"]["status"] == "DUPLICATE"
        assert "s3://catalogue/shop/products/copy3.jpg" in by_key["shop/products/p0003.jpg"]["error"]
        bucket, key = view.summary_uri[5:].split("/", 1)
        summary = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert summary["objects"] == 1010 and sum(summary["per_verdict"].values()) == 1000
        assert summary["per_status"] == {"DONE": 1000, "DUPLICATE": 5, "FAILED": 2, "SKIPPED": 3}
        receiver.wait_for(1, 60)
        headers, body = receiver.requests[0]
        event = Webhook(endpoint.secret).verify(body, headers)
        assert event["type"] == "audit.completed" and event["data"]["audit_id"] == started.id
        assert event["data"]["report_uri"] == view.report_uri and event["data"]["objects"] == 1010
    finally:
        receiver.close()


def test_manifest_objects_that_vanish_or_cannot_be_read_are_per_object_errors(
    api: Container, audit_worker: Any, s3_server: Any
):
    """A Batch Operations CSV manifest (URL-encoded keys) naming a vanished object and a missing
    bucket: those two FAIL with their codes, the rest are graded, the audit is DONE."""
    s3 = s3_server.client()
    s3.create_bucket(Bucket="manifests")
    s3.create_bucket(Bucket="shop2")
    s3.put_object(Bucket="shop2", Key="summer sale/a b.jpg", Body=small_jpeg(9001))
    s3.put_object(Bucket="shop2", Key="b.jpg", Body=small_jpeg(9002))
    manifest = "shop2,summer+sale%2Fa+b.jpg\nshop2,b.jpg\nshop2,gone.jpg\nno-such-bucket,x.jpg\n"
    s3.put_object(Bucket="manifests", Key="run1/manifest.csv", Body=manifest.encode())
    merchant_id, _ = api.create_merchant("Manifest shop")
    started = api.start_audit(merchant_id, "s3://manifests/run1/manifest.csv", "ebay", "s3://manifests/out")
    view = wait_done(api, merchant_id, started.id, audit_worker)
    assert view.status == "DONE" and view.counts == {"DONE": 2, "FAILED": 2}
    rows = {r["key"]: r for r in read_report(s3, view.report_uri)}
    assert rows["summer sale/a b.jpg"]["status"] == "DONE"
    assert rows["gone.jpg"]["error"].startswith("NOT_FOUND")
    assert rows["x.jpg"]["error"].startswith("NOT_FOUND")


def test_an_inventory_manifest_is_read_through_its_data_files(
    api: Container, audit_worker: Any, s3_server: Any
):
    import gzip

    s3 = s3_server.client()
    s3.create_bucket(Bucket="inventory")
    s3.create_bucket(Bucket="shop3")
    lines = []
    for i in range(4):
        s3.put_object(Bucket="shop3", Key=f"img/{i}.jpg", Body=small_jpeg(9100 + i))
        lines.append(f'"shop3","img%2F{i}.jpg","","1234"')
    s3.put_object(
        Bucket="inventory", Key="inv/data/part-0.csv.gz", Body=gzip.compress("\n".join(lines[:2]).encode())
    )
    s3.put_object(
        Bucket="inventory", Key="inv/data/part-1.csv.gz", Body=gzip.compress("\n".join(lines[2:]).encode())
    )
    manifest = {
        "sourceBucket": "shop3",
        "destinationBucket": "arn:aws:s3:::inventory",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, VersionId, Size",
        "files": [{"key": "inv/data/part-0.csv.gz"}, {"key": "inv/data/part-1.csv.gz"}],
    }
    s3.put_object(Bucket="inventory", Key="inv/manifest.json", Body=json.dumps(manifest).encode())
    merchant_id, _ = api.create_merchant("Inventory shop")
    started = api.start_audit(
        merchant_id, "s3://inventory/inv/manifest.json", "default", "s3://inventory/out"
    )
    view = wait_done(api, merchant_id, started.id, audit_worker)
    assert view.status == "DONE" and view.counts == {"DONE": 4}


def test_a_cancelled_audit_stops_and_resumes_without_counting_twice(
    api: Container, audit_worker: Any, s3_server: Any
):
    s3 = s3_server.client()
    s3.create_bucket(Bucket="shop4")
    for i in range(150):
        s3.put_object(Bucket="shop4", Key=f"p/{i:03d}.jpg", Body=small_jpeg(20000 + i))
    merchant_id, _ = api.create_merchant("Patient shop")
    started = api.start_audit(merchant_id, "s3://shop4/p/", "default", "s3://shop4/reports")
    wait_until(lambda: api.get_audit(merchant_id, started.id).finished >= 10, WAIT_S, "some progress")
    cancelled = api.cancel_audit(merchant_id, started.id)
    assert cancelled.status == "CANCELLED"
    time.sleep(2.0)
    stalled = api.get_audit(merchant_id, started.id)
    assert stalled.status == "CANCELLED" and stalled.counts.get("PENDING", 0) > 0
    api.resume_audit(merchant_id, started.id)
    view = wait_done(api, merchant_id, started.id, audit_worker)
    assert view.status == "DONE" and view.counts == {"DONE": 150}
    assert len(read_report(s3, view.report_uri)) == 150


def test_pool_processes_killed_mid_audit_lose_no_object_and_count_none_twice(
    start_worker: Any, worker_env: dict[str, str], triton_grpc_url: str, s3_server: Any
):
    """SIGKILL the worker's pool processes twice while an audit of 300 objects runs: every
    object still ends with exactly one result row and the report lists each once."""
    import os
    import signal

    from service.bootstrap import build

    env = {
        **worker_env,
        "IDETEX_TASK_QUEUE": worker_env["IDETEX_TASK_QUEUE"] + "-audit-kill",
        "IDETEX_TRITON_URL": triton_grpc_url,
        # a message lost with its process (the embedded broker does not restore it) is found
        # by the stale-job sweeper: compressed from an hour to seconds here
        "IDETEX_STALE_PENDING_S": "5",
        "IDETEX_STALE_CHECK_INTERVAL_S": "1",
        "IDETEX_TASK_SOFT_TIME_LIMIT_S": "8",
        "IDETEX_TASK_TIME_LIMIT_S": "10",
    }
    worker = start_worker(env, pool="prefork")
    container = build(worker.settings)
    s3 = s3_server.client()
    s3.create_bucket(Bucket="shop5")
    for i in range(300):
        s3.put_object(Bucket="shop5", Key=f"k/{i:03d}.png", Body=small_jpeg(40000 + i))
    try:
        merchant_id, _ = container.create_merchant("Crashy catalogue")
        started = container.start_audit(merchant_id, "s3://shop5/k/", "default", "s3://shop5/reports")
        for threshold in (40, 150):
            wait_until(
                lambda t=threshold: container.get_audit(merchant_id, started.id).finished >= t,
                WAIT_S,
                f"{threshold} objects",
            )
            for pid in worker.children():
                os.kill(pid, signal.SIGKILL)
        view = wait_done(container, merchant_id, started.id, worker)
        not_done = _not_done(container, started.id)
        assert view.status == "DONE" and view.counts == {"DONE": 300}, (view, not_done)
        rows = read_report(s3, view.report_uri)
        assert sorted(r["key"] for r in rows) == [f"k/{i:03d}.png" for i in range(300)]
    finally:
        container.close()
        worker.stop()  # its compressed stale-job sweeper would requeue other tests' jobs


def _not_done(container: Any, audit_id: str) -> list[tuple[str, str, str | None, Any]]:
    """(key, status, error, the job's status, attempts and error) of every object not DONE: what an
    assertion message needs to tell a lost object from a failed job."""
    with container.deps.uow() as uow:
        rows = []
        for o in uow.repo.audit_objects(audit_id):
            if o.status != "DONE":
                job = uow.repo.job(o.job_id) if o.job_id else None
                facts = (job.status, job.attempts, job.error_code, job.error_message) if job else None
                rows.append((o.key, o.status, o.error, facts))
        return rows
