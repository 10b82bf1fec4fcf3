"""bench.sync_breakdown joins the client's calls with the worker log's lines by task and job id."""

from __future__ import annotations

import pytest

from bench.sync_breakdown import breakdown, log_time, worker_times

TAGS = " task=idetex.process_image job_id={job} merchant_id=m"
LOG = [
    "2026-11-26 19:58:20,030 INFO celery.worker.strategy: Task idetex.process_image[a1] received",
    "2026-11-26 19:58:20,031 INFO celery.worker.strategy: Task idetex.process_image[a2] received",
    "2026-11-26 19:58:20,070 INFO service.handlers: job b1 DONE: claim 3.0 ms infer 25.0 ms store 5.0 ms"
    + TAGS.format(job="b1"),
    "2026-11-26 19:58:20,072 INFO celery.app.trace: Task idetex.process_image[a1] succeeded in 0.04s: 'DONE'"
    + TAGS.format(job="b1"),
    "2026-11-26 19:58:20,090 INFO service.handlers: job b2 FAILED: no stages here" + TAGS.format(job="b2"),
]


def test_each_job_gets_its_tasks_received_and_succeeded_times_and_its_stages():
    """Only a task that succeeded counts; its job id comes from the succeeded line."""
    times = worker_times(LOG)
    assert set(times) == {"b1"}
    t = times["b1"]
    assert t.succeeded - t.received == pytest.approx(0.042, abs=1e-6)
    assert t.stages == {"claim": 3.0, "infer": 25.0, "store": 5.0}


def test_a_call_splits_into_before_inside_and_after_the_worker():
    """client -> worker + in the worker + worker -> client add up to the client's time; the
    stages leave the task's overhead; a call the log does not explain is left out."""
    t = worker_times(LOG)["b1"]
    start, end = t.received - 0.011, t.succeeded + 0.005
    r = breakdown([("b1", start, end), ("unknown", start, end)], {"b1": t})
    assert r["calls_explained"] == 1
    parts = {k: v["p50_ms"] for k, v in r["parts"].items()}
    assert parts["client -> worker"] == pytest.approx(11.0, abs=1e-3)
    assert parts["in the worker"] == pytest.approx(42.0, abs=1e-3)
    assert parts["worker -> client"] == pytest.approx(5.0, abs=1e-3)
    assert parts["total (client)"] == pytest.approx(58.0, abs=1e-3)
    assert r["worker_stages"]["task overhead (the rest)"]["p50_ms"] == pytest.approx(9.0, abs=1e-3)


def test_log_times_have_millisecond_resolution():
    assert log_time(LOG[1]) - log_time(LOG[0]) == pytest.approx(0.001, abs=1e-6)
