"""`idetex html`: a folder validated against a running API, one offline HTML page per image + index."""

from __future__ import annotations

import base64
import dataclasses
import io
import re

import pytest
from PIL import Image

from service import cli
from service.api.client import ValidationClient
from service.api.convert import report_from_pb, report_to_pb
from service.html_export import export_folder, find_images, page_name
from service.serve import start_report_pages
from tests.imagefactory import jpeg_bytes, png_bytes
from tests.support.api_stack import running_api
from tests.unit.test_report_html import sample_report


@pytest.fixture
def stack(tmp_path):
    with running_api(tmp_path / "stack", http_addr="127.0.0.1:0") as s:
        pages = start_report_pages(s.container, s.settings)
        assert pages is not None
        try:
            yield s
        finally:
            pages.stop()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    (root / "shoes").mkdir(parents=True)
    (root / "a.jpg").write_bytes(jpeg_bytes())
    (root / "shoes" / "b.png").write_bytes(png_bytes())
    (root / "broken.jpg").write_bytes(b"not an image at all")
    (root / "notes.txt").write_text("skipped")
    return root


def test_report_survives_the_proto_round_trip():
    """report_from_pb(report_to_pb(r)) keeps everything the page shows."""
    report = sample_report(score=2.25)  # values a float32 holds exactly
    report = dataclasses.replace(
        report, distortions=tuple(dataclasses.replace(d, confidence=0.75) for d in report.distortions)
    )
    back = report_from_pb(report_to_pb(report))
    lossless = dataclasses.replace(
        report, compliance=tuple(dataclasses.replace(c, measured=None) for c in report.compliance)
    )
    assert back == lossless


def test_images_are_found_recursively_and_named_flat(folder):
    assert [p.name for p in find_images(folder)] == ["a.jpg", "broken.jpg", "b.png"]
    assert page_name(find_images(folder)[2].relative_to(folder)) == "shoes__b.png.html"


def test_export_writes_a_page_per_image_and_an_index(stack, folder, tmp_path):
    """Each image gets a self-contained page with its annotated image inline; failures get a page too."""
    out = tmp_path / "html"
    with ValidationClient(stack.address, stack.keys["acme"]) as client:
        summary = export_folder(client, folder, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "a.jpg.html",
        "broken.jpg.html",
        "index.html",
        "shoes__b.png.html",
    ]
    assert summary.failed == 1
    page = (out / "a.jpg.html").read_text()
    assert 'data-code="IMG_TOO_DARK"' in page and "http://" not in page
    src = re.search(r'id="annotated" src="data:image/jpeg;base64,([^"]+)"', page)
    assert src is not None
    assert Image.open(io.BytesIO(base64.b64decode(src.group(1)))).format == "JPEG"
    assert "INVALID_ARGUMENT" in (out / "broken.jpg.html").read_text()
    index = (out / "index.html").read_text()
    assert re.findall(r'href="([^"]+)"', index) == ["a.jpg.html", "broken.jpg.html", "shoes__b.png.html"]


def test_cli_html_command(stack, folder, tmp_path, capsys):
    """`idetex html DIR --out OUT` writes the files and exits 1 when an image failed."""
    out = tmp_path / "cli-html"
    status = cli.main(
        ["html", str(folder), "--out", str(out), "--addr", stack.address, "--api-key", stack.keys["acme"]]
    )
    assert status == 1  # broken.jpg
    assert "3 reports, 1 failed" in capsys.readouterr().out
    assert (out / "index.html").exists() and (out / "shoes__b.png.html").exists()
