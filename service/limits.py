"""Lengths of the request fields the service stores: refused above them (INVALID_ARGUMENT,
reason TOO_LONG) instead of failing in the database (PostgreSQL's VARCHAR limits) or being
silently cut. docs/reliability.md lists every input size limit."""

from __future__ import annotations

from typing import Final

from service.domain.errors import InvalidRequest

MAX_PRODUCT_ID: Final = 200  # jobs.product_id, reports.product_id
MAX_IDEMPOTENCY_KEY: Final = 200  # jobs.idempotency_key
MAX_URI: Final = 2000  # s3:// inputs, audit sources and destinations, webhook URLs


def check_length(field: str, value: str | None, limit: int) -> None:
    if value and len(value) > limit:
        raise InvalidRequest(field, "TOO_LONG", f"{field} is {len(value)} characters; the limit is {limit}")
