"""Fixtures shared by the service-layer tests: a Deps over SQLite, local blobs and fakes (`env`)
and a merchant in it (`merchant`), defined in test_handlers."""

import pytest

from service.observability import logs
from tests.unit.test_handlers import env, merchant

__all__ = ["env", "merchant"]


@pytest.fixture(autouse=True)
def _fresh_log_context():
    """Each test starts with no bound log ids: handlers bind a job's ids for the rest of the
    calling context, which a Celery task ends but a test calling them directly does not."""
    logs.start_context()
