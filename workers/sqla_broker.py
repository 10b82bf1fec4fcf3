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

On SQLite the put and the get are also one plain SQL statement each on the channel's own
sqlite3 connection (autocommit), instead of kombu's ORM queries and commits: about 1.7 ms
of CPU each through the ORM, well under 0.2 ms this way, and every job message passes
through both. A get deletes the message it takes (`DELETE ... RETURNING`). kombu marks it
invisible instead and never reads it again (an unacked message is put again as a new row
when the worker restores it), so its table grew by one dead row per message for as long
as the broker file lived; rows left that way by earlier versions are deleted when a
channel first opens the file. Same tables and columns as kombu's, so either path reads
what the other wrote.
"""

from __future__ import annotations

import os
import sqlite3
from queue import Empty
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import sqlalchemy as kombu_sqla
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
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


# DELETE ... RETURNING needs SQLite 3.35; an older library takes kombu's ORM path
_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
BUSY_TIMEOUT_S = 5.0  # sqlite3's own default, when the transport options set no connect timeout


class Channel(kombu_sqla.Channel):
    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._watch: sqlite3.Connection | None = None
        self._idle_at: dict[str, int] = {}
        self._direct: sqlite3.Connection | None = None
        self._direct_pid = 0
        self._queue_ids: dict[str, int] = {}

    def _engine_from_config(self) -> Engine:
        conninfo = self.connection.client
        options = {k: v for k, v in conninfo.transport_options.items() if k not in _NOT_ENGINE_OPTIONS}
        engine = create_engine(conninfo.hostname, **options)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _wal)
        return engine

    def _data_version(self) -> int | None:
        """SQLite's commit counter as seen from a connection that never writes; None elsewhere."""
        if self._watch is None:
            database = self._sqlite_file()
            if database is None:
                return None
            self._watch = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def _sqlite_file(self) -> str | None:
        engine = self.session.bind
        if engine is None or engine.dialect.name != "sqlite":
            return None
        database = engine.url.database
        return None if not database or database == ":memory:" else database

    def _connection(self) -> sqlite3.Connection | None:
        """This channel's own autocommit connection to the SQLite broker file (made again in a
        forked child); None for other databases and old SQLite libraries: kombu's path then."""
        if self._direct is not None and self._direct_pid == os.getpid():
            return self._direct
        database = self._sqlite_file() if _RETURNING else None
        if database is None:
            return None
        self._queue_ids.clear()
        # the same wait for SQLite's write lock as the engine's connections (celery_app sets it)
        connect_args = self.connection.client.transport_options.get("connect_args", {})
        timeout = connect_args.get("timeout", BUSY_TIMEOUT_S)
        direct = sqlite3.connect(database, timeout=timeout, isolation_level=None, check_same_thread=False)
        _wal(direct, None)
        # dead rows of kombu's own gets (visible = 0; never read again), from earlier versions
        direct.execute(f"DELETE FROM {self.message_tablename} WHERE visible = 0")
        self._direct, self._direct_pid = direct, os.getpid()
        return direct

    def _queue_id(self, queue: str) -> int:
        """The queue's row id (kombu never deletes queue rows, so it is cached)."""
        if queue not in self._queue_ids:
            self._queue_ids[queue] = int(self._get_or_create(queue).id)
        return self._queue_ids[queue]

    # kombu names the argument `message` in the virtual base and `payload` in its SQLAlchemy channel
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        direct = self._connection()
        if direct is None:
            return super()._put(queue, payload, **kwargs)
        direct.execute(
            f"INSERT INTO {self.message_tablename} (visible, payload, version, queue_id) VALUES (1, ?, 1, ?)",
            (dumps(payload), self._queue_id(queue)),
        )

    def _take(self, direct: sqlite3.Connection, queue: str) -> Any:
        """Delete the queue's oldest visible message and return its payload (Empty when none),
        in one statement: two consumers never get the same message."""
        table = self.message_tablename
        row = direct.execute(
            f"DELETE FROM {table} WHERE id = (SELECT id FROM {table} WHERE queue_id = ? AND visible = 1 "
            "ORDER BY timestamp, id LIMIT 1) RETURNING payload",
            (self._queue_id(queue),),
        ).fetchone()
        if row is None:
            raise Empty()
        return loads(bytes_to_str(row[0]))

    def _get(self, queue: str, timeout: Any = None) -> Any:
        version = self._data_version()
        if version is not None and self._idle_at.get(queue) == version:
            raise Empty()
        try:
            direct = self._connection()
            return super()._get(queue) if direct is None else self._take(direct, queue)
        except Empty:
            if version is not None:
                self._idle_at[queue] = version
            raise

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if self._direct is not None and self._direct_pid == os.getpid():
            self._direct.close()
        self._direct = None
        super().close()


class Transport(kombu_sqla.Transport):
    Channel = Channel


def register() -> None:
    """Use this transport for sqla+ and sqlalchemy+ broker URLs in this process."""
    TRANSPORT_ALIASES["sqla"] = "workers.sqla_broker:Transport"
    TRANSPORT_ALIASES["sqlalchemy"] = "workers.sqla_broker:Transport"
