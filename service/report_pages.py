"""Report pages: signed links in replies, the job behind a link, the page and its image.

The HTTP entrypoint (service.api.pages) calls these through the Container; they hold the
rules: a link opens one merchant's one job until it expires (service.domain.report_links),
an API key opens only its own merchant's jobs (handlers.get_job scopes by merchant).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from service import handlers
from service.deps import Deps
from service.domain import report_links
from service.domain.errors import NotFound
from service.domain.i18n import resolve_language
from service.domain.localize import localize_report
from service.domain.report_html import PageContext, render_report, render_status
from service.views import JobView


class ReportLinks:
    """Signs the links a reply carries: `base_url` "" means no report pages, no links."""

    def __init__(
        self, base_url: str, secret: str, ttl_s: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.ttl_s = ttl_s
        self.clock = clock

    def expiry(self) -> int:
        return int(self.clock()) + self.ttl_s

    def for_job(self, merchant_id: str, job_id: str, issued_at: float) -> tuple[str, str]:
        """(report page, annotated image) links valid for ttl_s from `issued_at`; ("", "") when off."""
        if not self.base_url:
            return "", ""
        args = (self.base_url, self.secret, merchant_id, job_id, int(issued_at) + self.ttl_s)
        return report_links.report_url(*args), report_links.annotated_url(*args)

    def add(self, view: JobView) -> JobView:
        """The view with report_url and annotated_url set (finished jobs, links enabled)."""
        if not self.base_url or view.report is None:
            return view
        page, image = self.for_job(view.merchant_id, view.job_id, self.clock())
        return replace(view, report_url=page, annotated_url=image if view.annotated_uri else "")

    def image_src(self, view: JobView, params: Mapping[str, str] | None = None) -> str:
        """The page's <img src>, relative to /reports/<job>: the caller's own signed query when it
        came with one (same grant, same expiry), else a fresh one (a page opened with an API key)."""
        if not view.annotated_uri:
            return ""
        if params and {"m", "exp", "sig"} <= params.keys():
            query = report_links.query(self.secret, params["m"], view.job_id, int(params["exp"]))
        else:
            query = report_links.query(self.secret, view.merchant_id, view.job_id, self.expiry())
        return f"{view.job_id}/{report_links.ANNOTATED_NAME}?{query}"

    def job_for_link(self, deps: Deps, job_id: str, params: Mapping[str, str]) -> JobView:
        """The job a signed link opens: BadLink (bad or expired), NotFound (no such job)."""
        grant = report_links.verify(self.secret, job_id, dict(params), self.clock())
        return handlers.get_job(deps, grant.merchant_id, grant.job_id)


def annotated_image(deps: Deps, view: JobView) -> bytes:
    """The stored annotated JPEG of a finished job; NotFound when it has none."""
    if view.report is None or not view.annotated_uri:
        raise NotFound(f"job {view.job_id} has no annotated image")
    return deps.blobs.get(view.annotated_uri)


def page_html(view: JobView, image_src: str, language: str = "") -> str:
    """The job's page: its report when done (its merchant-facing text in `language`; InvalidRequest
    for one we have no catalogue for), else its status (queued/running reloads itself)."""
    lang = resolve_language(language, "lang")
    if view.report is None:
        return render_status(view.job_id, view.status, view.error_code or "", view.error_message or "")
    ctx = PageContext(
        job_id=view.job_id,
        name=view.product_id or view.job_id,
        product_id=view.product_id,
        created_at=view.created_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
    )
    return render_report(localize_report(view.report, lang), ctx, image_src, lang)
