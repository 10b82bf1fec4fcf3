"""Unit of work over a SQLAlchemy session: roll back unless committed; publish after commit.

with uow_factory() as uow:
    uow.repo.add(job)
    uow.publish_after_commit(TaskMessage(PROCESS_IMAGE, (job.id,)))
    uow.commit()   # the message reaches the broker only once the row is durable
"""

from __future__ import annotations

import abc
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.adapters.publisher import TaskMessage, TaskPublisher
from service.adapters.repository import Conflict, Repository
from service.domain.errors import StorageUnavailable

log = logging.getLogger(__name__)


class PublishFailed(Exception):
    """The data was committed but a task message could not reach the broker."""


class UnitOfWork(abc.ABC):
    repo: Repository

    def __init__(self) -> None:
        self._pending: list[TaskMessage] = []

    def __enter__(self) -> UnitOfWork:
        self._pending = []
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.rollback()
        self._pending = []

    def publish_after_commit(self, message: TaskMessage) -> None:
        self._pending.append(message)

    def commit(self) -> None:
        """Commit, then publish the collected messages; Conflict / PublishFailed on failure."""
        self._commit()
        pending, self._pending = self._pending, []
        for i, message in enumerate(pending):
            try:
                self._publish(message)
            except Exception as exc:
                names = ", ".join(m.name for m in pending[i:])
                raise PublishFailed(f"committed, but could not publish {names}: {exc}") from exc

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def _publish(self, message: TaskMessage) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...


class SqlUnitOfWork(UnitOfWork):
    def __init__(self, session_factory: Callable[[], Session], publisher: TaskPublisher) -> None:
        super().__init__()
        self.session_factory = session_factory
        self.publisher = publisher
        self.session: Session | None = None

    def __enter__(self) -> SqlUnitOfWork:
        super().__enter__()
        self.session = self.session_factory()
        self.repo = Repository(self.session)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            super().__exit__(exc_type, exc, tb)
            if self.session is not None:
                self.session.close()
        except DBAPIError as cleanup:  # rolling back on a dead connection fails too
            log.debug("rollback on a broken connection: %s", cleanup)
        finally:
            self.session = None
        if _unreachable(exc):
            raise StorageUnavailable(f"the database is unavailable: {_first_line(exc)}") from exc

    def _commit(self) -> None:
        assert self.session is not None, "commit outside `with`"
        try:
            self.session.commit()
        except IntegrityError as exc:
            self.session.rollback()
            raise Conflict(str(exc.orig)) from exc

    def _publish(self, message: TaskMessage) -> None:
        self.publisher.publish(message)

    def rollback(self) -> None:
        if self.session is not None:
            self.session.rollback()


_SQLITE_TRANSIENT = ("unable to open database file", "database is locked", "disk i/o error")


def _unreachable(exc: BaseException | None) -> bool:
    """The database could not be reached (as opposed to a bad statement or a constraint).
    PostgreSQL drivers raise OperationalError for connection trouble only; SQLite uses it for
    syntax errors too, so there only the transient messages count."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if isinstance(exc.orig, sqlite3.Error):
        return any(m in str(exc.orig).lower() for m in _SQLITE_TRANSIENT)
    return True


def _first_line(exc: BaseException | None) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0] if exc else ""


class SqlUnitOfWorkFactory:
    """Makes SqlUnitOfWorks; on a SQLite file it also reads a cheap change counter for pollers."""

    def __init__(self, engine: Engine, publisher: TaskPublisher) -> None:
        self.sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self.publisher = publisher
        self._database = _sqlite_file(engine)
        self._watch: sqlite3.Connection | None = None
        self._watch_pid = 0
        self._lock = threading.Lock()

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.sessions, self.publisher)

    def data_version(self) -> int | None:
        """A number that changes whenever a connection commits to the database (SQLite's
        `PRAGMA data_version` on a connection that never writes: ~10 us, no lock); None on
        other databases. A poller may skip its query while the number stays the same."""
        if self._database is None:
            return None
        with self._lock:
            if self._watch is None or self._watch_pid != os.getpid():  # never a parent's connection
                self._watch = sqlite3.connect(self._database, check_same_thread=False, isolation_level=None)
                self._watch_pid = os.getpid()
            return int(self._watch.execute("PRAGMA data_version").fetchone()[0])


def _sqlite_file(engine: Engine) -> str | None:
    database = engine.url.database
    if (
        engine.dialect.name != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
    ):
        return None
    return database


def sql_unit_of_work_factory(engine: Engine, publisher: TaskPublisher) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(engine, publisher)
