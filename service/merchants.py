"""Merchants and their credentials: create, issue API keys, authenticate, webhook secret."""

from __future__ import annotations

import uuid

from service import credentials
from service.adapters import webhook as wh
from service.adapters.db import Merchant, WebhookEndpoint
from service.deps import Deps
from service.domain.errors import InvalidRequest, NotFound
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
