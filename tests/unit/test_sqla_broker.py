"""The embedded SQLite broker: messages flow, idle polls skip the locked query, a delivered
message leaves no row behind, and kombu's own path reads what the fast path writes."""

from __future__ import annotations

import sqlite3
import threading
from queue import Empty

import pytest
from kombu import Connection
from kombu.transport import sqlalchemy as kombu_sqla

from workers import sqla_broker


@pytest.fixture()
def channel(tmp_path):
    sqla_broker.register()
    conn = Connection(
        f"sqla+sqlite:///{tmp_path / 'broker.db'}", transport_options={"polling_interval": 0.01}
    )
    channel = conn.default_channel
    assert isinstance(channel, sqla_broker.Channel)
    yield channel
    conn.release()


def count_queries(channel, monkeypatch) -> list[str]:
    calls: list[str] = []
    original = sqla_broker.Channel._take

    def counting(self, direct, queue):
        calls.append(queue)
        return original(self, direct, queue)

    monkeypatch.setattr(sqla_broker.Channel, "_take", counting)
    return calls


def rows(path) -> list[tuple[int, int]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, visible FROM kombu_message ORDER BY id").fetchall()


def test_messages_put_are_got_in_order(channel):
    """A queue hands back what was put, oldest first, then is empty."""
    channel._put("q", {"n": 1})
    channel._put("q", {"n": 2})
    assert [channel._get("q")["n"], channel._get("q")["n"]] == [1, 2]
    with pytest.raises(Empty):
        channel._get("q")


def test_idle_polls_skip_the_query_until_something_is_committed(channel, tmp_path, monkeypatch):
    """After an empty poll, polls do not query again until another connection commits a message."""
    queries = count_queries(channel, monkeypatch)
    for _ in range(5):
        with pytest.raises(Empty):
            channel._get("q")
    assert len(queries) <= 2  # the first poll (and one more if creating the queue row committed)
    producer = Connection(f"sqla+sqlite:///{tmp_path / 'broker.db'}")
    producer.default_channel._put("q", {"n": 3})
    producer.release()
    assert channel._get("q") == {"n": 3}


def test_a_delivered_message_leaves_no_row_behind(channel, tmp_path):
    """kombu's own get kept every delivered message as an invisible row; here the table empties."""
    for n in range(20):
        channel._put("q", {"n": n})
    assert len(rows(tmp_path / "broker.db")) == 20
    assert [channel._get("q")["n"] for _ in range(20)] == list(range(20))
    assert rows(tmp_path / "broker.db") == []


def test_kombus_own_path_and_the_fast_path_read_each_others_messages(channel):
    """Same tables and columns: a message kombu's ORM put is got here, and the other way round."""
    kombu_sqla.Channel._put(channel, "q", {"n": "orm"})
    assert channel._get("q") == {"n": "orm"}
    channel._put("q", {"n": "fast"})
    assert kombu_sqla.Channel._get(channel, "q") == {"n": "fast"}


def test_dead_rows_of_earlier_versions_are_deleted_when_a_channel_opens_the_file(tmp_path):
    """Rows kombu marked invisible (never read again) go; messages still waiting stay."""
    sqla_broker.register()
    url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    old = Connection(url)
    for n in range(3):
        kombu_sqla.Channel._put(old.default_channel, "q", {"n": n})
    kombu_sqla.Channel._get(old.default_channel, "q")  # kombu's get: the row stays, invisible
    old.release()
    assert [visible for _, visible in rows(tmp_path / "broker.db")] == [0, 1, 1]
    new = Connection(url)
    try:
        assert new.default_channel._get("q") == {"n": 1}
        assert [visible for _, visible in rows(tmp_path / "broker.db")] == [1]
    finally:
        new.release()


def test_two_consumers_never_get_the_same_message(tmp_path):
    """Gets from two connections at once share the messages out: each is delivered exactly once."""
    sqla_broker.register()
    url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    producer = Connection(url)
    for n in range(200):
        producer.default_channel._put("q", {"n": n})
    producer.release()
    got: list[list[int]] = [[], []]

    def consume(k: int) -> None:
        conn = Connection(url)
        try:
            while True:
                try:
                    got[k].append(conn.default_channel._get("q")["n"])
                except Empty:
                    return
        finally:
            conn.release()

    threads = [threading.Thread(target=consume, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got[0] + got[1]) == list(range(200))
    assert got[0] == sorted(got[0]) and got[1] == sorted(got[1])  # each takes the oldest first
