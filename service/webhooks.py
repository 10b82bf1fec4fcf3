"""Merchant webhooks: endpoints, events, signed deliveries on the Standard Webhooks schedule.

- Endpoints (several per merchant): URL, `whsec_` secret, subscribed events, enabled flag.
- An event (report.completed, report.failed, audit.completed, audit.failed) queues one
  message per subscribed, enabled endpoint, after the commit that caused it.
- A delivery task makes one signed attempt and reports what to do next: done, retry after
  the schedule's next delay (or the receiver's Retry-After on 429, if longer), or stop:
  410 Gone disables the endpoint, any other 4xx is final, the schedule's end is final.
  Every attempt is logged (status, latency, outcome). At least once: receivers dedupe on
  the `webhook-id` header, which is the same on every attempt of a message.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from service.adapters import webhook as wh
from service.adapters.db import Job, ReportRow, WebhookDelivery, WebhookEndpoint, WebhookRetry
from service.adapters.publisher import DELIVER_WEBHOOK, TaskMessage
from service.adapters.unit_of_work import UnitOfWork
from service.deps import Deps
from service.domain.errors import InvalidRequest, NotFound

EVENTS = ("report.completed", "report.failed", "audit.completed", "audit.failed")
DEFAULT_EVENTS = ("report.completed", "report.failed", "audit.completed", "audit.failed")
# retries due within this many seconds ride on a delayed broker message; later ones wait in
# webhook_retries for the workers' sweeper (brokers redeliver long-held messages, Redis after
# its visibility timeout, so hours-long delays do not belong there)
COUNTDOWN_MAX_S = 60.0
MAX_BODY_BYTES = 20 * 1024
MAX_GUIDANCE_ITEMS = 20


@dataclass(frozen=True)
class EndpointView:
    id: str
    merchant_id: str
    url: str
    events: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    created_at: dt.datetime
    secret: str = ""  # only when created


@dataclass(frozen=True)
class DeliveryView:
    webhook_id: str
    endpoint_id: str | None
    event: str | None
    attempt: int
    status_code: int | None
    latency_ms: float | None
    outcome: str | None
    error: str | None
    delivered_at: dt.datetime


@dataclass(frozen=True)
class DeliveryOutcome:
    """What the task does next: nothing (done or final) or retry after `retry_in_s`."""

    outcome: str  # delivered | retry | failed | disabled | refused | skipped
    status_code: int | None = None
    retry_in_s: float | None = None
    error: str | None = None


def _events(events: Sequence[str] | None) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(e.strip() for e in (events or DEFAULT_EVENTS) if e.strip()))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown or not chosen:
        raise InvalidRequest(
            "events", "UNKNOWN_EVENT", f"events must be among {', '.join(EVENTS)}; got {', '.join(unknown)}"
        )
    return chosen


def _check_url(url: str, deps: Deps) -> str:
    """An http(s) URL of at most 2000 characters whose host, when it is an IP literal or
    localhost, is an allowed destination. Names are checked again at every delivery (DNS may
    change): the sender connects only to the address it checked (adapters.webhook)."""
    url = url.strip()
    if not url.startswith(("http://", "https://")) or len(url) > 2000:
        raise InvalidRequest(
            "url", "BAD_URL", "the webhook URL must be http(s)://... (at most 2000 characters)"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number in 0..65535)
        if not parts.hostname:
            raise ValueError("no host")
        literal = wh.literal_addresses(parts.hostname)
        if literal is not None:
            wh.check_destination(
                url, deps.webhook_allow_private, lambda _h, _p: literal, deps.webhook_allow_networks
            )
    except ValueError as exc:  # a malformed port or host
        raise InvalidRequest("url", "BAD_URL", f"the webhook URL cannot be parsed: {exc}") from exc
    except wh.DestinationRefused as exc:
        raise InvalidRequest(
            "url",
            "PRIVATE_DESTINATION",
            f"{exc}: webhooks go to public addresses (or networks in IDETEX_WEBHOOK_ALLOW_NETWORKS)",
        ) from exc
    return url


def _view(e: WebhookEndpoint, secret: str = "") -> EndpointView:
    return EndpointView(
        e.id,
        e.merchant_id,
        e.url,
        tuple(e.events.split(",")),
        e.enabled,
        e.disabled_reason,
        e.created_at,
        secret,
    )


# ---------------------------------------------------------------- management


def create_endpoint(
    deps: Deps, merchant_id: str, url: str, events: Sequence[str] | None = None, secret: str | None = None
) -> EndpointView:
    """A new enabled endpoint; the view carries its secret (shown here only)."""
    url, chosen = _check_url(url, deps), _events(events)
    secret = secret or wh.generate_secret()
    with deps.uow() as uow:
        if uow.repo.merchant(merchant_id) is None:
            raise NotFound(f"no merchant {merchant_id}")
        endpoint = WebhookEndpoint(
            id=str(uuid.uuid4()),
            merchant_id=merchant_id,
            url=url,
            secret=secret,
            events=",".join(chosen),
            enabled=True,
        )
        uow.repo.add(endpoint)
        uow.commit()
        return _view(endpoint, secret)


def _endpoint(uow: UnitOfWork, merchant_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = uow.repo.endpoint(endpoint_id)
    if endpoint is None or endpoint.merchant_id != merchant_id:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def list_endpoints(deps: Deps, merchant_id: str) -> list[EndpointView]:
    with deps.uow() as uow:
        return [_view(e) for e in uow.repo.endpoints(merchant_id)]


def update_endpoint(
    deps: Deps,
    merchant_id: str,
    endpoint_id: str,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> EndpointView:
    with deps.uow() as uow:
        endpoint = _endpoint(uow, merchant_id, endpoint_id)
        if url is not None:
            endpoint.url = _check_url(url, deps)
        if events is not None:
            endpoint.events = ",".join(_events(events))
        if enabled is not None:
            endpoint.enabled = enabled
            endpoint.disabled_reason = None if enabled else "disabled by the merchant"
        uow.commit()
        return _view(endpoint)


def delete_endpoint(deps: Deps, merchant_id: str, endpoint_id: str) -> None:
    with deps.uow() as uow:
        uow.repo.delete(_endpoint(uow, merchant_id, endpoint_id))
        uow.commit()


def list_deliveries(
    deps: Deps, merchant_id: str, *, endpoint_id: str = "", webhook_id: str = "", limit: int = 100
) -> list[DeliveryView]:
    """The merchant's delivery attempts, newest first."""
    with deps.uow() as uow:
        rows = uow.repo.merchant_deliveries(merchant_id, endpoint_id, webhook_id, max(1, min(limit, 1000)))
        return [
            DeliveryView(
                r.webhook_id,
                r.endpoint_id,
                r.event,
                r.attempt,
                r.status_code,
                r.latency_ms,
                r.outcome,
                r.error,
                r.delivered_at,
            )
            for r in rows
        ]


# ---------------------------------------------------------------- events


def message_id(subject_id: str, event: str, endpoint_id: str) -> str:
    """Stable per (subject, event, endpoint): the `webhook-id` on every attempt of the message."""
    return (
        f"msg_{subject_id.replace('-', '')[:32]}_{event.replace('.', '_')}_{endpoint_id.replace('-', '')[:8]}"
    )


def _subscribed(uow: UnitOfWork, merchant_id: str, event: str) -> list[WebhookEndpoint]:
    return [e for e in uow.repo.endpoints(merchant_id) if e.enabled and event in e.events.split(",")]


def enqueue_event(uow: UnitOfWork, merchant_id: str, event: str, subject_id: str) -> int:
    """Queue the event for each subscribed, enabled endpoint (sent after the commit)."""
    endpoints = _subscribed(uow, merchant_id, event)
    for e in endpoints:
        uow.publish_after_commit(_message(e.id, message_id(subject_id, event, e.id), event, subject_id, 1))
    return len(endpoints)


def enqueue_job_event(uow: UnitOfWork, merchant_id: str, job_id: str, status: str) -> int:
    """A finished job's event: report.completed (DONE) or report.failed (FAILED)."""
    event = "report.completed" if status == "DONE" else "report.failed"
    return enqueue_event(uow, merchant_id, event, job_id)


def enqueue_webhook(uow: UnitOfWork, job: Job) -> None:
    """enqueue_job_event for a loaded job row."""
    enqueue_job_event(uow, job.merchant_id, job.id, job.status)


def requeue_job_event(deps: Deps, job_id: str) -> int:
    """Queue a finished job's event again for each of its merchant's endpoints."""
    with deps.uow() as uow:
        job = uow.repo.job(job_id)
        if job is None or job.status not in ("DONE", "FAILED"):
            return 0
        count = enqueue_job_event(uow, job.merchant_id, job.id, job.status)
        uow.commit()
    return count


def redeliver(deps: Deps, merchant_id: str, webhook_id: str) -> int:
    """Queue a logged message again (a new series of attempts, same `webhook-id`)."""
    with deps.uow() as uow:
        found = uow.repo.merchant_deliveries(merchant_id, webhook_id=webhook_id, limit=1)
        last = found[0] if found else None
        if last is None or last.endpoint_id is None or last.event is None:
            raise NotFound(f"no webhook message {webhook_id}")
        subject = last.subject_id or last.job_id or ""
        uow.publish_after_commit(_message(last.endpoint_id, webhook_id, last.event, subject, 1))
        uow.commit()
    return 1


# ---------------------------------------------------------------- bodies


def report_summary(
    job: Job,
    report: ReportRow | None,
    event: str,
    links: Callable[[str, str, float], tuple[str, str]] | None = None,
) -> bytes:
    """The event body: the report's summary (grade, verdict, guidance codes and messages) and
    where to get the full report and the annotated image (with `links`: signed HTTP links, issued
    at the job's last change so every attempt of a message carries the same body); at most
    MAX_BODY_BYTES."""
    body: dict[str, Any] = {}
    if report is not None:
        full = report.body if isinstance(report.body, dict) else json.loads(report.body)
        body = {
            "grade": full.get("grade"),
            "fine_level": full.get("fine_level"),
            "score": full.get("score"),
            "verdict": full.get("verdict"),
            "produced_by": full.get("produced_by", "idetex_lite"),
            "guidance": [
                {k: g.get(k) for k in ("code", "severity", "message", "fix")}
                for g in full.get("guidance", [])[:MAX_GUIDANCE_ITEMS]
            ],
        }
    event_body: dict[str, Any] = {
        "type": event,
        "timestamp": job.updated_at.isoformat(),
        "data": {
            "job_id": job.id,
            "merchant_id": job.merchant_id,
            "product_id": job.product_id,
            "profile": job.profile,
            "status": job.status,
            "error_code": job.error_code,
            "error_message": (job.error_message or "")[:500] or None,
            **body,
            "report": {"rpc": "idetex.v1.ValidationService/GetReport", "job_id": job.id},
            "annotated_image_uri": job.annotated_uri,
        },
    }
    if links is not None and report is not None:
        page, image = links(job.merchant_id, job.id, job.updated_at.timestamp())
        if page:
            event_body["data"]["report_url"] = page
            event_body["data"]["annotated_image_url"] = image or None
    encoded = json.dumps(event_body, separators=(",", ":"), sort_keys=True).encode()
    while len(encoded) > MAX_BODY_BYTES and event_body["data"].get("guidance"):
        event_body["data"]["guidance"] = event_body["data"]["guidance"][:-1]
        encoded = json.dumps(event_body, separators=(",", ":"), sort_keys=True).encode()
    return encoded


def _body(
    uow: UnitOfWork, event: str, subject_id: str, links: Callable[[str, str, float], tuple[str, str]]
) -> bytes | None:
    if event.startswith("report."):
        job = uow.repo.job(subject_id)
        return None if job is None else report_summary(job, uow.repo.report(subject_id), event, links)
    if event.startswith("audit."):
        from service import audits  # audits imports this module

        return audits.event_body(uow, subject_id, event)
    return None


# ---------------------------------------------------------------- delivery


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def deliver(
    deps: Deps, endpoint_id: str, webhook_id: str, event: str, subject_id: str, attempt: int
) -> DeliveryOutcome:
    """One signed attempt (`attempt` counts from 1); logged; says whether and when to retry."""
    schedule = deps.webhook_schedule_s
    with deps.uow() as uow:
        endpoint = uow.repo.endpoint(endpoint_id)
        if endpoint is None or not endpoint.enabled:
            return DeliveryOutcome("skipped", error="endpoint removed or disabled")
        body = _body(uow, event, subject_id, deps.report_links)
        if body is None:
            return DeliveryOutcome("skipped", error=f"no {event} subject {subject_id}")
        url, secret = endpoint.url, endpoint.secret
    headers = wh.signed_headers(secret, webhook_id, int(time.time()), body)
    started = time.perf_counter()
    try:
        address = wh.check_destination(url, deps.webhook_allow_private, allowed=deps.webhook_allow_networks)
        result = deps.webhook_sender.send(url, headers, body, address)
    except wh.DestinationRefused as exc:
        outcome = DeliveryOutcome("refused", error=f"refused: {exc}")
        _log(deps, endpoint_id, webhook_id, event, subject_id, url, attempt, outcome, None)
        return outcome
    latency_ms = (time.perf_counter() - started) * 1000
    status = result.status_code
    if result.ok:
        outcome = DeliveryOutcome("delivered", status)
    elif status == 410:
        outcome = DeliveryOutcome("disabled", status, error="410 Gone: endpoint disabled")
    elif status is not None and 400 <= status < 500 and status not in (408, 429):
        outcome = DeliveryOutcome("failed", status, error=result.error)
    elif attempt >= len(schedule):
        outcome = DeliveryOutcome("failed", status, error=f"{result.error}; gave up after {attempt} attempts")
    else:
        delay = schedule[attempt]
        if status == 429:
            delay = max(delay, _retry_after(result.headers) or 0.0)
        outcome = DeliveryOutcome("retry", status, retry_in_s=delay, error=result.error)
    _log(deps, endpoint_id, webhook_id, event, subject_id, url, attempt, outcome, latency_ms)
    if outcome.outcome == "retry" and outcome.retry_in_s is not None:
        schedule_attempt(deps, endpoint_id, webhook_id, event, subject_id, attempt + 1, outcome.retry_in_s)
    if outcome.outcome == "disabled":
        with deps.uow() as uow:
            endpoint = uow.repo.endpoint(endpoint_id)
            if endpoint is not None:
                endpoint.enabled = False
                endpoint.disabled_reason = f"the receiver answered 410 Gone to {webhook_id}"
                uow.commit()
    return outcome


def _log(
    deps: Deps,
    endpoint_id: str,
    webhook_id: str,
    event: str,
    subject_id: str,
    url: str,
    attempt: int,
    outcome: DeliveryOutcome,
    latency_ms: float | None,
) -> None:
    with deps.uow() as uow:
        job_id = subject_id if event.startswith("report.") and uow.repo.job(subject_id) is not None else None
        uow.repo.add(
            WebhookDelivery(
                webhook_id=webhook_id,
                job_id=job_id,
                url=url,
                attempt=attempt,
                status_code=outcome.status_code,
                error=outcome.error,
                delivered_at=dt.datetime.now(dt.UTC),
                endpoint_id=endpoint_id,
                event=event,
                latency_ms=None if latency_ms is None else round(latency_ms, 2),
                outcome=outcome.outcome,
                subject_id=subject_id,
            )
        )
        uow.commit()


def _message(
    endpoint_id: str, webhook_id: str, event: str, subject_id: str, attempt: int, delay: float = 0.0
) -> TaskMessage:
    return TaskMessage(
        DELIVER_WEBHOOK, (endpoint_id, webhook_id, event, subject_id, attempt), countdown=delay
    )


def schedule_attempt(
    deps: Deps, endpoint_id: str, webhook_id: str, event: str, subject_id: str, attempt: int, delay_s: float
) -> None:
    """Attempt `attempt` in `delay_s`: a delayed broker message when soon, else a webhook_retries row."""
    with deps.uow() as uow:
        if delay_s <= COUNTDOWN_MAX_S:
            uow.publish_after_commit(_message(endpoint_id, webhook_id, event, subject_id, attempt, delay_s))
        else:
            uow.repo.add(
                WebhookRetry(
                    webhook_id=webhook_id,
                    endpoint_id=endpoint_id,
                    event=event,
                    subject_id=subject_id,
                    attempt=attempt,
                    due_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay_s),
                )
            )
        uow.commit()


def release_due_retries(deps: Deps, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Queue the retries that are due; each row is claimed by deleting it, so two sweepers never
    queue the same attempt."""
    now = now or dt.datetime.now(dt.UTC)
    released = 0
    with deps.uow() as uow:
        for row in uow.repo.due_retries(now, limit):
            if uow.repo.claim_retry(row.id):
                uow.publish_after_commit(
                    _message(row.endpoint_id, row.webhook_id, row.event, row.subject_id, row.attempt)
                )
                released += 1
        uow.commit()
    return released
