"""Build the gRPC server: the ValidationService, grpc.health.v1 and server reflection.

Health is NOT_SERVING until the container says Triton, the database and the broker
are ready; a background thread keeps it current and the servicer reads the same
snapshot for its sync "is inference up?" check.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Final

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.api.gen.idetex.v1 import validation_pb2_grpc as pb_grpc
from service.api.interceptors import MalformedRequestInterceptor, ObservabilityInterceptor
from service.api.server import Backend, ValidationServicer
from service.observability.metrics import MetricsServer, api_registry, start_metrics_server
from service.settings import Settings

log = logging.getLogger(__name__)

SERVICE_NAME: Final = pb.DESCRIPTOR.services_by_name["ValidationService"].full_name
REQUIRED: Final = ("triton", "database", "broker")
# Room for the other fields of a ValidateRequest around an image at the unary limit.
ENVELOPE_BYTES: Final = 64 * 1024
MAX_SEND_BYTES: Final = 32 * 1024 * 1024


class ReadinessMonitor:
    """Polls `probe` every `interval_s` and sets the health status of the whole server."""

    def __init__(
        self,
        probe: Callable[[], Mapping[str, bool]],
        health_servicer: health.HealthServicer,
        interval_s: float = 2.0,
    ) -> None:
        self._probe = probe
        self._health = health_servicer
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._snapshot: dict[str, bool] = dict.fromkeys(REQUIRED, False)
        self._thread: threading.Thread | None = None
        self._set(serving=False)

    def snapshot(self) -> Mapping[str, bool]:
        with self._lock:
            return dict(self._snapshot)

    def refresh(self) -> bool:
        """Probe once and publish the result; True when everything required is ready."""
        try:
            state = {k: bool(v) for k, v in self._probe().items()}
        except Exception:
            log.exception("readiness probe failed")
            state = {}
        ready = all(state.get(name, False) for name in REQUIRED)
        with self._lock:
            changed = ready != all(self._snapshot.get(n, False) for n in REQUIRED)
            self._snapshot = {name: state.get(name, False) for name in REQUIRED} | state
        if changed:
            log.info("health: %s %s", "SERVING" if ready else "NOT_SERVING", state)
        self._set(serving=ready)
        return ready

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="readiness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval_s + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self._interval_s)

    def _set(self, *, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            self._health.set(name, status)


@dataclass
class ApiServer:
    """A built (not yet started) server with its readiness monitor and, when asked for, its
    Prometheus endpoint (`metrics_address`; `metrics_port` is the bound port once started)."""

    server: grpc.Server
    monitor: ReadinessMonitor
    port: int
    metrics_address: str | None = None
    metrics_registry: Any = None
    metrics: MetricsServer | None = None

    @property
    def metrics_port(self) -> int | None:
        return self.metrics.port if self.metrics else None

    def start(self) -> None:
        self.monitor.refresh()
        self.monitor.start()
        self.server.start()
        if self.metrics_address:
            try:
                self.metrics = start_metrics_server(self.metrics_address, self.metrics_registry)
            except OSError as exc:  # the port is taken: serve without metrics rather than not at all
                log.error("no Prometheus metrics on %s: %s", self.metrics_address, exc)
            else:
                log.info("Prometheus metrics on http://%s/metrics", self.metrics_address)

    def stop(self, grace_s: float = 5.0) -> None:
        self.monitor.stop()
        self.server.stop(grace_s).wait()
        if self.metrics is not None:
            self.metrics.stop()


def build_server(
    backend: Backend,
    settings: Settings,
    *,
    address: str | None = None,
    health_interval_s: float = 2.0,
    metrics_address: str | None = None,
) -> ApiServer:
    """A grpc.Server bound to `address` (default settings.grpc_addr; port 0 picks a free one).

    `metrics_address` (`idetex serve` passes IDETEX_METRICS_ADDR) serves Prometheus metrics
    from `start()`; None or "off": none.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.grpc_max_workers, thread_name_prefix="grpc"),
        interceptors=[ObservabilityInterceptor(), MalformedRequestInterceptor()],
        options=[
            ("grpc.max_receive_message_length", settings.unary_limit_bytes + ENVELOPE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ],
    )
    health_servicer = health.HealthServicer()
    monitor = ReadinessMonitor(backend.readiness, health_servicer, interval_s=health_interval_s)
    servicer = ValidationServicer(
        backend,
        unary_limit_bytes=settings.unary_limit_bytes,
        upload_limit_bytes=settings.upload_limit_bytes,
        max_sync_wait_s=settings.sync_timeout_s,
        readiness=monitor.snapshot,
    )
    pb_grpc.add_ValidationServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = address or settings.grpc_addr
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpc raises RuntimeError when it cannot bind
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    state = getattr(backend, "service_state", None)  # the Container's; test fakes may have none
    return ApiServer(
        server=server,
        monitor=monitor,
        port=port,
        metrics_address=metrics_address if metrics_address != "off" else None,
        metrics_registry=api_registry(state),
    )
