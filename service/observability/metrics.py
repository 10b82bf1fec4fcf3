"""Prometheus metrics of the service, and their HTTP endpoints.

Counters and histograms live in prometheus_client's default registry (creating them opens
nothing; in multiprocess mode prometheus_client writes their values under
PROMETHEUS_MULTIPROC_DIR). Gauges of the service's state (queue depth, audit progress) are
read from SQL when Prometheus scrapes, by `StateCollector`, in the API process only.

The API serves /metrics on IDETEX_METRICS_ADDR; a Celery worker's main process serves its pool
processes' metrics, summed by prometheus_client's MultiProcessCollector, on
IDETEX_WORKER_METRICS_ADDR (docs/reliability.md, "Observability").
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

GRPC_REQUESTS = Counter(
    "idetex_grpc_requests", "gRPC requests answered, by method and status code", ["method", "code"]
)
GRPC_SECONDS = Histogram(
    "idetex_grpc_request_seconds", "gRPC request handling time", ["method"], buckets=LATENCY_BUCKETS
)
INFERENCE_SECONDS = Histogram(
    "idetex_inference_seconds",
    "Time of one Triton inference call from a worker, by outcome (ok | unavailable | error)",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)
JOBS_PROCESSED = Counter("idetex_jobs_processed", "Image jobs a worker finished, by final status", ["status"])
TASK_RETRIES = Counter("idetex_worker_retries", "Celery task retries (Triton unavailable), by task", ["task"])
WEBHOOK_DELIVERIES = Counter(
    "idetex_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered | retry | failed | disabled | refused | skipped)",
    ["outcome"],
)


@dataclass(frozen=True)
class ServiceState:
    """What StateCollector publishes: jobs per status, and the running audits' objects per status."""

    jobs: Mapping[str, int] = field(default_factory=dict)
    audits_running: int = 0
    audit_objects: Mapping[str, int] = field(default_factory=dict)


JOB_STATUSES: Final = ("PENDING", "RUNNING", "DONE", "FAILED")


class StateCollector(Collector):
    """Gauges read at scrape time through `probe` (the container's SQL queries)."""

    def __init__(self, probe: Callable[[], ServiceState]) -> None:
        self._probe = probe

    def collect(self) -> Iterator[Metric]:
        start = time.perf_counter()
        try:
            state = self._probe()
            up = 1.0
        except Exception as exc:  # a scrape must not fail because the database is down
            log.warning("metrics: service state unavailable: %s", exc)
            state, up = ServiceState(), 0.0
        jobs = GaugeMetricFamily("idetex_jobs", "Jobs in the database by status", labels=["status"])
        for status in sorted({*JOB_STATUSES, *state.jobs}):
            jobs.add_metric([status], state.jobs.get(status, 0))
        yield jobs
        pending = state.jobs.get("PENDING", 0)
        yield GaugeMetricFamily("idetex_queue_depth", "Jobs waiting for a worker (PENDING)", value=pending)
        yield GaugeMetricFamily("idetex_audits_running", "S3 audits in progress", value=state.audits_running)
        objects = GaugeMetricFamily(
            "idetex_audit_objects", "Objects of the running audits by status", labels=["status"]
        )
        for status, count in sorted(state.audit_objects.items()):
            objects.add_metric([status], count)
        yield objects
        yield GaugeMetricFamily("idetex_state_up", "1 when the state gauges could be read", value=up)
        yield GaugeMetricFamily(
            "idetex_state_scrape_seconds", "Time to read the state gauges", value=time.perf_counter() - start
        )


class _Union(Collector):
    """Several collectors (registries included) exposed as one."""

    def __init__(self, *sources: Any) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self._sources:
            yield from source.collect()


def api_registry(state: Callable[[], ServiceState] | None = None) -> CollectorRegistry:
    """The API's /metrics: the process's own metrics plus the state gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Union(REGISTRY, *([StateCollector(state)] if state else [])))
    return registry


def worker_registry() -> CollectorRegistry:
    """A worker's /metrics: every pool process's metrics (multiprocess mode) or this process's."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def parse_addr(addr: str) -> tuple[str, int]:
    """`host:port` (port 0: any free port) -> (host, port); ValueError otherwise."""
    host, sep, port = addr.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected host:port, got {addr!r}")
    return host.strip("[]"), int(port)


@dataclass
class MetricsServer:
    """A running /metrics endpoint; `port` is the bound one."""

    server: Any
    thread: Any
    port: int

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(addr: str, registry: Any = REGISTRY) -> MetricsServer:
    """Serve `registry` on http://addr/metrics (any path answers) in a daemon thread."""
    host, port = parse_addr(addr)
    server, thread = start_http_server(port, host, registry=registry)
    return MetricsServer(server, thread, server.server_port)


def mark_process_dead(pid: int) -> None:
    """Drop a finished pool process's live gauges (multiprocess mode; nothing otherwise)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def multiproc_env(folder: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """PROMETHEUS_MULTIPROC_DIR for a prefork worker about to start: the operator's if set,
    else `folder`, emptied (files left by an earlier run would be summed in)."""
    chosen = Path(environ.get(MULTIPROC_ENV) or folder)
    chosen.mkdir(parents=True, exist_ok=True)
    for stale in chosen.glob("*.db"):
        stale.unlink(missing_ok=True)
    return {MULTIPROC_ENV: str(chosen.resolve())}
