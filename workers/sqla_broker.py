"""kombu's SQLAlchemy transport, made cheap to poll on SQLite (the embedded broker).

The stock channel takes SQLite's write lock and runs an ORM query on every poll: about
2 ms of CPU, so a 10 ms poll interval costs a fifth of a core while idle. Here a poll
first asks SQLite's `PRAGMA data_version` on a dedicated connection, which changes only
when another connection commits; while it is unchanged since the last empty poll of a
queue, that queue is still empty and the query is skipped.

The broker database runs in WAL mode with synchronous=NORMAL (see `_wal`).

The version is read before the query, so a message committed at any moment after it
changes the version and is picked up by the next poll. Other databases (PostgreSQL,
MySQL) poll as kombu does. The `polling_interval` transport option is honoured instead
of being passed on to `create_engine`. Registered for `sqla+` / `sqlalchemy+` URLs by
workers.celery_app.
"""

from __future__ import annotations

import sqlite3
from queue import Empty
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

# transport options that are kombu's or ours, not create_engine's
_NOT_ENGINE_OPTIONS = (
    "queue_tablename",
    "message_tablename",
    "callback",
    "errback",
    "max_retries",
    "interval_start",
    "interval_step",
    "interval_max",
    "retry_errors",
    "polling_interval",
)


def _wal(dbapi_connection: Any, _record: Any) -> None:
    """Write-ahead log, synced at checkpoints: a commit costs ~0.05 ms instead of ~20 ms of fsyncs
    (SQLite's default rollback journal), and every message passes through two (put, get).
    A power cut may lose the last commits, never corrupt the file; a lost job message is
    requeued by the stale-job sweeper (IDETEX_STALE_PENDING_S)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Channel(kombu_sqla.Channel):
    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._watch: sqlite3.Connection | None = None
        self._idle_at: dict[str, int] = {}

    def _engine_from_config(self) -> Engine:
        conninfo = self.connection.client
        options = {k: v for k, v in conninfo.transport_options.items() if k not in _NOT_ENGINE_OPTIONS}
        engine = create_engine(conninfo.hostname, **options)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _wal)
        return engine

    def _data_version(self) -> int | None:
        """SQLite's commit counter as seen from a connection that never writes; None elsewhere."""
        engine = self.session.bind
        if engine is None or engine.dialect.name != "sqlite":
            return None
        if self._watch is None:
            database = engine.url.database
            if not database or database == ":memory:":
                return None
            self._watch = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def _get(self, queue: str, timeout: Any = None) -> Any:
        version = self._data_version()
        if version is not None and self._idle_at.get(queue) == version:
            raise Empty()
        try:
            return super()._get(queue)
        except Empty:
            if version is not None:
                self._idle_at[queue] = version
            raise

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        super().close()


class Transport(kombu_sqla.Transport):
    Channel = Channel


def register() -> None:
    """Use this transport for sqla+ and sqlalchemy+ broker URLs in this process."""
    TRANSPORT_ALIASES["sqla"] = "workers.sqla_broker:Transport"
    TRANSPORT_ALIASES["sqlalchemy"] = "workers.sqla_broker:Transport"
