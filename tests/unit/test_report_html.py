"""The HTML report page and folder index: pure rendering, everything from the report escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from service.domain.findings import ComplianceCheck, Description, Guidance, ReportDistortion
from service.domain.report import ImageFacts, Report
from service.domain.report_html import (
    IndexEntry,
    PageContext,
    data_uri,
    render_index,
    render_report,
    render_status,
)

HOSTILE = '<script>alert("x")</script>'


def sample_report(**overrides) -> Report:
    base = dict(
        profile="amazon_main",
        model_version="idetex_lite:1",
        grade="poor",
        fine_level="d",
        score=2.31,
        distortions=(
            ReportDistortion(
                "Underexposure", "moderate", (0, 0, 320, 240), 0.81, True, "in the top left", "dark"
            ),
            ReportDistortion("Noise", "slight", (10, 10, 60, 60), 0.4, False, "near the top", "grainy"),
        ),
        description=Description(
            overview="A product photo on a grey background.",
            paragraphs=("The top left is underexposed.", "Slight noise near the top."),
            key_line="The key distortion is underexposure.",
            conclusion="Thus, the quality of the image is poor.",
        ),
        guidance=(
            Guidance(
                "IMG_TOO_DARK",
                "The image is too dark.",
                "Shoot in daylight.",
                "Underexposure",
                (0, 0, 320, 240),
                "moderate",
            ),
            Guidance(
                "IMG_NOT_WHITE_BACKGROUND",
                "The background is not white.",
                "Use a white sweep.",
                severity="severe",
            ),
        ),
        compliance=(
            ComplianceCheck("IMG_NOT_WHITE_BACKGROUND", "pure white background", False, "12% white", "fix"),
            ComplianceCheck("IMG_LOW_RESOLUTION", "longest side at least 500 px", True, "640 px", "fix"),
            ComplianceCheck("IMG_TEXT_OR_WATERMARK", "no text", None, "Not checked", "fix", required=False),
        ),
        verdict="reject",
        verdict_reasons=("required rule failed: IMG_NOT_WHITE_BACKGROUND",),
        image=ImageFacts(640, 480, "JPEG", 12345, "ab" * 32, 92, 8, False, 1, False, False, 40.0, 20.0, 10.0),
    )
    base.update(overrides)
    return Report(**base)  # type: ignore[arg-type]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    return c


def test_page_shows_grade_verdict_guidance_compliance_and_four_steps():
    """Every part the merchant acts on is on the page, with stable ids to find them."""
    html = render_report(
        sample_report(), PageContext(job_id="job-1", name="shoe.jpg"), "job-1/annotated.jpg?x=1"
    )
    page = parse(html)
    ids = {a.get("id") for _, a in page.tags}
    assert {"grade", "score", "verdict", "annotated", "guidance", "compliance", "description"} <= ids
    assert [a["data-code"] for t, a in page.tags if t == "li" and "data-code" in a] == [
        "IMG_TOO_DARK",
        "IMG_NOT_WHITE_BACKGROUND",
    ]
    text = " ".join(page.text)
    assert "Shoot in daylight." in text and "Thus, the quality of the image is poor." in text
    assert re.search(r"<title>iDetex report: shoe.jpg \(poor, reject\)</title>", html)
    results = re.findall(r'<td class="result-([a-z-]+)">', html)
    assert results == ["fail", "pass", "not-checked"]
    assert "2.31 / 5" in html


def test_page_is_self_contained():
    """No script, no external stylesheet, font or image: the CSS is inline, the image is the one given."""
    html = render_report(sample_report(), PageContext(job_id="j"), "data:image/jpeg;base64,AAAA")
    page = parse(html)
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe")]
    assert [a["src"] for t, a in page.tags if t == "img"] == ["data:image/jpeg;base64,AAAA"]
    assert "url(" not in html and "@import" not in html


def test_everything_from_the_report_is_escaped():
    """Markup in a product id, a guidance text or a description cannot reach the page as markup."""
    report = sample_report(
        guidance=(Guidance(HOSTILE, HOSTILE, HOSTILE, severity='x" onmouseover="y'),),
        description=Description(HOSTILE, (HOSTILE,), HOSTILE, HOSTILE),
        verdict_reasons=(HOSTILE,),
    )
    html = render_report(report, PageContext(job_id=HOSTILE, name=HOSTILE, product_id=HOSTILE), '"><script>')
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert 'onmouseover="y"' not in html


def test_page_without_image_or_findings_says_so():
    """No annotated image and no distortions or guidance: the page says so instead of showing empty parts."""
    html = render_report(
        sample_report(distortions=(), guidance=(), compliance=()), PageContext(job_id="j"), image_src=""
    )
    assert 'id="annotated-missing"' in html and "Nothing to fix." in html
    assert "No distortion was detected." in html


def test_status_pages_for_jobs_without_a_report():
    """A queued job's page reloads itself; a failed job's page shows its error code."""
    pending = render_status("job-1", "PENDING")
    assert 'http-equiv="refresh"' in pending and "pending" in pending
    failed = render_status("job-2", "FAILED", "BAD_IMAGE", "not an image <b>")
    assert "BAD_IMAGE" in failed and "&lt;b&gt;" in failed and "refresh" not in failed


def test_index_lists_each_image_with_its_link_and_codes():
    """The folder index links each report file and counts verdicts."""
    html = render_index(
        "photos",
        [
            IndexEntry("a.jpg", "a.jpg.html", "DONE", "good", 3.9, "accept", ()),
            IndexEntry("b.jpg", "b.jpg.html", "DONE", "poor", 2.1, "reject", ("IMG_TOO_DARK",)),
            IndexEntry("c.jpg", "c.jpg.html", "FAILED", error="BAD_IMAGE: not an image"),
        ],
    )
    hrefs = [a["href"] for t, a in parse(html).tags if t == "a"]
    assert hrefs == ["a.jpg.html", "b.jpg.html", "c.jpg.html"]
    assert "accept 1 · failed 1 · reject 1" in html and "IMG_TOO_DARK" in html


def test_data_uri_is_base64_jpeg():
    assert data_uri(b"\xff\xd8\xff") == "data:image/jpeg;base64,/9j/"
