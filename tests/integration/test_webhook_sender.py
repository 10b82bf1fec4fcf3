"""HttpWebhookSender against a real local HTTP server: outcomes are reported, never raised."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from service.adapters.webhook import HttpWebhookSender, signed_headers, verify

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Handler(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        Handler.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.path == "/ok":
            self.send_response(204)
        elif self.path == "/redirect":
            self.send_response(307)
            self.send_header("location", "http://169.254.169.254/latest/meta-data")
        elif self.path == "/slow":
            time.sleep(2)
            self.send_response(200)
        else:
            self.send_response(500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_2xx_answer_is_a_success_and_the_receiver_can_verify_it(base_url):
    """The receiver gets the body and Standard Webhooks headers that verify with the secret."""
    body = b'{"type":"report.completed"}'
    now = int(time.time())
    result = HttpWebhookSender(timeout_s=3).send(
        f"{base_url}/ok", signed_headers(SECRET, "msg_1", now, body), body
    )
    assert result.ok and result.status_code == 204 and result.error is None
    path, headers, received = Handler.received[-1]
    assert (path, received) == ("/ok", body)
    assert verify(SECRET, headers, received, now=now)


def test_an_error_status_is_reported_not_raised(base_url):
    """A 500 comes back as a failed result with the status code."""
    result = HttpWebhookSender(timeout_s=3).send(f"{base_url}/fail", {}, b"{}")
    assert (result.ok, result.status_code) == (False, 500)


def test_redirects_are_not_followed(base_url):
    """A redirect (possibly into a private network) is reported as such, not followed."""
    result = HttpWebhookSender(timeout_s=3).send(f"{base_url}/redirect", {}, b"{}")
    assert (result.ok, result.status_code) == (False, 307)


def test_a_slow_receiver_hits_the_timeout(base_url):
    """The short timeout turns a hanging receiver into a failed result with no status."""
    start = time.monotonic()
    result = HttpWebhookSender(timeout_s=0.5).send(f"{base_url}/slow", {}, b"{}")
    assert result.status_code is None and result.error
    assert time.monotonic() - start < 1.9


def test_a_closed_port_is_reported_as_a_connection_error():
    """Nothing listening: a failed result with the reason, no exception."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = HttpWebhookSender(timeout_s=1).send(f"http://127.0.0.1:{port}/", {}, b"{}")
    assert result.status_code is None and "refused" in (result.error or "").lower()


def test_the_connection_goes_to_the_vetted_address_not_a_new_dns_answer(base_url):
    """With an address given, the host name is only sent as Host: DNS is not asked again."""
    port = base_url.rsplit(":", 1)[1]
    result = HttpWebhookSender(timeout_s=3).send(f"http://hooks.invalid:{port}/ok", {}, b"{}", "127.0.0.1")
    assert result.status_code == 204
    _, headers, _ = Handler.received[-1]
    assert headers["host"] == f"hooks.invalid:{port}"
