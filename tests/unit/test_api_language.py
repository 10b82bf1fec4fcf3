"""The request's language decides the words of the answer; the stored report stays English."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service.api.gen.idetex.v1 import validation_pb2 as pb
from tests.imagefactory import gradient, jpeg_bytes


def _validate(stack, **fields) -> pb.ValidateResponse:
    request = pb.ValidateRequest(image=jpeg_bytes(gradient(640, 480)), mode=pb.MODE_SYNC, **fields)
    return stack.stub.Validate(request, timeout=10, metadata=stack.auth("acme"))


def test_validate_in_german_answers_german_guidance_and_get_report_can_ask_english(stack):
    """language "de-DE": German guidance and fix; the same job fetched without a language is English."""
    german = _validate(stack, language="de-DE")
    assert german.status == pb.JOB_STATUS_DONE and german.report.language == "de"
    dark = [g for g in german.report.guidance if g.code == "IMG_TOO_DARK"]
    assert dark, german.report.guidance
    assert dark[0].message.startswith("Unterbelichtung (mittel) ") and "Licht" in dark[0].fix
    english = stack.stub.GetReport(
        pb.GetReportRequest(job_id=german.job_id), timeout=5, metadata=stack.auth("acme")
    )
    assert english.report.language == "en"
    assert [g.code for g in english.report.guidance] == [g.code for g in german.report.guidance]
    assert english.report.guidance[0].message.startswith("Moderate underexposure ")
    again = stack.stub.GetReport(
        pb.GetReportRequest(job_id=german.job_id, language="de"), timeout=5, metadata=stack.auth("acme")
    )
    assert _without_grants(again.report) == _without_grants(german.report)


def _without_grants(report: pb.Report) -> pb.Report:
    """The report with the signed links' expiry and signature taken out: each reply signs fresh
    links valid for IDETEX_REPORT_LINK_TTL_S from its own second, so two replies a second apart
    differ there and nowhere else."""
    out = pb.Report()
    out.CopyFrom(report)
    for field in ("report_url", "annotated_image_url"):
        url = getattr(out, field)
        kept = [p for p in url.split("&") if not p.startswith(("exp=", "sig="))]
        setattr(out, field, "&".join(kept))
    return out


@pytest.mark.parametrize("call", ["Validate", "GetReport", "ListReports"])
def test_an_unsupported_language_is_invalid_argument_listing_the_supported_ones(stack, call):
    """fr -> INVALID_ARGUMENT, BadRequest field `language`, reason UNSUPPORTED_LANGUAGE, "en, de" named."""
    requests = {
        "Validate": pb.ValidateRequest(image=jpeg_bytes(), language="fr"),
        "GetReport": pb.GetReportRequest(job_id="x", language="fr"),
        "ListReports": pb.ListReportsRequest(language="fr"),
    }
    with pytest.raises(grpc.RpcError) as caught:
        getattr(stack.stub, call)(requests[call], timeout=5, metadata=stack.auth("acme"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    bad = error_details_pb2.BadRequest()
    assert status is not None and any(d.Unpack(bad) for d in status.details)
    (violation,) = bad.field_violations
    assert (violation.field, violation.reason) == ("language", "UNSUPPORTED_LANGUAGE")
    assert "en, de" in violation.description
    assert stack.publisher.sent == []
