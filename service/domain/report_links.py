"""Signed, expiring links to a job's report page and annotated image.

A link carries the merchant, the job, an expiry (Unix seconds) and an HMAC-SHA256 of
the three under a server secret (IDETEX_REPORT_LINK_SECRET); whoever holds it can open
that one job's page until it expires, and nothing else. Pure: the time is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlencode

REPORT_PATH: Final = "/reports/"
ANNOTATED_NAME: Final = "annotated.jpg"
_CONTEXT: Final = b"idetex-report-link:v1"


class BadLink(Exception):
    """The link's signature does not match, or it has expired; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "MISSING", "MALFORMED", "BAD_SIGNATURE" or "EXPIRED"


@dataclass(frozen=True)
class LinkGrant:
    """What a verified link allows: one merchant's one job."""

    merchant_id: str
    job_id: str
    expires: int


def signature(secret: str, merchant_id: str, job_id: str, expires: int) -> str:
    """urlsafe base64 (no padding) of HMAC-SHA256(secret, context, merchant, job, expiry)."""
    message = b"\n".join((_CONTEXT, merchant_id.encode(), job_id.encode(), str(int(expires)).encode()))
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def query(secret: str, merchant_id: str, job_id: str, expires: int) -> str:
    """`m=...&exp=...&sig=...`: the query string of both of the job's links."""
    sig = signature(secret, merchant_id, job_id, expires)
    return urlencode({"m": merchant_id, "exp": str(int(expires)), "sig": sig})


def report_url(base_url: str, secret: str, merchant_id: str, job_id: str, expires: int) -> str:
    """The HTML report page: <base>/reports/<job>?m=&exp=&sig=."""
    q = query(secret, merchant_id, job_id, expires)
    return f"{base_url.rstrip('/')}{REPORT_PATH}{quote(job_id, safe='')}?{q}"


def annotated_url(base_url: str, secret: str, merchant_id: str, job_id: str, expires: int) -> str:
    """The annotated JPEG: <base>/reports/<job>/annotated.jpg?m=&exp=&sig=."""
    q = query(secret, merchant_id, job_id, expires)
    return f"{base_url.rstrip('/')}{REPORT_PATH}{quote(job_id, safe='')}/{ANNOTATED_NAME}?{q}"


def verify(secret: str, job_id: str, params: dict[str, str], now: float) -> LinkGrant:
    """The grant of a link's query parameters for `job_id`; BadLink when they do not hold."""
    merchant_id, exp, sig = params.get("m", ""), params.get("exp", ""), params.get("sig", "")
    if not (merchant_id and exp and sig):
        raise BadLink("MISSING")
    try:
        expires = int(exp)
    except ValueError:
        raise BadLink("MALFORMED") from None
    expected = signature(secret, merchant_id, job_id, expires)
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise BadLink("BAD_SIGNATURE")
    if now >= expires:
        raise BadLink("EXPIRED")
    return LinkGrant(merchant_id=merchant_id, job_id=job_id, expires=expires)
