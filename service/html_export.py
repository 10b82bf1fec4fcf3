"""`idetex html DIR --out OUT`: validate a folder against a running server and write one
self-contained HTML report per image plus an index.html.

Client side, like `idetex check`: each image goes through ValidationClient (sync); the page
is the server's report rendered by the same pure renderer as the served pages, with the
annotated image embedded as a data: URI (fetched from the reply's signed annotated_image_url,
or read from a local file:// blob when the server runs on this machine), so the files work
offline and can be mailed or archived.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import unquote, urlsplit

import grpc

from service.api.client import describe_error
from service.api.convert import report_from_pb
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.domain.report_html import (
    IndexEntry,
    PageContext,
    data_uri,
    render_index,
    render_report,
    render_status,
)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: Final = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif"}
)
MAX_IMAGE_BYTES: Final = 32 * 1024 * 1024


class Validator(Protocol):
    def validate_file(self, path: str | Path, **kwargs: object) -> pb.ValidateResponse: ...


@dataclass
class ExportSummary:
    written: list[Path] = field(default_factory=list)
    failed: int = 0
    index: Path | None = None


def find_images(folder: Path) -> list[Path]:
    """The images under `folder` (recursively, by suffix), in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def page_name(relative: Path) -> str:
    """`shoes/red.jpg` -> `shoes__red.jpg.html`: one flat folder, no collisions between subfolders."""
    return "__".join(relative.parts) + ".html"


def fetch_url(url: str, timeout_s: float = 30.0) -> bytes:
    """GET `url` (the reply's signed annotated_image_url); http(s) only."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url}")
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # the scheme is checked above
        data: bytes = response.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"{url} is larger than {MAX_IMAGE_BYTES} bytes")
    return data


def annotated_jpeg(report: pb.Report, fetch: Callable[[str], bytes] = fetch_url) -> bytes | None:
    """The annotated image of a reply: over its signed link, else from a local blob file; None if neither."""
    if report.annotated_image_url:
        try:
            return fetch(report.annotated_image_url)
        except (OSError, ValueError) as exc:
            log.warning("cannot fetch the annotated image: %s", exc)
    uri = urlsplit(report.annotated_image_uri)
    if uri.scheme == "file":
        path = Path(unquote(uri.path))
        if path.is_file():
            return path.read_bytes()
    return None


def export_folder(
    client: Validator,
    folder: Path,
    out: Path,
    *,
    profile: str = "default",
    timeout_s: float = 60.0,
    language: str = "",
    fetch: Callable[[str], bytes] = fetch_url,
    progress: Callable[[str], None] = lambda line: None,
) -> ExportSummary:
    """Validate every image of `folder`; write `<image>.html` per image and `index.html` into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary()
    entries: list[IndexEntry] = []
    for path in find_images(folder):
        relative = path.relative_to(folder)
        name = page_name(relative)
        entry, html = _one(client, path, str(relative), profile, timeout_s, language, fetch)
        (out / name).write_text(html, encoding="utf-8")
        summary.written.append(out / name)
        summary.failed += entry.status != "DONE"
        entries.append(IndexEntry(**{**entry.__dict__, "href": name}))
        progress(f"{relative}: {entry.status.lower()} {entry.grade} {entry.verdict}".rstrip())
    summary.index = out / "index.html"
    summary.index.write_text(
        render_index(f"iDetex reports: {folder.name or folder}", entries), encoding="utf-8"
    )
    return summary


def _one(
    client: Validator,
    path: Path,
    name: str,
    profile: str,
    timeout_s: float,
    language: str,
    fetch: Callable[[str], bytes],
) -> tuple[IndexEntry, str]:
    try:
        kwargs: dict[str, object] = {"profile": profile, "mode": pb.MODE_SYNC, "timeout_s": timeout_s}
        if language:
            kwargs["language"] = language
        response = client.validate_file(path, **kwargs)
    except grpc.RpcError as err:
        message = describe_error(err).splitlines()[0]
        return IndexEntry(name, "", "FAILED", error=message), render_status(name, "FAILED", "", message)
    except OSError as err:
        return IndexEntry(name, "", "FAILED", error=str(err)), render_status(name, "FAILED", "", str(err))
    status = pb.JobStatus.Name(response.status).removeprefix("JOB_STATUS_")
    if not response.HasField("report"):
        error = f"{response.error_code}: {response.error_message}" if response.error_code else ""
        page = render_status(response.job_id, status, response.error_code, response.error_message)
        return IndexEntry(name, "", status, error=error or f"no report ({status.lower()})"), page
    report = report_from_pb(response.report)
    jpeg = annotated_jpeg(response.report, fetch)
    ctx = PageContext(job_id=response.job_id, name=name, product_id=response.product_id)
    html = render_report(report, ctx, data_uri(jpeg) if jpeg else "")
    codes = tuple(g.code for g in report.guidance)
    return IndexEntry(name, "", status, report.grade, report.score, report.verdict, codes), html
