"""A small Python client for the v1 API, used by `idetex check` (and a usage example).

    with ValidationClient("127.0.0.1:50051", api_key) as client:
        response = client.validate_file("photo.jpg", profile="amazon_main")
        print(format_response(response))

Files above the unary limit go through UploadImage in chunks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.api.gen.idetex.v1 import validation_pb2_grpc as pb_grpc

MiB: Final = 1024 * 1024
DEFAULT_UNARY_LIMIT: Final = 4 * MiB
CHUNK_BYTES: Final = 1 * MiB


class ValidationClient:
    def __init__(self, address: str, api_key: str, *, unary_limit_bytes: int = DEFAULT_UNARY_LIMIT) -> None:
        self._channel = grpc.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 32 * MiB)]
        )
        self.stub = pb_grpc.ValidationServiceStub(self._channel)
        self._metadata = (("x-api-key", api_key),)
        self._unary_limit = unary_limit_bytes

    def __enter__(self) -> ValidationClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def validate_bytes(
        self,
        data: bytes,
        *,
        product_id: str = "",
        profile: str = "",
        mode: pb.Mode = pb.MODE_SYNC,
        idempotency_key: str = "",
        filename: str = "",
        timeout_s: float = 30.0,
        language: str = "",
    ) -> pb.ValidateResponse:
        """Validate inline below the unary limit, else stream with UploadImage."""
        if len(data) <= self._unary_limit:
            request = pb.ValidateRequest(
                product_id=product_id,
                image=data,
                profile=profile,
                mode=mode,
                idempotency_key=idempotency_key,
                language=language,
            )
            response: pb.ValidateResponse = self.stub.Validate(
                request, timeout=timeout_s, metadata=self._metadata
            )
            return response
        header = pb.UploadHeader(
            product_id=product_id,
            profile=profile,
            mode=mode,
            idempotency_key=idempotency_key,
            total_size=len(data),
            filename=filename,
            language=language,
        )
        # each chunk is a message of its own: keep it under the server's per-message limit
        chunk_bytes = min(CHUNK_BYTES, max(16 * 1024, self._unary_limit // 2))
        streamed: pb.ValidateResponse = self.stub.UploadImage(
            upload_chunks(header, data, chunk_bytes), timeout=timeout_s, metadata=self._metadata
        )
        return streamed

    def validate_file(self, path: str | Path, **kwargs: Any) -> pb.ValidateResponse:
        path = Path(path)
        kwargs.setdefault("product_id", path.stem)
        kwargs.setdefault("filename", path.name)
        kwargs.setdefault("idempotency_key", uuid.uuid4().hex)
        return self.validate_bytes(path.read_bytes(), **kwargs)

    def compare(
        self, original: bytes, processed: bytes, *, language: str = "", timeout_s: float = 60.0
    ) -> pb.CompareResponse:
        """Pipeline loss analysis of `processed` against `original` (both together under the unary limit)."""
        response: pb.CompareResponse = self.stub.Compare(
            pb.CompareRequest(original=original, processed=processed, language=language),
            timeout=timeout_s,
            metadata=self._metadata,
        )
        return response

    def get_report(self, job_id: str, timeout_s: float = 10.0, language: str = "") -> pb.ValidateResponse:
        response: pb.ValidateResponse = self.stub.GetReport(
            pb.GetReportRequest(job_id=job_id, language=language), timeout=timeout_s, metadata=self._metadata
        )
        return response


def upload_chunks(
    header: pb.UploadHeader, data: bytes, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[pb.UploadChunk]:
    yield pb.UploadChunk(header=header)
    for start in range(0, len(data), chunk_bytes):
        yield pb.UploadChunk(chunk=data[start : start + chunk_bytes])


def response_to_json(response: pb.ValidateResponse) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(response, preserving_proto_field_name=True)
    return result


def describe_error(err: grpc.RpcError) -> str:
    """`CODE: message` plus the field violations and error info carried in the status details."""
    call: Any = err
    lines = [f"{call.code().name}: {call.details()}"]
    status = rpc_status.from_call(call)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            lines += [f"  {v.field}: {v.reason} ({v.description})" for v in bad.field_violations]
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if "job_id" in info.metadata:
                lines.append(f"  job {info.metadata['job_id']} stays queued")
    return "\n".join(lines)


def _box(box: pb.Box) -> str:
    return f"({box.x1},{box.y1})-({box.x2},{box.y2})"


def format_response(response: pb.ValidateResponse, title: str = "") -> str:
    """A readable report: grade, verdict, distortions with boxes, guidance, failed checks."""
    status = pb.JobStatus.Name(response.status).removeprefix("JOB_STATUS_")
    head = f"{title}: " if title else ""
    lines = [f"{head}job {response.job_id} {status}"]
    if response.status == pb.JOB_STATUS_FAILED:
        lines.append(f"  error {response.error_code}: {response.error_message}")
    if not response.HasField("report"):
        if response.status in (pb.JOB_STATUS_PENDING, pb.JOB_STATUS_RUNNING):
            lines.append(f"  not ready yet: `idetex report {response.job_id}` fetches it later")
        return "\n".join(lines)
    r = response.report
    verdict = pb.Verdict.Name(r.verdict).removeprefix("VERDICT_").lower()
    lines.append(
        f"  grade {r.grade} (level {r.fine_level}, score {r.score:.2f})  verdict {verdict}  "
        f"profile {r.profile}  {r.width}x{r.height}  model {r.model_version}"
    )
    if r.distortions:
        lines.append("  distortions:")
        for d in r.distortions:
            key = " [key]" if d.key else ""
            lines.append(f"    - {d.severity} {d.type} at {_box(d.box)} conf {d.confidence:.2f}{key}")
    else:
        lines.append("  distortions: none found")
    if r.guidance:
        lines.append("  guidance:")
        for g in r.guidance:
            lines.append(f"    - [{g.code}] {g.message} Fix: {g.fix}")
    if r.HasField("aspects"):
        a = r.aspects
        lines.append(
            f"  aspects: focus {a.focus:.2f}  noise {a.noise:.2f}  exposure {a.exposure:.2f}  "
            f"contrast {a.contrast:.2f}  saturation {a.saturation:.2f}  jpeg {a.jpeg_quality:.2f}  "
            f"resolution {a.resolution:.2f}"
        )
    failed = [c for c in r.compliance if c.passed == pb.CHECK_RESULT_FAIL]
    if failed:
        lines.append("  compliance failures:")
        lines += [f"    - [{c.code}] {c.message}" for c in failed]
    if r.annotated_image_uri:
        lines.append(f"  annotated: {r.annotated_image_uri}")
    if r.report_url:
        lines.append(f"  report page: {r.report_url}")
    return "\n".join(lines)


def format_comparison(response: pb.CompareResponse, title: str = "") -> str:
    """A readable pipeline loss analysis: metrics, distortion changes, guidance."""
    head = f"{title}: " if title else ""
    r = response
    lines = [
        f"{head}{r.width_original}x{r.height_original} -> {r.width_processed}x{r.height_processed}  "
        f"grade {r.grade_original} -> {r.grade_processed} "
        f"(score {r.score_original:.2f} -> {r.score_processed:.2f})",
        f"  PSNR {r.psnr_db:.2f} dB  SSIM {r.ssim:.4f}  edge sharpness loss {r.sharpness_loss_percent:.1f}%  "
        f"blockiness {r.blockiness_original:.2f} -> {r.blockiness_processed:.2f}",
    ]
    if r.changes:
        lines.append("  distortions:")
        for ch in r.changes:
            where = f" at {_box(ch.box)}" if ch.HasField("box") else ""
            before, after = ch.severity_before or "-", ch.severity_after or "-"
            lines.append(f"    - {ch.change} {ch.type}: {before} -> {after}{where}")
    lines.append("  guidance:")
    lines += [f"    - [{g.code}] {g.message} Fix: {g.fix}" for g in r.guidance]
    return "\n".join(lines)
