"""The whole stack started the way `make run` starts it (`idetex serve`), driven by a gRPC client.

Real Triton from the wheel serving the committed model, a real Celery worker on the
embedded broker, SQLite under the stack's own var/. Real photographs from
tests/fixtures/photos.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from bench.stack import IDETEX, RunningStack, alive
from service.api.client import ValidationClient
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.domain.taxonomy import DISTORTIONS, GRADES
from tests.support.cli import check_json

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "tests" / "fixtures" / "photos"
BLUR_TYPES = {"Motion blur", "Out of focus blur", "Low clarity"}


def _client(stack: RunningStack) -> ValidationClient:
    return ValidationClient(stack.addr, stack.api_key)


def _darkened(path: Path, factor: float = 0.12) -> bytes:
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    dark = np.clip((rgb / 255.0) ** 2.2 * factor * 255.0, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(dark).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _db_row(stack: RunningStack, job_id: str) -> tuple[str, str, str]:
    with sqlite3.connect(stack.database) as conn:
        row = conn.execute(
            "SELECT j.status, r.grade, r.verdict FROM jobs j JOIN reports r ON r.job_id = j.id"
            " WHERE j.id = ?",
            (job_id,),
        ).fetchone()
    assert row is not None, f"no job/report row for {job_id}"
    return row


def test_sync_validate_returns_a_full_report_that_is_stored(stack: RunningStack):
    """A real photo sent synchronously comes back DONE with grade, description and a database row."""
    with _client(stack) as client:
        resp = client.validate_file(PHOTOS / "fruits.jpg", timeout_s=60)
    assert resp.status == pb.JOB_STATUS_DONE, resp
    report = resp.report
    assert report.grade in GRADES
    assert report.fine_level in tuple("abcdefghij")
    assert 1.0 <= report.score <= 5.0
    assert (report.width, report.height) == (512, 480)
    assert len(report.description_steps) == 4
    assert report.description_steps[-1] == f"Thus, the quality of the image is {report.grade}."
    for d in report.distortions:
        assert d.type in DISTORTIONS
        assert 0 <= d.box.x1 < d.box.x2 <= 512 and 0 <= d.box.y1 < d.box.y2 <= 480
    status, grade, verdict = _db_row(stack, resp.job_id)
    assert (status, grade) == ("DONE", report.grade)
    assert pb.Verdict.Name(report.verdict) == f"VERDICT_{verdict.upper()}"


def test_darkened_photo_is_reported_too_dark_with_guidance(stack: RunningStack):
    """A strongly underexposed photo yields Underexposure and the IMG_TOO_DARK guidance."""
    with _client(stack) as client:
        resp = client.validate_bytes(_darkened(PHOTOS / "fruits.jpg"), product_id="dark", timeout_s=60)
    assert resp.status == pb.JOB_STATUS_DONE
    types = {d.type for d in resp.report.distortions}
    assert "Underexposure" in types, types
    assert "IMG_TOO_DARK" in {g.code for g in resp.report.guidance}
    assert resp.report.verdict in (pb.VERDICT_WARN, pb.VERDICT_REJECT)


def test_real_motion_blurred_photo_is_reported_blurred(stack: RunningStack):
    """opencv-doc's text_motion.jpg (real camera shake) is reported with a blur distortion."""
    with _client(stack) as client:
        resp = client.validate_file(PHOTOS / "text_motion.jpg", timeout_s=60)
    assert resp.status == pb.JOB_STATUS_DONE
    types = {d.type for d in resp.report.distortions}
    assert types & BLUR_TYPES, types


def test_async_job_is_fetched_and_listed(stack: RunningStack):
    """Async Validate returns a job id at once; GetReport and ListReports find the finished report."""
    with _client(stack) as client:
        queued = client.validate_file(PHOTOS / "squirrel_cls.jpg", mode=pb.MODE_ASYNC, product_id="sq-1")
        assert queued.job_id and queued.status in (
            pb.JOB_STATUS_PENDING,
            pb.JOB_STATUS_RUNNING,
            pb.JOB_STATUS_DONE,
        )
        deadline = time.monotonic() + 60
        resp = client.get_report(queued.job_id)
        while resp.status != pb.JOB_STATUS_DONE and time.monotonic() < deadline:
            time.sleep(0.2)
            resp = client.get_report(queued.job_id)
        assert resp.status == pb.JOB_STATUS_DONE
        listed = client.stub.ListReports(
            pb.ListReportsRequest(product_id="sq-1"), metadata=(("x-api-key", stack.api_key),), timeout=10
        )
    assert queued.job_id in [r.job_id for r in listed.reports]


def test_bad_upload_is_rejected_and_the_stack_keeps_serving(stack: RunningStack):
    """Random bytes get INVALID_ARGUMENT; the next real photo is still validated."""
    with _client(stack) as client:
        with pytest.raises(grpc.RpcError) as err:
            client.validate_bytes(os.urandom(4096), product_id="junk", timeout_s=20)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        resp = client.validate_file(PHOTOS / "text_defocus.jpg", timeout_s=60)
    assert resp.status == pb.JOB_STATUS_DONE


def test_check_command_prints_json_reports(stack: RunningStack):
    """`idetex check IMAGE --json` against the running server prints one report per image."""
    items = check_json(stack, str(PHOTOS / "fruits.jpg"), timeout_s=120)
    assert items and items[0]["report"]["grade"] in GRADES


def test_report_page_and_html_export_from_idetex_serve(stack: RunningStack, tmp_path: Path):
    """`idetex serve` serves the reply's report_url (HTML) and annotated_image_url (JPEG) on
    IDETEX_HTTP_ADDR; `idetex html DIR --out OUT` writes a page per image and an index."""
    import urllib.request

    with _client(stack) as client:
        resp = client.validate_file(PHOTOS / "text_motion.jpg", timeout_s=60)
    assert resp.report.report_url.startswith(f"{stack.http_url}/reports/{resp.job_id}?")
    with urllib.request.urlopen(resp.report.report_url, timeout=10) as page:
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        assert resp.job_id in page.read().decode()
    with urllib.request.urlopen(resp.report.annotated_image_url, timeout=10) as image:
        assert Image.open(io.BytesIO(image.read())).format == "JPEG"
    out = tmp_path / "html"
    subprocess.run(
        [str(IDETEX), "html", str(PHOTOS), "--out", str(out), "--addr", stack.addr],
        cwd=stack.workdir,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    pages = {f"{p.name}.html" for p in PHOTOS.glob("*.jpg")}
    assert {p.name for p in out.iterdir()} == {"index.html", *pages}
    assert "data:image/jpeg;base64," in (out / "fruits.jpg.html").read_text()


def test_ctrl_c_stops_every_process_it_started(stack: RunningStack):
    """SIGINT to `idetex serve` ends it and every child it started (Triton, stub, Celery worker)."""
    assert stack.children, "serve started no child processes"
    os.kill(stack.proc.pid, signal.SIGINT)
    assert stack.proc.wait(timeout=90) == 0
    deadline = time.monotonic() + 30
    while any(alive(p) for p in stack.children) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [p for p in stack.children if alive(p)]
