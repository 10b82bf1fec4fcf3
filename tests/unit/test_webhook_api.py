"""Webhook endpoints through the gRPC API and the CLI (real Container, SQLite, local adapters)."""

from __future__ import annotations

import grpc
import pytest

from service import cli
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.settings import Settings


def test_a_merchant_manages_its_endpoints_over_grpc(stack):
    auth = stack.auth("acme")
    created = stack.stub.CreateWebhook(
        pb.CreateWebhookRequest(url="https://hooks.example.com/idetex", events=["report.completed"]),
        metadata=auth,
        timeout=5,
    )
    assert created.secret.startswith("whsec_") and list(created.events) == ["report.completed"]
    listed = stack.stub.ListWebhooks(pb.ListWebhooksRequest(), metadata=auth, timeout=5).webhooks
    assert [w.id for w in listed] == [created.id] and listed[0].secret == ""
    updated = stack.stub.UpdateWebhook(
        pb.UpdateWebhookRequest(id=created.id, enabled=False), metadata=auth, timeout=5
    )
    assert not updated.enabled and updated.url == created.url and list(updated.events) == ["report.completed"]
    assert updated.disabled_reason == "disabled by the merchant"
    again = stack.stub.UpdateWebhook(pb.UpdateWebhookRequest(id=created.id, enabled=True), metadata=auth)
    assert again.enabled
    stack.stub.DeleteWebhook(pb.DeleteWebhookRequest(id=created.id), metadata=auth, timeout=5)
    assert list(stack.stub.ListWebhooks(pb.ListWebhooksRequest(), metadata=auth).webhooks) == []


def test_webhook_rpcs_check_input_and_tenancy(stack):
    auth = stack.auth("acme")
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.CreateWebhook(pb.CreateWebhookRequest(url="ftp://x"), metadata=auth, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.CreateWebhook(
            pb.CreateWebhookRequest(url="https://x.example", events=["nope"]), metadata=auth, timeout=5
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    mine = stack.stub.CreateWebhook(pb.CreateWebhookRequest(url="https://x.example"), metadata=auth)
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.DeleteWebhook(pb.DeleteWebhookRequest(id=mine.id), metadata=stack.auth("globex"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.RedeliverWebhook(pb.RedeliverWebhookRequest(webhook_id="msg_unknown"), metadata=auth)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stack.stub.ListWebhooks(pb.ListWebhooksRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (
        list(stack.stub.ListWebhookDeliveries(pb.ListWebhookDeliveriesRequest(), metadata=auth).deliveries)
        == []
    )


def test_the_cli_adds_lists_disables_and_removes_endpoints(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in [k for k in Settings.__dataclass_fields__]:
        monkeypatch.delenv(f"IDETEX_{name.upper()}", raising=False)
    assert cli.main(["merchant", "create", "Shop"]) == 0
    merchant_id = capsys.readouterr().out.split("merchant_id: ")[1].split()[0]
    assert (
        cli.main(
            ["webhook", "add", merchant_id, "https://hooks.example.com/h", "--events", "audit.completed"]
        )
        == 0
    )
    out = capsys.readouterr().out
    endpoint_id = out.split("endpoint_id: ")[1].split()[0]
    assert "secret: whsec_" in out and "events: audit.completed" in out
    assert cli.main(["webhook", "disable", merchant_id, endpoint_id]) == 0
    assert cli.main(["webhook", "list", merchant_id]) == 0
    assert "disabled (disabled by the merchant)" in capsys.readouterr().out
    assert cli.main(["webhook", "remove", merchant_id, endpoint_id]) == 0
    assert cli.main(["webhook", "remove", merchant_id, endpoint_id]) == 2
    assert "NOT_FOUND" in capsys.readouterr().err


def test_the_audit_cli_starts_shows_progress_and_cancels(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in [k for k in Settings.__dataclass_fields__]:
        monkeypatch.delenv(f"IDETEX_{name.upper()}", raising=False)
    assert cli.main(["merchant", "create", "Shop"]) == 0
    merchant_id = capsys.readouterr().out.split("merchant_id: ")[1].split()[0]
    argv = ["audit", "start", merchant_id, "s3://catalogue/shop/", "--dest", "s3://reports/x", "--no-follow"]
    assert cli.main(argv) == 0
    audit_id = capsys.readouterr().out.split("audit_id: ")[1].split()[0]
    assert cli.main(["audit", "status", merchant_id, audit_id]) == 0
    line = capsys.readouterr().out
    assert line.startswith("[------------------------------] 0/0 (listing)") and "RUNNING" in line
    assert cli.main(["audit", "cancel", merchant_id, audit_id]) == 0
    assert "CANCELLED" in capsys.readouterr().out
    assert cli.main(["audit", "start", merchant_id, "http://nope", "--dest", "s3://r/x"]) == 2
    assert "expected s3://bucket" in capsys.readouterr().err
