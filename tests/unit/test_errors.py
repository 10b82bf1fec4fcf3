"""Domain errors carry stable codes and the fields the API maps to gRPC details."""

from __future__ import annotations

import pytest

from service.domain.errors import (
    BAD_IMAGE_REASONS,
    BadImage,
    DomainError,
    ImageTooLarge,
    InferenceUnavailable,
    InvalidRequest,
    NotFound,
    Unauthenticated,
)


def test_every_error_is_a_domain_error_with_a_code_and_message():
    """code and message are set on all of them."""
    errors = [
        BadImage("EMPTY", "empty"),
        ImageTooLarge("big", limit=1, actual=2),
        NotFound("no job"),
        Unauthenticated("bad key"),
        InvalidRequest("profile", "UNKNOWN_PROFILE", "unknown"),
        InferenceUnavailable("triton down"),
    ]
    codes = [e.code for e in errors]
    assert codes == [
        "BAD_IMAGE",
        "IMAGE_TOO_LARGE",
        "NOT_FOUND",
        "UNAUTHENTICATED",
        "INVALID_REQUEST",
        "INFERENCE_UNAVAILABLE",
    ]
    assert all(isinstance(e, DomainError) and e.message for e in errors)


def test_bad_image_reason_must_be_a_known_one():
    """A typo in a reason fails loudly instead of reaching clients."""
    assert "DECOMPRESSION_BOMB" in BAD_IMAGE_REASONS
    with pytest.raises(ValueError):
        BadImage("EMTPY", "typo")


def test_field_defaults_to_image():
    """BadImage and ImageTooLarge point at the 'image' field."""
    assert BadImage("TOO_SMALL", "tiny").field == "image"
    assert ImageTooLarge("big", limit=1, actual=2).field == "image"
