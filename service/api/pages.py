"""The report pages over HTTP: stdlib http.server on a thread beside the gRPC server.

Routes (GET and HEAD):

| path                              | answer                                         |
|-----------------------------------|------------------------------------------------|
| /reports/<job_id>[?lang=de]       | the HTML report page (service.domain.report_html) |
| /reports/<job_id>/annotated.jpg   | the annotated JPEG                             |
| /healthz                          | `ok` (the process answers; readiness is gRPC health) |

Access to a job: a signed link (`?m=&exp=&sig=`, as the gRPC reply's report_url), or the
merchant's API key (`x-api-key: <key>` or `authorization: Bearer <key>`). 403 for a bad or
expired signature, 401 without credentials or with an unknown key, 404 for a job that does
not exist or belongs to another merchant. Thin: parse, one container call, write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from service.api.auth import api_key_from_metadata
from service.domain.errors import InvalidRequest, NotFound, Unauthenticated
from service.domain.report_links import ANNOTATED_NAME, REPORT_PATH, BadLink
from service.views import JobView

log = logging.getLogger(__name__)

SIGNED_PARAMS: Final = ("m", "exp", "sig")
# no scripts, nothing from elsewhere; images from here or inline; styles inline
CSP: Final = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


class PageBackend(Protocol):
    """What the pages need from the composition root (service.bootstrap.Container)."""

    def authenticate(self, api_key: str) -> str: ...

    def get_job(self, merchant_id: str, job_id: str) -> JobView: ...

    def job_for_link(self, job_id: str, params: Mapping[str, str]) -> JobView: ...

    def annotated_image(self, view: JobView) -> bytes: ...

    def report_page(
        self, view: JobView, params: Mapping[str, str] | None = None, language: str = ""
    ) -> str: ...


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _text(status: HTTPStatus, message: str = "", **headers: str) -> Answer:
    return Answer(status, (message or status.phrase).encode() + b"\n", headers=tuple(headers.items()))


def route(backend: PageBackend, path: str, query: str, headers: Mapping[str, str]) -> Answer:
    """The answer to one GET: pure request-in, answer-out (the handler only does the socket)."""
    if path == "/healthz":
        return _text(HTTPStatus.OK, "ok")
    if not path.startswith(REPORT_PATH):
        return _text(HTTPStatus.NOT_FOUND)
    parts = [unquote(p) for p in path[len(REPORT_PATH) :].split("/")]
    if len(parts) == 1 and parts[0]:
        job_id, want_image = parts[0], False
    elif len(parts) == 2 and parts[0] and parts[1] == ANNOTATED_NAME:
        job_id, want_image = parts[0], True
    else:
        return _text(HTTPStatus.NOT_FOUND)
    params = {k: v[0] for k, v in parse_qs(query).items() if v}
    signed: dict[str, str] = {k: params[k] for k in SIGNED_PARAMS if k in params}
    try:
        if signed:
            view = backend.job_for_link(job_id, signed)
        else:
            api_key = api_key_from_metadata(headers.items())
            if api_key is None:
                raise Unauthenticated("open the report_url of the reply, or send `x-api-key: <key>`")
            view = backend.get_job(backend.authenticate(api_key), job_id)
        if want_image:
            return Answer(
                HTTPStatus.OK,
                backend.annotated_image(view),
                "image/jpeg",
                (("Cache-Control", "private, max-age=3600"),),
            )
        html = backend.report_page(view, signed or None, params.get("lang", ""))
    except BadLink as exc:
        return _text(HTTPStatus.FORBIDDEN, f"forbidden: {exc.reason.lower().replace('_', ' ')} link")
    except Unauthenticated as exc:
        return _text(HTTPStatus.UNAUTHORIZED, exc.message, **{"WWW-Authenticate": "Bearer"})
    except NotFound:
        return _text(HTTPStatus.NOT_FOUND, "no such report")
    except InvalidRequest as exc:
        return _text(HTTPStatus.BAD_REQUEST, exc.message)
    return Answer(HTTPStatus.OK, html.encode(), "text/html; charset=utf-8", (("Cache-Control", "no-store"),))


class _Handler(BaseHTTPRequestHandler):
    server_version = "idetex"
    sys_version = ""
    backend: PageBackend  # set on the subclass made per server

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        url = urlsplit(self.path)
        try:
            answer = route(self.backend, url.path, url.query, dict(self.headers.items()))
        except Exception:
            log.exception("report page %s failed", url.path)
            answer = _text(HTTPStatus.INTERNAL_SERVER_ERROR)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # signed links never leave in a Referer
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class PageServer:
    """A ThreadingHTTPServer bound at construction (port 0 picks one); serves on a daemon thread."""

    def __init__(self, backend: PageBackend, address: str) -> None:
        host, _, port = address.rpartition(":")
        handler = type("PageHandler", (_Handler,), {"backend": backend})
        try:
            self.httpd = ThreadingHTTPServer((host.strip("[]") or "0.0.0.0", int(port)), handler)
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot serve report pages on {address}: {exc}") from exc
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self.httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="report-pages", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()
