"""One poller per API process for every sync Validate waiting on its job.

Each waiting request registers its job and sleeps on an Event. A single thread reads the
database's change counter (SQLite's `data_version`, ~10 us) every CHANGE_POLL_S, and when
it moved (or `poll_interval_s` passed, on databases without one) asks for the status of
all waited-on jobs in one query, then wakes the requests whose job is finished.

With one sync caller this behaves like `handlers.wait_for_report` (the report is seen a
couple of milliseconds after it is stored); with fifty it costs one query per change
instead of fifty, and no thread wakes up a thousand times a second for nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from service import handlers
from service.deps import Deps
from service.views import JobView

log = logging.getLogger(__name__)

CHANGE_POLL_S = 0.001


class JobWatcher:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._lock = threading.Lock()
        self._waiting: dict[str, list[threading.Event]] = {}
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = False

    def wait(self, merchant_id: str, job_id: str, timeout_s: float) -> JobView:
        """The job's view once DONE or FAILED, or as it stands when `timeout_s` is up
        (NotFound for another merchant's job, like handlers.get_job)."""
        view = handlers.get_job(self.deps, merchant_id, job_id)
        if view.status in handlers.TERMINAL or timeout_s <= 0:
            return view
        done = threading.Event()
        with self._lock:
            self._waiting.setdefault(job_id, []).append(done)
            self._ensure_thread()
            self._wake.notify()
        try:
            # the job may have finished between the first read and the registration
            if handlers.get_job(self.deps, merchant_id, job_id).status not in handlers.TERMINAL:
                done.wait(timeout_s)
        finally:
            with self._lock:
                events = self._waiting.get(job_id, [])
                if done in events:
                    events.remove(done)
                if not events:
                    self._waiting.pop(job_id, None)
        return handlers.get_job(self.deps, merchant_id, job_id)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify_all()
            for events in self._waiting.values():
                for e in events:
                    e.set()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="job-watcher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        changes: Callable[[], int | None] | None = getattr(self.deps.uow, "data_version", None)
        seen: int | None = None
        queried = float("-inf")
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                    seen, queried = None, float("-inf")  # first look right after a new waiter
                if self._closed:
                    return
                ids = list(self._waiting)
            version = changes() if changes is not None else None
            stale = time.monotonic() - queried >= self.deps.poll_interval_s
            if version is None or version != seen or stale:
                seen, queried = version, time.monotonic()
                try:
                    finished = self._finished(ids)
                except Exception:  # the database is away for now: the waiters time out as usual
                    log.warning("job watcher: status query failed", exc_info=True)
                    finished = []
                with self._lock:
                    for job_id in finished:
                        for e in self._waiting.get(job_id, []):
                            e.set()
            step = CHANGE_POLL_S if version is not None else self.deps.poll_interval_s
            time.sleep(step)  # real time, like the waiters' Event.wait

    def _finished(self, ids: list[str]) -> list[str]:
        with self.deps.uow() as uow:
            statuses = uow.repo.job_statuses(ids)
        return [job_id for job_id, status in statuses.items() if status in handlers.TERMINAL]
