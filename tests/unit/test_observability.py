"""Metrics and structured logs: the interceptors on the real API stack, the /metrics endpoint,
the state gauges, JSON log lines with the job and merchant ids, malformed protobuf on the wire."""

from __future__ import annotations

import json
import logging
import urllib.request

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client import REGISTRY

from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.observability import logs, metrics
from service.settings import Settings, SettingsError
from tests.imagefactory import gradient, jpeg_bytes

VALIDATE = "/idetex.v1.ValidationService/Validate"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_requests_are_counted_by_method_and_status_code(stack):
    """A good Validate counts OK, a bad one INVALID_ARGUMENT; each call's time is observed."""
    ok_before = sample("idetex_grpc_requests_total", method="Validate", code="OK")
    bad_before = sample("idetex_grpc_requests_total", method="Validate", code="INVALID_ARGUMENT")
    timed_before = sample("idetex_grpc_request_seconds_count", method="Validate")
    stack.stub.Validate(
        pb.ValidateRequest(image=jpeg_bytes(gradient(64, 48))), timeout=10, metadata=stack.auth()
    )
    with pytest.raises(grpc.RpcError):
        stack.stub.Validate(pb.ValidateRequest(image=b"not an image"), timeout=10, metadata=stack.auth())
    assert sample("idetex_grpc_requests_total", method="Validate", code="OK") == ok_before + 1
    assert sample("idetex_grpc_requests_total", method="Validate", code="INVALID_ARGUMENT") == bad_before + 1
    assert sample("idetex_grpc_request_seconds_count", method="Validate") == timed_before + 2


def test_unauthenticated_calls_are_counted(stack):
    before = sample("idetex_grpc_requests_total", method="GetReport", code="UNAUTHENTICATED")
    with pytest.raises(grpc.RpcError):
        stack.stub.GetReport(pb.GetReportRequest(job_id="x"), timeout=5)
    assert sample("idetex_grpc_requests_total", method="GetReport", code="UNAUTHENTICATED") == before + 1


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xff\xff\xff\xff",  # a varint that never ends
        b"\x0a\xff\xff\xff\x0f",  # field 1 (image) claiming 4 GB
        b"\x0a" * 2 + b"\x01",  # a length past the end
        b"\x22\x02\xc3\x28",  # product_id (a string) that is not UTF-8
        b"\x07",  # wire type 7 does not exist
    ],
    ids=["endless varint", "4 GB length", "length past the end", "invalid UTF-8 string", "bad wire type"],
)
def test_malformed_protobuf_is_invalid_argument_with_details(stack, raw):
    """Bytes that are not a ValidateRequest: INVALID_ARGUMENT, BadRequest(request, MALFORMED_MESSAGE)."""
    call = stack.channel.unary_unary(VALIDATE, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as err:
        call(raw, timeout=5, metadata=stack.auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    status = rpc_status.from_call(err.value)
    bad = error_details_pb2.BadRequest()
    assert status is not None and status.details[0].Unpack(bad)
    assert (bad.field_violations[0].field, bad.field_violations[0].reason) == ("request", "MALFORMED_MESSAGE")


def test_deeply_nested_message_is_invalid_argument(stack):
    """200 levels of nested length-delimited unknown fields exceed protobuf's recursion limit."""
    inner = b""
    for _ in range(200):
        inner = b"\xa3\x06" + inner + b"\xa4\x06"  # group field 100 start ... end
    call = stack.channel.unary_unary(VALIDATE, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as err:
        call(inner, timeout=5, metadata=stack.auth())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_api_metrics_endpoint_has_requests_and_state_gauges(stack):
    """/metrics of the API: the request counters and the SQL gauges (queue depth, audits)."""
    stack.publisher.hold()
    stack.stub.Validate(
        pb.ValidateRequest(image=jpeg_bytes(gradient(64, 48)), mode=pb.MODE_ASYNC),
        timeout=10,
        metadata=stack.auth(),
    )
    server = metrics.start_metrics_server("127.0.0.1:0", metrics.api_registry(stack.container.service_state))
    try:
        text = scrape(server.port)
    finally:
        server.stop()
        stack.publisher.release()
    assert 'idetex_grpc_requests_total{code="OK",method="Validate"}' in text
    assert "idetex_queue_depth 1.0" in text
    assert 'idetex_jobs{status="PENDING"} 1.0' in text
    assert "idetex_audits_running 0.0" in text and "idetex_state_up 1.0" in text


def test_state_gauges_report_down_instead_of_failing_the_scrape():
    def broken() -> metrics.ServiceState:
        raise RuntimeError("database down")

    registry = metrics.api_registry(broken)
    assert registry.get_sample_value("idetex_state_up") == 0.0
    assert registry.get_sample_value("idetex_queue_depth") == 0.0


def test_json_log_lines_carry_the_bound_ids():
    """Inside a context, every record carries the job and merchant ids; outside, none."""
    record_args = ("svc", logging.INFO, __file__, 1, "job %s done", ("j-1",), None)
    handler = logging.Handler()
    logs.install([handler], "json")
    with logs.log_context(rpc="Validate"):
        logs.bind(merchant_id="m-1", job_id="j-1")
        record = logging.LogRecord(*record_args)
        assert all(f.filter(record) for f in handler.filters)
        entry = json.loads(handler.format(record))
    assert entry["message"] == "job j-1 done" and entry["level"] == "INFO"
    assert (entry["job_id"], entry["merchant_id"], entry["rpc"]) == ("j-1", "m-1", "Validate")
    record = logging.LogRecord(*record_args)
    assert all(f.filter(record) for f in handler.filters)
    assert "job_id" not in json.loads(handler.format(record))


def test_text_log_lines_end_with_the_bound_ids():
    handler = logging.Handler()
    logs.install([handler], "text")
    with logs.log_context(job_id="j-2"):
        record = logging.LogRecord("svc", logging.WARNING, __file__, 1, "slow", (), None)
        assert all(f.filter(record) for f in handler.filters)
        assert handler.format(record).endswith("svc: slow job_id=j-2")


@pytest.mark.parametrize(
    "env",
    [
        {"IDETEX_LOG_FORMAT": "xml"},
        {"IDETEX_METRICS_ADDR": "9464"},
        {"IDETEX_WORKER_METRICS_ADDR": "host:port"},
    ],
)
def test_observability_settings_are_checked(env):
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_metrics_can_be_turned_off():
    settings = Settings.from_env({"IDETEX_METRICS_ADDR": "off", "IDETEX_WORKER_METRICS_ADDR": "off"})
    assert (settings.metrics_addr, settings.worker_metrics_addr) == ("off", "off")


def test_celery_task_retries_are_counted():
    """The worker's task_retry handler counts each retry by task name (eager Celery, no broker)."""
    from celery import Celery

    import workers.observability  # noqa: F401  (connects the handlers, as workers.tasks does)

    app = Celery("retry-test", set_as_current=False)
    app.conf.task_always_eager = True

    @app.task(name="test.flaky", bind=True, autoretry_for=(ConnectionError,), max_retries=2, countdown=0)
    def flaky(self):
        raise ConnectionError("Triton is down")

    before = sample("idetex_worker_retries_total", task="test.flaky")
    result = flaky.apply()
    assert isinstance(result.result, ConnectionError)
    assert sample("idetex_worker_retries_total", task="test.flaky") == before + 2
