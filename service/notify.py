"""Merchant feedback webhooks: queue an event after a job finishes, deliver it signed, log each attempt."""

from __future__ import annotations

import datetime as dt
import time

from service.adapters import webhook as wh
from service.adapters.db import Job, WebhookDelivery
from service.adapters.publisher import DELIVER_WEBHOOK, TaskMessage
from service.adapters.unit_of_work import UnitOfWork
from service.deps import Deps
from service.views import webhook_event


def enqueue_webhook(uow: UnitOfWork, job: Job) -> None:
    """Queue the job's event (sent after the commit) when its merchant has a webhook."""
    merchant = uow.repo.merchant(job.merchant_id)
    if merchant is not None and merchant.webhook_url:
        webhook_id = f"msg_{job.id.replace('-', '')}_{job.status.lower()}"
        uow.publish_after_commit(TaskMessage(DELIVER_WEBHOOK, (job.id, webhook_id)))


def deliver_webhook(deps: Deps, job_id: str, webhook_id: str) -> wh.DeliveryResult | None:
    """One signed delivery attempt, logged; raises WebhookDeliveryFailed on a non-2xx answer.

    Returns None when there is nothing to send (no URL) and the refused result when the
    destination is not allowed (logged, not retried).
    """
    with deps.uow() as uow:
        job = uow.repo.job(job_id)
        merchant = uow.repo.merchant(job.merchant_id) if job else None
        if job is None or merchant is None or not merchant.webhook_url or not merchant.webhook_secret:
            return None
        url, secret = merchant.webhook_url, merchant.webhook_secret
        body = webhook_event(job, uow.repo.report(job_id))
        attempt = uow.repo.delivery_attempts(webhook_id) + 1
    headers = wh.signed_headers(secret, webhook_id, int(time.time()), body)
    try:
        address = wh.check_destination(url, deps.webhook_allow_private)
        result = deps.webhook_sender.send(url, headers, body, address)
    except wh.DestinationRefused as exc:
        result = wh.DeliveryResult(None, f"refused: {exc}")
        _log_delivery(deps, job_id, webhook_id, url, attempt, result)
        return result
    _log_delivery(deps, job_id, webhook_id, url, attempt, result)
    if not result.ok:
        raise wh.WebhookDeliveryFailed(f"{url}: {result.error}")
    return result


def _log_delivery(
    deps: Deps, job_id: str, webhook_id: str, url: str, attempt: int, result: wh.DeliveryResult
) -> None:
    with deps.uow() as uow:
        uow.repo.add(
            WebhookDelivery(
                webhook_id=webhook_id,
                job_id=job_id,
                url=url,
                attempt=attempt,
                status_code=result.status_code,
                error=result.error,
                delivered_at=dt.datetime.now(dt.UTC),
            )
        )
        uow.commit()
