"""Service-layer handlers over local adapters: SQLite file, local blobs, in-memory publisher.

The model is a fake that subclasses the Inference port and answers contract-shaped arrays.
"""

from __future__ import annotations

import datetime as dt
import time

import boto3
import numpy as np
import pytest
from moto import mock_aws
from sqlalchemy import delete, update

from service import handlers
from service.adapters.blobs import LocalBlobStore, RoutingBlobStore, S3BlobStore
from service.adapters.db import ApiKey, DistortionRow, Job, ReportRow, make_engine, migrate
from service.adapters.inference import Inference
from service.adapters.pixels import FileHandoff
from service.adapters.publisher import PROCESS_IMAGE, InMemoryPublisher, TaskMessage
from service.adapters.repository import Repository
from service.adapters.unit_of_work import Conflict, sql_unit_of_work_factory
from service.adapters.webhook import DeliveryResult, WebhookSender
from service.domain.errors import (
    BadImage,
    ImageTooLarge,
    InferenceUnavailable,
    InvalidRequest,
    NotFound,
    Unauthenticated,
)
from service.domain.imaging import ImageLimits, decode_image
from service.handlers import ListFilter, SubmitImage
from service.job_watch import JobWatcher
from tests.imagefactory import gradient, png_bytes, random_bytes, truncated_jpeg
from tests.support.contract_outputs import underexposed_top_left


class FakeInference(Inference):
    """Contract-shaped outputs: moderate underexposure over the top-left quarter, grade level f."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if self.down:
            raise InferenceUnavailable("fake Triton is down")
        assert images.dtype == np.uint8 and images.shape[1:] == (3, 320, 320)
        self.calls += 1
        return underexposed_top_left(images.shape[0])

    def is_ready(self) -> bool:
        return not self.down

    def model_version(self) -> str:
        if self.down:
            raise InferenceUnavailable("fake Triton is down")
        return "7"


class RecordingSender(WebhookSender):
    """Answers with the queued status codes (200 when none are left) and keeps what it was sent."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.sent: list[tuple[str, dict[str, str], bytes]] = []

    def send(self, url, headers, body, address=None):
        self.sent.append((url, dict(headers), body))
        status = self.statuses.pop(0) if self.statuses else 200
        return DeliveryResult(status, None if status < 300 else f"HTTP {status}")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def env(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    publisher = InMemoryPublisher()
    inference = FakeInference()
    sender = RecordingSender()
    clock = Clock()
    local = LocalBlobStore(tmp_path / "blobs")
    deps = handlers.Deps(
        uow=sql_unit_of_work_factory(engine, publisher),
        blobs=RoutingBlobStore(local, {"file": local}),
        inference=inference,
        model_version=inference.model_version,
        limits=ImageLimits(max_bytes=2_000_000),
        api_key_pepper="test-pepper",
        webhook_sender=sender,
        webhook_allow_private=True,
        clock=clock,
        sleep=clock.sleep,
    )
    yield deps, publisher, inference, sender
    engine.dispose()


@pytest.fixture()
def merchant(env):
    deps, *_ = env
    merchant_id, _ = handlers.create_merchant(deps, "Shop")
    return merchant_id


def photo(seed: int = 0) -> bytes:
    rgb = gradient(400, 300)
    rgb[0, 0, 0] = seed  # different bytes (lossless), same look
    return png_bytes(rgb)


def submit(deps, merchant_id, data=None, **kw) -> handlers.SubmitResult:
    return handlers.submit(
        deps, SubmitImage(merchant_id=merchant_id, image=photo() if data is None else data, **kw)
    )


def run_queued(deps, publisher) -> list[str]:
    """Play the worker: run every queued PROCESS_IMAGE message once; other messages stay queued."""
    statuses = []
    while any(m.name == PROCESS_IMAGE for m in publisher.sent):
        message = next(m for m in publisher.sent if m.name == PROCESS_IMAGE)
        publisher.sent.remove(message)
        statuses.append(handlers.process_job(deps, *message.args))
    return statuses


def test_submit_creates_a_pending_job_and_queues_it_after_commit(env, merchant):
    """A valid image becomes a PENDING job, stored original, one PROCESS_IMAGE message."""
    deps, publisher, *_ = env
    result = submit(deps, merchant, product_id="sku-1")
    assert (result.status, result.deduplicated) == ("PENDING", False)
    assert publisher.sent == [TaskMessage(PROCESS_IMAGE, (result.job_id,))]
    view = handlers.get_job(deps, merchant, result.job_id)
    assert view.product_id == "sku-1" and view.report is None
    assert deps.blobs.get(view.original_uri) == photo()


def test_a_new_jobs_view_from_submit_is_what_a_read_returns(env, merchant):
    """The async reply is built from the committed row without reading it again: same view."""
    deps, *_ = env
    result = submit(deps, merchant, product_id="sku-1")
    assert result.view is not None
    assert result.view == handlers.get_job(deps, merchant, result.job_id)
    assert result.view.status == "PENDING" and result.view.report is None
    assert submit(deps, merchant, product_id="sku-1").view is None  # a repeat is read as it stands


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "EMPTY"), (random_bytes(), "NOT_AN_IMAGE"), (truncated_jpeg(), "TRUNCATED")],
)
def test_bad_images_fail_at_submit_and_leave_no_job(env, merchant, data, reason):
    """Undecodable uploads raise BadImage with its reason; nothing is stored or queued."""
    deps, publisher, *_ = env
    with pytest.raises(BadImage) as err:
        submit(deps, merchant, data)
    assert err.value.reason == reason
    assert publisher.sent == []
    assert handlers.list_jobs(deps, merchant, ListFilter())[0] == []


def test_unknown_profile_is_an_invalid_request(env, merchant):
    """The marketplace profile is checked before anything is stored."""
    deps, *_ = env
    with pytest.raises(InvalidRequest):
        submit(deps, merchant, profile="etsy_but_misspelt")


def test_processing_stores_report_distortions_and_annotated_image(env, merchant):
    """process_job runs the model once and stores a DONE report with queryable distortion rows."""
    deps, publisher, inference, _ = env
    job_id = submit(deps, merchant).job_id
    assert run_queued(deps, publisher) == ["DONE"]
    view = handlers.get_job(deps, merchant, job_id)
    assert view.status == "DONE" and view.attempts == 1 and view.model_version == "7"
    assert view.report is not None and view.report.grade == "fair"
    assert [d.type for d in view.report.distortions] == ["Underexposure"]
    assert deps.blobs.get(view.annotated_uri)[:2] == b"\xff\xd8"
    with deps.uow() as uow:
        rows = [(r.type, r.key) for r in uow.session.query(DistortionRow).filter_by(job_id=job_id)]
    assert rows == [("Underexposure", True)]
    assert inference.calls == 1


def test_an_upload_is_hashed_once_from_submit_to_report(env, merchant, monkeypatch):
    """The API hashes the bytes once (idempotency, the blob key, the job row) and the worker takes
    that digest from the job row."""
    import hashlib

    deps, publisher, *_ = env
    data = photo(7)
    real, hashed = hashlib.sha256, []

    def counting(payload: bytes = b"", *args, **kw):
        if payload == data:
            hashed.append(1)
        return real(payload, *args, **kw)

    monkeypatch.setattr(hashlib, "sha256", counting)
    job_id = submit(deps, merchant, data).job_id
    assert len(hashed) == 1
    assert run_queued(deps, publisher) == ["DONE"]
    assert len(hashed) == 1
    report = handlers.get_job(deps, merchant, job_id).report
    assert report is not None and report.image.sha256 == real(data).hexdigest()


def test_a_sync_request_hands_its_decoded_pixels_to_the_worker(env, merchant, tmp_path):
    """In sync mode the worker takes the API's pixels instead of decoding; the report is the same."""
    deps, publisher, *_ = env
    deps.pixels = FileHandoff(tmp_path / "handoff")
    sync = submit(deps, merchant, photo(1), mode="sync")
    assert deps.pixels.take(sync.job_id) is not None  # it was left for the worker...
    deps.pixels.put(sync.job_id, decode_image(photo(1)))
    asyncr = submit(deps, merchant, photo(2), mode="async")
    assert deps.pixels.take(asyncr.job_id) is None  # ...but not for async requests
    assert run_queued(deps, publisher) == ["DONE", "DONE"]
    assert list((tmp_path / "handoff").iterdir()) == []
    reports = [handlers.get_job(deps, merchant, j).report for j in (sync.job_id, asyncr.job_id)]
    assert reports[0].grade == reports[1].grade


def test_a_repeat_returns_the_stored_report_without_inference(env, merchant):
    """Same merchant, bytes, profile and model version: the same job comes back, no new task."""
    deps, publisher, inference, _ = env
    first = submit(deps, merchant)
    run_queued(deps, publisher)
    again = submit(deps, merchant)
    assert (again.job_id, again.status, again.deduplicated) == (first.job_id, "DONE", True)
    assert publisher.sent == [] and inference.calls == 1
    other_profile = submit(deps, merchant, profile="ebay")
    assert other_profile.job_id != first.job_id and not other_profile.deduplicated


def test_a_repeat_is_answered_before_decoding(env, merchant):
    """A repeat is found by the bytes' hash alone: even limits that would now refuse it are not applied."""
    deps, *_ = env
    first = submit(deps, merchant)
    deps.limits = ImageLimits(max_bytes=2_000_000, min_side=10_000)
    assert submit(deps, merchant).job_id == first.job_id
    with pytest.raises(BadImage):
        submit(deps, merchant, photo(9))


def test_oversized_uploads_are_refused_before_anything_else(env, merchant):
    """Bytes above the upload limit raise ImageTooLarge."""
    deps, *_ = env
    with pytest.raises(ImageTooLarge):
        submit(deps, merchant, b"\xff" * 2_000_001)


def test_a_repeat_while_pending_does_not_queue_twice(env, merchant):
    """A second submit of a queued image joins the first job."""
    deps, publisher, *_ = env
    first = submit(deps, merchant)
    second = submit(deps, merchant)
    assert second.job_id == first.job_id and second.deduplicated
    assert len(publisher.sent) == 1


def test_idempotency_key_returns_the_first_job_and_refuses_other_bytes(env, merchant):
    """A key maps to one job; reusing it for another image is an InvalidRequest."""
    deps, *_ = env
    first = submit(deps, merchant, photo(1), idempotency_key="k-1")
    assert submit(deps, merchant, photo(1), idempotency_key="k-1").job_id == first.job_id
    with pytest.raises(InvalidRequest) as err:
        submit(deps, merchant, photo(2), idempotency_key="k-1")
    assert err.value.reason == "IDEMPOTENCY_KEY_REUSED"


def test_inference_down_is_retried_then_fails_on_the_last_attempt(env, merchant):
    """InferenceUnavailable re-raises for a retry; the final attempt marks the job FAILED."""
    deps, _, inference, _ = env
    job_id = submit(deps, merchant).job_id
    inference.down = True
    with pytest.raises(InferenceUnavailable):
        handlers.process_job(deps, job_id)
    view = handlers.get_job(deps, merchant, job_id)
    assert (view.status, view.error_code) == ("PENDING", "INFERENCE_UNAVAILABLE")
    assert handlers.process_job(deps, job_id, final_attempt=True) == "FAILED"
    view = handlers.get_job(deps, merchant, job_id)
    assert (view.status, view.error_code, view.attempts) == ("FAILED", "INFERENCE_UNAVAILABLE", 2)


def test_a_repeat_requeues_a_job_that_failed_for_a_transient_reason(env, merchant):
    """After Triton comes back, submitting the same image again runs it again."""
    deps, publisher, inference, _ = env
    job_id = submit(deps, merchant).job_id
    publisher.sent.clear()
    inference.down = True
    handlers.process_job(deps, job_id, final_attempt=True)
    inference.down = False
    again = submit(deps, merchant)
    assert again.job_id == job_id and again.status == "PENDING"
    assert run_queued(deps, publisher) == ["DONE"]


def test_a_corrupt_stored_original_fails_the_job_with_its_code(env, merchant):
    """A job whose original no longer decodes ends FAILED with the domain error's code."""
    deps, publisher, *_ = env
    job_id = submit(deps, merchant).job_id
    view = handlers.get_job(deps, merchant, job_id)
    deps.blobs.primary.put(f"originals/{merchant}/{view.image_sha256}", b"garbage", "image/jpeg")
    assert run_queued(deps, publisher) == ["FAILED"]
    view = handlers.get_job(deps, merchant, job_id)
    assert view.error_code == "BAD_IMAGE" and view.error_message


def test_an_annotated_copy_that_cannot_be_stored_fails_the_job_and_stores_no_report(
    env, merchant, monkeypatch
):
    """The annotated copy is stored on a helper thread while the report is written; if storing it
    fails, the job ends FAILED (INTERNAL) and no report or distortion row is left behind."""
    deps, publisher, *_ = env
    job_id = submit(deps, merchant).job_id
    real_put = deps.blobs.put

    def put(key, data, content_type):
        if key.startswith("annotated/"):
            raise OSError("disk full")
        return real_put(key, data, content_type)

    monkeypatch.setattr(deps.blobs, "put", put)
    assert run_queued(deps, publisher) == ["FAILED"]
    view = handlers.get_job(deps, merchant, job_id)
    assert view.status == "FAILED" and view.error_code == "INTERNAL"
    assert "disk full" in view.error_message and view.report is None and view.annotated_uri is None
    with deps.uow() as uow:
        assert uow.session.query(DistortionRow).filter_by(job_id=job_id).count() == 0


def test_redelivery_of_a_finished_job_does_nothing(env, merchant):
    """process_job on a DONE job returns DONE without calling the model."""
    deps, publisher, inference, _ = env
    job_id = submit(deps, merchant).job_id
    run_queued(deps, publisher)
    assert handlers.process_job(deps, job_id) == "DONE"
    assert inference.calls == 1


def _store_winner(deps, merchant, job_id, status="DONE"):
    """Another worker's copy of the job stores its report (and sets the job's `status`)."""
    with deps.uow() as other:
        other.repo.job(job_id).status = status
        other.repo.add(
            ReportRow(
                job_id=job_id,
                merchant_id=merchant,
                product_id="",
                grade="good",
                verdict="accept",
                score=4.0,
                body="{}",
            )
        )
        other.commit()


def test_a_copy_whose_job_another_worker_finished_meanwhile_ends_done_with_one_report(
    env, merchant, monkeypatch
):
    """Two deliveries of one job race: the one that finds the job DONE when it stores returns
    DONE without writing, leaving the winner's report as the only one."""
    deps, publisher, _, _ = env
    job_id = submit(deps, merchant).job_id
    original = Repository.finish_job

    def winner_first(self, *args):  # this copy ran the model; the winner stores first
        _store_winner(deps, merchant, job_id)
        return original(self, *args)

    monkeypatch.setattr(Repository, "finish_job", winner_first)
    assert run_queued(deps, publisher) == ["DONE"]
    with deps.uow() as uow:
        assert uow.repo.report(job_id).body == "{}"  # the winner's
        assert uow.repo.distortions(job_id) == []
        assert uow.repo.job(job_id).status == "DONE"


def test_a_report_row_already_there_ends_done_and_is_kept(env, merchant, monkeypatch):
    """A report row that exists while the job is not DONE yet (a copy between its two writes
    elsewhere): the insert conflicts, this copy rolls back and returns DONE, the row is kept."""
    deps, publisher, _, _ = env
    job_id = submit(deps, merchant).job_id
    original = Repository.finish_job

    def report_first(self, *args):
        _store_winner(deps, merchant, job_id, status="RUNNING")
        return original(self, *args)

    monkeypatch.setattr(Repository, "finish_job", report_first)
    assert run_queued(deps, publisher) == ["DONE"]
    with deps.uow() as uow:
        assert uow.repo.report(job_id).body == "{}"
        assert uow.repo.distortions(job_id) == []


def test_a_job_deleted_while_it_was_processed_is_not_found_and_nothing_is_stored(env, merchant, monkeypatch):
    """The job row vanishes between the claim and the store: NotFound (as for a missing job at
    the claim), no report row."""
    deps, publisher, _, _ = env
    job_id = submit(deps, merchant).job_id
    original = Repository.finish_job

    def deleted_first(self, *args):
        with deps.uow() as other:
            other.session.execute(delete(Job).where(Job.id == job_id))
            other.commit()
        return original(self, *args)

    monkeypatch.setattr(Repository, "finish_job", deleted_first)
    with pytest.raises(NotFound):
        run_queued(deps, publisher)
    with deps.uow() as uow:
        assert uow.repo.report(job_id) is None


def test_a_constraint_broken_for_another_reason_is_not_taken_for_a_finished_job(env, merchant, monkeypatch):
    """Only a report row stored by another worker means DONE: any other broken constraint at the
    store raises, and nothing of the job's report is kept."""
    deps, publisher, _, _ = env
    job_id = submit(deps, merchant).job_id
    orphan = {
        "job_id": "no-such-report",
        "type": "Noise",
        "severity": "slight",
        "x1": 0,
        "y1": 0,
        "x2": 1,
        "y2": 1,
        "confidence": 0.5,
        "key": False,
    }
    monkeypatch.setattr(handlers.pipeline, "distortion_rows", lambda *_: [orphan])
    with pytest.raises(Conflict):
        run_queued(deps, publisher)
    with deps.uow() as uow:
        assert uow.repo.report(job_id) is None
        assert uow.repo.job(job_id).status == "RUNNING"  # the stale-job sweeper queues it again


def test_jobs_are_not_found_for_other_merchants(env, merchant):
    """Another merchant's job id is NotFound, exactly like a missing one."""
    deps, *_ = env
    other, _ = handlers.create_merchant(deps, "Other")
    job_id = submit(deps, merchant).job_id
    with pytest.raises(NotFound):
        handlers.get_job(deps, other, job_id)
    with pytest.raises(NotFound):
        JobWatcher(deps).wait(other, job_id, 1.0)


def test_wait_returns_pending_when_time_is_up_and_done_once_processed(env, merchant):
    """A sync wait lasts until its timeout, then returns the job as it stands."""
    deps, publisher, *_ = env
    job_id = submit(deps, merchant).job_id
    watcher = JobWatcher(deps)
    start = time.monotonic()
    assert watcher.wait(merchant, job_id, 0.3).status == "PENDING"
    assert time.monotonic() - start >= 0.3
    run_queued(deps, publisher)
    assert watcher.wait(merchant, job_id, 0.3).status == "DONE"
    watcher.close()


def test_listing_pages_with_tokens_and_filters(env, merchant):
    """Pages of 2 over 5 jobs visit each once; the verdict filter and a bad token behave."""
    deps, publisher, *_ = env
    ids = {submit(deps, merchant, photo(i), product_id=f"p{i}").job_id for i in range(5)}
    run_queued(deps, publisher)
    seen, token = [], ""
    while True:
        page, token = handlers.list_jobs(deps, merchant, ListFilter(), token, 2)
        seen += [v.job_id for v in page]
        if not token:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    verdict = handlers.get_job(deps, merchant, seen[0]).report.verdict
    assert len(handlers.list_jobs(deps, merchant, ListFilter(verdict=verdict))[0]) == 5
    assert handlers.list_jobs(deps, merchant, ListFilter(product_id="p3"))[0][0].product_id == "p3"
    with pytest.raises(InvalidRequest):
        handlers.list_jobs(deps, merchant, ListFilter(), "not-a-token")


def test_api_keys_authenticate_their_merchant_and_are_stored_hashed(env):
    """The key finds its merchant; wrong, malformed and revoked keys are Unauthenticated."""
    deps, *_ = env
    merchant_id, api_key = handlers.create_merchant(deps, "Shop")
    assert handlers.authenticate(deps, api_key) == merchant_id
    second = handlers.issue_api_key(deps, merchant_id)
    assert handlers.authenticate(deps, second) == merchant_id
    with deps.uow() as uow:
        stored = [row.key_hash for row in uow.session.query(ApiKey).all()]
    assert api_key not in stored and second not in stored
    for bad in ("", "idk_nope", api_key[:-1] + ("0" if api_key[-1] != "0" else "1")):
        with pytest.raises(Unauthenticated):
            handlers.authenticate(deps, bad)
    with deps.uow() as uow:
        uow.session.query(ApiKey).update({"revoked": True})
        uow.commit()
    with pytest.raises(Unauthenticated):
        handlers.authenticate(deps, api_key)


def test_readiness_reports_each_dependency(env):
    """Triton, database and broker are reported separately; a down model shows as triton False."""
    deps, _, inference, _ = env
    assert handlers.readiness(deps) == {"triton": True, "database": True, "broker": True}
    inference.down = True
    deps.broker_ready = lambda: False
    assert handlers.readiness(deps) == {"triton": False, "database": True, "broker": False}


def test_s3_inputs_are_read_and_a_missing_object_is_a_clear_invalid_request(env, merchant):
    """An s3:// URI is validated like bytes; a missing object names the reason."""
    deps, *_ = env
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="catalogue")
        client.put_object(Bucket="catalogue", Key="sku/1.png", Body=png_bytes())
        deps.blobs.readers["s3"] = S3BlobStore("", client=client)
        result = handlers.submit(deps, SubmitImage(merchant_id=merchant, s3_uri="s3://catalogue/sku/1.png"))
        assert result.status == "PENDING"
        with pytest.raises(InvalidRequest) as err:
            handlers.submit(deps, SubmitImage(merchant_id=merchant, s3_uri="s3://catalogue/sku/missing.png"))
        assert err.value.reason == "S3_OBJECT_NOT_FOUND" and "missing.png" in err.value.message


class Expired(Exception):
    """Stands in for the worker's soft time limit exception."""


class SlowInference(FakeInference):
    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        raise Expired()


def test_a_job_past_its_time_limit_fails_with_timeout(env, merchant):
    """The worker's time-limit exception becomes a FAILED job with code TIMEOUT."""
    deps, *_ = env
    deps.inference = SlowInference()
    deps.timeout_errors = (Expired,)
    job_id = submit(deps, merchant).job_id
    assert handlers.process_job(deps, job_id) == "FAILED"
    assert handlers.get_job(deps, merchant, job_id).error_code == "TIMEOUT"


def test_a_job_redelivered_too_often_is_given_up(env, merchant):
    """A job whose worker keeps dying is FAILED with TOO_MANY_ATTEMPTS instead of looping."""
    deps, _, inference, _ = env
    deps.max_attempts = 2
    job_id = submit(deps, merchant).job_id
    with deps.uow() as uow:
        uow.repo.job(job_id).attempts = 2
        uow.commit()
    assert handlers.process_job(deps, job_id) == "FAILED"
    assert handlers.get_job(deps, merchant, job_id).error_code == "TOO_MANY_ATTEMPTS"
    assert inference.calls == 0


def test_fail_job_never_overrides_a_finished_job(env, merchant):
    """fail_job marks pending jobs FAILED but leaves DONE ones alone."""
    deps, publisher, *_ = env
    done = submit(deps, merchant, photo(1)).job_id
    run_queued(deps, publisher)
    pending = submit(deps, merchant, photo(2)).job_id
    assert handlers.fail_job(deps, done, "TIMEOUT", "late") == "DONE"
    assert handlers.fail_job(deps, pending, "TIMEOUT", "late") == "FAILED"
    assert handlers.get_job(deps, merchant, pending).error_code == "TIMEOUT"


def _age(deps, job_id: str, status: str, seconds: float) -> None:
    with deps.uow() as uow:
        job = uow.repo.job(job_id)
        job.status = status
        uow.commit()
        uow.session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds))
        )
        uow.commit()


def test_lost_jobs_are_queued_again_once(env, merchant):
    """Long-RUNNING and long-PENDING jobs are requeued exactly once; recent ones are left alone."""
    deps, publisher, *_ = env
    running, pending, recent = (submit(deps, merchant, photo(i)).job_id for i in range(3))
    publisher.sent.clear()
    _age(deps, running, "RUNNING", 400)
    _age(deps, pending, "PENDING", 4000)
    _age(deps, recent, "RUNNING", 10)
    assert sorted(handlers.requeue_stale(deps, 300, 3600)) == sorted([running, pending])
    assert sorted(m.args[0] for m in publisher.sent) == sorted([running, pending])
    assert handlers.get_job(deps, merchant, running).status == "PENDING"
    assert handlers.requeue_stale(deps, 300, 3600) == []
    assert run_queued(deps, publisher) == ["DONE", "DONE"]
