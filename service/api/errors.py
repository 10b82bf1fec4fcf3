"""The one place where domain errors become gRPC statuses with google.rpc details.

Servicer methods raise domain errors (service.domain.errors); the `grpc_errors`
decorator turns each into a status with details a client decodes with
`grpc_status.rpc_status.from_call`:

| error                          | status             | details                          |
|--------------------------------|--------------------|----------------------------------|
| BadImage, InvalidRequest       | INVALID_ARGUMENT   | BadRequest (field, reason), ErrorInfo |
| ImageTooLarge                  | RESOURCE_EXHAUSTED | BadRequest, ErrorInfo (limit, actual) |
| Unauthenticated                | UNAUTHENTICATED    | ErrorInfo                        |
| NotFound                       | NOT_FOUND          | ErrorInfo                        |
| Unavailable (inference, storage) | UNAVAILABLE      | ErrorInfo (job_id if queued), RetryInfo |
| JobNotDone                     | FAILED_PRECONDITION| ErrorInfo (job_id)               |
| any other DomainError          | FAILED_PRECONDITION| ErrorInfo                        |
| anything else                  | INTERNAL           | a reference id only; the cause is logged |
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any, Final, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service.domain.errors import (
    BadImage,
    DomainError,
    ImageTooLarge,
    InferenceUnavailable,
    InvalidRequest,
    JobNotDone,
    NotFound,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger(__name__)

ERROR_DOMAIN: Final = "idetex.v1"
RETRY_AFTER_S: Final = 2

F = TypeVar("F", bound=Callable[..., Any])


class SyncUnavailable(InferenceUnavailable):
    """Inference is down while a synchronous answer was asked; the job stays queued."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


def _pack(*messages: Any) -> list[any_pb2.Any]:
    packed = []
    for message in messages:
        holder = any_pb2.Any()
        holder.Pack(message)
        packed.append(holder)
    return packed


def _error_info(err: DomainError, reason: str | None = None, **metadata: str) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(
        reason=reason or err.code, domain=ERROR_DOMAIN, metadata={"code": err.code, **metadata}
    )


def _bad_request(field: str, reason: str, description: str) -> error_details_pb2.BadRequest:
    violation = error_details_pb2.BadRequest.FieldViolation(
        field=field, reason=reason, description=description
    )
    return error_details_pb2.BadRequest(field_violations=[violation])


def to_status(err: Exception) -> status_pb2.Status:
    """The google.rpc.Status (code, message, details) that a client sees for `err`."""
    if isinstance(err, BadImage | InvalidRequest):
        code, details = (
            code_pb2.INVALID_ARGUMENT,
            _pack(_bad_request(err.field, err.reason, err.message), _error_info(err, err.reason)),
        )
    elif isinstance(err, ImageTooLarge):
        info = _error_info(err, err.reason, limit=str(err.limit), actual=str(err.actual))
        code, details = (
            code_pb2.RESOURCE_EXHAUSTED,
            _pack(_bad_request(err.field, err.reason, err.message), info),
        )
    elif isinstance(err, Unauthenticated):
        code, details = code_pb2.UNAUTHENTICATED, _pack(_error_info(err))
    elif isinstance(err, NotFound):
        code, details = code_pb2.NOT_FOUND, _pack(_error_info(err))
    elif isinstance(err, Unavailable):
        extra = {"job_id": err.job_id} if isinstance(err, SyncUnavailable) else {}
        retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=RETRY_AFTER_S))
        code, details = code_pb2.UNAVAILABLE, _pack(_error_info(err, **extra), retry)
    elif isinstance(err, JobNotDone):
        code, details = code_pb2.FAILED_PRECONDITION, _pack(_error_info(err, job_id=err.job_id))
    elif isinstance(err, DomainError):
        code, details = code_pb2.FAILED_PRECONDITION, _pack(_error_info(err))
    else:
        ref = uuid.uuid4().hex[:12]
        log.error("unexpected error in RPC (ref %s)", ref, exc_info=err)
        return status_pb2.Status(code=code_pb2.INTERNAL, message=f"internal error (ref {ref})")
    return status_pb2.Status(code=code, message=err.message, details=details)


def grpc_errors(method: F) -> F:
    """Decorate a servicer method `(self, request_or_iterator, context)` to map its errors."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except grpc.RpcError:  # the call itself broke (client cancelled, oversized message): status is set
            raise
        except Exception as err:  # one boundary for every error of an RPC
            status = to_status(err)
            if status.code != code_pb2.INTERNAL:
                log.info("%s -> %s: %s", method.__name__, code_pb2.Code.Name(status.code), status.message)
            context.abort_with_status(rpc_status.to_status(status))
            raise  # unreachable: abort_with_status raises

    return wrapper  # type: ignore[return-value]
