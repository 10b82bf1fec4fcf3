"""S3 batch audits: grade every image of a catalogue, report back to S3, tell the merchant.

An audit advances in short, resumable steps (the AUDIT_STEP task), each holding a lease on
the audit row so two steps never run at once:

1. list one page of the source (prefix, Batch Operations CSV, Inventory manifest) from the
   saved cursor and insert one `audit_objects` row per object (unique per audit, bucket, key,
   version: an object is never listed twice); an object with the ETag of one already listed
   is a DUPLICATE of it;
2. collect the results of objects whose validation job finished (a job that failed on an
   outage, Triton or the broker unavailable past its retries, sends its object back to
   PENDING, at most MAX_RESUBMITS times);
3. queue more objects while fewer than `window` are in flight: read the bytes, submit an
   ordinary validation job (idempotent by content: a resubmitted object gets the same job,
   so a step killed half-way counts nothing twice); bytes that are not an image are SKIPPED,
   unreadable objects (vanished, access denied) and broken images FAILED, each with its code;
   while the database or the broker is down the object stays PENDING and the step is tried
   again (the outage is the service's, not the object's);
4. when nothing is left: write `report.csv` and `summary.json` to the destination and send
   `audit.completed` (or `audit.failed`) to the merchant's webhooks.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from service import limits, webhooks
from service.adapters.db import Audit, AuditObject
from service.adapters.publisher import AUDIT_STEP, TaskMessage
from service.adapters.s3catalogue import ListingError, ObjectUnavailable, S3Object, source_kind, split_prefix
from service.adapters.unit_of_work import UnitOfWork
from service.deps import Deps
from service.domain.errors import BadImage, DomainError, InvalidRequest, NotFound, Unavailable
from service.domain.profiles import get_profile
from service.handlers import RETRYABLE_CODES, SubmitImage, submit

log = logging.getLogger(__name__)

ACTIVE = "RUNNING"
FINISHED_OBJECTS = ("DONE", "FAILED", "SKIPPED", "DUPLICATE")
NOT_IMAGES = ("EMPTY", "NOT_AN_IMAGE", "UNSUPPORTED_FORMAT")
LEASE_S = 120.0
STEP_RETRY_S = 5.0
SHORT_WAIT_S = 1.0
MAX_RESUBMITS = 3  # per object, after jobs that failed on an outage (RETRYABLE_CODES)
CSV_COLUMNS = ("bucket", "key", "version", "status", "verdict", "grade", "guidance_codes", "error")


@dataclass(frozen=True)
class AuditView:
    id: str
    merchant_id: str
    status: str
    profile: str
    source_uri: str
    destination_uri: str
    listing_done: bool
    counts: dict[str, int]  # objects per status
    total: int
    finished: int
    remaining: int
    images_per_s: float
    report_uri: str | None
    summary_uri: str | None
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _view(uow: UnitOfWork, audit: Audit) -> AuditView:
    counts = uow.repo.audit_counts(audit.id)
    total = sum(counts.values())
    finished = sum(counts.get(s, 0) for s in FINISHED_OBJECTS)
    end = audit.finished_at or _now()
    elapsed = max((end - audit.created_at).total_seconds(), 1e-6)
    processed = counts.get("DONE", 0) + counts.get("FAILED", 0) + counts.get("SKIPPED", 0)
    return AuditView(
        audit.id,
        audit.merchant_id,
        audit.status,
        audit.profile,
        audit.source_uri,
        audit.destination_uri,
        audit.listing_done,
        counts,
        total,
        finished,
        total - finished,
        round(processed / elapsed, 2),
        audit.report_uri,
        audit.summary_uri,
        audit.error,
        audit.created_at,
        audit.finished_at,
    )


# ---------------------------------------------------------------- commands


def start_audit(
    deps: Deps, merchant_id: str, source_uri: str, profile: str, destination_uri: str
) -> AuditView:
    """Record the audit and queue its first step; the source kind comes from the URI's shape."""
    limits.check_length("source", source_uri, limits.MAX_URI)
    limits.check_length("destination", destination_uri, limits.MAX_URI)
    kind = source_kind(source_uri)
    split_prefix(destination_uri)
    get_profile(profile or "default")  # InvalidRequest for an unknown profile
    with deps.uow() as uow:
        if uow.repo.merchant(merchant_id) is None:
            raise NotFound(f"no merchant {merchant_id}")
        audit = Audit(
            id=str(uuid.uuid4()),
            merchant_id=merchant_id,
            profile=profile or "default",
            source_kind=kind,
            source_uri=source_uri,
            destination_uri=destination_uri.rstrip("/"),
            status=ACTIVE,
            listing_done=False,
        )
        uow.repo.add(audit)
        uow.publish_after_commit(TaskMessage(AUDIT_STEP, (audit.id,)))
        uow.commit()
        return _view(uow, audit)


def _own(uow: UnitOfWork, merchant_id: str, audit_id: str) -> Audit:
    audit = uow.repo.audit(audit_id)
    if audit is None or audit.merchant_id != merchant_id:
        raise NotFound(f"no audit {audit_id}")
    return audit


def get_audit(deps: Deps, merchant_id: str, audit_id: str) -> AuditView:
    with deps.uow() as uow:
        return _view(uow, _own(uow, merchant_id, audit_id))


def cancel_audit(deps: Deps, merchant_id: str, audit_id: str) -> AuditView:
    """Stop queueing objects; jobs already queued finish, their results are still collected on resume."""
    with deps.uow() as uow:
        audit = _own(uow, merchant_id, audit_id)
        if audit.status == ACTIVE:
            audit.status = "CANCELLED"
            uow.commit()
        return _view(uow, audit)


def resume_audit(deps: Deps, merchant_id: str, audit_id: str) -> AuditView:
    with deps.uow() as uow:
        audit = _own(uow, merchant_id, audit_id)
        if audit.status in ("CANCELLED", "FAILED"):
            audit.status, audit.error = ACTIVE, None
            audit.lease_until = None
            uow.publish_after_commit(TaskMessage(AUDIT_STEP, (audit.id,)))
            uow.commit()
        elif audit.status != ACTIVE:
            raise InvalidRequest("audit_id", "FINISHED", f"audit {audit_id} is {audit.status}")
        return _view(uow, audit)


def requeue_stale(deps: Deps, quiet_s: float) -> list[str]:
    """Queue a step for each running audit whose step chain was lost (a broker that dropped the
    message of a worker killed outright); a second chain is harmless: steps share one lease."""
    now = _now()
    with deps.uow() as uow:
        stale = uow.repo.stale_audits(now, now - dt.timedelta(seconds=quiet_s))
        for audit in stale:
            uow.publish_after_commit(TaskMessage(AUDIT_STEP, (audit.id,)))
            audit.updated_at = now
        uow.commit()
        return [a.id for a in stale]


# ---------------------------------------------------------------- the step


@dataclass(frozen=True)
class StepResult:
    status: str
    next_in_s: float | None  # when to run the next step; None: no next step


def step(
    deps: Deps, audit_id: str, window: int = 64, page_budget: int = 1, lease_s: float = LEASE_S
) -> StepResult:
    """One bounded step of an audit; queues the next one itself when work remains. The lease
    outlives a killed step by at most `lease_s`; then a redelivered step takes over."""
    now = _now()
    with deps.uow() as uow:
        if not uow.repo.lease_audit(audit_id, now, now + dt.timedelta(seconds=lease_s)):
            audit = uow.repo.audit(audit_id)
            if audit is None or audit.status != ACTIVE:
                return StepResult("GONE" if audit is None else audit.status, None)
            return _again(deps, audit_id, lease_s / 4)  # another step holds it: look again later
        uow.commit()
    try:
        status, delay = _advance(deps, audit_id, window, page_budget)
    except Exception as exc:  # a database or S3 hiccup: keep the chain alive, show the error
        log.exception("audit %s: step failed; trying again in %.0f s", audit_id, STEP_RETRY_S)
        with deps.uow() as uow:
            audit = uow.repo.audit(audit_id)
            if audit is not None:
                audit.error = f"step failed, retrying: {type(exc).__name__}: {exc}"[:2000]
                uow.commit()
        status, delay = ACTIVE, STEP_RETRY_S
    finally:
        with deps.uow() as uow:
            uow.repo.release_audit(audit_id)
            uow.commit()
    if delay is None:
        return StepResult(status, None)
    if delay <= SHORT_WAIT_S:
        # short waits happen here, not as a broker countdown: delayed (ETA) messages sit unacked
        # in a worker's prefetch, and a step must never wait behind them or block the queue
        time.sleep(delay)
        return _again(deps, audit_id, 0.0, status)
    return _again(deps, audit_id, delay, status)


def _again(deps: Deps, audit_id: str, delay: float, status: str = ACTIVE) -> StepResult:
    with deps.uow() as uow:
        uow.publish_after_commit(TaskMessage(AUDIT_STEP, (audit_id,), countdown=delay))
        uow.commit()
    return StepResult(status, delay)


def _advance(deps: Deps, audit_id: str, window: int, page_budget: int) -> tuple[str, float | None]:
    with deps.uow() as uow:
        audit = uow.repo.audit(audit_id)
        if audit is None:
            return "GONE", None
        if audit.status != ACTIVE:
            return audit.status, None
        merchant_id, profile = audit.merchant_id, audit.profile
        kind, source, cursor, listed = audit.source_kind, audit.source_uri, audit.cursor, audit.listing_done
    if not listed:
        for _ in range(page_budget):
            try:
                objects, cursor = deps.s3.page(kind, source, cursor)
            except ListingError as exc:
                return _fail(deps, audit_id, str(exc)), None
            _add_objects(deps, audit_id, objects, cursor)
            if cursor is None:
                break
    _collect(deps, audit_id)
    queued = _queue(deps, audit_id, merchant_id, profile, window)
    with deps.uow() as uow:
        audit = uow.repo.audit(audit_id)
        assert audit is not None
        listing_done = audit.listing_done
        counts = uow.repo.audit_counts(audit_id)
    if listing_done and counts.get("PENDING", 0) + counts.get("QUEUED", 0) == 0:
        return _finish(deps, audit_id), None
    if not listing_done or queued:
        return ACTIVE, 0.0  # the next step queues behind the jobs just queued
    return ACTIVE, 0.2  # only waiting for jobs in flight


def _add_objects(deps: Deps, audit_id: str, objects: list[S3Object], cursor: str | None) -> None:
    with deps.uow() as uow:
        audit = uow.repo.audit(audit_id)
        assert audit is not None
        known = uow.repo.audit_keys(audit_id, [(o.bucket, o.key, o.version_id) for o in objects])
        etags = uow.repo.audit_etags(audit_id, [o.etag for o in objects if o.etag])
        for o in objects:
            if (o.bucket, o.key, o.version_id) in known:
                continue  # listed by an earlier step that died before saving its cursor
            known.add((o.bucket, o.key, o.version_id))
            first = etags.get(o.etag) if o.etag else None
            status = "DUPLICATE" if first else "PENDING"
            uow.repo.add(
                AuditObject(
                    audit_id=audit_id,
                    bucket=o.bucket,
                    key=o.key,
                    version_id=o.version_id,
                    etag=o.etag,
                    size=o.size,
                    status=status,
                    error=f"same ETag as {first}" if first else None,
                    finished_at=_now() if first else None,
                )
            )
            if o.etag and not first:
                etags[o.etag] = f"s3://{o.bucket}/{o.key}"
        audit.cursor = cursor
        audit.listing_done = cursor is None
        uow.commit()


def _collect(deps: Deps, audit_id: str) -> int:
    """Copy the results of finished jobs onto their objects. A job that failed on an outage
    (Triton or the broker unavailable past its retries) is not the object's fault: the object
    goes back to PENDING, up to MAX_RESUBMITS times, and is submitted again (the job is queued
    afresh); its error shows until then."""
    done = 0
    with deps.uow() as uow:
        for obj, job, report in uow.repo.audit_finished_jobs(audit_id, limit=2000):
            error = f"{job.error_code}: {job.error_message}"[:2000]
            if job.status == "FAILED" and job.error_code in RETRYABLE_CODES and obj.resubmits < MAX_RESUBMITS:
                obj.status, obj.error, obj.resubmits = "PENDING", error, obj.resubmits + 1
                continue
            if job.status == "DONE" and report is not None:
                body = report.body if isinstance(report.body, dict) else json.loads(report.body)
                obj.status, obj.verdict, obj.grade = "DONE", body.get("verdict"), body.get("grade")
                obj.error = None  # an outage met on an earlier submission is over
                obj.guidance_codes = " ".join(g["code"] for g in body.get("guidance", [])[:5])[:400]
                types = sorted({d["type"] for d in body.get("distortions", []) if not d.get("expected")})
                obj.distortions = ";".join(types)[:400]
            else:
                obj.status, obj.error = "FAILED", error
            obj.finished_at = _now()
            done += 1
        uow.commit()
    return done


def _queue(deps: Deps, audit_id: str, merchant_id: str, profile: str, window: int) -> int:
    with deps.uow() as uow:
        in_flight = uow.repo.audit_counts(audit_id).get("QUEUED", 0)
        batch = [
            (o.id, S3Object(o.bucket, o.key, o.version_id, o.etag, o.size))
            for o in uow.repo.audit_pending(audit_id, max(0, window - in_flight))
        ]
    for object_id, obj in batch:
        status, job_id, sha, error = _submit_one(deps, merchant_id, profile, obj)
        with deps.uow() as uow:
            row = uow.repo.audit_object(object_id)
            if row is None or row.status != "PENDING":
                continue
            row.status, row.job_id, row.sha256, row.error = status, job_id, sha, error
            if status != "QUEUED":
                row.finished_at = _now()
            uow.commit()
    return len(batch)


def _submit_one(
    deps: Deps, merchant_id: str, profile: str, obj: S3Object
) -> tuple[str, str | None, str | None, str | None]:
    """(status, job id, sha256, error) of submitting one object as a validation job."""
    try:
        data = deps.s3.get(obj, deps.limits.max_bytes)
    except ObjectUnavailable as exc:
        return "FAILED", None, None, f"{exc.code}: {exc.message}"[:2000]
    try:
        result = submit(
            deps,
            SubmitImage(merchant_id=merchant_id, product_id=obj.key[:200], image=data, profile=profile),
        )
    except BadImage as exc:
        status = "SKIPPED" if exc.reason in NOT_IMAGES else "FAILED"
        return status, None, None, f"{exc.reason}: {exc.message}"[:2000]
    except Unavailable:  # the database or the broker, for now: the step is tried again later
        raise
    except DomainError as exc:
        return "FAILED", None, None, f"{exc.code}: {exc.message}"[:2000]
    return "QUEUED", result.job_id, None, None


def _fail(deps: Deps, audit_id: str, error: str) -> str:
    with deps.uow() as uow:
        audit = uow.repo.audit(audit_id)
        assert audit is not None
        audit.status, audit.error, audit.finished_at = "FAILED", error[:2000], _now()
        webhooks.enqueue_event(uow, audit.merchant_id, "audit.failed", audit.id)
        uow.commit()
    log.warning("audit %s failed: %s", audit_id, error)
    return "FAILED"


# ---------------------------------------------------------------- the report


def _report_files(rows: list[AuditObject]) -> tuple[bytes, dict[str, Any]]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    verdicts: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    types: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in rows:
        writer.writerow(
            (
                r.bucket,
                r.key,
                r.version_id,
                r.status,
                r.verdict or "",
                r.grade or "",
                r.guidance_codes or "",
                r.error or "",
            )
        )
        statuses[r.status] += 1
        if r.verdict:
            verdicts[r.verdict] += 1
        codes.update((r.guidance_codes or "").split())
        types.update(t for t in (r.distortions or "").split(";") if t)
        if r.error:
            errors[r.error.split(":", 1)[0]] += 1
    summary = {
        "objects": len(rows),
        "per_status": dict(sorted(statuses.items())),
        "per_verdict": dict(sorted(verdicts.items())),
        "per_guidance_code": dict(codes.most_common()),
        "per_distortion_type": dict(types.most_common()),
        "per_error_code": dict(errors.most_common()),
    }
    return out.getvalue().encode(), summary


def _finish(deps: Deps, audit_id: str) -> str:
    with deps.uow() as uow:
        audit = uow.repo.audit(audit_id)
        assert audit is not None
        rows = uow.repo.audit_objects(audit_id)
        report, summary = _report_files(rows)
        destination = audit.destination_uri
        summary = {"audit_id": audit.id, "source": audit.source_uri, "profile": audit.profile, **summary}
    try:
        report_uri = deps.s3.put(f"{destination}/{audit_id}/report.csv", report, "text/csv")
        summary_uri = deps.s3.put(
            f"{destination}/{audit_id}/summary.json",
            json.dumps(summary, indent=1).encode(),
            "application/json",
        )
    except Exception as exc:  # the destination refused the report: the audit fails, results stay in SQL
        return _fail(deps, audit_id, f"cannot write the report to {destination}: {exc}")
    with deps.uow() as uow:
        audit = uow.repo.audit(audit_id)
        assert audit is not None
        audit.status, audit.report_uri, audit.summary_uri, audit.finished_at = (
            "DONE",
            report_uri,
            summary_uri,
            _now(),
        )
        webhooks.enqueue_event(uow, audit.merchant_id, "audit.completed", audit.id)
        uow.commit()
    return "DONE"


def event_body(uow: UnitOfWork, audit_id: str, event: str) -> bytes | None:
    """The audit.completed / audit.failed webhook body: counts and where the report is."""
    audit = uow.repo.audit(audit_id)
    if audit is None:
        return None
    view = _view(uow, audit)
    body = {
        "type": event,
        "timestamp": (audit.finished_at or audit.updated_at).isoformat(),
        "data": {
            "audit_id": audit.id,
            "merchant_id": audit.merchant_id,
            "status": audit.status,
            "profile": audit.profile,
            "source": audit.source_uri,
            "objects": view.total,
            "per_status": view.counts,
            "report_uri": audit.report_uri,
            "summary_uri": audit.summary_uri,
            "error": audit.error,
        },
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
