"""Proto <-> domain conversions for the v1 API; no I/O, no gRPC context."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from google.protobuf import timestamp_pb2

from service.adapters.repository import ListFilter
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.domain.aspects import AspectScores
from service.domain.errors import InvalidRequest
from service.domain.localize import localize_report
from service.domain.policy import format_value
from service.domain.taxonomy import GRADES

if TYPE_CHECKING:
    from collections.abc import Sequence

    from service.ask import AskResult
    from service.audits import AuditView
    from service.domain.findings import Guidance
    from service.domain.loss import Comparison
    from service.domain.report import ImageFacts, Report
    from service.views import JobView
    from service.webhooks import DeliveryView, EndpointView

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100

STATUS_TO_PB: Final = {
    "PENDING": pb.JOB_STATUS_PENDING,
    "RUNNING": pb.JOB_STATUS_RUNNING,
    "DONE": pb.JOB_STATUS_DONE,
    "FAILED": pb.JOB_STATUS_FAILED,
}
VERDICT_TO_PB: Final = {"accept": pb.VERDICT_ACCEPT, "warn": pb.VERDICT_WARN, "reject": pb.VERDICT_REJECT}
PB_TO_VERDICT: Final = {v: k for k, v in VERDICT_TO_PB.items()}
CHECK_TO_PB: Final = {
    True: pb.CHECK_RESULT_PASS,
    False: pb.CHECK_RESULT_FAIL,
    None: pb.CHECK_RESULT_NOT_CHECKED,
}


def mode_from_pb(mode: int) -> Literal["sync", "async"]:
    """`sync` or `async`; MODE_UNSPECIFIED means sync."""
    if mode == pb.MODE_ASYNC:
        return "async"
    if mode in (pb.MODE_SYNC, pb.MODE_UNSPECIFIED):
        return "sync"
    raise InvalidRequest("mode", "UNKNOWN_MODE", f"unknown mode {mode}")


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def datetime_from_pb(message: Any, field: str) -> datetime | None:
    """The UTC datetime in `message.<field>`, or None when the field is unset."""
    if not message.HasField(field):
        return None
    ts: timestamp_pb2.Timestamp = getattr(message, field)
    return ts.ToDatetime(tzinfo=UTC)


def box_to_pb(box: Any) -> pb.Box | None:
    if box is None:
        return None
    x1, y1, x2, y2 = (int(v) for v in box)
    return pb.Box(x1=x1, y1=y1, x2=x2, y2=y2)


def image_info_to_pb(image: ImageFacts) -> pb.ImageInfo:
    return pb.ImageInfo(
        source_format=image.source_format,
        byte_size=int(image.byte_size),
        sha256=image.sha256,
        jpeg_quality=int(image.jpeg_quality or 0),
        bit_depth=int(image.bit_depth),
        had_alpha=bool(image.had_alpha),
        frame_count=int(image.frame_count),
        exif_transposed=bool(image.exif_transposed),
        icc_converted=bool(image.icc_converted),
        brightness=float(image.brightness),
        contrast=float(image.contrast),
        colourfulness=float(image.colourfulness),
    )


def report_to_pb(
    report: Report, annotated_uri: str | None = None, report_url: str = "", annotated_url: str = ""
) -> pb.Report:
    """The proto Report of a domain Report (boxes in the original, EXIF-rotated frame)."""
    distortions = [
        pb.Distortion(
            type=d.type,
            severity=d.severity,
            box=box_to_pb(d.box),
            confidence=float(d.confidence),
            key=bool(d.key),
            impact=d.impact,
            region=d.region,
        )
        for d in report.distortions
    ]
    guidance = [guidance_to_pb(g) for g in report.guidance]
    compliance = [
        pb.ComplianceCheck(
            code=c.code,
            rule=c.rule,
            passed=CHECK_TO_PB[c.passed],
            message=c.message,
            fix=c.fix,
            required=c.required,
        )
        for c in report.compliance
    ]
    return pb.Report(
        grade=report.grade,
        fine_level=report.fine_level,
        score=float(report.score),
        distortions=distortions,
        description_steps=list(report.description.steps),
        guidance=guidance,
        compliance=compliance,
        verdict=VERDICT_TO_PB.get(report.verdict, pb.VERDICT_UNSPECIFIED),
        profile=report.profile,
        model_version=report.model_version,
        produced_by=report.produced_by,
        annotated_image_uri=annotated_uri or "",
        width=int(report.image.width),
        height=int(report.image.height),
        verdict_reasons=list(report.verdict_reasons),
        image=image_info_to_pb(report.image),
        description_grounded=report.description.grounded,
        policy_overrides={k: format_value(v) for k, v in report.policy_overrides.items()},
        report_url=report_url,
        annotated_image_url=annotated_url,
        aspects=pb.AspectScores(**report.aspects.to_json()) if report.aspects is not None else None,
    )


def job_to_pb(view: JobView, *, deduplicated: bool = False, language: str = "en") -> pb.ValidateResponse:
    """The ValidateResponse of a job: status, timestamps, error, and the report when done, its
    merchant-facing text rendered in `language` (resolved by i18n.resolve_language)."""
    response = pb.ValidateResponse(
        job_id=view.job_id,
        status=STATUS_TO_PB.get(view.status, pb.JOB_STATUS_UNSPECIFIED),
        product_id=view.product_id or "",
        profile=view.profile or "",
        created_at=timestamp(view.created_at),
        updated_at=timestamp(view.updated_at),
        attempts=int(view.attempts or 0),
        error_code=view.error_code or "",
        error_message=view.error_message or "",
        deduplicated=deduplicated,
    )
    if view.report is not None:
        response.report.CopyFrom(
            report_to_pb(
                localize_report(view.report, language),
                view.annotated_uri,
                view.report_url + (f"&lang={language}" if view.report_url and language != "en" else ""),
                view.annotated_url,
            )
        )
        response.report.language = language
    return response


def page_size_from_pb(page_size: int) -> int:
    """0 means the default; above the maximum is clamped; negative is invalid."""
    if page_size < 0:
        raise InvalidRequest("page_size", "NEGATIVE", "page_size must be >= 0")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def list_filter_from_pb(request: pb.ListReportsRequest) -> ListFilter:
    grade = request.grade.strip().lower()
    if grade and grade not in GRADES:
        raise InvalidRequest("grade", "UNKNOWN_GRADE", f"grade must be one of {', '.join(GRADES)}")
    if request.verdict not in (pb.VERDICT_UNSPECIFIED, *PB_TO_VERDICT):
        raise InvalidRequest("verdict", "UNKNOWN_VERDICT", f"unknown verdict {request.verdict}")
    after = datetime_from_pb(request, "created_after")
    before = datetime_from_pb(request, "created_before")
    if after and before and after >= before:
        raise InvalidRequest("created_before", "EMPTY_RANGE", "created_before must be after created_after")
    return ListFilter(
        product_id=request.product_id or None,
        verdict=PB_TO_VERDICT.get(request.verdict),
        grade=grade or None,
        created_after=after,
        created_before=before,
    )


_ANSWER_STATUS = {
    "ANSWERED": pb.ANSWER_STATUS_ANSWERED,
    "BEST_EFFORT": pb.ANSWER_STATUS_BEST_EFFORT,
    "OUT_OF_SCOPE": pb.ANSWER_STATUS_OUT_OF_SCOPE,
}


def answer_to_pb(result: AskResult, options: Sequence[str]) -> pb.AskQualityResponse:
    a = result.answer
    return pb.AskQualityResponse(
        status=_ANSWER_STATUS[a.status],
        option_index=-1 if a.index is None else a.index,
        letter=a.letter,
        option="" if a.index is None else options[a.index],
        concern=a.concern or "",
        explanation=a.explanation,
        model=result.model,
        job_id=result.job_id,
        prompt_version=result.prompt_version,
    )


def webhook_to_pb(view: EndpointView) -> pb.Webhook:
    return pb.Webhook(
        id=view.id,
        url=view.url,
        events=list(view.events),
        enabled=view.enabled,
        disabled_reason=view.disabled_reason or "",
        created_at=timestamp(view.created_at),
        secret=view.secret,
    )


def delivery_to_pb(view: DeliveryView) -> pb.WebhookDelivery:
    return pb.WebhookDelivery(
        webhook_id=view.webhook_id,
        endpoint_id=view.endpoint_id or "",
        event=view.event or "",
        attempt=view.attempt,
        status_code=view.status_code or 0,
        latency_ms=float(view.latency_ms or 0.0),
        outcome=view.outcome or "",
        error=view.error or "",
        delivered_at=timestamp(view.delivered_at),
    )


def audit_to_pb(view: AuditView) -> pb.Audit:
    return pb.Audit(
        id=view.id,
        status=view.status,
        profile=view.profile,
        source=view.source_uri,
        destination=view.destination_uri,
        listing_done=view.listing_done,
        total=view.total,
        finished=view.finished,
        remaining=view.remaining,
        per_status=view.counts,
        images_per_s=view.images_per_s,
        report_uri=view.report_uri or "",
        summary_uri=view.summary_uri or "",
        error=view.error or "",
        created_at=timestamp(view.created_at),
        finished_at=timestamp(view.finished_at),
    )


PB_TO_CHECK: Final = {v: k for k, v in CHECK_TO_PB.items()}


def report_from_pb(r: pb.Report) -> Report:
    """A domain Report back from its proto (client side: `idetex html` renders it). Lossy where the
    proto is: no grade probabilities, no measured values, no 'expected' flags."""
    from service.domain.findings import ComplianceCheck, Description, Guidance, ReportDistortion, Verdict
    from service.domain.report import ImageFacts, Report

    def box(b: pb.Box) -> tuple[int, int, int, int]:
        return (b.x1, b.y1, b.x2, b.y2)

    steps = list(r.description_steps) + [""] * (4 - len(r.description_steps))
    i = r.image
    return Report(
        profile=r.profile,
        model_version=r.model_version,
        grade=r.grade,
        fine_level=r.fine_level,
        score=float(r.score),
        distortions=tuple(
            ReportDistortion(d.type, d.severity, box(d.box), float(d.confidence), d.key, d.region, d.impact)
            for d in r.distortions
        ),
        description=Description(
            overview=steps[0],
            paragraphs=tuple(p for p in steps[1].split("\n") if p),
            key_line=steps[2],
            conclusion=steps[3],
            grounded=r.description_grounded,
        ),
        guidance=tuple(
            Guidance(
                g.code,
                g.message,
                g.fix,
                g.distortion or None,
                box(g.box) if g.HasField("box") else None,
                g.severity,
            )
            for g in r.guidance
        ),
        compliance=tuple(
            ComplianceCheck(c.code, c.rule, PB_TO_CHECK.get(c.passed), c.message, c.fix, c.required)
            for c in r.compliance
        ),
        verdict=cast("Verdict", PB_TO_VERDICT.get(r.verdict, "warn")),
        verdict_reasons=tuple(r.verdict_reasons),
        image=ImageFacts(
            width=r.width,
            height=r.height,
            source_format=i.source_format,
            byte_size=i.byte_size,
            sha256=i.sha256,
            jpeg_quality=i.jpeg_quality or None,
            bit_depth=i.bit_depth,
            had_alpha=i.had_alpha,
            frame_count=i.frame_count,
            exif_transposed=i.exif_transposed,
            icc_converted=i.icc_converted,
            brightness=float(i.brightness),
            contrast=float(i.contrast),
            colourfulness=float(i.colourfulness),
        ),
        produced_by=r.produced_by,
        aspects=aspects_from_pb(r.aspects) if r.HasField("aspects") else None,
    )


def aspects_from_pb(a: pb.AspectScores) -> AspectScores:
    return AspectScores(
        **{name: round(float(getattr(a, name)), 3) for name in AspectScores.__dataclass_fields__}
    )


def guidance_to_pb(g: Guidance) -> pb.Guidance:
    return pb.Guidance(
        code=g.code,
        message=g.message,
        fix=g.fix,
        distortion=g.distortion or "",
        severity=g.severity,
        box=box_to_pb(g.box),
    )


def comparison_to_pb(c: Comparison) -> pb.CompareResponse:
    """The CompareResponse of a pipeline loss analysis (service.domain.loss)."""
    return pb.CompareResponse(
        psnr_db=c.psnr_db,
        ssim=c.ssim,
        sharpness_loss_percent=c.sharpness_loss_percent,
        blockiness_original=c.blockiness_original,
        blockiness_processed=c.blockiness_processed,
        scale=c.scale,
        grade_original=c.original.grade,
        grade_processed=c.processed.grade,
        score_original=float(c.original.score),
        score_processed=float(c.processed.score),
        changes=[
            pb.DistortionChange(
                type=ch.type,
                change=ch.change,
                severity_before=ch.severity_before,
                severity_after=ch.severity_after,
                box=box_to_pb(ch.box),
            )
            for ch in c.changes
        ],
        guidance=[guidance_to_pb(g) for g in c.guidance],
        language=c.language,
        width_original=c.original.width,
        height_original=c.original.height,
        width_processed=c.processed.width,
        height_processed=c.processed.height,
    )
