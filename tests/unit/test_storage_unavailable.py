"""A database that cannot be reached is a typed, retryable error, not an INTERNAL one."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.rpc import code_pb2
from sqlalchemy import create_engine, text

from service.adapters.publisher import InMemoryPublisher
from service.adapters.unit_of_work import SqlUnitOfWorkFactory
from service.api.errors import to_status
from service.domain.errors import InferenceUnavailable, StorageUnavailable, Unavailable


def test_an_unreachable_database_raises_storage_unavailable(tmp_path: Path):
    """Opening a session on a database that cannot be opened gives StorageUnavailable."""
    engine = create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite'}")
    uow_factory = SqlUnitOfWorkFactory(engine, InMemoryPublisher())
    with pytest.raises(StorageUnavailable) as caught, uow_factory() as uow:
        uow.repo.job("any")
    assert caught.value.code == "STORAGE_UNAVAILABLE"
    assert "unable to open database file" in caught.value.message


def test_a_bad_statement_is_not_called_unavailable(tmp_path: Path):
    """Only connection trouble becomes StorageUnavailable; a programming error stays what it is."""
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    uow_factory = SqlUnitOfWorkFactory(engine, InMemoryPublisher())
    with pytest.raises(Exception) as caught, uow_factory() as uow:
        assert uow.session is not None
        uow.session.execute(text("SELEC 1"))
    assert not isinstance(caught.value, Unavailable)


@pytest.mark.parametrize("error", [StorageUnavailable("db down"), InferenceUnavailable("triton down")])
def test_dependencies_down_map_to_unavailable_with_a_retry_hint(error: Unavailable):
    """Storage and inference outages both answer UNAVAILABLE with RetryInfo, never INTERNAL."""
    status = to_status(error)
    assert status.code == code_pb2.UNAVAILABLE
    assert any(d.type_url.endswith("google.rpc.RetryInfo") for d in status.details)
