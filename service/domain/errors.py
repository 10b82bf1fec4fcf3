"""Typed domain errors with stable codes; entrypoints map them to transport statuses.

Every error has `.code` (a stable machine string) and `.message` (for people).
Mapping used by the API layer: BadImage, InvalidRequest -> INVALID_ARGUMENT;
ImageTooLarge -> RESOURCE_EXHAUSTED; NotFound -> NOT_FOUND;
Unauthenticated -> UNAUTHENTICATED; Unavailable (InferenceUnavailable, StorageUnavailable)
-> UNAVAILABLE.
"""

from __future__ import annotations

from typing import ClassVar, Final

# Stable reasons carried by BadImage.reason.
BAD_IMAGE_REASONS: Final[tuple[str, ...]] = (
    "EMPTY",  # no bytes at all
    "NOT_AN_IMAGE",  # bytes are not an image format we recognise
    "UNSUPPORTED_FORMAT",  # a recognised image format we do not accept (HEIC, PSD, SVG, PDF, ...)
    "TRUNCATED",  # the file ends before the image data does
    "CORRUPT",  # the image data cannot be decoded for another reason
    "DECOMPRESSION_BOMB",  # the header declares more pixels than allowed
    "TOO_SMALL",  # a side is below the minimum
)


class DomainError(Exception):
    """Base of all domain errors: a stable `code` and a human `message`."""

    default_code: ClassVar[str] = "DOMAIN_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class BadImage(DomainError):
    """The uploaded bytes are not an acceptable image; `reason` says why (see BAD_IMAGE_REASONS)."""

    default_code = "BAD_IMAGE"

    def __init__(self, reason: str, message: str, *, field: str = "image") -> None:
        if reason not in BAD_IMAGE_REASONS:
            raise ValueError(f"unknown BadImage reason: {reason}")
        super().__init__(message)
        self.reason = reason
        self.field = field


class ImageTooLarge(DomainError):
    """The upload exceeds a size limit (bytes); `limit` and `actual` are in bytes."""

    default_code = "IMAGE_TOO_LARGE"

    def __init__(self, message: str, *, limit: int, actual: int, field: str = "image") -> None:
        super().__init__(message)
        self.reason = "TOO_MANY_BYTES"
        self.limit = limit
        self.actual = actual
        self.field = field


class NotFound(DomainError):
    default_code = "NOT_FOUND"


class Unauthenticated(DomainError):
    default_code = "UNAUTHENTICATED"


class InvalidRequest(DomainError):
    """A request field is invalid; `field` names it and `reason` is a stable code."""

    default_code = "INVALID_REQUEST"

    def __init__(self, field: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason


class Unavailable(DomainError):
    """A dependency is down for now; the same request may succeed when it is back."""

    default_code = "UNAVAILABLE"


class InferenceUnavailable(Unavailable):
    default_code = "INFERENCE_UNAVAILABLE"


class StorageUnavailable(Unavailable):
    """The database cannot be reached (restarting, network, too many connections)."""

    default_code = "STORAGE_UNAVAILABLE"


class JobNotDone(DomainError):
    """The job has no report yet (still queued or running, or it failed); `job_id` names it."""

    default_code = "JOB_NOT_DONE"

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id
