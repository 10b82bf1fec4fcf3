"""Metrics and logs through the real stack: the in-process API (interceptors, /metrics), a real
prefork Celery worker in multiprocess metrics mode with JSON logs, the real Triton and a loopback
webhook receiver. One Validate moves the API's request counters and the worker's inference
histogram, job and webhook counters; the worker's JSON lines carry the job and merchant ids;
neither the API key nor the webhook secret appears in any log.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.adapters.triton_server import find_free_port
from service.api.app import ApiServer, build_server
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.api.gen.idetex.v1 import validation_pb2_grpc as pb_grpc
from service.bootstrap import Container, build
from service.observability import logs
from service.settings import Settings
from tests import imagefactory as f

pytestmark = pytest.mark.integration


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).received.append({"body": body.decode(), **{k.lower(): v for k, v in self.headers.items()}})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


@dataclass
class Stack:
    api: ApiServer
    container: Container
    stub: pb_grpc.ValidationServiceStub
    worker_log: Path
    worker_metrics_port: int
    receiver_url: str


@pytest.fixture(scope="module")
def stack(start_worker, worker_env, triton_grpc_url, tmp_path_factory) -> Iterator[Stack]:
    multiproc = tmp_path_factory.mktemp("prometheus")
    worker_port = find_free_port()
    env = {
        **worker_env,
        "IDETEX_TRITON_URL": triton_grpc_url,
        "IDETEX_TASK_QUEUE": f"{worker_env['IDETEX_TASK_QUEUE']}-obs",
        "IDETEX_LOG_FORMAT": "json",
        "IDETEX_WORKER_METRICS_ADDR": f"127.0.0.1:{worker_port}",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    worker = start_worker(env, pool="prefork")
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    settings = Settings.from_env(env)
    container = build(settings)
    api = build_server(
        container, settings, address="127.0.0.1:0", health_interval_s=0.5, metrics_address="127.0.0.1:0"
    )
    api.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{api.port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 60
        while (
            health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            != health_pb2.HealthCheckResponse.SERVING
        ):
            assert time.monotonic() < deadline, "the API never became SERVING"
            time.sleep(0.25)
        yield Stack(
            api,
            container,
            pb_grpc.ValidationServiceStub(channel),
            worker.log_path,
            worker_port,
            f"http://127.0.0.1:{receiver.server_port}/hook",
        )
    finally:
        channel.close()
        api.stop(grace_s=1)
        container.close()
        receiver.shutdown()
        receiver.server_close()
        worker.stop()  # no idle prefork worker left to compete with later tests


def scrape(port: int) -> dict[str, float]:
    """The samples of a /metrics page: 'name{labels}' -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    found = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            found += value
    return found


@pytest.fixture(scope="module")
def flow(stack, caplog_module) -> dict[str, str]:
    """A merchant with an API key and a webhook secret validates one image; the webhook arrives."""
    merchant_id, key = stack.container.create_merchant("metrics-shop")
    auth = (("x-api-key", key),)
    webhook = stack.stub.CreateWebhook(
        pb.CreateWebhookRequest(url=stack.receiver_url), timeout=10, metadata=auth
    )
    response = stack.stub.Validate(
        pb.ValidateRequest(image=f.jpeg_bytes(f.gradient(400, 300)), mode=pb.MODE_SYNC, product_id="sku-obs"),
        timeout=60,
        metadata=auth,
    )
    assert response.status == pb.JOB_STATUS_DONE, response
    with pytest.raises(grpc.RpcError):  # a refused upload is logged, with the merchant id
        stack.stub.Validate(pb.ValidateRequest(image=b"not an image"), timeout=10, metadata=auth)
    with pytest.raises(grpc.RpcError):  # an authentication failure is logged too: with the key?
        stack.stub.GetReport(
            pb.GetReportRequest(job_id=response.job_id), timeout=10, metadata=(("x-api-key", key + "x"),)
        )
    deadline = time.monotonic() + 30
    while not any(response.job_id in r["body"] for r in _Receiver.received) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(response.job_id in r["body"] for r in _Receiver.received), "the webhook never arrived"
    return {"merchant_id": merchant_id, "key": key, "secret": webhook.secret, "job_id": response.job_id}


@pytest.fixture(scope="module")
def caplog_module() -> Iterator[list[logging.LogRecord]]:
    """Every record the in-process API logs during this module, at DEBUG."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, root = Keep(logging.DEBUG), logging.getLogger()
    handler.addFilter(logs.ContextFilter())  # what logs.install puts on the real handlers
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_validate_moves_the_api_request_counters(stack, flow):
    """The API's /metrics counts the Validate by status code and has the state gauges."""
    samples = scrape(stack.api.metrics_port)
    assert total(samples, "idetex_grpc_requests_total", method="Validate", code="OK") >= 1
    assert total(samples, "idetex_grpc_requests_total", method="GetReport", code="UNAUTHENTICATED") >= 1
    assert total(samples, "idetex_grpc_request_seconds_count", method="Validate") >= 1
    assert samples["idetex_state_up"] == 1.0
    assert "idetex_queue_depth" in samples and "idetex_audits_running" in samples


def test_a_validate_moves_the_workers_inference_histogram_and_counters(stack, flow):
    """The worker's /metrics sums its pool processes: inference timed, job DONE, webhook delivered."""
    deadline = time.monotonic() + 15
    while True:
        samples = scrape(stack.worker_metrics_port)
        delivered = total(samples, "idetex_webhook_deliveries_total", outcome="delivered")
        if delivered >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert total(samples, "idetex_inference_seconds_count", outcome="ok") >= 1
    assert total(samples, "idetex_inference_seconds_sum", outcome="ok") > 0
    assert total(samples, "idetex_inference_seconds_bucket", outcome="ok", le="+Inf") >= 1
    assert total(samples, "idetex_jobs_processed_total", status="DONE") >= 1
    assert delivered >= 1


def test_worker_json_log_lines_carry_the_job_and_merchant_ids(stack, flow):
    """With IDETEX_LOG_FORMAT=json the pool process's lines about the job name it and its merchant."""
    entries = []
    for line in stack.worker_log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    about_job = [e for e in entries if e.get("job_id") == flow["job_id"]]
    assert about_job, "no JSON log line names the job"
    assert all(e.get("merchant_id") == flow["merchant_id"] for e in about_job)
    assert {"ts", "level", "logger", "message"} <= set(about_job[0])


def test_api_log_records_carry_the_merchant_id(stack, flow, caplog_module):
    """The refused Validate's log record carries the merchant id and the RPC."""
    tagged = [r for r in caplog_module if getattr(r, "merchant_id", None) == flow["merchant_id"]]
    assert any(getattr(r, "rpc", None) == "Validate" and "INVALID_ARGUMENT" in r.getMessage() for r in tagged)


def test_no_secret_reaches_any_log(stack, flow, caplog_module):
    """The API key (and its secret half), and the webhook secret, appear in no log: the API's records
    at DEBUG, the worker's log file, var/logs/."""
    key_secret = flow["key"].rsplit("_", 1)[-1]
    webhook_secret = flow["secret"].removeprefix("whsec_")
    assert flow["secret"].startswith("whsec_") and len(key_secret) >= 32
    texts = {"worker log": stack.worker_log.read_text(errors="replace")}
    texts["API records"] = "\n".join(
        f"{r.getMessage()} {r.__dict__}"
        + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog_module
    )
    for path in Path("var/logs").glob("*.log") if Path("var/logs").is_dir() else ():
        texts[str(path)] = path.read_text(errors="replace")
    assert caplog_module, "the API logged nothing: the test would prove nothing"
    for where, text in texts.items():
        for secret in (flow["key"], key_secret, flow["secret"], webhook_secret):
            assert secret not in text, f"a secret is in the {where}"
