"""API keys are stored hashed and compared in constant time; webhook URLs naming private
addresses are refused when created, whatever notation the address is written in."""

from __future__ import annotations

import contextlib
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from service import credentials
from service.adapters import webhook as wh
from service.domain.errors import InvalidRequest, Unauthenticated


def _all_cells(database_url: str) -> str:
    """Every value of every table, as one string."""
    engine = create_engine(database_url)
    cells: list[str] = []
    with engine.connect() as conn:
        tables = [r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))]
        for table in tables:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                cells.extend(str(v) for v in row)
    engine.dispose()
    return "\n".join(cells)


def test_no_plaintext_api_key_is_stored(stack):
    """The database holds HMAC-SHA256(pepper, key) and the public prefix, never the key or its secret half."""
    merchant_id, key = stack.container.create_merchant("hash-shop")
    second = stack.container.issue_api_key(merchant_id)
    stored = _all_cells(stack.settings.database_url)
    for k in (key, second):
        prefix, secret = k.split("_")[1:]
        assert k not in stored and secret not in stored
        assert prefix in stored  # the lookup prefix is public by design
        digest = hmac.new(stack.settings.api_key_pepper.encode(), k.encode(), hashlib.sha256).hexdigest()
        assert digest in stored


def test_api_keys_are_compared_in_constant_time(stack, monkeypatch):
    """Authentication compares the stored hash with hmac.compare_digest, for right and wrong keys."""
    _merchant_id, key = stack.container.create_merchant("timing-shop")
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(credentials.hmac, "compare_digest", spy)
    stack.container.authenticate(key)
    wrong = key[:-1] + ("0" if key[-1] != "0" else "1")
    with pytest.raises(Unauthenticated):
        stack.container.authenticate(wrong)
    assert len(calls) == 2
    assert all(len(a) == len(b) == 64 for a, b in calls)  # hex digests, never the keys themselves


def test_a_wrong_key_and_an_unknown_prefix_fail_alike(stack):
    """Same error and message whether the prefix exists or not: no oracle for valid prefixes."""
    _merchant_id, key = stack.container.create_merchant("oracle-shop")
    messages = set()
    for candidate in (key[:-1] + "x", "idk_000000000000_" + "0" * 48, "garbage"):
        with pytest.raises(Unauthenticated) as err:
            stack.container.authenticate(candidate)
        messages.add(err.value.message)
    assert len(messages) == 1


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", ["127.0.0.1"]),
        ("2130706433", ["127.0.0.1"]),
        ("0x7f.1", ["127.0.0.1"]),
        ("[::1]", ["::1"]),
        ("localhost", ["127.0.0.1", "::1"]),
        ("api.localhost", ["127.0.0.1", "::1"]),
        ("example.com", None),
        ("hooks.shop.example", None),
    ],
)
def test_literal_addresses_are_read_without_dns(host, expected):
    assert wh.literal_addresses(host) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0177.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://100.64.0.1/hook",  # carrier-grade NAT
    ],
)
def test_private_webhook_urls_are_refused_when_created(stack, url):
    with pytest.raises(InvalidRequest) as err:
        stack.container.create_webhook(stack.merchants["acme"], url)
    assert (err.value.field, err.value.reason) == ("url", "PRIVATE_DESTINATION")


def test_public_names_are_accepted_when_created_and_checked_at_delivery(stack):
    """A DNS name is not resolved when created (it may change): the sender checks it at each attempt."""
    view = stack.container.create_webhook(stack.merchants["acme"], "https://hooks.shop.example/idetex")
    assert view.url == "https://hooks.shop.example/idetex"


@pytest.mark.parametrize(
    "url", ["http://hooks.shop.example:99999/x", "http://hooks.shop.example:port/x", "http:///x"]
)
def test_webhook_urls_without_a_usable_host_or_port_are_refused_when_created(stack, url):
    with pytest.raises(InvalidRequest) as err:
        stack.container.create_webhook(stack.merchants["acme"], url)
    assert (err.value.field, err.value.reason) == ("url", "BAD_URL")


def test_a_stored_url_with_a_bad_port_is_refused_at_delivery_not_crashed():
    """An endpoint stored before creation-time checks existed: the delivery is 'refused'."""
    with pytest.raises(wh.DestinationRefused, match="invalid port"):
        wh.check_destination("http://hooks.shop.example:99999/x", allow_private=False)


_url_texts = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda scheme, host, rest: f"{scheme}://{host}{rest}",
        st.sampled_from(["http", "https", "s3", "file", "gopher", ""]),
        st.one_of(
            st.text(max_size=60),
            st.sampled_from(["[::1]", "0x7f.1", "a@b:c", "bucket:99999", "[fe80::1%eth0]"]),
        ),
        st.text(max_size=60),
    ),
)


@settings(max_examples=400, deadline=None)
@given(_url_texts)
def test_any_url_text_gets_a_typed_answer(text):
    """Webhook URLs, s3:// inputs and audit sources: accepted or InvalidRequest, nothing else
    (no DNS is asked: only literals are checked when an endpoint is created)."""
    from types import SimpleNamespace

    from service import webhooks
    from service.adapters.blobs import parse_s3_uri
    from service.adapters.s3catalogue import split_prefix

    deps = SimpleNamespace(webhook_allow_private=False, webhook_allow_networks=())
    for check in (lambda t: webhooks._check_url(t, deps), parse_s3_uri, split_prefix):
        with contextlib.suppress(InvalidRequest):
            check(text)
