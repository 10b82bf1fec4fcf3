"""The HTML report page of a real job, opened in a real headless Chromium.

Real Triton (root conftest), a real Celery worker (tests/integration/conftest.py) and the API
plus the report pages' HTTP server wired as `idetex serve` wires them. The browser is Debian's
`chromium` driven by Playwright (no browser download); .ci/run installs it. Screenshots are
kept under var/test-artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from service.api.app import build_server
from service.api.client import ValidationClient
from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.bootstrap import build
from service.html_export import export_folder
from service.serve import start_report_pages
from service.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "tests" / "fixtures" / "photos"
ARTIFACTS = REPO / "var" / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def _darkened(path: Path, factor: float = 0.12) -> bytes:
    """A real photo made strongly underexposed: the report then carries IMG_TOO_DARK guidance."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    dark = np.clip((rgb / 255.0) ** 2.2 * factor * 255.0, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(dark).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


class Stack:
    def __init__(self, address: str, pages_url: str, keys: dict[str, str]) -> None:
        self.address, self.pages_url, self.keys = address, pages_url, keys

    def client(self, merchant: str = "browser-shop") -> ValidationClient:
        return ValidationClient(self.address, self.keys[merchant])


@pytest.fixture(scope="module")
def stack(celery_worker: Any) -> Iterator[Stack]:
    """gRPC API + report pages on the integration worker's database, broker, queue and Triton."""
    settings = Settings.from_env({**celery_worker.env, "IDETEX_HTTP_ADDR": "127.0.0.1:0"})
    container = build(settings)
    server = build_server(container, settings, address="127.0.0.1:0", health_interval_s=0.5)
    server.start()
    pages = start_report_pages(container, settings)
    assert pages is not None
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 60
        while health.Check(health_pb2.HealthCheckRequest(), timeout=5).status != 1:  # SERVING
            assert time.monotonic() < deadline, "the API never became SERVING"
            time.sleep(0.25)
        keys = {name: container.create_merchant(name)[1] for name in ("browser-shop", "other-shop")}
        yield Stack(f"127.0.0.1:{server.port}", pages.url, keys)
    finally:
        channel.close()
        pages.stop()
        server.stop(grace_s=1)
        container.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright; skipped only where /usr/bin/chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def _screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def _image_shown(page: Any) -> dict[str, Any]:
    page.wait_for_function(
        "() => { const i = document.getElementById('annotated'); return i && i.complete; }"
    )
    shown: dict[str, Any] = page.evaluate(
        "() => { const i = document.getElementById('annotated');"
        " return {complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight,"
        " displayedWidth: i.getBoundingClientRect().width}; }"
    )
    return shown


def test_report_page_of_a_real_job_shows_image_grade_and_guidance(stack: Stack, page: Any):
    """The reply's report_url opens in Chromium: 200, a titled page, the annotated image loaded
    and displayed, every guidance code, the compliance table and the four-step description."""
    with stack.client() as client:
        response = client.validate_bytes(
            _darkened(PHOTOS / "fruits.jpg"), product_id="fruit-bowl", profile="amazon_main", timeout_s=60
        )
    assert response.status == pb.JOB_STATUS_DONE, response
    report = response.report
    assert report.report_url.startswith(stack.pages_url) and report.annotated_image_url
    codes = [g.code for g in report.guidance]
    assert "IMG_TOO_DARK" in codes

    answer = page.goto(report.report_url)
    assert answer is not None and answer.status == 200
    assert (
        page.title()
        == f"iDetex report: fruit-bowl ({report.grade}, {pb.Verdict.Name(report.verdict)[8:].lower()})"
    )
    shown = _image_shown(page)
    annotated = Image.open(io.BytesIO(page.request.get(report.annotated_image_url).body()))
    assert shown["complete"] and shown["naturalWidth"] == annotated.width > 0
    assert shown["naturalHeight"] == annotated.height and shown["displayedWidth"] > 100
    assert page.locator("#guidance li").evaluate_all("els => els.map(e => e.dataset.code)") == codes
    for code in codes:
        assert page.locator(f'#guidance li[data-code="{code}"]').is_visible()
    assert page.locator("#grade").inner_text().lower() == report.grade
    assert page.locator("#compliance tbody tr").count() == len(report.compliance)
    assert page.locator("#description > li").count() == 4
    assert (
        page.locator("#description > li")
        .last.inner_text()
        .endswith(f"Thus, the quality of the image is {report.grade}.")
    )
    assert _screenshot(page, "report-page.png").stat().st_size > 10_000


def test_tampered_links_and_other_merchants_are_refused_in_the_browser(stack: Stack, page: Any):
    """A tampered signature: 403; another merchant's key: 404; the owner's key: the page and its image."""
    with stack.client() as client:
        response = client.validate_file(PHOTOS / "squirrel_cls.jpg", timeout_s=60)
    assert response.status == pb.JOB_STATUS_DONE
    url = urlsplit(response.report.report_url)
    tampered = f"{stack.pages_url}{url.path}?{url.query.replace('sig=', 'sig=x')}"
    answer = page.goto(tampered)
    assert answer is not None and answer.status == 403
    plain = f"{stack.pages_url}{url.path}"
    page.set_extra_http_headers({"x-api-key": stack.keys["other-shop"]})
    answer = page.goto(plain)
    assert answer is not None and answer.status == 404
    page.set_extra_http_headers({"x-api-key": stack.keys["browser-shop"]})
    answer = page.goto(plain)
    assert answer is not None and answer.status == 200
    assert _image_shown(page)["naturalWidth"] > 0


def test_html_export_of_a_folder_works_offline_in_the_browser(stack: Stack, page: Any, tmp_path: Path):
    """`idetex html`'s files open from disk: the index links each page; its image is inline."""
    out = tmp_path / "html"
    with stack.client() as client:
        summary = export_folder(client, PHOTOS, out, timeout_s=60)
    assert summary.failed == 0 and len(summary.written) == len(list(PHOTOS.glob("*.jpg")))
    page.route(
        "**/*", lambda route: route.abort() if route.request.url.startswith("http") else route.continue_()
    )
    page.goto((out / "index.html").as_uri())
    assert page.locator("#index tbody tr").count() == len(summary.written)
    page.locator("#index a").first.click()
    page.wait_for_load_state()
    assert page.title().startswith("iDetex report: ")
    shown = _image_shown(page)
    assert shown["complete"] and shown["naturalWidth"] > 0
    _screenshot(page, "report-file.png")
