"""Merchant webhooks over local adapters: endpoints, events, the Standard Webhooks retry policy.

Signatures are checked with the `standardwebhooks` reference library, not with our own code.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from standardwebhooks.webhooks import Webhook

from service import handlers, webhooks
from service.adapters.publisher import DELIVER_WEBHOOK
from service.adapters.webhook import DeliveryResult, WebhookSender
from service.domain.errors import InvalidRequest, NotFound
from tests.unit.test_handlers import photo, run_queued, submit


class ScriptedSender(WebhookSender):
    """Answers the queued (status, headers) in order, then 200; keeps what it was sent."""

    def __init__(self) -> None:
        self.answers: list[tuple[int | None, dict[str, str]]] = []
        self.sent: list[tuple[str, dict[str, str], bytes]] = []

    def send(self, url, headers, body, address=None):
        self.sent.append((url, dict(headers), body))
        status, extra = self.answers.pop(0) if self.answers else (200, {})
        error = None if status is not None and 200 <= status < 300 else f"HTTP {status}"
        return DeliveryResult(status, error, extra)


@pytest.fixture
def hooked(env, merchant):
    deps, publisher, _, _ = env
    deps.webhook_sender = ScriptedSender()
    deps.webhook_schedule_s = (0.0, 5.0, 300.0, 1800.0)
    endpoint = webhooks.create_endpoint(deps, merchant, "http://127.0.0.1:9/hook")
    return deps, publisher, deps.webhook_sender, endpoint


def finish_job(deps, publisher, merchant_id) -> tuple[str, tuple]:
    """Run one job; return its id and the queued delivery message's args."""
    job_id = submit(deps, merchant_id).job_id
    assert run_queued(deps, publisher) == ["DONE"]
    (message,) = [m for m in publisher.sent if m.name == DELIVER_WEBHOOK]
    publisher.sent.remove(message)
    return job_id, message.args


def test_a_finished_job_sends_a_signed_summary_the_reference_library_verifies(hooked, merchant):
    deps, publisher, sender, endpoint = hooked
    job_id, args = finish_job(deps, publisher, merchant)
    assert args[2:] == ("report.completed", job_id, 1)
    assert webhooks.deliver(deps, *args).outcome == "delivered"
    ((_, headers, body),) = sender.sent
    payload = Webhook(endpoint.secret).verify(body, headers)  # raises on a bad signature
    assert payload["type"] == "report.completed" and payload["data"]["job_id"] == job_id
    data = payload["data"]
    assert data["grade"] == "fair" and data["verdict"] in ("accept", "warn", "reject")
    assert {g["code"] for g in data["guidance"]} and all(g["message"] for g in data["guidance"])
    assert data["report"] == {"rpc": "idetex.v1.ValidationService/GetReport", "job_id": job_id}
    assert data["annotated_image_uri"] and len(body) < webhooks.MAX_BODY_BYTES
    (log,) = webhooks.list_deliveries(deps, merchant)
    assert (log.attempt, log.status_code, log.outcome, log.event) == (1, 200, "delivered", "report.completed")
    assert log.latency_ms is not None and log.latency_ms >= 0


def test_server_errors_retry_on_the_schedule_with_the_same_id_and_body(hooked, merchant):
    deps, publisher, sender, _ = hooked
    _, args = finish_job(deps, publisher, merchant)
    sender.answers = [(500, {}), (None, {})]
    first = webhooks.deliver(deps, *args)
    assert (first.outcome, first.retry_in_s) == ("retry", 5.0)
    (again,) = publisher.sent  # 5 s: a delayed broker message
    assert again.countdown == 5.0 and again.args[-1] == 2
    publisher.sent.clear()
    second = webhooks.deliver(deps, *again.args)
    assert (second.outcome, second.retry_in_s) == ("retry", 300.0)
    assert publisher.sent == []  # 5 min: waits in webhook_retries for the sweeper
    assert webhooks.release_due_retries(deps) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=301)
    assert webhooks.release_due_retries(deps, now=later) == 1
    assert webhooks.release_due_retries(deps, now=later) == 0  # claimed once
    (third,) = publisher.sent
    assert third.args[-1] == 3 and webhooks.deliver(deps, *third.args).outcome == "delivered"
    ids = {h["webhook-id"] for _, h, _ in sender.sent}
    bodies = {b for _, _, b in sender.sent}
    assert len(ids) == 1 and len(bodies) == 1
    attempts = [(d.attempt, d.outcome) for d in reversed(webhooks.list_deliveries(deps, merchant))]
    assert attempts == [(1, "retry"), (2, "retry"), (3, "delivered")]


def test_the_schedules_end_is_final(hooked, merchant):
    deps, publisher, sender, _ = hooked
    deps.webhook_schedule_s = (0.0, 1.0)
    _, args = finish_job(deps, publisher, merchant)
    sender.answers = [(503, {}), (503, {})]
    assert webhooks.deliver(deps, *args).outcome == "retry"
    (again,) = publisher.sent
    last = webhooks.deliver(deps, *again.args)
    assert last.outcome == "failed" and "gave up after 2 attempts" in (last.error or "")


def test_429_waits_at_least_its_retry_after(hooked, merchant):
    deps, publisher, sender, _ = hooked
    _, args = finish_job(deps, publisher, merchant)
    sender.answers = [(429, {"retry-after": "42"})]
    outcome = webhooks.deliver(deps, *args)
    assert (outcome.outcome, outcome.retry_in_s) == ("retry", 42.0)
    (again,) = publisher.sent
    assert again.countdown == 42.0


def test_410_disables_the_endpoint_and_other_4xx_are_final(hooked, merchant):
    deps, publisher, sender, _ = hooked
    _, args = finish_job(deps, publisher, merchant)
    sender.answers = [(400, {})]
    assert webhooks.deliver(deps, *args).outcome == "failed" and publisher.sent == []
    sender.answers = [(410, {})]
    assert webhooks.deliver(deps, *args).outcome == "disabled"
    (view,) = webhooks.list_endpoints(deps, merchant)
    assert not view.enabled and "410" in (view.disabled_reason or "")
    assert webhooks.deliver(deps, *args).outcome == "skipped"  # nothing sent to a disabled endpoint
    assert len(sender.sent) == 2
    submit(deps, merchant, photo(7))
    run_queued(deps, publisher)
    assert [m for m in publisher.sent if m.name == DELIVER_WEBHOOK] == []  # no new events queued


def test_private_destinations_are_refused_and_logged(hooked, merchant):
    deps, publisher, sender, _ = hooked
    deps.webhook_allow_private = False
    _, args = finish_job(deps, publisher, merchant)
    outcome = webhooks.deliver(deps, *args)
    assert outcome.outcome == "refused" and sender.sent == [] and publisher.sent == []
    (log,) = webhooks.list_deliveries(deps, merchant)
    assert log.outcome == "refused" and log.status_code is None


def test_endpoints_subscribe_to_events_and_each_gets_its_own_message(hooked, merchant):
    deps, publisher, _, first = hooked
    second = webhooks.create_endpoint(deps, merchant, "http://127.0.0.1:9/other", ["report.failed"])
    third = webhooks.create_endpoint(deps, merchant, "http://127.0.0.1:9/third", ["report.completed"])
    job_id = submit(deps, merchant).job_id
    run_queued(deps, publisher)
    messages = [m for m in publisher.sent if m.name == DELIVER_WEBHOOK]
    assert sorted(m.args[0] for m in messages) == sorted([first.id, third.id])
    assert len({m.args[1] for m in messages}) == 2 and all(
        job_id.replace("-", "") in m.args[1] for m in messages
    )
    assert second.id not in {m.args[0] for m in messages}


def test_endpoints_are_managed_per_merchant(hooked, merchant):
    deps, _, _, endpoint = hooked
    assert endpoint.secret.startswith("whsec_") and endpoint.events == webhooks.DEFAULT_EVENTS
    listed = webhooks.list_endpoints(deps, merchant)
    assert [e.id for e in listed] == [endpoint.id] and listed[0].secret == ""
    updated = webhooks.update_endpoint(
        deps, merchant, endpoint.id, url="https://example.com/h", events=["audit.failed"], enabled=False
    )
    assert (updated.url, updated.events, updated.enabled) == (
        "https://example.com/h",
        ("audit.failed",),
        False,
    )
    other, _ = handlers.create_merchant(deps, "Other shop")
    with pytest.raises(NotFound):
        webhooks.update_endpoint(deps, other, endpoint.id, enabled=True)
    with pytest.raises(InvalidRequest):
        webhooks.create_endpoint(deps, merchant, "ftp://example.com")
    with pytest.raises(InvalidRequest):
        webhooks.create_endpoint(deps, merchant, "https://example.com", ["report.exploded"])
    webhooks.delete_endpoint(deps, merchant, endpoint.id)
    assert webhooks.list_endpoints(deps, merchant) == []


def test_a_logged_message_can_be_redelivered(hooked, merchant):
    deps, publisher, _, _ = hooked
    _, args = finish_job(deps, publisher, merchant)
    webhooks.deliver(deps, *args)
    assert webhooks.redeliver(deps, merchant, args[1]) == 1
    (again,) = publisher.sent
    assert again.args == (*args[:4], 1)
    other, _ = handlers.create_merchant(deps, "Other shop")
    with pytest.raises(NotFound):
        webhooks.redeliver(deps, other, args[1])


def test_the_summary_stays_under_20_kib_whatever_the_report(hooked, merchant):
    deps, publisher, _, _ = hooked
    job_id, _ = finish_job(deps, publisher, merchant)
    with deps.uow() as uow:
        job, report = uow.repo.job(job_id), uow.repo.report(job_id)
        body = dict(report.body) if isinstance(report.body, dict) else json.loads(report.body)
        guidance = body["guidance"][0]
        body["guidance"] = [{**guidance, "message": "x" * 2000} for _ in range(40)]
        report.body = body
        encoded = webhooks.report_summary(job, report, "report.completed")
    assert len(encoded) <= webhooks.MAX_BODY_BYTES
    assert 0 < len(json.loads(encoded)["data"]["guidance"]) < 20
