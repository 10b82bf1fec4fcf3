"""The embedded SQLite broker: messages flow, and idle polls skip the locked query."""

from __future__ import annotations

from queue import Empty

import pytest
from kombu import Connection

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
    original = type(channel).__mro__[1]._get

    def counting(self, queue):
        calls.append(queue)
        return original(self, queue)

    monkeypatch.setattr(type(channel).__mro__[1], "_get", counting)
    return calls


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
