"""The service layer: plain functions over ports (unit of work, blob store, inference, webhooks).

The gRPC servicer, the Celery tasks and the CLI call these through bootstrap.Container;
none of them touch SQL, files or Triton directly. Jobs live here; merchants and webhook
delivery in service.merchants and service.webhooks (re-exported below).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from service import limits, pipeline
from service.adapters.db import Job
from service.adapters.pixels import NoHandoff
from service.adapters.publisher import PROCESS_IMAGE, TaskMessage
from service.adapters.repository import ListFilter
from service.adapters.unit_of_work import Conflict, PublishFailed, UnitOfWork
from service.deps import Deps
from service.domain.errors import (
    ImageTooLarge,
    InferenceUnavailable,
    InvalidRequest,
    NotFound,
    StorageUnavailable,
)
from service.domain.imaging import DecodedImage, decode_image
from service.domain.profiles import get_profile
from service.merchants import (
    authenticate,
    create_merchant,
    issue_api_key,
    policies,
    set_model_choice,
    set_policy,
    webhook_secret,
)
from service.observability import logs
from service.views import JobView, decode_page_token, encode_page_token, job_view
from service.webhooks import enqueue_job_event, enqueue_webhook

__all__ = [
    "Deps",
    "JobView",
    "ListFilter",
    "SubmitImage",
    "SubmitResult",
    "authenticate",
    "create_merchant",
    "fail_job",
    "get_job",
    "issue_api_key",
    "list_jobs",
    "policies",
    "process_job",
    "readiness",
    "requeue_stale",
    "set_model_choice",
    "set_policy",
    "submit",
    "webhook_secret",
]

log = logging.getLogger(__name__)

Status = Literal["PENDING", "RUNNING", "DONE", "FAILED"]
TERMINAL = ("DONE", "FAILED")
# failures a repeat submission may retry (the image itself was fine)
RETRYABLE_CODES = ("INFERENCE_UNAVAILABLE", "BROKER_UNAVAILABLE")
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class SubmitImage:
    merchant_id: str
    product_id: str = ""
    profile: str = "default"
    mode: Literal["sync", "async"] = "async"
    idempotency_key: str | None = None
    image: bytes | None = None
    s3_uri: str | None = None


@dataclass(frozen=True)
class SubmitResult:
    job_id: str
    status: Status
    deduplicated: bool
    # the new job as committed (PENDING, no report): an async reply needs no second read
    view: JobView | None = None


# ------------------------------------------------------------------ submit


def submit(deps: Deps, cmd: SubmitImage) -> SubmitResult:
    """Validate the image now (typed errors), store it, create the job, enqueue it after commit.

    Idempotent by idempotency key and by (merchant, sha256, profile, model version): a repeat
    returns the earlier job (and its report) without a second inference, and without decoding.
    """
    get_profile(cmd.profile)
    limits.check_length("product_id", cmd.product_id, limits.MAX_PRODUCT_ID)
    limits.check_length("idempotency_key", cmd.idempotency_key, limits.MAX_IDEMPOTENCY_KEY)
    limits.check_length("s3_uri", cmd.s3_uri, limits.MAX_URI)
    data = _input_bytes(deps, cmd)
    if len(data) > deps.limits.max_bytes:
        raise ImageTooLarge(
            f"the upload is {len(data)} bytes; the limit is {deps.limits.max_bytes} bytes",
            limit=deps.limits.max_bytes,
            actual=len(data),
        )
    sha256 = hashlib.sha256(data).hexdigest()
    version = deps.model_version()
    key = cmd.idempotency_key or None
    with deps.uow() as uow:  # a repeat needs no decoding: the same bytes were accepted before
        earlier = _earlier_job(uow, cmd.merchant_id, key, sha256, cmd.profile, version)
        if earlier is not None:
            return _repeat(uow, earlier)
    handoff = cmd.mode == "sync" and not isinstance(deps.pixels, NoHandoff)
    # the worker decodes once; the API only checks (at 1/8 scale) unless it hands its pixels over
    side = pipeline.decode_side(cmd.profile, {}, deps.work_side) if handoff else pipeline.CHECK_SIDE
    image = decode_image(data, deps.limits, max_side=side, sha256=sha256)
    original_uri = deps.blobs.put(f"originals/{cmd.merchant_id}/{sha256}", data, _content_type(image))
    with deps.uow() as uow:
        job = Job(
            id=str(uuid.uuid4()),
            merchant_id=cmd.merchant_id,
            product_id=cmd.product_id,
            profile=cmd.profile,
            status="PENDING",
            idempotency_key=key,
            image_sha256=sha256,
            model_version=version,
            attempts=0,
            original_uri=original_uri,
        )
        uow.repo.add(job)
        if handoff:  # spare the worker a second decode while the client waits
            deps.pixels.put(job.id, image)
        uow.publish_after_commit(TaskMessage(PROCESS_IMAGE, (job.id,)))
        try:
            uow.commit()
        except Conflict:  # a concurrent request with the same idempotency key won
            winner = uow.repo.job_by_idempotency_key(cmd.merchant_id, key) if key else None
            if winner is None:
                raise
            return SubmitResult(winner.id, _status(winner), True)
        except PublishFailed as exc:
            _mark_failed(deps, job.id, "BROKER_UNAVAILABLE", str(exc))
            raise InferenceUnavailable(f"the task queue is unavailable: {exc}") from exc
        return SubmitResult(job.id, "PENDING", False, view=job_view(job, None))


def _input_bytes(deps: Deps, cmd: SubmitImage) -> bytes:
    if cmd.image is not None and cmd.s3_uri:
        raise InvalidRequest("image", "BOTH_IMAGE_AND_URI", "send image bytes or an s3:// URI, not both")
    if not cmd.s3_uri:
        return cmd.image or b""
    if not cmd.s3_uri.startswith("s3://"):
        raise InvalidRequest("s3_uri", "BAD_S3_URI", f"expected s3://bucket/key, got {cmd.s3_uri!r}")
    try:
        return deps.blobs.get(cmd.s3_uri, max_bytes=deps.limits.max_bytes)
    except NotFound as exc:
        raise InvalidRequest("s3_uri", "S3_OBJECT_NOT_FOUND", exc.message) from exc


def _earlier_job(
    uow: UnitOfWork, merchant_id: str, key: str | None, sha256: str, profile: str, version: str
) -> Job | None:
    if key is not None:
        job = uow.repo.job_by_idempotency_key(merchant_id, key)
        if job is not None:
            if job.image_sha256 != sha256 or job.profile != profile:
                raise InvalidRequest(
                    "idempotency_key",
                    "IDEMPOTENCY_KEY_REUSED",
                    "this idempotency key was used for a different image or profile",
                )
            return job
    job = uow.repo.reusable_job(merchant_id, sha256, profile, version, RETRYABLE_CODES)
    if job is not None and job.status == "DONE" and not _same_policy(uow, job):
        return None  # the merchant changed its policy since: a new report under the new one
    return job


def _same_policy(uow: UnitOfWork, job: Job) -> bool:
    """Whether the job's report was built under the merchant's current overrides of its profile."""
    report = uow.repo.report(job.id)
    row = uow.repo.merchant_policy(job.merchant_id, get_profile(job.profile).name)
    built_with = (report.body.get("policy_overrides") or {}) if report is not None else {}
    return built_with == (dict(row.overrides) if row is not None else {})


def _repeat(uow: UnitOfWork, job: Job) -> SubmitResult:
    """A repeat: the earlier job as it stands; a transiently failed one is queued again."""
    if job.status == "FAILED" and job.error_code in RETRYABLE_CODES:
        job.status, job.error_code, job.error_message = "PENDING", None, None
        job.attempts = 0  # a fresh run with its own retry budget
        uow.publish_after_commit(TaskMessage(PROCESS_IMAGE, (job.id,)))
        uow.commit()
    return SubmitResult(job.id, _status(job), True)


def _content_type(image: DecodedImage) -> str:
    return f"image/{image.source_format.lower()}"


def _status(job: Job) -> Status:
    return job.status  # type: ignore[return-value]


# ------------------------------------------------------------------ process


def process_job(deps: Deps, job_id: str, final_attempt: bool = False) -> Status:
    """Run one job through the model and store its report; idempotent on redelivery.

    InferenceUnavailable is raised again for the task to retry, unless this is the
    final attempt; StorageUnavailable (the database is down) always is, and a job its
    last retry could not record is queued again by the stale-job sweeper; every other
    failure marks the job FAILED with a stable code.
    """
    claim_start = time.perf_counter()
    with deps.uow() as uow:
        claimed = uow.repo.claim_job(job_id, deps.max_attempts)  # one statement in the usual case
        if claimed is None:
            return _unclaimable(deps, uow, job_id)
        logs.bind(job_id=job_id, merchant_id=claimed.merchant_id)  # on this task's log lines
        model_choice, overrides = uow.repo.merchant_settings(
            claimed.merchant_id, get_profile(claimed.profile).name
        )
        uow.commit()
        choice = deps.choose_model(model_choice, claimed.profile)
        spec = pipeline.JobSpec(
            job_id,
            claimed.merchant_id,
            claimed.original_uri,
            claimed.profile,
            choice,
            overrides,
            image_sha256=claimed.image_sha256,
        )
    claim_ms = round((time.perf_counter() - claim_start) * 1000, 1)
    try:
        outcome = pipeline.run(deps, spec)
    except InferenceUnavailable as exc:
        if final_attempt:
            return _mark_failed(deps, job_id, exc.code, exc.message)
        _mark_waiting(deps, job_id, exc)
        raise
    except StorageUnavailable:  # the database went away mid-job: the task retries, the row stays RUNNING
        raise
    except deps.timeout_errors as exc:
        return _mark_failed(
            deps, job_id, "TIMEOUT", f"the job ran past its time limit ({type(exc).__name__})"
        )
    except Exception as exc:
        code = getattr(exc, "code", "INTERNAL")
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        if code == "INTERNAL":
            log.exception("job %s failed", job_id)
        return _mark_failed(deps, job_id, str(code), str(message))
    store_start = time.perf_counter()
    try:
        status = _store_outcome(deps, job_id, outcome)
    except AnnotationFailed as exc:
        log.error("job %s failed: %s", job_id, exc, exc_info=exc.__cause__)
        return _mark_failed(deps, job_id, "INTERNAL", str(exc))
    stages = {
        "claim": claim_ms,
        **outcome.stage_ms,
        "store": round((time.perf_counter() - store_start) * 1000, 1),
    }
    log.info("job %s %s: %s", job_id, status, " ".join(f"{k} {v} ms" for k, v in stages.items()))
    return status


def _unclaimable(deps: Deps, uow: UnitOfWork, job_id: str) -> Status:
    """The job could not be claimed: missing (NotFound), finished (its status), or out of
    attempts (FAILED now: a worker keeps dying on it)."""
    job = uow.repo.job(job_id)
    if job is None:
        log.warning("process_job: no job %s", job_id)
        raise NotFound(f"no job {job_id}")
    logs.bind(job_id=job.id, merchant_id=job.merchant_id)
    if job.status in TERMINAL:
        return _status(job)
    if job.attempts < deps.max_attempts:  # changed between the two statements: leave it as it is
        log.warning("process_job: job %s could not be claimed (%s)", job_id, job.status)
        return _status(job)
    job.status, job.error_code = "FAILED", "TOO_MANY_ATTEMPTS"
    job.error_message = f"gave up after {job.attempts} attempts"
    enqueue_webhook(uow, job)
    uow.commit()
    return "FAILED"


def fail_job(deps: Deps, job_id: str, code: str, message: str) -> Status:
    """Mark a job FAILED unless it already finished (for failures outside process_job, e.g. a
    hard time limit that killed the worker process)."""
    return _mark_failed(deps, job_id, code, message)


class AnnotationFailed(RuntimeError):
    """The annotated copy could not be drawn or stored; the job fails, nothing is stored."""


def _store_outcome(deps: Deps, job_id: str, outcome: pipeline.Outcome) -> Status:
    """The job row to DONE, the report and its distortion rows, the webhook event: one
    transaction of Core statements (3-4 in all), the ORM's bookkeeping is not needed here."""
    try:  # the helper thread has been drawing and storing the annotated copy meanwhile
        annotated_uri = outcome.annotated_uri
    except Exception as exc:
        raise AnnotationFailed(f"annotated image: {type(exc).__name__}: {exc}") from exc
    report = outcome.report
    with deps.uow() as uow:
        finished = uow.repo.finish_job(job_id, outcome.model_version, annotated_uri)
        if finished is None:  # a redelivered copy finished first, or the job row is gone
            if uow.repo.job_status(job_id) is None:
                raise NotFound(f"job {job_id} disappeared while it was processed")
            return "DONE"
        merchant_id, product_id = finished
        try:
            uow.repo.add_report(
                {
                    "job_id": job_id,
                    "merchant_id": merchant_id,
                    "product_id": product_id,
                    "grade": report.grade,
                    "verdict": report.verdict,
                    "score": float(report.score),
                    "body": report.to_json(),
                },
                pipeline.distortion_rows(job_id, report),
            )
            enqueue_job_event(uow, merchant_id, job_id, "DONE")
            uow.commit()
        except Conflict:  # the report row exists: another worker stored it
            uow.rollback()
            if uow.repo.report(job_id) is not None:
                return "DONE"
            raise
        except PublishFailed as exc:
            log.error("job %s done, but its webhook could not be queued: %s", job_id, exc)
    return "DONE"


def _mark_failed(deps: Deps, job_id: str, code: str, message: str) -> Status:
    with deps.uow() as uow:
        job = uow.repo.job(job_id)
        if job is None or job.status == "DONE":
            return "DONE" if job else "FAILED"
        job.status, job.error_code, job.error_message = "FAILED", code, message[:2000]
        enqueue_webhook(uow, job)
        try:
            uow.commit()
        except PublishFailed as exc:
            log.error("job %s failed, and its webhook could not be queued: %s", job_id, exc)
    return "FAILED"


def _mark_waiting(deps: Deps, job_id: str, exc: InferenceUnavailable) -> None:
    with deps.uow() as uow:
        job = uow.repo.job(job_id)
        if job is not None and job.status == "RUNNING":
            job.status, job.error_code, job.error_message = "PENDING", exc.code, exc.message[:2000]
            uow.commit()


def requeue_stale(deps: Deps, running_for_s: float, pending_for_s: float) -> list[str]:
    """Queue again the jobs whose task was lost: RUNNING for longer than any task may run, or
    PENDING for longer than any queue should hold them (a broker that lost a message)."""
    now = dt.datetime.now(dt.UTC)
    with deps.uow() as uow:
        stale = uow.repo.stale_jobs(
            running_before=now - dt.timedelta(seconds=running_for_s),
            pending_before=now - dt.timedelta(seconds=pending_for_s),
        )
        ids = []
        for job in stale:
            if uow.repo.claim_stale(job, now):
                log.warning("requeueing job %s, %s since %s", job.id, job.status, job.updated_at.isoformat())
                uow.publish_after_commit(TaskMessage(PROCESS_IMAGE, (job.id,)))
                ids.append(job.id)
        uow.commit()
    return ids


# ------------------------------------------------------------------ queries


def get_job(deps: Deps, merchant_id: str, job_id: str) -> JobView:
    """The job and its report; NotFound when it does not exist or belongs to another merchant."""
    with deps.uow() as uow:
        job = uow.repo.job(job_id, merchant_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job_view(job, uow.repo.report(job_id))


def list_jobs(
    deps: Deps, merchant_id: str, filt: ListFilter, page_token: str = "", page_size: int = 50
) -> tuple[list[JobView], str]:
    """Newest first; returns the page and the token of the next one ("" at the end)."""
    size = min(max(page_size, 1), MAX_PAGE_SIZE) if page_size else 50
    after = decode_page_token(page_token) if page_token else None
    with deps.uow() as uow:
        rows = uow.repo.list_jobs(merchant_id, filt, after, size + 1)
        views = [job_view(job, report) for job, report in rows[:size]]
        next_token = encode_page_token(rows[size - 1][0]) if len(rows) > size else ""
    return views, next_token


# ------------------------------------------------------------------ readiness


def readiness(deps: Deps) -> dict[str, bool]:
    """Whether Triton, the database and the broker can serve now (never raises)."""

    def database() -> bool:
        with deps.uow() as uow:
            uow.repo.ping()
        return True

    checks = {"triton": deps.inference.is_ready, "database": database, "broker": deps.broker_ready}
    result = {}
    for name, check in checks.items():
        try:
            result[name] = bool(check())
        except Exception:
            result[name] = False
    return result
