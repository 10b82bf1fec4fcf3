"""Merchant feedback webhooks: Standard Webhooks signing and an HTTP sender.

Signature (https://www.standardwebhooks.com): headers `webhook-id`, `webhook-timestamp`
(unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
keyed with the base64-decoded part of a `whsec_<base64>` secret. The sender refuses
private, loopback and link-local destinations unless allowed, follows no redirects and
uses short timeouts; it reports the outcome instead of raising.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
import urllib.error
import urllib.request
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


def check_destination(url: str, allow_private: bool, resolve: Resolver = resolve_host) -> None:
    """Raise DestinationRefused unless `url` is http(s) to public addresses (or private ones are allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused(f"webhook URL must be http(s)://host/...: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(parts.hostname, port)
    except OSError as exc:
        raise DestinationRefused(f"cannot resolve {parts.hostname}: {exc}") from exc
    if not addresses:
        raise DestinationRefused(f"{parts.hostname} resolves to no address")
    if allow_private:
        return
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise DestinationRefused(f"{parts.hostname} resolves to non-public address {ip}")


@dataclass(frozen=True)
class DeliveryResult:
    status_code: int | None  # None when no HTTP answer came back
    error: str | None  # None on a 2xx answer

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(abc.ABC):
    @abc.abstractmethod
    def send(self, url: str, headers: Mapping[str, str], body: bytes) -> DeliveryResult:
        """POST `body` to `url`; never raises for network or HTTP errors."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect could point into a private network: report it instead


class HttpWebhookSender(WebhookSender):
    def __init__(self, timeout_s: float = 5.0, max_response_bytes: int = 64 * 1024) -> None:
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._opener = urllib.request.build_opener(_NoRedirect())

    def send(self, url: str, headers: Mapping[str, str], body: bytes) -> DeliveryResult:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        request.add_header("user-agent", "idetex-webhooks/1")
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                response.read(self.max_response_bytes)
                return DeliveryResult(int(response.status), None)
        except urllib.error.HTTPError as exc:
            return DeliveryResult(int(exc.code), f"HTTP {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return DeliveryResult(None, f"{type(exc).__name__}: {reason}")
