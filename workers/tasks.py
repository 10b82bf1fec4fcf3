"""Celery tasks: thin wrappers over the service layer, one Container per worker process.

Each task only turns its arguments into a handler call. The Container (database engine,
Triton client, S3 client) is built in the process that runs the task, after the fork.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready

from service.adapters.publisher import AUDIT_STEP, DELIVER_WEBHOOK, PROCESS_IMAGE
from service.bootstrap import Container, build
from service.domain.errors import Unavailable
from service.settings import Settings
from workers import observability  # noqa: F401  (connects the metrics and log signal handlers)
from workers.celery_app import app

log = logging.getLogger(__name__)

_container: Container | None = None
_container_pid: int | None = None


def container() -> Container:
    """This process's Container, built on first use (and again in a forked child)."""
    global _container, _container_pid
    if _container is None or _container_pid != os.getpid():
        _container = build(Settings.from_env(), celery_app=app, timeout_errors=(SoftTimeLimitExceeded,))
        _container_pid = os.getpid()
    return _container


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    global _container
    _container = None  # never reuse a parent's connections in a child
    limit_native_threads(Settings.from_env().worker_native_threads)
    container()


def limit_native_threads(threads: int) -> None:
    """Each pool process works on one image at a time and the worker runs N of them: OpenCV's
    own thread pool only makes the processes fight over the cores (and spin). 0 keeps its default."""
    if threads > 0:
        import cv2

        cv2.setNumThreads(threads)


@worker_ready.connect
def _start_stale_job_sweeper(**_: Any) -> None:
    """Every IDETEX_STALE_CHECK_INTERVAL_S, queue again the jobs whose task was lost."""
    interval = Settings.from_env().stale_check_interval_s
    if interval <= 0:
        return

    def sweep() -> None:
        while True:
            try:
                requeued = container().requeue_stale()
                if requeued:
                    log.warning("requeued %d lost jobs", len(requeued))
                kicked = container().requeue_stale_audits()
                if kicked:
                    log.warning("restarted the step chain of %d audits", len(kicked))
            except Exception:
                log.exception("stale job sweep failed")
            time.sleep(interval)

    threading.Thread(target=sweep, name="stale-job-sweeper", daemon=True).start()


@worker_ready.connect
def _start_webhook_retry_sweeper(**_: Any) -> None:
    """Every IDETEX_WEBHOOK_SWEEP_INTERVAL_S, queue the webhook retries that are due."""
    interval = Settings.from_env().webhook_sweep_interval_s
    if interval <= 0:
        return

    def sweep() -> None:
        while True:
            try:
                released = container().release_due_webhook_retries()
                if released:
                    log.info("queued %d due webhook retries", released)
            except Exception:
                log.exception("webhook retry sweep failed")
            time.sleep(interval)

    threading.Thread(target=sweep, name="webhook-retry-sweeper", daemon=True).start()


@worker_process_shutdown.connect
def _before_exit(**_: Any) -> None:
    if _container is not None and _container_pid == os.getpid():
        _container.close()


class JobTask(Task):
    """Marks the job FAILED when the task fails outside the handler (hard time limit, crash)."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        if not job_id:
            return
        code = "TIMEOUT" if isinstance(exc, TimeLimitExceeded | SoftTimeLimitExceeded) else "INTERNAL"
        if isinstance(exc, Unavailable):  # retries used up while a dependency stayed down
            code = exc.code
        try:
            container().fail_job(job_id, code, f"{type(exc).__name__}: {exc}")
        except Exception:
            log.exception("could not mark job %s failed", job_id)


@app.task(
    name=PROCESS_IMAGE,
    base=JobTask,
    bind=True,
    autoretry_for=(Unavailable,),  # Triton or the database is down for now
    retry_backoff=True,
    retry_jitter=True,
)
def process_image(self: Task, job_id: str) -> str:
    """Run one job; Triton or the database unavailable is retried with backoff, and the last
    attempt marks the job FAILED (when the database lets it; else the stale-job sweeper requeues it)."""
    final_attempt = self.request.retries >= (self.max_retries or 0)
    return container().process_job(job_id, final_attempt=final_attempt)


@app.task(name=DELIVER_WEBHOOK, bind=True)
def deliver_webhook(
    self: Task, endpoint_id: str, webhook_id: str, event: str = "", subject_id: str = "", attempt: int = 1
) -> str:
    """One signed delivery attempt; the next one (if any) is scheduled by the service layer:
    a delayed message for short delays, a webhook_retries row for the sweeper otherwise."""
    if not event:  # a message queued before endpoints existed: (job_id, webhook_id)
        job_id = endpoint_id
        log.warning("legacy webhook message %s for job %s: queued again per endpoint", webhook_id, job_id)
        return f"requeued {container().requeue_job_webhooks(job_id)}"
    return container().deliver_webhook(endpoint_id, webhook_id, event, subject_id, attempt).outcome


@app.task(name=AUDIT_STEP, bind=True)
def audit_step(self: Task, audit_id: str) -> str:
    """One bounded step of an S3 audit (list a page, collect results, queue objects); the step
    queues the next one itself. Late acks: a step killed half-way is delivered again and resumes
    from the database."""
    return container().audit_step(audit_id).status
