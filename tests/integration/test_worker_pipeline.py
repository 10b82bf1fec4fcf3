"""The real pipeline: Container -> broker -> Celery worker process -> real Triton -> SQL -> webhook.

Runs on the embedded SQLite broker (or TEST_BROKER_URL) and on SQLite (and PostgreSQL when
TEST_DATABASE_URL is set). The test process plays the API: it builds its own Container on the
worker's settings, so both sides meet only through the database, the broker and the blob folder.
"""

from __future__ import annotations

import http.server
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.adapters.db import DistortionRow
from service.adapters.webhook import verify
from service.bootstrap import Container, build
from service.domain.taxonomy import DISTORTIONS, GRADES
from service.handlers import SubmitImage
from tests import imagefactory
from tests.support.photos import photo_paths

pytestmark = pytest.mark.integration

WAIT_S = 120.0  # generous: the CPU may be shared with model training


def real_photo() -> bytes:
    """A real photograph when the sources were fetched, else a synthetic product shot."""
    paths = photo_paths(1)
    if paths:
        return Path(paths[0]).read_bytes()
    return imagefactory.jpeg_bytes(imagefactory.product_on_white(900, 700))


class Receiver:
    """A local webhook endpoint that answers with queued status codes (then 204)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = outer.statuses.pop(0) if outer.statuses else 204
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/idetex"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.requests) >= count, f"got {len(self.requests)} deliveries, wanted {count}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def api(celery_worker: Any) -> Iterator[Container]:
    """The API side: a Container on the same database, broker, queue, blobs and Triton as the worker."""
    container = build(celery_worker.settings)
    yield container
    container.close()


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_an_upload_is_processed_by_the_worker_through_triton(api: Container, celery_worker: Any):
    """Async submit -> worker -> Triton -> DONE report with distortion rows and an annotated image."""
    merchant_id, _ = api.create_merchant("Pipeline shop")
    result = api.submit(SubmitImage(merchant_id=merchant_id, product_id="sku-9", image=real_photo()))
    view = api.wait_for_report(merchant_id, result.job_id, WAIT_S)
    assert view.status == "DONE", (
        f"{view.status} {view.error_code} {view.error_message}\n{celery_worker.log()}"
    )
    assert view.report is not None
    assert view.report.grade in GRADES and view.report.verdict in ("accept", "warn", "reject")
    assert all(d.type in DISTORTIONS for d in view.report.distortions)
    assert view.attempts == 1 and view.model_version
    assert view.annotated_uri and api.deps.blobs.get(view.annotated_uri)[:2] == b"\xff\xd8"
    with api.deps.uow() as uow:
        rows = uow.session.query(DistortionRow).filter_by(job_id=result.job_id).count()
        assert rows == len(view.report.distortions)


def test_a_quality_question_is_answered_from_the_real_models_report(api: Container, celery_worker: Any):
    """AskQuality on a job the worker ran through Triton: a type question picks a type the model
    reported (or says none of the options was found); the answer names the default model."""
    from service.domain.taxonomy import DISTORTIONS as TYPES

    merchant_id, _ = api.create_merchant("Question shop")
    result = api.submit(SubmitImage(merchant_id=merchant_id, product_id="sku-q", image=real_photo()))
    view = api.wait_for_report(merchant_id, result.job_id, WAIT_S)
    assert view.status == "DONE" and view.report is not None, celery_worker.log()
    found = {d.type for d in view.report.distortions if not d.expected}
    asked = api.ask_quality(
        merchant_id, result.job_id, "What type of distortion is present in this image?", list(TYPES)
    )
    assert asked.model == "idetex_lite" and asked.job_id == result.job_id
    if found:
        assert asked.answer.status == "ANSWERED" and TYPES[asked.answer.index] in found
    else:
        assert asked.answer.status == "OUT_OF_SCOPE"


def test_a_repeat_upload_returns_the_stored_report_without_a_new_task(api: Container):
    """The same bytes and profile again: same job, already DONE, no second attempt."""
    merchant_id, _ = api.create_merchant("Repeat shop")
    data = imagefactory.jpeg_bytes(imagefactory.product_on_white(640, 640, fill=0.8))
    first = api.submit(SubmitImage(merchant_id=merchant_id, image=data))
    assert api.wait_for_report(merchant_id, first.job_id, WAIT_S).status == "DONE"
    again = api.submit(SubmitImage(merchant_id=merchant_id, image=data))
    assert (again.job_id, again.status, again.deduplicated) == (first.job_id, "DONE", True)
    assert api.get_job(merchant_id, first.job_id).attempts == 1


def test_the_merchant_webhook_is_signed_retried_and_logged(api: Container, receiver: Receiver):
    """The receiver fails (500), throttles (429, Retry-After: 1) and recovers: three attempts with
    one webhook-id and one body, the 429 honoured, each attempt logged with its status and latency;
    the signature verifies with the standardwebhooks reference library."""
    from standardwebhooks.webhooks import Webhook

    receiver.statuses = [500, 429]
    merchant_id, _ = api.create_merchant("Hooked shop", webhook_url=receiver.url)
    data = imagefactory.jpeg_bytes(imagefactory.gradient(500, 400))
    job_id = api.submit(SubmitImage(merchant_id=merchant_id, image=data)).job_id
    assert api.wait_for_report(merchant_id, job_id, WAIT_S).status == "DONE"
    receiver.wait_for(3, WAIT_S)
    secret = api.webhook_secret(merchant_id)
    assert secret is not None
    (h1, b1), (h2, b2), (h3, b3) = receiver.requests[:3]
    assert h1["webhook-id"] == h2["webhook-id"] == h3["webhook-id"] and b1 == b2 == b3
    assert verify(secret, h3, b3, now=int(time.time()))
    event = Webhook(secret).verify(b3, h3)
    assert event["type"] == "report.completed" and event["data"]["job_id"] == job_id

    def logged() -> list[tuple[int, int | None, str | None]]:
        return [
            (d.attempt, d.status_code, d.outcome) for d in reversed(api.list_webhook_deliveries(merchant_id))
        ]

    wait_until(lambda: len(logged()) >= 3, 10, "the delivery log")
    assert logged() == [(1, 500, "retry"), (2, 429, "retry"), (3, 204, "delivered")]
    attempts = list(reversed(api.list_webhook_deliveries(merchant_id)))
    assert all(a.latency_ms is not None for a in attempts)
    assert (attempts[2].delivered_at - attempts[1].delivered_at).total_seconds() >= 0.9  # Retry-After: 1


def test_a_gone_endpoint_is_disabled_and_gets_nothing_more(api: Container, receiver: Receiver):
    """410 Gone disables the endpoint at once; the next job queues no delivery to it."""
    receiver.statuses = [410]
    merchant_id, _ = api.create_merchant("Gone shop", webhook_url=receiver.url)
    data = imagefactory.jpeg_bytes(imagefactory.gradient(510, 400))
    job_id = api.submit(SubmitImage(merchant_id=merchant_id, image=data)).job_id
    assert api.wait_for_report(merchant_id, job_id, WAIT_S).status == "DONE"
    wait_until(lambda: not api.list_webhooks(merchant_id)[0].enabled, WAIT_S, "the endpoint to be disabled")
    second = imagefactory.jpeg_bytes(imagefactory.gradient(520, 400))
    other = api.submit(SubmitImage(merchant_id=merchant_id, image=second)).job_id
    assert api.wait_for_report(merchant_id, other, WAIT_S).status == "DONE"
    time.sleep(1.0)
    assert len(receiver.requests) == 1
    (log,) = api.list_webhook_deliveries(merchant_id)
    assert (log.status_code, log.outcome) == (410, "disabled")


def test_triton_down_is_retried_then_the_job_fails_with_a_code(
    start_worker: Callable[..., Any], worker_env: dict[str, str]
):
    """With no Triton the task retries with backoff and then marks the job FAILED, never lost."""
    env = {
        **worker_env,
        "IDETEX_TASK_QUEUE": worker_env["IDETEX_TASK_QUEUE"] + "-dead",
        "IDETEX_TRITON_URL": "127.0.0.1:9",  # discard port: nothing listens
        "IDETEX_TRITON_TIMEOUT_S": "1",
        "IDETEX_TASK_MAX_RETRIES": "2",
        "IDETEX_TASK_RETRY_BACKOFF_MAX_S": "1",
    }
    worker = start_worker(env)
    container = build(worker.settings)
    try:
        merchant_id, _ = container.create_merchant("Unlucky shop")
        data = imagefactory.jpeg_bytes(imagefactory.gradient(300, 200))
        job_id = container.submit(SubmitImage(merchant_id=merchant_id, image=data)).job_id
        view = container.wait_for_report(merchant_id, job_id, WAIT_S)
        assert (view.status, view.error_code) == ("FAILED", "INFERENCE_UNAVAILABLE"), worker.log()
        assert view.attempts == 3
        assert container.readiness()["triton"] is False
    finally:
        container.close()


def test_a_job_survives_its_worker_process_being_killed(
    start_worker: Callable[..., Any], worker_env: dict[str, str], triton_grpc_url: str
):
    """SIGKILL of the pool process mid-task: the message is requeued and the job still ends DONE."""
    env = {
        **worker_env,
        "IDETEX_TASK_QUEUE": worker_env["IDETEX_TASK_QUEUE"] + "-kill",
        "IDETEX_TRITON_URL": triton_grpc_url,
    }
    worker = start_worker(env, pool="prefork")
    container = build(worker.settings)
    try:
        merchant_id, _ = container.create_merchant("Crash shop")
        big = imagefactory.jpeg_bytes(imagefactory.gradient(6000, 4000), quality=80)  # ~1 s to decode
        job_id = container.submit(SubmitImage(merchant_id=merchant_id, image=big)).job_id
        wait_until(lambda: container.get_job(merchant_id, job_id).status == "RUNNING", WAIT_S, "RUNNING")
        children = worker.children()
        assert children, worker.log()
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        view = container.wait_for_report(merchant_id, job_id, WAIT_S)
        assert view.status == "DONE", f"{view.status} {view.error_code}\n{worker.log()}"
        assert view.attempts == 2
    finally:
        container.close()
