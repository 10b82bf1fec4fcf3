"""Merchant feedback webhooks: Standard Webhooks signing and an HTTP sender.

Signature (https://www.standardwebhooks.com): headers `webhook-id`, `webhook-timestamp`
(unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
keyed with the base64-decoded part of a `whsec_<base64>` secret. The sender refuses
private, loopback and link-local destinations unless allowed, follows no redirects and
uses short timeouts, connects to the vetted address; it reports the outcome instead of raising.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import hmac
import http.client
import ipaddress
import secrets
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"


class DestinationRefused(Exception):
    """The webhook URL is not an allowed destination (scheme, unresolvable, private network)."""


class WebhookDeliveryFailed(Exception):
    """A delivery attempt did not get a 2xx answer; the task retries it with backoff."""


def generate_secret(num_bytes: int = 32) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(num_bytes)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(raw, validate=True)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: int, tolerance_s: int = 300) -> bool:
    """What a receiver checks: a matching v1 signature and a timestamp within the tolerance."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, timestamp = lower["webhook-id"], int(lower["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    offered = lower.get("webhook-signature", "").split()
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


Resolver = Callable[[str, int], list[str]]


def resolve_host(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def literal_addresses(host: str) -> list[str] | None:
    """The addresses a host names without DNS: an IP literal in any form the C library reads
    (`2130706433`, `0x7f.1`, `[::1]`), or `localhost`; None for a name only DNS can answer."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return ["127.0.0.1", "::1"]
    try:
        infos = socket.getaddrinfo(name, None, flags=socket.AI_NUMERICHOST, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return [str(info[4][0]) for info in infos]


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """ "127.0.0.1/32, 10.1.0.0/16" -> networks; ValueError for a malformed entry."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def check_destination(
    url: str,
    allow_private: bool,
    resolve: Resolver = resolve_host,
    allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (),
) -> str:
    """The address to connect to for `url`; DestinationRefused unless it is http(s) and every
    address the host resolves to is public, inside an `allowed` network, or private networks
    are allowed altogether."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused(f"webhook URL must be http(s)://host/...: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # a port out of range or not a number: refused, not a crashed task
        raise DestinationRefused(f"webhook URL has an invalid port: {exc}") from exc
    try:
        addresses = resolve(parts.hostname, port)
    except OSError as exc:
        raise DestinationRefused(f"cannot resolve {parts.hostname}: {exc}") from exc
    if not addresses:
        raise DestinationRefused(f"{parts.hostname} resolves to no address")
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if any(ip in network for network in allowed):
                continue
            if not ip.is_global or ip.is_multicast:
                raise DestinationRefused(f"{parts.hostname} resolves to non-public address {ip}")
    return addresses[0]


@dataclass(frozen=True)
class DeliveryResult:
    status_code: int | None  # None when no HTTP answer came back
    error: str | None  # None on a 2xx answer
    headers: Mapping[str, str] | None = None  # response headers the retry policy reads (lower-case)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(abc.ABC):
    @abc.abstractmethod
    def send(
        self, url: str, headers: Mapping[str, str], body: bytes, address: str | None = None
    ) -> DeliveryResult:
        """POST `body` to `url` (connecting to `address` when given, the one that was checked);
        never raises for network or HTTP errors."""


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a vetted address while speaking to the URL's host name."""

    def __init__(self, host: str, address: str | None, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address or self.host, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a vetted address, with the URL's host name for SNI and certificate checks."""

    def __init__(self, host: str, address: str | None, **kwargs: Any) -> None:
        super().__init__(host, context=ssl.create_default_context(), **kwargs)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address or self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class HttpWebhookSender(WebhookSender):
    """POSTs with http.client: no redirects are followed (one could lead into a private
    network), and the connection goes to the address that passed check_destination, so a
    second DNS answer cannot swap in another one."""

    def __init__(self, timeout_s: float = 5.0, max_response_bytes: int = 64 * 1024) -> None:
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes

    def send(
        self, url: str, headers: Mapping[str, str], body: bytes, address: str | None = None
    ) -> DeliveryResult:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return DeliveryResult(None, f"not an http(s) URL: {url!r}")
        kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        conn = kind(parts.hostname, address, port=parts.port, timeout=self.timeout_s)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("POST", path, body=body, headers={"user-agent": "idetex-webhooks/1", **headers})
            response = conn.getresponse()
            response.read(self.max_response_bytes)
            status = int(response.status)
            error = None if 200 <= status < 300 else f"HTTP {status} {response.reason}"
            kept = {k.lower(): v for k, v in response.getheaders() if k.lower() == "retry-after"}
            return DeliveryResult(status, error, kept)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return DeliveryResult(None, f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
