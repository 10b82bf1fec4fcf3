"""Merchant API keys: `idk_<prefix>_<secret>`, stored as HMAC-SHA256(pepper, key) and found by prefix."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from service.adapters.db import ApiKey
from service.adapters.repository import Repository
from service.domain.errors import Unauthenticated

_KEY = re.compile(r"^idk_([0-9a-f]{12})_([0-9a-f]{48})$")


def hash_api_key(api_key: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), api_key.encode(), hashlib.sha256).hexdigest()


def new_api_key(merchant_id: str, pepper: str) -> tuple[str, ApiKey]:
    """A fresh key and the row that stores only its hash."""
    prefix = secrets.token_hex(6)
    api_key = f"idk_{prefix}_{secrets.token_hex(24)}"
    return api_key, ApiKey(
        merchant_id=merchant_id, prefix=prefix, key_hash=hash_api_key(api_key, pepper), revoked=False
    )


def check_api_key(repo: Repository, api_key: str, pepper: str) -> str:
    """The merchant id of a valid, unrevoked key; Unauthenticated otherwise (same message for all)."""
    match = _KEY.match(api_key.strip())
    row = repo.api_key_by_prefix(match.group(1)) if match else None
    if (
        row is None
        or row.revoked
        or not hmac.compare_digest(row.key_hash, hash_api_key(api_key.strip(), pepper))
    ):
        raise Unauthenticated("invalid API key")
    return row.merchant_id
