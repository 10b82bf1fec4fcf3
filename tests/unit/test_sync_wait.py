"""A sync wait on SQLite sees a stored result within milliseconds, without querying the job every poll."""

from __future__ import annotations

import threading
import time

from sqlalchemy import event

from service import handlers
from service.adapters.blobs import LocalBlobStore
from service.adapters.db import make_engine, migrate
from service.adapters.inference import OnnxRuntimeInference
from service.adapters.publisher import InMemoryPublisher
from service.adapters.unit_of_work import sql_unit_of_work_factory
from service.adapters.webhook import HttpWebhookSender
from service.deps import Deps
from service.domain.imaging import ImageLimits
from service.handlers import SubmitImage
from service.job_watch import JobWatcher
from tests import imagefactory as f


def make_deps(tmp_path, poll_interval_s: float) -> tuple[Deps, list[str]]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    deps = Deps(
        uow=sql_unit_of_work_factory(engine, InMemoryPublisher()),
        blobs=LocalBlobStore(tmp_path / "blobs"),
        inference=OnnxRuntimeInference(tmp_path / "no-model.onnx"),
        model_version=lambda: "1",
        limits=ImageLimits(),
        api_key_pepper="test",
        webhook_sender=HttpWebhookSender(1.0),
        poll_interval_s=poll_interval_s,
    )
    return deps, statements


def test_the_change_counter_moves_on_every_commit(tmp_path):
    """data_version changes when any connection commits, and stays put otherwise."""
    deps, _ = make_deps(tmp_path, 0.02)
    counter = deps.uow.data_version  # type: ignore[attr-defined]
    before = counter()
    assert counter() == before
    handlers.create_merchant(deps, "shop")
    assert counter() != before


def test_a_finished_job_is_seen_long_before_the_poll_interval(tmp_path):
    """With a 2 s poll interval, a job finished after 0.1 s is returned about then, after few queries."""
    deps, statements = make_deps(tmp_path, 2.0)
    merchant, _ = handlers.create_merchant(deps, "shop")
    job_id = handlers.submit(deps, SubmitImage(merchant, image=f.png_bytes())).job_id
    finisher = threading.Timer(0.1, handlers.fail_job, (deps, job_id, "INTERNAL", "stopped by the test"))
    finisher.start()
    statements.clear()
    start = time.monotonic()
    watcher = JobWatcher(deps)
    view = watcher.wait(merchant, job_id, 5.0)
    waited = time.monotonic() - start
    watcher.close()
    finisher.join()
    assert view.status == "FAILED"
    assert 0.1 <= waited < 0.6
    status_queries = [s for s in statements if "jobs.status" in s and "FROM jobs" in s]
    assert 1 <= len(status_queries) <= 8, status_queries  # not one per 1 ms poll


def test_one_watcher_wakes_many_sync_waiters_with_few_queries(tmp_path):
    """Twenty requests wait on twenty jobs: each returns soon after its job finishes, and the
    shared watcher reads job statuses once per change, not once per waiter per poll."""
    deps, statements = make_deps(tmp_path, 2.0)
    merchant, _ = handlers.create_merchant(deps, "shop")
    jobs = [
        handlers.submit(deps, SubmitImage(merchant, image=f.png_bytes(f.gradient(40 + i, 40)))).job_id
        for i in range(20)
    ]
    watcher = JobWatcher(deps)
    results: dict[str, tuple[str, float]] = {}

    def wait(job_id: str) -> None:
        start = time.monotonic()
        view = watcher.wait(merchant, job_id, 10.0)
        results[job_id] = (view.status, time.monotonic() - start)

    threads = [threading.Thread(target=wait, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    time.sleep(0.2)
    statements.clear()
    for job_id in jobs:
        handlers.fail_job(deps, job_id, "INTERNAL", "stopped by the test")
    for t in threads:
        t.join(5.0)
    watcher.close()
    assert {s for s, _ in results.values()} == {"FAILED"} and len(results) == 20
    assert max(w for _, w in results.values()) < 2.0  # long before the 2 s poll interval
    batch_queries = [s for s in statements if "jobs.status" in s and " IN " in s]
    assert 1 <= len(batch_queries) <= 25, len(batch_queries)  # about one per commit, not 20 per poll


def test_a_watched_wait_returns_the_view_as_it_stands_at_the_timeout(tmp_path):
    """A job that never finishes: the wait ends after its timeout with the job still PENDING."""
    deps, _ = make_deps(tmp_path, 0.05)
    merchant, _ = handlers.create_merchant(deps, "shop")
    job_id = handlers.submit(deps, SubmitImage(merchant, image=f.png_bytes())).job_id
    watcher = JobWatcher(deps)
    start = time.monotonic()
    view = watcher.wait(merchant, job_id, 0.3)
    watcher.close()
    assert view.status == "PENDING"
    assert 0.3 <= time.monotonic() - start < 1.5
