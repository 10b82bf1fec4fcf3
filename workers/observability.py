"""The worker's metrics endpoint, task retry counts and structured logs, as Celery signal handlers.

Connected when workers.tasks is imported (the worker imports it through the app's `include`).
Prefork pool processes record into PROMETHEUS_MULTIPROC_DIR (which must be set, and empty,
before the worker starts: `idetex serve` does it); the main process serves the sum of all of
them on IDETEX_WORKER_METRICS_ADDR. Each task runs with its ids bound for its log lines.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    task_retry,
    worker_init,
    worker_process_shutdown,
    worker_ready,
)

from service.adapters.publisher import AUDIT_STEP, DELIVER_WEBHOOK, PROCESS_IMAGE
from service.observability import logs, metrics
from service.settings import Settings

log = logging.getLogger(__name__)
_server: metrics.MetricsServer | None = None


@after_setup_logger.connect
@after_setup_task_logger.connect
def _structured_logs(logger: logging.Logger | None = None, **_: Any) -> None:
    if logger is not None:
        logs.install(list(logger.handlers), Settings.from_env().log_format)


@worker_init.connect
def _multiproc_folder(**_: Any) -> None:
    """Before the pool forks: the folder pool processes write their metrics to must exist."""
    folder = os.environ.get(metrics.MULTIPROC_ENV)
    if folder:
        os.makedirs(folder, exist_ok=True)


@worker_ready.connect
def _serve_metrics(sender: Any = None, **_: Any) -> None:
    """In the worker's main process: /metrics on IDETEX_WORKER_METRICS_ADDR."""
    global _server
    addr = Settings.from_env().worker_metrics_addr
    if addr == "off" or _server is not None:
        return
    pool = type(getattr(sender, "pool", None)).__module__  # celery.concurrency.prefork, .solo ...
    if not os.environ.get(metrics.MULTIPROC_ENV) and pool.endswith("prefork"):
        log.warning("%s is not set: pool processes' metrics are not exported", metrics.MULTIPROC_ENV)
    try:
        _server = metrics.start_metrics_server(addr, metrics.worker_registry())
    except (OSError, ValueError) as exc:  # a second worker on one host: the port is taken
        log.warning("no worker metrics endpoint on %s: %s", addr, exc)
        return
    log.info("worker metrics on http://%s/metrics", addr)


def _ids(task_name: str, args: tuple[Any, ...]) -> dict[str, str | None]:
    first = str(args[0]) if args else None
    if task_name == PROCESS_IMAGE:
        return {"job_id": first}
    if task_name == AUDIT_STEP:
        return {"audit_id": first}
    if task_name == DELIVER_WEBHOOK and len(args) > 1:
        return {"webhook_id": str(args[1])}
    return {}


@task_prerun.connect
def _task_context(sender: Any = None, args: tuple[Any, ...] | None = None, **_: Any) -> None:
    name = str(getattr(sender, "name", ""))
    logs.start_context(task=name, **_ids(name, tuple(args or ())))


@task_postrun.connect
def _task_context_end(**_: Any) -> None:
    logs.start_context()


@task_retry.connect
def _count_retry(sender: Any = None, **_: Any) -> None:
    metrics.TASK_RETRIES.labels(str(getattr(sender, "name", "unknown"))).inc()


@worker_process_shutdown.connect
def _process_gone(pid: int | None = None, **_: Any) -> None:
    metrics.mark_process_dead(pid or os.getpid())
