"""Queries over the SQL models, used through a unit of work's session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.adapters.db import (
    ApiKey,
    Audit,
    AuditObject,
    DistortionRow,
    Job,
    Merchant,
    MerchantPolicy,
    ReportRow,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookRetry,
)


@dataclass(frozen=True)
class ListFilter:
    """Filters for listing a merchant's jobs; None or "" means no filter."""

    product_id: str | None = None
    verdict: str | None = None
    grade: str | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None


Cursor = tuple[dt.datetime, str]  # (created_at, job id) of the last row on the previous page


@dataclass(frozen=True)
class ClaimedJob:
    """A job just marked RUNNING for one more attempt (Repository.claim_job)."""

    id: str
    merchant_id: str
    profile: str
    original_uri: str
    image_sha256: str  # of the original's bytes, as the API hashed them on upload


# Statements that run for every call or job are built once (building one costs about as much
# as running it on SQLite). The claim and the merchant's settings run as Core statements on the
# session's connection (no entities needed); the others load entities.
_CLAIM = (
    update(Job)
    .where(
        Job.id == bindparam("job_id"),
        Job.status.in_(("PENDING", "RUNNING")),
        Job.attempts < bindparam("max_attempts"),
    )
    .values(status="RUNNING", attempts=Job.attempts + 1)
    .returning(Job.merchant_id, Job.profile, Job.original_uri, Job.image_sha256)
)
_MERCHANT_SETTINGS = (
    select(Merchant.model_choice, MerchantPolicy.overrides)
    .outerjoin(
        MerchantPolicy,
        and_(MerchantPolicy.merchant_id == Merchant.id, MerchantPolicy.profile == bindparam("profile")),
    )
    .where(Merchant.id == bindparam("merchant_id"))
)


# Storing a report: the job row to DONE unless a redelivered copy got there first, then the report
# and its distortion rows (Repository.finish_job, add_report).
_FINISH = (
    update(Job)
    .where(Job.id == bindparam("job_id"), Job.status != "DONE")
    .values(
        status="DONE",
        error_code=None,
        error_message=None,
        model_version=bindparam("model_version"),
        annotated_uri=bindparam("annotated_uri"),
    )
    .returning(Job.merchant_id, Job.product_id)
)
_INSERT_REPORT = insert(ReportRow)
_INSERT_DISTORTION = insert(DistortionRow)

_API_KEY_BY_PREFIX = select(ApiKey).where(ApiKey.prefix == bindparam("prefix"))
_JOB_BY_KEY = select(Job).where(
    Job.merchant_id == bindparam("merchant_id"), Job.idempotency_key == bindparam("key")
)
_REUSABLE_JOB = (
    select(Job)
    .where(
        Job.merchant_id == bindparam("merchant_id"),
        Job.image_sha256 == bindparam("sha256"),
        Job.profile == bindparam("profile"),
        Job.model_version == bindparam("model_version"),
        or_(Job.status != "FAILED", Job.error_code.in_(bindparam("retry_codes", expanding=True))),
    )
    .order_by(Job.created_at.desc())
    .limit(1)
)
_ENDPOINTS = (
    select(WebhookEndpoint)
    .where(WebhookEndpoint.merchant_id == bindparam("merchant_id"))
    .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
)


class Conflict(Exception):
    """A flush or commit broke a unique constraint or a foreign key (for example a concurrent
    idempotency key, or a report row another worker stored first)."""


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, *rows: object) -> None:
        self.session.add_all(rows)

    def flush(self) -> None:
        """Send the pending changes now; Conflict when one breaks a unique or foreign key."""
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc

    def ping(self) -> None:
        self.session.execute(text("SELECT 1"))

    def merchant(self, merchant_id: str) -> Merchant | None:
        return self.session.get(Merchant, merchant_id)

    def merchant_policy(self, merchant_id: str, profile: str) -> MerchantPolicy | None:
        return self.session.get(MerchantPolicy, (merchant_id, profile))

    def merchant_policies(self, merchant_id: str) -> list[MerchantPolicy]:
        query = select(MerchantPolicy).where(MerchantPolicy.merchant_id == merchant_id)
        return list(self.session.scalars(query.order_by(MerchantPolicy.profile)))

    def api_key_by_prefix(self, prefix: str) -> ApiKey | None:
        return self.session.scalars(_API_KEY_BY_PREFIX, {"prefix": prefix}).first()

    def job(self, job_id: str, merchant_id: str | None = None) -> Job | None:
        job = self.session.get(Job, job_id, populate_existing=True)
        if job is None or (merchant_id is not None and job.merchant_id != merchant_id):
            return None
        return job

    def claim_job(self, job_id: str, max_attempts: int) -> ClaimedJob | None:
        """Mark a job that is neither finished nor out of attempts RUNNING with one more attempt,
        in one statement, and return what processing it needs; None when the job is missing,
        finished or out of attempts (the caller reads it to tell which)."""
        params = {"job_id": job_id, "max_attempts": max_attempts}
        row = self.session.connection().execute(_CLAIM, params).first()
        return (
            None
            if row is None
            else ClaimedJob(job_id, row.merchant_id, row.profile, row.original_uri, row.image_sha256)
        )

    def finish_job(self, job_id: str, model_version: str, annotated_uri: str) -> tuple[str, str] | None:
        """Mark a job DONE in one statement and return its (merchant id, product id); None when it
        is missing or already DONE (a redelivered copy stored its report first)."""
        params = {
            "job_id": job_id,
            "model_version": model_version,
            "annotated_uri": annotated_uri,
        }
        row = self.session.connection().execute(_FINISH, params).first()
        return None if row is None else (row.merchant_id, row.product_id)

    def add_report(self, report: dict[str, Any], distortions: list[dict[str, Any]]) -> None:
        """Insert a report row and its distortion rows (column name -> value); Conflict when the
        report exists or the job does not."""
        conn = self.session.connection()
        try:
            conn.execute(_INSERT_REPORT, report)
            if distortions:
                conn.execute(_INSERT_DISTORTION, distortions)
        except IntegrityError as exc:
            raise Conflict(str(exc.orig)) from exc

    def merchant_settings(self, merchant_id: str, profile: str) -> tuple[str | None, dict[str, Any]]:
        """The merchant's model choice and its overrides of `profile` ({} for none), in one query."""
        params = {"merchant_id": merchant_id, "profile": profile}
        row = self.session.connection().execute(_MERCHANT_SETTINGS, params).first()
        if row is None:
            return None, {}
        return row.model_choice, dict(row.overrides or {})

    def job_status(self, job_id: str) -> str | None:
        return self.session.scalar(select(Job.status).where(Job.id == job_id))

    def job_statuses(self, job_ids: list[str], chunk: int = 500) -> dict[str, str]:
        """Status of each of the jobs that exist, in as few queries as the chunk size allows."""
        found: dict[str, str] = {}
        for i in range(0, len(job_ids), chunk):
            rows = self.session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids[i : i + chunk])))
            found.update({job_id: status for job_id, status in rows})
        return found

    def job_by_idempotency_key(self, merchant_id: str, key: str) -> Job | None:
        return self.session.scalars(_JOB_BY_KEY, {"merchant_id": merchant_id, "key": key}).first()

    def reusable_job(
        self,
        merchant_id: str,
        sha256: str,
        profile: str,
        model_version: str,
        retry_codes: tuple[str, ...] = (),
    ) -> Job | None:
        """The newest job for the same bytes, profile and model that has not failed (or failed with
        one of `retry_codes`, so it can run again)."""
        params = {
            "merchant_id": merchant_id,
            "sha256": sha256,
            "profile": profile,
            "model_version": model_version,
            "retry_codes": list(retry_codes),
        }
        return self.session.scalars(_REUSABLE_JOB, params).first()

    def stale_jobs(
        self, running_before: dt.datetime, pending_before: dt.datetime, limit: int = 100
    ) -> list[Job]:
        """RUNNING jobs last touched before `running_before`, PENDING ones before `pending_before`."""
        stmt = (
            select(Job)
            .where(
                or_(
                    and_(Job.status == "RUNNING", Job.updated_at < running_before),
                    and_(Job.status == "PENDING", Job.updated_at < pending_before),
                )
            )
            .order_by(Job.updated_at)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def claim_stale(self, job: Job, now: dt.datetime) -> bool:
        """Set a stale job back to PENDING unless someone changed it since it was read (one
        sweeper wins when several look at once)."""
        stmt = (
            update(Job)
            .where(Job.id == job.id, Job.updated_at == job.updated_at, Job.status == job.status)
            .values(status="PENDING", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(self.session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def report(self, job_id: str) -> ReportRow | None:
        return self.session.get(ReportRow, job_id)

    def distortions(self, job_id: str) -> list[DistortionRow]:
        stmt = select(DistortionRow).where(DistortionRow.job_id == job_id).order_by(DistortionRow.id)
        return list(self.session.scalars(stmt))

    def list_jobs(
        self, merchant_id: str, filt: ListFilter, after: Cursor | None, limit: int
    ) -> list[tuple[Job, ReportRow | None]]:
        """Newest first, keyset-paginated on (created_at, id)."""
        stmt = (
            select(Job, ReportRow)
            .outerjoin(ReportRow, ReportRow.job_id == Job.id)
            .where(Job.merchant_id == merchant_id)
        )
        if filt.product_id:
            stmt = stmt.where(Job.product_id == filt.product_id)
        if filt.verdict:
            stmt = stmt.where(ReportRow.verdict == filt.verdict)
        if filt.grade:
            stmt = stmt.where(ReportRow.grade == filt.grade)
        if filt.created_after is not None:
            stmt = stmt.where(Job.created_at >= filt.created_after)
        if filt.created_before is not None:
            stmt = stmt.where(Job.created_at < filt.created_before)
        if after is not None:
            created, job_id = after
            stmt = stmt.where(or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id)))
        stmt = stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
        return [(row[0], row[1]) for row in self.session.execute(stmt)]

    def delivery_attempts(self, webhook_id: str) -> int:
        stmt = (
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        )
        return int(self.session.scalar(stmt) or 0)

    def deliveries(self, job_id: str) -> list[WebhookDelivery]:
        stmt = select(WebhookDelivery).where(WebhookDelivery.job_id == job_id).order_by(WebhookDelivery.id)
        return list(self.session.scalars(stmt))

    # ------------------------------------------------------------ webhooks

    def delete(self, row: object) -> None:
        self.session.delete(row)

    def endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        return self.session.get(WebhookEndpoint, endpoint_id)

    def endpoints(self, merchant_id: str) -> list[WebhookEndpoint]:
        return list(self.session.scalars(_ENDPOINTS, {"merchant_id": merchant_id}))

    def merchant_deliveries(
        self, merchant_id: str, endpoint_id: str = "", webhook_id: str = "", limit: int = 100
    ) -> list[WebhookDelivery]:
        """A merchant's delivery attempts, newest first."""
        stmt = (
            select(WebhookDelivery)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(WebhookEndpoint.merchant_id == merchant_id)
        )
        if endpoint_id:
            stmt = stmt.where(WebhookDelivery.endpoint_id == endpoint_id)
        if webhook_id:
            stmt = stmt.where(WebhookDelivery.webhook_id == webhook_id)
        return list(self.session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit)))

    def due_retries(self, now: dt.datetime, limit: int) -> list[WebhookRetry]:
        stmt = (
            select(WebhookRetry).where(WebhookRetry.due_at <= now).order_by(WebhookRetry.due_at).limit(limit)
        )
        return list(self.session.scalars(stmt))

    def claim_retry(self, retry_id: int) -> bool:
        """Delete the row; True only for the one session whose delete removed it."""
        result = self.session.execute(delete(WebhookRetry).where(WebhookRetry.id == retry_id))
        return bool(getattr(result, "rowcount", 0) == 1)

    # ------------------------------------------------------------ audits

    def audit(self, audit_id: str) -> Audit | None:
        return self.session.get(Audit, audit_id)

    def lease_audit(self, audit_id: str, now: dt.datetime, until: dt.datetime) -> bool:
        """Take the audit's lease if it is running and free (or its holder's lease ran out)."""
        stmt = (
            update(Audit)
            .where(
                Audit.id == audit_id,
                Audit.status == "RUNNING",
                or_(Audit.lease_until.is_(None), Audit.lease_until < now),
            )
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(self.session.execute(stmt), "rowcount", 0) == 1)

    def release_audit(self, audit_id: str) -> None:
        stmt = update(Audit).where(Audit.id == audit_id).values(lease_until=None)
        self.session.execute(stmt.execution_options(synchronize_session=False))

    def audit_counts(self, audit_id: str) -> dict[str, int]:
        stmt = (
            select(AuditObject.status, func.count())
            .where(AuditObject.audit_id == audit_id)
            .group_by(AuditObject.status)
        )
        return {status: int(n) for status, n in self.session.execute(stmt)}

    def audit_keys(self, audit_id: str, keys: list[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        """Which of these (bucket, key, version) the audit already lists."""
        found: set[tuple[str, str, str]] = set()
        names = sorted({k for _, k, _ in keys})
        for start in range(0, len(names), 500):
            stmt = select(AuditObject.bucket, AuditObject.key, AuditObject.version_id).where(
                AuditObject.audit_id == audit_id, AuditObject.key.in_(names[start : start + 500])
            )
            found.update((b, k, v) for b, k, v in self.session.execute(stmt))
        return found

    def audit_etags(self, audit_id: str, etags: list[str]) -> dict[str, str]:
        """ETag -> s3:// URI of the first object of the audit with it."""
        found: dict[str, str] = {}
        unique = sorted(set(etags))
        for start in range(0, len(unique), 500):
            stmt = (
                select(AuditObject.etag, AuditObject.bucket, AuditObject.key)
                .where(AuditObject.audit_id == audit_id, AuditObject.etag.in_(unique[start : start + 500]))
                .where(AuditObject.status != "DUPLICATE")
                .order_by(AuditObject.id)
            )
            for etag, bucket, key in self.session.execute(stmt):
                found.setdefault(etag, f"s3://{bucket}/{key}")
        return found

    def audit_finished_jobs(
        self, audit_id: str, limit: int
    ) -> list[tuple[AuditObject, Job, ReportRow | None]]:
        """QUEUED objects whose job is DONE or FAILED, with the job and its report."""
        stmt = (
            select(AuditObject, Job, ReportRow)
            .join(Job, Job.id == AuditObject.job_id)
            .outerjoin(ReportRow, ReportRow.job_id == Job.id)
            .where(
                AuditObject.audit_id == audit_id,
                AuditObject.status == "QUEUED",
                Job.status.in_(("DONE", "FAILED")),
            )
            .limit(limit)
        )
        return [(o, j, r) for o, j, r in self.session.execute(stmt)]

    def audit_pending(self, audit_id: str, limit: int) -> list[AuditObject]:
        if limit <= 0:
            return []
        stmt = (
            select(AuditObject)
            .where(AuditObject.audit_id == audit_id, AuditObject.status == "PENDING")
            .order_by(AuditObject.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def audit_object(self, object_id: int) -> AuditObject | None:
        return self.session.get(AuditObject, object_id)

    def audit_objects(self, audit_id: str) -> list[AuditObject]:
        stmt = select(AuditObject).where(AuditObject.audit_id == audit_id).order_by(AuditObject.id)
        return list(self.session.scalars(stmt))

    def stale_audits(self, now: dt.datetime, quiet_since: dt.datetime) -> list[Audit]:
        """Running audits no step has touched since `quiet_since` and none holds."""
        stmt = select(Audit).where(
            Audit.status == "RUNNING",
            Audit.updated_at < quiet_since,
            or_(Audit.lease_until.is_(None), Audit.lease_until < now),
        )
        return list(self.session.scalars(stmt))

    def active_job_counts(self) -> dict[str, int]:
        """Jobs PENDING and RUNNING, all merchants (the metrics' queue depth)."""
        active = Job.status.in_(("PENDING", "RUNNING"))
        stmt = select(Job.status, func.count()).where(active).group_by(Job.status)
        return {status: int(n) for status, n in self.session.execute(stmt)}

    def running_audit_counts(self) -> tuple[int, dict[str, int]]:
        """(running audits, their objects per status), all merchants (the metrics' audit progress)."""
        audits = select(func.count()).select_from(Audit).where(Audit.status == "RUNNING")
        running = self.session.scalar(audits)
        stmt = (
            select(AuditObject.status, func.count())
            .join(Audit, Audit.id == AuditObject.audit_id)
            .where(Audit.status == "RUNNING")
            .group_by(AuditObject.status)
        )
        return int(running or 0), {status: int(n) for status, n in self.session.execute(stmt)}
