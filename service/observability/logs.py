"""Structured logs: JSON lines (IDETEX_LOG_FORMAT=json) or text, carrying the job and merchant ids.

Code that knows an id binds it for the rest of the current context (`bind`) or for a block
(`log_context`); `ContextFilter`, installed on the handlers, copies the bound ids onto every
record, so any module's log lines carry them without passing them around. gRPC calls and
Celery tasks each run in a context of their own (service.api.interceptors, workers.tasks).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final

CONTEXT_FIELDS: Final = ("job_id", "merchant_id", "rpc", "task", "audit_id", "webhook_id")
_context: ContextVar[dict[str, str] | None] = ContextVar("idetex_log_context", default=None)

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"


def current() -> dict[str, str]:
    return dict(_context.get() or {})


def bind(**fields: str | None) -> None:
    """Add ids to the current context (a gRPC call, a task) until it ends."""
    _context.set({**current(), **{k: str(v) for k, v in fields.items() if v}})


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """A fresh scope for ids: those bound inside are gone after the block."""
    token = _context.set({**current(), **{k: str(v) for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record (`record.job_id`, ...) and a text suffix `context`."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = current()
        for key, value in bound.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "context"):
            record.context = "".join(f" {k}={v}" for k, v in bound.items())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the bound ids, exc (a traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.processName not in ("MainProcess", None):
            entry["process"] = record.processName
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def install(handlers: list[logging.Handler], log_format: str) -> None:
    """Put the formatter and the context filter on these handlers (idempotent)."""
    for handler in handlers:
        handler.setFormatter(formatter(log_format))
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """The CLI's and the API's logging: one stderr handler on the root logger."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    root.setLevel(level)
    install(root.handlers, log_format)


def start_context(**fields: str | None) -> None:
    """Replace the current context's ids (a Celery task starts with only its own)."""
    _context.set({k: str(v) for k, v in fields.items() if v})
