"""Merchants and their credentials: create, issue API keys, authenticate, webhook secret;
their policy overrides of the marketplace profiles."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from service import credentials
from service.adapters import webhook as wh
from service.adapters.db import Merchant, MerchantPolicy, WebhookEndpoint
from service.deps import Deps
from service.domain.errors import InvalidRequest, NotFound
from service.domain.policy import KEYS, check_overrides
from service.domain.profiles import get_profile
from service.settings import MODEL_CHOICES
from service.webhooks import DEFAULT_EVENTS


def _check_choice(model_choice: str | None) -> None:
    if model_choice is not None and model_choice not in MODEL_CHOICES:
        raise InvalidRequest(
            "model_choice", "UNKNOWN", f"model choice must be one of {', '.join(MODEL_CHOICES)}"
        )


def create_merchant(
    deps: Deps, name: str, webhook_url: str | None = None, model_choice: str | None = None
) -> tuple[str, str]:
    """A new merchant with a webhook secret and a first API key; returns (merchant_id, api_key).
    `model_choice` (default | mllm | both) overrides the profile's and the global choice."""
    _check_choice(model_choice)
    if not name.strip():
        raise InvalidRequest("name", "EMPTY", "a merchant needs a name")
    if webhook_url and not webhook_url.startswith(("http://", "https://")):
        raise InvalidRequest("webhook_url", "BAD_URL", "the webhook URL must be http(s)://...")
    merchant_id = str(uuid.uuid4())
    with deps.uow() as uow:
        uow.repo.add(
            Merchant(
                id=merchant_id,
                name=name.strip(),
                model_choice=model_choice,
            )
        )
        uow.repo.flush()
        if webhook_url:
            uow.repo.add(
                WebhookEndpoint(
                    id=str(uuid.uuid4()),
                    merchant_id=merchant_id,
                    url=webhook_url,
                    secret=wh.generate_secret(),
                    events=",".join(DEFAULT_EVENTS),
                    enabled=True,
                )
            )
        api_key, row = credentials.new_api_key(merchant_id, deps.api_key_pepper)
        uow.repo.add(row)
        uow.commit()
    return merchant_id, api_key


def set_model_choice(deps: Deps, merchant_id: str, model_choice: str | None) -> None:
    """The merchant's own model choice; None falls back to the profile's or the global one."""
    _check_choice(model_choice)
    with deps.uow() as uow:
        merchant = uow.repo.merchant(merchant_id)
        if merchant is None:
            raise NotFound(f"no merchant {merchant_id}")
        merchant.model_choice = model_choice
        uow.commit()


def issue_api_key(deps: Deps, merchant_id: str) -> str:
    """Another API key for an existing merchant (the plain key is shown only once)."""
    with deps.uow() as uow:
        if uow.repo.merchant(merchant_id) is None:
            raise NotFound(f"no merchant {merchant_id}")
        api_key, row = credentials.new_api_key(merchant_id, deps.api_key_pepper)
        uow.repo.add(row)
        uow.commit()
    return api_key


def webhook_secret(deps: Deps, merchant_id: str) -> str | None:
    """The `whsec_...` secret of the merchant's first webhook endpoint (None without one)."""
    with deps.uow() as uow:
        merchant = uow.repo.merchant(merchant_id)
        if merchant is None:
            raise NotFound(f"no merchant {merchant_id}")
        endpoints = uow.repo.endpoints(merchant_id)
        return endpoints[0].secret if endpoints else None


def authenticate(deps: Deps, api_key: str) -> str:
    """The merchant id for a valid, unrevoked API key; Unauthenticated otherwise."""
    with deps.uow() as uow:
        return credentials.check_api_key(uow.repo, api_key, deps.api_key_pepper)


def set_policy(
    deps: Deps,
    merchant_id: str,
    profile: str,
    values: Mapping[str, Any] | None = None,
    unset: Sequence[str] = (),
    clear: bool = False,
) -> dict[str, Any]:
    """Change the merchant's overrides of `profile` and return them: `clear` drops them all first,
    `unset` drops keys, `values` (typed, e.g. from policy.parse_assignments) sets keys. Jobs
    processed from now on use them; stored reports keep the overrides they were built with."""
    prof = get_profile(profile).name
    unknown = [k for k in unset if k not in KEYS]
    if unknown:
        raise InvalidRequest(f"policy.{unknown[0]}", "UNKNOWN_KEY", f"unknown policy key {unknown[0]!r}")
    checked = check_overrides(values or {})
    with deps.uow() as uow:
        if uow.repo.merchant(merchant_id) is None:
            raise NotFound(f"no merchant {merchant_id}")
        row = uow.repo.merchant_policy(merchant_id, prof)
        current = {} if row is None or clear else dict(row.overrides)
        for key in unset:
            current.pop(key, None)
        current.update(checked)
        if row is None and current:
            uow.repo.add(MerchantPolicy(merchant_id=merchant_id, profile=prof, overrides=current))
        elif row is not None and current:
            row.overrides = current
        elif row is not None:
            uow.repo.delete(row)
        uow.commit()
    return current


def policies(deps: Deps, merchant_id: str) -> dict[str, dict[str, Any]]:
    """The merchant's overrides per profile (profiles without overrides are left out)."""
    with deps.uow() as uow:
        if uow.repo.merchant(merchant_id) is None:
            raise NotFound(f"no merchant {merchant_id}")
        return {row.profile: dict(row.overrides) for row in uow.repo.merchant_policies(merchant_id)}


def policy_for(deps: Deps, merchant_id: str, profile: str) -> dict[str, Any]:
    """The overrides a job of this merchant under `profile` is built with ({} for none)."""
    with deps.uow() as uow:
        row = uow.repo.merchant_policy(merchant_id, get_profile(profile).name)
        return {} if row is None else dict(row.overrides)
