"""Report pages over HTTP on the real Container (SQLite, local blobs, fake model port):
signed links from the gRPC reply open one job; API keys open only their merchant's jobs."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from PIL import Image

from service.api.gen.idetex.v1 import validation_pb2 as pb
from service.domain import report_links
from service.serve import start_report_pages
from tests.imagefactory import jpeg_bytes
from tests.support.api_stack import running_api


@pytest.fixture
def stack(tmp_path):
    with running_api(tmp_path, http_addr="127.0.0.1:0", report_link_secret="k" * 32) as s:
        pages = start_report_pages(s.container, s.settings)
        assert pages is not None
        s.pages = pages  # type: ignore[attr-defined]
        try:
            yield s
        finally:
            pages.stop()


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def done_job(stack, merchant: str = "acme") -> pb.ValidateResponse:
    request = pb.ValidateRequest(image=jpeg_bytes(), product_id="sku-<1>", mode=pb.MODE_SYNC)
    response = stack.stub.Validate(request, timeout=10, metadata=stack.auth(merchant))
    assert response.status == pb.JOB_STATUS_DONE
    return response


def test_reply_links_open_the_page_and_the_annotated_image(stack):
    """report_url serves the HTML page whose <img> loads the stored annotated JPEG."""
    report = done_job(stack).report
    assert report.report_url.startswith(stack.pages.url + "/reports/")
    status, headers, body = fetch(report.report_url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert (
        "default-src 'none'" in headers["Content-Security-Policy"]
        and headers["Referrer-Policy"] == "no-referrer"
    )
    html = body.decode()
    assert "sku-&lt;1&gt;" in html and 'data-code="IMG_TOO_DARK"' in html
    status, headers, image = fetch(report.annotated_image_url)
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image)).format == "JPEG"
    src = html.split('id="annotated" src="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert fetch(f"{stack.pages.url}/reports/{src}")[2] == image  # the page's relative <img> resolves


def test_the_annotated_image_is_stored_with_the_report(stack):
    """Every finished report has an annotated image in the blob store (annotated_image_uri)."""
    report = done_job(stack).report
    assert report.annotated_image_uri.startswith("file://")
    assert stack.container.deps.blobs.get(report.annotated_image_uri)[:2] == b"\xff\xd8"


def test_the_merchants_key_opens_its_own_report_and_only_that(stack):
    """x-api-key / Bearer of the owner: 200; another merchant's key: 404; none or unknown: 401."""
    response = done_job(stack, "acme")
    page = f"{stack.pages.url}/reports/{response.job_id}"
    status, _, body = fetch(page, {"x-api-key": stack.keys["acme"]})
    assert status == 200 and b"IMG_TOO_DARK" in body
    # the page opened with a key embeds the image under a fresh signed link
    assert b"annotated.jpg?m=" in body
    assert fetch(page, {"authorization": f"Bearer {stack.keys['acme']}"})[0] == 200
    assert fetch(page, {"x-api-key": stack.keys["globex"]})[0] == 404
    assert fetch(page + "/annotated.jpg", {"x-api-key": stack.keys["globex"]})[0] == 404
    assert fetch(page)[0] == 401
    assert fetch(page, {"x-api-key": "idx_not_a_key"})[0] == 401


def test_tampered_or_expired_links_are_forbidden(stack):
    """A link moved to another job, re-signed for another merchant or past its expiry: 403."""
    acme = done_job(stack, "acme")
    globex = done_job(stack, "globex")
    url = urlsplit(acme.report.report_url)
    assert fetch(f"{stack.pages.url}/reports/{globex.job_id}?{url.query}")[0] == 403
    forged = url.query.replace("sig=", "sig=A")
    assert fetch(f"{stack.pages.url}{url.path}?{forged}")[0] == 403
    expired = report_links.report_url(stack.pages.url, "k" * 32, stack.merchants["acme"], acme.job_id, 1)
    status, _, body = fetch(expired)
    assert status == 403 and b"expired" in body
    wrong_secret = report_links.report_url(
        stack.pages.url, "z" * 32, stack.merchants["acme"], acme.job_id, 2**40
    )
    assert fetch(wrong_secret)[0] == 403


def test_unknown_jobs_and_paths_are_not_found(stack):
    """A validly signed link to a job that does not exist, and unknown paths: 404."""
    link = report_links.report_url(stack.pages.url, "k" * 32, stack.merchants["acme"], "no-such-job", 2**40)
    assert fetch(link)[0] == 404
    assert fetch(f"{stack.pages.url}/reports/x/other.png", {"x-api-key": stack.keys["acme"]})[0] == 404
    assert fetch(f"{stack.pages.url}/")[0] == 404
    assert fetch(f"{stack.pages.url}/healthz")[:3:2] == (200, b"ok\n")


def test_a_queued_job_page_reloads_until_done(stack):
    """Before the worker finishes, the page says so and refreshes itself; the image is 404."""
    stack.publisher.hold()
    request = pb.ValidateRequest(image=jpeg_bytes(), mode=pb.MODE_ASYNC)
    queued = stack.stub.Validate(request, timeout=10, metadata=stack.auth("acme"))
    page = f"{stack.pages.url}/reports/{queued.job_id}"
    status, _, body = fetch(page, {"x-api-key": stack.keys["acme"]})
    assert status == 200 and b'http-equiv="refresh"' in body
    assert not queued.report.report_url  # no report yet, no link
    assert fetch(page + "/annotated.jpg", {"x-api-key": stack.keys["acme"]})[0] == 404
    stack.publisher.release()


def test_the_page_speaks_the_replys_language(stack):
    """A reply asked in German links to the German page (?lang=de); unknown languages get 400."""
    request = pb.ValidateRequest(image=jpeg_bytes(), mode=pb.MODE_SYNC, language="de")
    response = stack.stub.Validate(request, timeout=10, metadata=stack.auth("acme"))
    assert response.report.report_url.endswith("&lang=de")
    status, _, body = fetch(response.report.report_url)
    html = body.decode()
    assert status == 200 and '<html lang="de">' in html
    assert response.report.guidance[0].message.split(":")[0] in html  # the German message
    assert "Unterbelichtung" in html  # guidance in German (the ViDA-format description stays English)
    assert fetch(response.report.report_url.replace("lang=de", "lang=xx"))[0] == 400


def test_webhook_bodies_carry_the_same_signed_links(stack):
    """report.completed bodies link the page and image; every attempt of a message is byte-identical."""
    import json

    from service import webhooks

    response = done_job(stack)
    deps = stack.container.deps
    with deps.uow() as uow:
        job, report = uow.repo.job(response.job_id), uow.repo.report(response.job_id)
        first = webhooks.report_summary(job, report, "report.completed", deps.report_links)
        again = webhooks.report_summary(job, report, "report.completed", deps.report_links)
    assert first == again
    data = json.loads(first)["data"]
    assert fetch(data["report_url"])[0] == 200
    assert fetch(data["annotated_image_url"])[1]["Content-Type"] == "image/jpeg"
