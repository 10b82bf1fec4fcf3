"""Errors of the inference boundary, importable without importing any adapter.

`InferenceUnavailable` is the domain's own class (re-exported here so handlers can catch
both from one place); `InferenceFailed` is new: the server answered, but refused or broke
on the request. Validation errors raised inside the served model are `InvalidModelInput`.
"""

from __future__ import annotations

from service.domain.errors import DomainError, InferenceUnavailable


class InferenceFailed(DomainError):
    """The inference server is reachable but the request failed (bad input, model error, wrong output)."""

    default_code = "INFERENCE_FAILED"


class InvalidModelInput(ValueError):
    """A tensor sent to the model breaks the contract (dtype, shape, range); the message says how."""


class ModelSignatureMismatch(ValueError):
    """A loaded model's inputs or outputs do not match service.iqa.contract."""


__all__ = ["InferenceFailed", "InferenceUnavailable", "InvalidModelInput", "ModelSignatureMismatch"]
