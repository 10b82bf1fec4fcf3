"""SQL storage on real databases: migrations, unit of work, queries (SQLite; PostgreSQL when set)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from service.adapters.db import Base, Job, Merchant, MerchantPolicy, ReportRow, make_engine, migrate
from service.adapters.publisher import InMemoryPublisher, TaskMessage, TaskPublisher
from service.adapters.repository import ListFilter
from service.adapters.unit_of_work import Conflict, PublishFailed, sql_unit_of_work_factory

pytestmark = pytest.mark.integration

TABLES = {"merchants", "api_keys", "jobs", "reports", "distortions", "webhook_deliveries"}


class BrokenPublisher(TaskPublisher):
    def publish(self, message: TaskMessage) -> None:
        raise ConnectionError("broker down")

    def is_ready(self) -> bool:
        return False


@pytest.fixture()
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def publisher():
    return InMemoryPublisher()


@pytest.fixture()
def uow(engine, publisher):
    return sql_unit_of_work_factory(engine, publisher)


@pytest.fixture()
def merchant_id(uow):
    mid = str(uuid.uuid4())
    with uow() as u:
        u.repo.add(Merchant(id=mid, name="shop"))
        u.commit()
    return mid


def new_job(merchant_id: str, **fields) -> Job:
    values = {
        "id": str(uuid.uuid4()),
        "merchant_id": merchant_id,
        "product_id": "p1",
        "profile": "default",
        "status": "PENDING",
        "image_sha256": uuid.uuid4().hex * 2,
        "model_version": "1",
        "attempts": 0,
        "original_uri": "file:///x",
    }
    values.update(fields)
    return Job(**values)


def test_migrate_creates_every_table_and_is_idempotent(database_url, engine):
    """Running the migrations again on a migrated database changes nothing and fails nothing."""
    migrate(database_url)
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_models_and_migrations_agree(engine):
    """Autogenerate finds nothing to change: the migrations build exactly the typed models."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_unit_of_work_rolls_back_unless_committed(uow, merchant_id):
    """Rows added without commit() are gone after the block."""
    job = new_job(merchant_id)
    with uow() as u:
        u.repo.add(job)
    with uow() as u:
        assert u.repo.job(job.id) is None


def test_messages_are_published_only_after_commit(uow, publisher, merchant_id):
    """A message waits for the commit; without a commit it is dropped."""
    job = new_job(merchant_id)
    with uow() as u:
        u.repo.add(job)
        u.publish_after_commit(TaskMessage("t", (job.id,)))
        assert publisher.sent == []
        u.commit()
    assert publisher.sent == [TaskMessage("t", (job.id,))]
    with uow() as u:
        u.publish_after_commit(TaskMessage("never", ()))
    assert len(publisher.sent) == 1


def test_duplicate_idempotency_key_is_a_conflict_and_publishes_nothing(uow, publisher, merchant_id):
    """The (merchant, idempotency key) unique constraint surfaces as Conflict before any publish."""
    with uow() as u:
        u.repo.add(new_job(merchant_id, idempotency_key="k1"))
        u.commit()
    with uow() as u:
        u.repo.add(new_job(merchant_id, idempotency_key="k1"))
        u.publish_after_commit(TaskMessage("t", ()))
        with pytest.raises(Conflict):
            u.commit()
    assert publisher.sent == []


def test_a_broker_failure_after_commit_keeps_the_data_and_says_so(engine, merchant_id):
    """PublishFailed means the rows are committed but the message never left."""
    factory = sql_unit_of_work_factory(engine, BrokenPublisher())
    job = new_job(merchant_id)
    with factory() as u:
        u.repo.add(job)
        u.publish_after_commit(TaskMessage("t", (job.id,)))
        with pytest.raises(PublishFailed, match="broker down"):
            u.commit()
    with factory() as u:
        assert u.repo.job(job.id) is not None


def test_timestamps_come_back_as_aware_utc(uow, merchant_id):
    """created_at round-trips as a timezone-aware UTC datetime on every backend."""
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    job = new_job(merchant_id, created_at=when)
    with uow() as u:
        u.repo.add(job)
        u.commit()
    with uow() as u:
        stored = u.repo.job(job.id)
        assert stored is not None
        assert stored.created_at == when
        assert stored.created_at.utcoffset() == dt.timedelta(0)


def test_jobs_are_invisible_to_other_merchants(uow, merchant_id):
    """Looking a job up under another merchant finds nothing."""
    job = new_job(merchant_id)
    with uow() as u:
        u.repo.add(job)
        u.commit()
    with uow() as u:
        assert u.repo.job(job.id, merchant_id) is not None
        assert u.repo.job(job.id, str(uuid.uuid4())) is None


def _seed_reports(uow, merchant_id: str, count: int) -> list[Job]:
    base = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    jobs = []
    with uow() as u:
        for i in range(count):
            # pairs share a timestamp so the id breaks ties in the keyset
            job = new_job(
                merchant_id,
                status="DONE",
                product_id=f"p{i % 2}",
                created_at=base + dt.timedelta(seconds=i // 2),
            )
            u.repo.add(job)
            u.repo.flush()
            u.repo.add(
                ReportRow(
                    job_id=job.id,
                    merchant_id=merchant_id,
                    product_id=job.product_id,
                    grade="good" if i % 3 else "bad",
                    verdict="accept" if i % 3 else "reject",
                    score=3.0,
                    body={"i": i, "grade": "x"},
                    created_at=job.created_at,
                )
            )
            jobs.append(job)
        u.commit()
    return jobs


def test_listing_pages_newest_first_without_gaps_or_repeats(uow, merchant_id):
    """Keyset pages of 3 over 10 jobs with tied timestamps visit every job once, newest first."""
    jobs = _seed_reports(uow, merchant_id, 10)
    seen: list[str] = []
    cursor = None
    with uow() as u:
        while True:
            rows = u.repo.list_jobs(merchant_id, ListFilter(), cursor, 3)
            if not rows:
                break
            seen += [job.id for job, _ in rows]
            last = rows[-1][0]
            cursor = (last.created_at, last.id)
    expected = [j.id for j in sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)]
    assert seen == expected


def test_listing_filters_by_product_verdict_grade_and_time(uow, merchant_id):
    """Each filter narrows the list to matching reports only."""
    jobs = _seed_reports(uow, merchant_id, 9)
    with uow() as u:

        def ids(filt):
            return {job.id for job, _ in u.repo.list_jobs(merchant_id, filt, None, 100)}

        assert ids(ListFilter(product_id="p0")) == {j.id for j in jobs if j.product_id == "p0"}
        rejected = {jobs[i].id for i in range(9) if i % 3 == 0}
        assert ids(ListFilter(verdict="reject")) == rejected
        assert ids(ListFilter(grade="bad")) == rejected
        start = jobs[4].created_at
        window = ListFilter(created_after=start, created_before=start + dt.timedelta(seconds=1))
        assert ids(window) == {j.id for j in jobs if j.created_at == start}
        _, report = u.repo.list_jobs(merchant_id, ListFilter(product_id="p0"), None, 1)[0]
        assert report is not None and report.body["grade"] == "x"


def test_a_claim_marks_a_waiting_job_running_once_more_and_nothing_else(uow, merchant_id):
    """PENDING or RUNNING with attempts left: RUNNING, one more attempt, what processing needs.
    Finished, out of attempts or missing: no claim, the row untouched."""
    waiting = new_job(merchant_id, original_uri="file:///w")
    rerun = new_job(merchant_id, status="RUNNING", attempts=2)
    done = new_job(merchant_id, status="DONE", attempts=1)
    spent = new_job(merchant_id, attempts=3)
    with uow() as u:
        u.repo.add(waiting, rerun, done, spent)
        u.commit()
    with uow() as u:
        claimed = u.repo.claim_job(waiting.id, max_attempts=3)
        assert claimed is not None
        assert (claimed.merchant_id, claimed.profile, claimed.original_uri) == (
            merchant_id,
            "default",
            "file:///w",
        )
        assert u.repo.claim_job(rerun.id, max_attempts=3) is not None
        assert u.repo.claim_job(done.id, max_attempts=3) is None
        assert u.repo.claim_job(spent.id, max_attempts=3) is None
        assert u.repo.claim_job(str(uuid.uuid4()), max_attempts=3) is None
        u.commit()
    with uow() as u:
        rows = {j: u.repo.job(j) for j in (waiting.id, rerun.id, done.id, spent.id)}
        assert [(r.status, r.attempts) for r in rows.values()] == [
            ("RUNNING", 1),
            ("RUNNING", 3),
            ("DONE", 1),
            ("PENDING", 3),
        ]
        assert rows[waiting.id].updated_at > waiting.updated_at  # the stale-job sweeper reads it


def test_merchant_settings_are_the_model_choice_and_the_profiles_overrides(uow, merchant_id):
    """One query: the merchant's model choice and its overrides of the asked profile only."""
    with uow() as u:
        assert u.repo.merchant_settings(merchant_id, "amazon_main") == (None, {})
        u.repo.merchant(merchant_id).model_choice = "both"
        u.repo.add(
            MerchantPolicy(merchant_id=merchant_id, profile="amazon_main", overrides={"min_fill": 0.7}),
            MerchantPolicy(merchant_id=merchant_id, profile="ebay", overrides={"min_side": 800}),
        )
        u.commit()
    with uow() as u:
        assert u.repo.merchant_settings(merchant_id, "amazon_main") == ("both", {"min_fill": 0.7})
        assert u.repo.merchant_settings(merchant_id, "default") == ("both", {})
        assert u.repo.merchant_settings(str(uuid.uuid4()), "default") == (None, {})


def _report_values(job_id: str, merchant_id: str) -> dict:
    return {
        "job_id": job_id,
        "merchant_id": merchant_id,
        "product_id": "sku-9",
        "grade": "good",
        "verdict": "accept",
        "score": 4.1,
        "body": {"grade": "good", "distortions": []},
    }


def _distortion_values(job_id: str, kind: str) -> dict:
    return {
        "job_id": job_id,
        "type": kind,
        "severity": "slight",
        "x1": 0,
        "y1": 1,
        "x2": 10,
        "y2": 11,
        "confidence": 0.75,
        "key": kind == "Noise",
    }


def test_finishing_a_job_marks_it_done_once_and_stores_its_report(uow, merchant_id):
    """finish_job: DONE, errors cleared, model version and annotated copy set, (merchant, product)
    back; a second finish (a redelivered copy) and a missing job get None. add_report stores the
    report body and every distortion row."""
    job = new_job(merchant_id, status="RUNNING", product_id="sku-9", error_code="X", error_message="old")
    with uow() as u:
        u.repo.add(job)
        u.commit()
    with uow() as u:
        assert u.repo.finish_job(job.id, "v7", "file:///a.jpg") == (merchant_id, "sku-9")
        u.repo.add_report(
            _report_values(job.id, merchant_id),
            [_distortion_values(job.id, "Noise"), _distortion_values(job.id, "Motion blur")],
        )
        u.commit()
    with uow() as u:
        row = u.repo.job(job.id)
        assert (row.status, row.error_code, row.error_message) == ("DONE", None, None)
        assert (row.model_version, row.annotated_uri) == ("v7", "file:///a.jpg")
        assert row.updated_at > job.updated_at
        assert u.repo.report(job.id).body == {"grade": "good", "distortions": []}
        assert [(d.type, d.key, d.y2) for d in u.repo.distortions(job.id)] == [
            ("Noise", True, 11),
            ("Motion blur", False, 11),
        ]
        assert u.repo.finish_job(job.id, "v8", "file:///b.jpg") is None
        assert u.repo.finish_job(str(uuid.uuid4()), "v8", "file:///b.jpg") is None
        u.commit()
    with uow() as u:
        assert u.repo.job(job.id).model_version == "v7"  # the second finish changed nothing


def test_a_second_report_for_a_job_is_a_conflict(uow, merchant_id):
    """add_report raises Conflict for a job that has its report already, and for a job that does
    not exist; the first report stays."""
    job = new_job(merchant_id, status="RUNNING")
    with uow() as u:
        u.repo.add(job)
        u.commit()
    with uow() as u:
        u.repo.add_report(_report_values(job.id, merchant_id), [])
        u.commit()
    with uow() as u, pytest.raises(Conflict):
        u.repo.add_report(_report_values(job.id, merchant_id), [])
    with uow() as u, pytest.raises(Conflict):
        u.repo.add_report(_report_values(str(uuid.uuid4()), merchant_id), [])
    with uow() as u:
        assert u.repo.report(job.id) is not None
        assert u.repo.distortions(job.id) == []
