"""Fixtures shared by the service-layer tests: a Deps over SQLite, local blobs and fakes (`env`)
and a merchant in it (`merchant`), defined in test_handlers; the gRPC API on them (`stack`);
an empty working folder without IDETEX_* variables (`in_tmp`). A module may define its own."""

import os

import pytest

from service.observability import logs
from tests.support.api_stack import running_api
from tests.unit.test_handlers import env, merchant

__all__ = ["env", "merchant"]


@pytest.fixture(autouse=True)
def _fresh_log_context():
    """Each test starts with no bound log ids: handlers bind a job's ids for the rest of the
    calling context, which a Celery task ends but a test calling them directly does not."""
    logs.start_context()


@pytest.fixture
def stack(tmp_path):
    """The gRPC API in-process over SQLite and the contract-shaped fake model (api_stack)."""
    with running_api(tmp_path / "server") as s:
        yield s


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty folder with no IDETEX_* variables, as a fresh checkout would."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("IDETEX_")]:
        monkeypatch.delenv(name)
    return tmp_path
