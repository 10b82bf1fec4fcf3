"""gRPC server interceptors: request metrics and log context, and malformed messages as typed errors.

- `ObservabilityInterceptor`: every call runs in a log context of its own (rpc=<method>; the
  servicer binds merchant_id and job_id) and is counted in idetex_grpc_requests{method, code}
  with its time in idetex_grpc_request_seconds.
- `MalformedRequestInterceptor`: bytes that do not parse as the method's request message are
  answered INVALID_ARGUMENT with a BadRequest violation (field "request", reason
  MALFORMED_MESSAGE), like any other bad input, instead of grpc's bare INTERNAL
  "Exception deserializing request!".

Messages above grpc.max_receive_message_length are refused by grpc itself (RESOURCE_EXHAUSTED,
no details) before any interceptor runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_status import rpc_status

from service.api.errors import to_status
from service.domain.errors import InvalidRequest
from service.observability import metrics
from service.observability.logs import log_context

Behavior = Callable[[Any, grpc.ServicerContext], Any]


def _rewrap(
    handler: grpc.RpcMethodHandler,
    wrap: Callable[[Behavior, bool, bool], Behavior],
    deserializer: Callable[[Any], Any] | None = None,
) -> grpc.RpcMethodHandler:
    """`handler` with its behaviour passed through `wrap(behavior, request_streaming,
    response_streaming)` and, when given, its request deserializer replaced."""
    deserialize = deserializer or handler.request_deserializer
    serialize = handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            wrap(handler.unary_unary, False, False), deserialize, serialize
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            wrap(handler.unary_stream, False, True), deserialize, serialize
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            wrap(handler.stream_unary, True, False), deserialize, serialize
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        wrap(handler.stream_stream, True, True), deserialize, serialize
    )


def _method_name(full: str) -> str:
    """/idetex.v1.ValidationService/Validate -> Validate (health and reflection keep their service)."""
    service, _, method = full.rpartition("/")
    return method if service.endswith("ValidationService") else f"{service.strip('/')}/{method}"


def _final_code(context: grpc.ServicerContext, failed: bool) -> str:
    code = getattr(context, "code", lambda: None)()  # ServicerContext.code(): grpcio >= 1.38
    if isinstance(code, grpc.StatusCode):
        return code.name
    if failed:
        return "CANCELLED" if not context.is_active() else "UNKNOWN"
    return "OK"


class ObservabilityInterceptor(grpc.ServerInterceptor):
    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        name = _method_name(handler_call_details.method)

        def wrap(behavior: Behavior, _request_streaming: bool, response_streaming: bool) -> Behavior:
            if response_streaming:
                return behavior  # none of ours stream responses; health Watch does, uncounted

            def observed(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                failed = False
                with log_context(rpc=name):
                    try:
                        return behavior(request, context)
                    except BaseException:
                        failed = True
                        raise
                    finally:
                        metrics.GRPC_REQUESTS.labels(name, _final_code(context, failed)).inc()
                        metrics.GRPC_SECONDS.labels(name).observe(time.perf_counter() - start)

            return observed

        return _rewrap(handler, wrap)


@dataclass(frozen=True)
class Malformed:
    """Stands in for a request message whose bytes did not parse."""

    error: str
    size: int

    def as_error(self) -> InvalidRequest:
        return InvalidRequest(
            "request",
            "MALFORMED_MESSAGE",
            f"the request message ({self.size} bytes) is not valid protobuf for this method: {self.error}",
        )


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except Exception as exc:  # protobuf's DecodeError, recursion limit, bad UTF-8 ...
            return Malformed(str(exc)[:200] or type(exc).__name__, len(raw))

    return parse


def _checked(requests: Iterator[Any]) -> Iterator[Any]:
    """A request stream that raises InvalidRequest (mapped by the servicer) at a malformed message."""
    for request in requests:
        if isinstance(request, Malformed):
            raise request.as_error()
        yield request


class MalformedRequestInterceptor(grpc.ServerInterceptor):
    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler

        def wrap(behavior: Behavior, request_streaming: bool, _response_streaming: bool) -> Behavior:
            def checked(request: Any, context: grpc.ServicerContext) -> Any:
                if request_streaming:
                    return behavior(_checked(request), context)
                if isinstance(request, Malformed):
                    context.abort_with_status(rpc_status.to_status(to_status(request.as_error())))
                return behavior(request, context)

            return checked

        return _rewrap(handler, wrap, _tolerant(handler.request_deserializer))
