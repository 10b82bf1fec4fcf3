"""Read models of the service layer: JobView, page tokens and the webhook event body."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass

from service.adapters.db import Job, ReportRow
from service.adapters.repository import Cursor
from service.domain.errors import InvalidRequest
from service.domain.report import Report


@dataclass(frozen=True)
class JobView:
    job_id: str
    merchant_id: str
    product_id: str
    profile: str
    status: str  # PENDING | RUNNING | DONE | FAILED
    created_at: dt.datetime
    updated_at: dt.datetime
    attempts: int
    error_code: str | None
    error_message: str | None
    report: Report | None
    annotated_uri: str | None
    original_uri: str
    model_version: str = ""
    image_sha256: str = ""
    report_url: str = ""  # signed, expiring link to the HTML report page (service.report_pages)
    annotated_url: str = ""  # signed, expiring link to the annotated JPEG


def job_view(job: Job, report: ReportRow | None) -> JobView:
    return JobView(
        job_id=job.id,
        merchant_id=job.merchant_id,
        product_id=job.product_id,
        profile=job.profile,
        status=job.status,
        created_at=job.created_at,
        updated_at=job.updated_at,
        attempts=job.attempts,
        error_code=job.error_code,
        error_message=job.error_message,
        report=Report.from_json(report.body) if report is not None else None,
        annotated_uri=job.annotated_uri,
        original_uri=job.original_uri,
        model_version=job.model_version,
        image_sha256=job.image_sha256,
    )


def encode_page_token(last: Job) -> str:
    """Opaque keyset token: urlsafe base64 of [created_at ISO, job id]."""
    raw = json.dumps([last.created_at.isoformat(), last.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, job_id = json.loads(raw)
        when = dt.datetime.fromisoformat(created)
        if when.tzinfo is None or not isinstance(job_id, str):
            raise ValueError("bad token fields")
        return when, job_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidRequest("page_token", "BAD_PAGE_TOKEN", "the page token is not one we issued") from exc
