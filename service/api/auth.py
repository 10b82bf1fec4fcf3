"""Merchant API keys from call metadata: `x-api-key: <key>` or `authorization: Bearer <key>`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from service.domain.errors import Unauthenticated

API_KEY_HEADER = "x-api-key"
AUTHORIZATION_HEADER = "authorization"


def api_key_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The API key the caller sent, or None. `x-api-key` wins over `authorization`."""
    bearer: str | None = None
    for key, value in metadata or ():
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        name = key.lower()
        if name == API_KEY_HEADER and text.strip():
            return text.strip()
        if name == AUTHORIZATION_HEADER:
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
    return bearer


def authenticate(
    metadata: Iterable[tuple[str, str | bytes]] | None,
    check_key: Callable[[str], str],
    claimed_merchant_id: str = "",
) -> str:
    """The merchant id of the caller's key; Unauthenticated without one or when the claim differs.

    `check_key` is the container's `authenticate(api_key) -> merchant_id`.
    """
    api_key = api_key_from_metadata(metadata)
    if api_key is None:
        raise Unauthenticated(
            f"missing API key: send `{API_KEY_HEADER}: <key>` or `authorization: Bearer <key>`"
        )
    merchant_id = check_key(api_key)
    check_claim(merchant_id, claimed_merchant_id)
    return merchant_id


def check_claim(merchant_id: str, claimed_merchant_id: str) -> None:
    """A request may name its merchant; it must then be the key's (else Unauthenticated)."""
    if claimed_merchant_id and claimed_merchant_id != merchant_id:
        raise Unauthenticated("merchant_id does not match the API key")
