"""The embedded SQLite broker commits through a write-ahead log (no rollback-journal fsyncs)."""

from __future__ import annotations

import sqlite3

from kombu import Connection

from workers import sqla_broker


def test_the_sqlite_broker_file_is_in_wal_mode(tmp_path):
    """After the first message, the broker file reports journal_mode=wal, and messages still flow."""
    sqla_broker.register()
    conn = Connection(
        f"sqla+sqlite:///{tmp_path / 'broker.db'}", transport_options={"polling_interval": 0.01}
    )
    try:
        channel = conn.default_channel
        channel._put("q", {"n": 1})
        with sqlite3.connect(tmp_path / "broker.db") as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert channel._get("q") == {"n": 1}
    finally:
        conn.release()
