"""The ValidationService servicer: proto in, one container call, proto out.

Authentication, limits and the sync deadline live here; errors are mapped to
statuses by `service.api.errors.grpc_errors`, in one place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

import grpc

from service.api import convert
from service.api.auth import authenticate, check_claim
from service.api.errors import SyncUnavailable, grpc_errors
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.api.gen.idetex.v1 import validation_pb2_grpc as pb_grpc
from service.ask import check_question
from service.compare import CompareImages
from service.domain.errors import ImageTooLarge, InvalidRequest
from service.domain.i18n import resolve_language
from service.handlers import SubmitImage, SubmitResult
from service.observability import logs

if TYPE_CHECKING:
    from service.adapters.repository import ListFilter
    from service.ask import AskResult
    from service.audits import AuditView
    from service.domain.loss import Comparison
    from service.views import JobView
    from service.webhooks import DeliveryView, EndpointView

FINISHED: Final = frozenset({"DONE", "FAILED"})
NO_DEADLINE_S: Final = 10**7  # grpc reports a far-future deadline when the client set none


class Backend(Protocol):
    """What the API needs from the composition root (service.bootstrap.Container)."""

    def submit(self, command: SubmitImage) -> SubmitResult: ...

    def wait_for_report(self, merchant_id: str, job_id: str, timeout_s: float) -> JobView: ...

    def get_job(self, merchant_id: str, job_id: str) -> JobView: ...

    def compare(self, command: CompareImages) -> Comparison: ...

    def ask_quality(
        self, merchant_id: str, job_id: str, question: str, options: Sequence[str]
    ) -> AskResult: ...

    def create_webhook(
        self, merchant_id: str, url: str, events: Sequence[str] | None = None
    ) -> EndpointView: ...

    def list_webhooks(self, merchant_id: str) -> list[EndpointView]: ...

    def update_webhook(
        self,
        merchant_id: str,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> EndpointView: ...

    def delete_webhook(self, merchant_id: str, endpoint_id: str) -> None: ...

    def list_webhook_deliveries(
        self, merchant_id: str, endpoint_id: str = "", webhook_id: str = "", limit: int = 100
    ) -> list[DeliveryView]: ...

    def redeliver_webhook(self, merchant_id: str, webhook_id: str) -> int: ...

    def start_audit(
        self, merchant_id: str, source_uri: str, profile: str, destination_uri: str
    ) -> AuditView: ...

    def get_audit(self, merchant_id: str, audit_id: str) -> AuditView: ...

    def cancel_audit(self, merchant_id: str, audit_id: str) -> AuditView: ...

    def resume_audit(self, merchant_id: str, audit_id: str) -> AuditView: ...

    def list_jobs(
        self, merchant_id: str, filters: ListFilter, page_token: str, page_size: int
    ) -> tuple[list[JobView], str]: ...

    def authenticate(self, api_key: str) -> str: ...

    def readiness(self) -> Mapping[str, bool]: ...


class CachedReadiness:
    """`backend.readiness()` at most once per `ttl_s`, shared by every request thread."""

    def __init__(self, probe: Callable[[], Mapping[str, bool]], ttl_s: float = 1.0) -> None:
        self._probe = probe
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._value: Mapping[str, bool] = {}
        self._at = float("-inf")

    def __call__(self) -> Mapping[str, bool]:
        with self._lock:
            if time.monotonic() - self._at >= self._ttl_s:
                try:
                    self._value = dict(self._probe())
                except Exception:  # a failing probe means "not ready", never a failed RPC
                    self._value = {}
                self._at = time.monotonic()
            return self._value


class ValidationServicer(pb_grpc.ValidationServiceServicer):
    def __init__(
        self,
        backend: Backend,
        *,
        unary_limit_bytes: int,
        upload_limit_bytes: int,
        max_sync_wait_s: float = 10.0,
        deadline_margin_s: float = 0.15,
        deadline_margin_fraction: float = 0.10,
        wait_slice_s: float = 1.0,
        readiness: Callable[[], Mapping[str, bool]] | None = None,
    ) -> None:
        self._backend = backend
        self._unary_limit = unary_limit_bytes
        self._upload_limit = upload_limit_bytes
        self._max_sync_wait_s = max_sync_wait_s
        self._margin_s = deadline_margin_s
        self._margin_fraction = deadline_margin_fraction
        self._wait_slice_s = wait_slice_s
        self._readiness = readiness or CachedReadiness(backend.readiness)

    # ------------------------------------------------------------------ RPCs

    @grpc_errors
    def Validate(self, request: pb.ValidateRequest, context: grpc.ServicerContext) -> pb.ValidateResponse:
        merchant_id = self._merchant(context, request.merchant_id)
        language = resolve_language(request.language)
        source = request.WhichOneof("source")
        if source is None:
            raise InvalidRequest("source", "MISSING", "send the image bytes or an s3:// URI")
        image = request.image if source == "image" else None
        if image is not None and len(image) > self._unary_limit:
            raise ImageTooLarge(
                f"image of {len(image)} bytes is above the unary limit of {self._unary_limit} bytes; "
                "send it with UploadImage",
                limit=self._unary_limit,
                actual=len(image),
            )
        return self._submit(
            context,
            merchant_id,
            product_id=request.product_id,
            profile=request.profile,
            mode=request.mode,
            idempotency_key=request.idempotency_key,
            image=image,
            s3_uri=request.s3_uri if source == "s3_uri" else None,
            language=language,
        )

    @grpc_errors
    def UploadImage(
        self, request_iterator: Iterator[pb.UploadChunk], context: grpc.ServicerContext
    ) -> pb.ValidateResponse:
        merchant_id = self._merchant(context)  # before reading a byte of the stream
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidRequest(
                "header", "MISSING_HEADER", "the first message of the stream must be the header"
            )
        header = first.header
        check_claim(merchant_id, header.merchant_id)
        language = resolve_language(header.language)
        if header.total_size > self._upload_limit:
            raise self._too_large(header.total_size)
        data = bytearray()
        for message in request_iterator:
            if message.WhichOneof("part") != "chunk":
                raise InvalidRequest("header", "DUPLICATE_HEADER", "only the first message may be a header")
            data += message.chunk
            if len(data) > self._upload_limit:
                raise self._too_large(len(data))
        if header.total_size and len(data) != header.total_size:
            raise InvalidRequest(
                "total_size",
                "SIZE_MISMATCH",
                f"header said {header.total_size} bytes, the stream had {len(data)}",
            )
        return self._submit(
            context,
            merchant_id,
            product_id=header.product_id,
            profile=header.profile,
            mode=header.mode,
            idempotency_key=header.idempotency_key,
            image=bytes(data),
            s3_uri=None,
            language=language,
        )

    @grpc_errors
    def GetReport(self, request: pb.GetReportRequest, context: grpc.ServicerContext) -> pb.ValidateResponse:
        merchant_id = self._merchant(context)
        language = resolve_language(request.language)
        if not request.job_id:
            raise InvalidRequest("job_id", "MISSING", "job_id is required")
        return convert.job_to_pb(self._backend.get_job(merchant_id, request.job_id), language=language)

    @grpc_errors
    def ListReports(
        self, request: pb.ListReportsRequest, context: grpc.ServicerContext
    ) -> pb.ListReportsResponse:
        merchant_id = self._merchant(context)
        language = resolve_language(request.language)
        filters = convert.list_filter_from_pb(request)
        page_size = convert.page_size_from_pb(request.page_size)
        views, next_token = self._backend.list_jobs(merchant_id, filters, request.page_token, page_size)
        return pb.ListReportsResponse(
            reports=[convert.job_to_pb(v, language=language) for v in views], next_page_token=next_token
        )

    @grpc_errors
    def AskQuality(
        self, request: pb.AskQualityRequest, context: grpc.ServicerContext
    ) -> pb.AskQualityResponse:
        merchant_id = self._merchant(context)
        check_question(request.question, request.options)  # before any work on an image
        source = request.WhichOneof("source")
        if source == "job_id":
            job_id = request.job_id
        elif source == "image":
            if len(request.image) > self._unary_limit:
                raise ImageTooLarge(
                    f"image of {len(request.image)} bytes is above the unary limit of "
                    f"{self._unary_limit} bytes; validate it with UploadImage and ask by job_id",
                    limit=self._unary_limit,
                    actual=len(request.image),
                )
            job_id = self._submit(
                context,
                merchant_id,
                product_id=request.product_id,
                profile=request.profile,
                mode=pb.MODE_SYNC,
                idempotency_key="",
                image=request.image,
                s3_uri=None,
            ).job_id
        else:
            raise InvalidRequest("source", "MISSING", "send a job_id or the image bytes")
        result = self._backend.ask_quality(merchant_id, job_id, request.question, list(request.options))
        return convert.answer_to_pb(result, list(request.options))

    @grpc_errors
    def Compare(self, request: pb.CompareRequest, context: grpc.ServicerContext) -> pb.CompareResponse:
        self._merchant(context)
        language = resolve_language(request.language)
        size = len(request.original) + len(request.processed)
        if size > self._unary_limit:
            raise ImageTooLarge(
                f"the two images are {size} bytes together, "
                f"above the unary limit of {self._unary_limit} bytes",
                limit=self._unary_limit,
                actual=size,
                field="processed",
            )
        command = CompareImages(request.original, request.processed, language)
        return convert.comparison_to_pb(self._backend.compare(command))

    # ------------------------------------------------------------ webhooks

    @grpc_errors
    def CreateWebhook(self, request: pb.CreateWebhookRequest, context: grpc.ServicerContext) -> pb.Webhook:
        merchant_id = self._merchant(context)
        view = self._backend.create_webhook(merchant_id, request.url, list(request.events) or None)
        return convert.webhook_to_pb(view)

    @grpc_errors
    def ListWebhooks(
        self, request: pb.ListWebhooksRequest, context: grpc.ServicerContext
    ) -> pb.ListWebhooksResponse:
        merchant_id = self._merchant(context)
        return pb.ListWebhooksResponse(
            webhooks=[convert.webhook_to_pb(v) for v in self._backend.list_webhooks(merchant_id)]
        )

    @grpc_errors
    def UpdateWebhook(self, request: pb.UpdateWebhookRequest, context: grpc.ServicerContext) -> pb.Webhook:
        merchant_id = self._merchant(context)
        view = self._backend.update_webhook(
            merchant_id,
            request.id,
            url=request.url or None,
            events=list(request.events) or None,
            enabled=request.enabled if request.HasField("enabled") else None,
        )
        return convert.webhook_to_pb(view)

    @grpc_errors
    def DeleteWebhook(
        self, request: pb.DeleteWebhookRequest, context: grpc.ServicerContext
    ) -> pb.DeleteWebhookResponse:
        self._backend.delete_webhook(self._merchant(context), request.id)
        return pb.DeleteWebhookResponse()

    @grpc_errors
    def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: grpc.ServicerContext
    ) -> pb.ListWebhookDeliveriesResponse:
        merchant_id = self._merchant(context)
        views = self._backend.list_webhook_deliveries(
            merchant_id, request.endpoint_id, request.webhook_id, request.limit or 100
        )
        return pb.ListWebhookDeliveriesResponse(deliveries=[convert.delivery_to_pb(v) for v in views])

    @grpc_errors
    def RedeliverWebhook(
        self, request: pb.RedeliverWebhookRequest, context: grpc.ServicerContext
    ) -> pb.RedeliverWebhookResponse:
        merchant_id = self._merchant(context)
        if not request.webhook_id:
            raise InvalidRequest("webhook_id", "MISSING", "webhook_id is required")
        return pb.RedeliverWebhookResponse(
            queued=self._backend.redeliver_webhook(merchant_id, request.webhook_id)
        )

    # ------------------------------------------------------------ audits

    @grpc_errors
    def StartAudit(self, request: pb.StartAuditRequest, context: grpc.ServicerContext) -> pb.Audit:
        merchant_id = self._merchant(context)
        for name in ("source", "destination"):
            if not getattr(request, name):
                raise InvalidRequest(name, "MISSING", f"{name} is required (an s3:// URI)")
        view = self._backend.start_audit(merchant_id, request.source, request.profile, request.destination)
        return convert.audit_to_pb(view)

    @grpc_errors
    def GetAudit(self, request: pb.AuditRequest, context: grpc.ServicerContext) -> pb.Audit:
        return convert.audit_to_pb(self._backend.get_audit(self._merchant(context), request.audit_id))

    @grpc_errors
    def CancelAudit(self, request: pb.AuditRequest, context: grpc.ServicerContext) -> pb.Audit:
        return convert.audit_to_pb(self._backend.cancel_audit(self._merchant(context), request.audit_id))

    @grpc_errors
    def ResumeAudit(self, request: pb.AuditRequest, context: grpc.ServicerContext) -> pb.Audit:
        return convert.audit_to_pb(self._backend.resume_audit(self._merchant(context), request.audit_id))

    # --------------------------------------------------------------- helpers

    def _merchant(self, context: grpc.ServicerContext, claimed: str = "") -> str:
        merchant_id = authenticate(context.invocation_metadata(), self._backend.authenticate, claimed)
        logs.bind(merchant_id=merchant_id)  # this call's log lines carry it (interceptors.py)
        return merchant_id

    def _too_large(self, size: int) -> ImageTooLarge:
        return ImageTooLarge(
            f"upload of {size} bytes is above the limit of {self._upload_limit} bytes",
            limit=self._upload_limit,
            actual=size,
        )

    def _submit(self, context: grpc.ServicerContext, merchant_id: str, **fields: Any) -> pb.ValidateResponse:
        mode = convert.mode_from_pb(fields.pop("mode"))
        language = fields.pop("language", "en")
        command = SubmitImage(
            merchant_id=merchant_id,
            product_id=fields["product_id"],
            profile=fields["profile"] or "default",
            mode=mode,
            idempotency_key=fields["idempotency_key"] or None,
            image=fields["image"],
            s3_uri=fields["s3_uri"],
        )
        result = self._backend.submit(command)
        logs.bind(job_id=result.job_id)
        if mode == "async" and result.view is not None:  # a new job, as it was committed
            view = result.view
        elif mode == "async" or result.status in FINISHED:
            view = self._backend.get_job(merchant_id, result.job_id)
        else:
            view = self._wait(context, merchant_id, result.job_id)
        return convert.job_to_pb(view, deduplicated=result.deduplicated, language=language)

    def _wait(self, context: grpc.ServicerContext, merchant_id: str, job_id: str) -> JobView:
        """Wait for the report until the deadline minus a margin; UNAVAILABLE if inference is down."""
        end = time.monotonic() + self._wait_budget(context)
        while True:
            if not self._readiness().get("triton", False):
                raise SyncUnavailable(
                    "inference is unavailable; the job stays queued, fetch it later with GetReport",
                    job_id=job_id,
                )
            left = max(0.0, end - time.monotonic())
            view = self._backend.wait_for_report(merchant_id, job_id, min(left, self._wait_slice_s))
            if view.status in FINISHED or time.monotonic() >= end or not context.is_active():
                return view

    def _wait_budget(self, context: grpc.ServicerContext) -> float:
        remaining = context.time_remaining()
        if remaining is None or remaining >= NO_DEADLINE_S:
            return self._max_sync_wait_s
        margin = max(self._margin_s, remaining * self._margin_fraction)
        return max(0.0, min(remaining - margin, self._max_sync_wait_s))


__all__ = ["Backend", "CachedReadiness", "ValidationServicer"]
