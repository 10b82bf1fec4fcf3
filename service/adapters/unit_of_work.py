"""Unit of work over a SQLAlchemy session: roll back unless committed; publish after commit.

with uow_factory() as uow:
    uow.repo.add(job)
    uow.publish_after_commit(TaskMessage(PROCESS_IMAGE, (job.id,)))
    uow.commit()   # the message reaches the broker only once the row is durable
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.adapters.publisher import TaskMessage, TaskPublisher
from service.adapters.repository import Repository

log = logging.getLogger(__name__)


class Conflict(Exception):
    """The commit broke a unique constraint (for example a concurrent idempotency key)."""


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
        super().__exit__(exc_type, exc, tb)
        if self.session is not None:
            self.session.close()
            self.session = None

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


def sql_unit_of_work_factory(engine: Engine, publisher: TaskPublisher) -> Callable[[], SqlUnitOfWork]:
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    return lambda: SqlUnitOfWork(sessions, publisher)
