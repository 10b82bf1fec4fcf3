"""A report as one self-contained HTML page (inline CSS, no scripts, no external assets).

Pure: a Report and where its annotated image is (an URL, or a data: URI for a file that
must work offline) in, a string out. Every value from the report is escaped with
html.escape, so a product id or a model's text cannot inject markup.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from service.domain.annotate import COLOURS
from service.domain.findings import ComplianceCheck, Guidance, ReportDistortion
from service.domain.report import Report

STEP_TITLES: Final = ("Overview", "Distortions", "Key distortions", "Conclusion")
RESULT_LABEL: Final = {True: "pass", False: "fail", None: "not checked"}

CSS: Final = """
:root{--ink:#1d2330;--muted:#5b6475;--line:#dde1e8;--bg:#f6f7f9;--card:#fff;
--accept:#1e7d32;--warn:#a86400;--reject:#b3261e}
*{box-sizing:border-box}
#aspects .bar{display:inline-block;height:10px;background:#3b6fd8;border-radius:3px}
#aspects td:last-child{width:50%}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:var(--bg)}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0 0 12px}
.sub{color:var(--muted);margin:0 0 16px;overflow-wrap:anywhere}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px;margin:0 0 16px}
.summary{display:flex;flex-wrap:wrap;gap:12px;align-items:center}
.badge{display:inline-block;border-radius:999px;padding:2px 12px;font-weight:600;color:#fff;
background:var(--muted);text-transform:uppercase;font-size:13px;letter-spacing:.03em}
.verdict-accept{background:var(--accept)}.verdict-warn{background:var(--warn)}
.verdict-reject{background:var(--reject)}
.grade{font-size:28px;font-weight:700;text-transform:capitalize}
.score{color:var(--muted)}
figure{margin:0}
figure img{display:block;max-width:100%;height:auto;border-radius:4px;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:13px;margin-top:6px}
table{width:100%;border-collapse:collapse;font-size:14px}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid var(--line)}
th{color:var(--muted);font-weight:600}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;
vertical-align:-1px}
.result-pass{color:var(--accept);font-weight:600}.result-fail{color:var(--reject);font-weight:600}
.result-not-checked{color:var(--muted);font-style:italic}
ol.guidance{list-style:none;padding:0;margin:0}
ol.guidance li{border-left:4px solid var(--muted);padding:6px 12px;margin:0 0 10px}
ol.guidance li.severity-slight{border-color:#7a8699}
ol.guidance li.severity-moderate{border-color:var(--warn)}
ol.guidance li.severity-severe{border-color:var(--reject)}
.code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;font-weight:600}
.sev{color:var(--muted);font-size:13px;margin-left:8px}
.fix{margin:2px 0 0}.fix b{color:var(--accept)}
ol.steps{padding-left:20px}ol.steps li{margin:0 0 10px}ol.steps li p{margin:2px 0}
.step-title{font-weight:600}
.muted{color:var(--muted)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0;font-size:14px}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;overflow-wrap:anywhere}
""".strip()


@dataclass(frozen=True)
class PageContext:
    """What the page says about the job besides its report."""

    job_id: str
    name: str = ""  # a file name (CLI) or the product id; the page title uses it
    product_id: str = ""
    created_at: str = ""


@dataclass(frozen=True)
class IndexEntry:
    """One row of a folder's index page."""

    name: str
    href: str  # the report file, relative to the index
    status: str  # DONE, FAILED, ...
    grade: str = ""
    score: float | None = None
    verdict: str = ""
    codes: tuple[str, ...] = ()
    error: str = ""


def data_uri(jpeg: bytes) -> str:
    """A data: URI of JPEG bytes, for pages that must show the image offline."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _document(title: str, body: str, *, refresh_s: int | None = None, lang: str = "en") -> str:
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">' if refresh_s else ""
    return (
        f'<!DOCTYPE html>\n<html lang="{_e(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"{refresh}<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _summary(report: Report) -> str:
    reasons = "".join(f"<li>{_e(r)}</li>" for r in report.verdict_reasons)
    return (
        '<section class="card" id="summary"><div class="summary">'
        f'<span class="grade" id="grade">{_e(report.grade)}</span>'
        f'<span class="score" id="score">score {report.score:.2f} / 5 · level {_e(report.fine_level)}</span>'
        f'<span class="badge verdict-{_e(report.verdict)}" id="verdict">{_e(report.verdict)}</span>'
        "</div>"
        + (f'<ul class="reasons" id="verdict-reasons">{reasons}</ul>' if reasons else "")
        + f'<p class="muted">Profile {_e(report.profile)} · model {_e(report.model_version)}'
        f" · written by {_e(report.produced_by)}</p></section>"
    )


def _distortion_row(d: ReportDistortion) -> str:
    r, g, b = COLOURS.get(d.type, (255, 0, 255))
    x1, y1, x2, y2 = d.box
    key = "key" if d.key else ""
    note = " (expected by the profile)" if d.expected else ""
    return (
        f'<tr class="distortion" data-type="{_e(d.type)}">'
        f'<td><span class="swatch" style="background:rgb({r},{g},{b})"></span>{_e(d.type)}{_e(note)}</td>'
        f"<td>{_e(d.severity)}</td><td>{_e(key)}</td><td>{_e(d.region)}</td>"
        f"<td>{x1},{y1},{x2},{y2}</td><td>{d.confidence:.2f}</td></tr>"
    )


def _image(report: Report, image_src: str) -> str:
    if image_src:
        picture = (
            f'<img id="annotated" src="{_e(image_src)}" width="{int(report.image.width)}" '
            f'height="{int(report.image.height)}" alt="The image with each detected distortion boxed">'
        )
    else:
        picture = '<p class="muted" id="annotated-missing">The annotated image is not available.</p>'
    rows = "".join(_distortion_row(d) for d in report.distortions)
    table = (
        '<table id="distortions"><thead><tr><th>Distortion</th><th>Severity</th><th>Key</th>'
        f"<th>Where</th><th>Box (px)</th><th>Confidence</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else '<p class="muted">No distortion was detected.</p>'
    )
    caption = (
        f"{int(report.image.width)} × {int(report.image.height)} px; boxes are in the pixels of the "
        "original after EXIF orientation"
    )
    return (
        '<section class="card"><h2>Annotated image</h2>'
        f"<figure>{picture}<figcaption>{_e(caption)}</figcaption></figure>"
        f'<div style="margin-top:12px">{table}</div></section>'
    )


def _guidance_item(g: Guidance) -> str:
    where = ""
    if g.box is not None:
        where = f' <span class="sev">box {",".join(str(int(v)) for v in g.box)}</span>'
    return (
        f'<li class="guidance severity-{_e(g.severity)}" data-code="{_e(g.code)}">'
        f'<span class="code">{_e(g.code)}</span><span class="sev">{_e(g.severity)}</span>{where}'
        f'<p class="message">{_e(g.message)}</p><p class="fix"><b>Fix:</b> {_e(g.fix)}</p></li>'
    )


def _guidance(items: Sequence[Guidance]) -> str:
    body = (
        f'<ol class="guidance" id="guidance">{"".join(_guidance_item(g) for g in items)}</ol>'
        if items
        else '<p class="muted" id="guidance">Nothing to fix.</p>'
    )
    return f'<section class="card"><h2>Guidance</h2>{body}</section>'


def _compliance_row(c: ComplianceCheck) -> str:
    result = RESULT_LABEL[c.passed]
    kind = "required" if c.required else "recommended"
    return (
        f'<tr class="check" data-code="{_e(c.code)}"><td><span class="code">{_e(c.code)}</span><br>'
        f"{_e(c.rule)}</td><td>{_e(c.message)}</td><td>{kind}</td>"
        f'<td class="result-{result.replace(" ", "-")}">{_e(result)}</td></tr>'
    )


def _compliance(report: Report) -> str:
    if not report.compliance:
        body = '<p class="muted">No marketplace rule applies to this profile.</p>'
    else:
        rows = "".join(_compliance_row(c) for c in report.compliance)
        body = (
            '<table id="compliance"><thead><tr><th>Rule (threshold)</th><th>Measured</th><th>Kind</th>'
            f"<th>Result</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return f'<section class="card"><h2>Marketplace compliance: {_e(report.profile)}</h2>{body}</section>'


def _description(report: Report) -> str:
    d = report.description
    texts: tuple[Sequence[str], ...] = ((d.overview,), d.paragraphs, (d.key_line,), (d.conclusion,))
    steps = "".join(
        f'<li><span class="step-title">{_e(title)}</span>{"".join(f"<p>{_e(t)}</p>" for t in lines if t)}'
        "</li>"
        for title, lines in zip(STEP_TITLES, texts, strict=True)
    )
    return (
        f'<section class="card"><h2>Description</h2><ol class="steps" id="description">{steps}</ol></section>'
    )


ASPECT_LABELS = (
    ("focus", "Focus"),
    ("noise", "Noise (1 = clean)"),
    ("exposure", "Exposure"),
    ("contrast", "Contrast"),
    ("saturation", "Saturation (level)"),
    ("jpeg_quality", "JPEG quality"),
    ("resolution", "Resolution"),
)


def _aspects(report: Report) -> str:
    """The seven aspect scores as labelled bars (0..1); nothing for reports stored before them."""
    if report.aspects is None:
        return ""
    values = report.aspects.to_json()
    rows = "".join(
        f'<tr data-aspect="{_e(key)}"><th>{_e(label)}</th><td>{values[key]:.2f}</td>'
        f'<td><span class="bar" style="width:{round(values[key] * 100)}%"></span></td></tr>'
        for key, label in ASPECT_LABELS
    )
    return f'<section class="card"><h2>Aspect scores</h2><table id="aspects">{rows}</table></section>'


def _facts(report: Report, ctx: PageContext) -> str:
    im = report.image
    rows = [
        ("Job", ctx.job_id),
        ("Product", ctx.product_id),
        ("Created", ctx.created_at),
        ("File", f"{im.source_format}, {im.byte_size:,} bytes"),
        ("JPEG quality", "" if im.jpeg_quality is None else str(im.jpeg_quality)),
        ("SHA-256", im.sha256),
    ]
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows if v)
    return f'<section class="card"><h2>Image</h2><dl class="facts">{items}</dl></section>'


def page_title(report: Report, ctx: PageContext) -> str:
    return f"iDetex report: {ctx.name or ctx.product_id or ctx.job_id} ({report.grade}, {report.verdict})"


def render_report(report: Report, ctx: PageContext, image_src: str, lang: str = "en") -> str:
    """The report page: summary, annotated image, guidance, compliance, four-step description;
    `lang` is the language of the report's text (the page's own headings stay English)."""
    name = ctx.name or ctx.product_id or ctx.job_id
    body = (
        f'<h1>Image quality report</h1><p class="sub">{_e(name)}</p>'
        + _summary(report)
        + _image(report, image_src)
        + _guidance(report.guidance)
        + _compliance(report)
        + _aspects(report)
        + _description(report)
        + _facts(report, ctx)
    )
    return _document(page_title(report, ctx), body, lang=lang)


def render_status(job_id: str, status: str, error_code: str = "", error_message: str = "") -> str:
    """The page of a job without a report: still queued or running (reloads itself), or failed."""
    if status == "FAILED":
        detail = f'<p id="error"><span class="code">{_e(error_code)}</span> {_e(error_message)}</p>'
        return _document(
            f"iDetex report: {job_id} (failed)",
            f'<h1>Validation failed</h1><p class="sub">{_e(job_id)}</p>'
            f'<section class="card">{detail}</section>',
        )
    return _document(
        f"iDetex report: {job_id} ({status.lower()})",
        f'<h1>Validation in progress</h1><p class="sub">{_e(job_id)}</p>'
        f'<section class="card"><p id="status">The job is {_e(status.lower())}; '
        "this page reloads every 2 seconds.</p></section>",
        refresh_s=2,
    )


def _index_row(e: IndexEntry) -> str:
    score = "" if e.score is None else f"{e.score:.2f}"
    verdict = f'<span class="badge verdict-{_e(e.verdict)}">{_e(e.verdict)}</span>' if e.verdict else ""
    detail = _e(e.error) if e.error else " ".join(f'<span class="code">{_e(c)}</span>' for c in e.codes)
    return (
        f'<tr><td><a href="{_e(e.href)}">{_e(e.name)}</a></td><td>{_e(e.status.lower())}</td>'
        f'<td style="text-transform:capitalize">{_e(e.grade)}</td><td>{score}</td><td>{verdict}</td>'
        f"<td>{detail}</td></tr>"
    )


def render_index(title: str, entries: Sequence[IndexEntry]) -> str:
    """A folder's index: one row per image with its grade, score, verdict and guidance codes."""
    counts: dict[str, int] = {}
    for e in entries:
        key = e.verdict or e.status.lower()
        counts[key] = counts.get(key, 0) + 1
    summary = " · ".join(f"{_e(k)} {n}" for k, n in sorted(counts.items()))
    rows = "".join(_index_row(e) for e in entries)
    body = (
        f'<h1>{_e(title)}</h1><p class="sub">{len(entries)} images · {summary}</p>'
        '<section class="card"><table id="index"><thead><tr><th>Image</th><th>Status</th><th>Grade</th>'
        f"<th>Score</th><th>Verdict</th><th>Guidance</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )
    return _document(title, body)
