"""SQL storage: typed SQLAlchemy 2 models, engine creation and `migrate(url)`.

SQLite by default, PostgreSQL through IDETEX_DATABASE_URL. The schema is owned by
the Alembic migrations under service/adapters/migrations/; `migrate` runs them to head.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone, so store naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    pass


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    model_choice: Mapped[str | None] = mapped_column(String(16))  # None: the profile's or global choice


class MerchantPolicy(Base):
    """A merchant's overrides of one marketplace profile (service/domain/policy.py): key -> typed value."""

    __tablename__ = "merchant_policies"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    profile: Mapped[str] = mapped_column(String(64), primary_key=True)
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key", name="uq_jobs_merchant_idempotency_key"),
        Index("ix_jobs_dedup", "merchant_id", "image_sha256", "profile", "model_version"),
        Index("ix_jobs_merchant_created", "merchant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    product_id: Mapped[str] = mapped_column(String(200), default="")
    profile: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    image_sha256: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    original_uri: Mapped[str] = mapped_column(String(2000))
    annotated_uri: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ReportRow(Base):
    __tablename__ = "reports"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(36), index=True)
    product_id: Mapped[str] = mapped_column(String(200), index=True)
    grade: Mapped[str] = mapped_column(String(16), index=True)
    verdict: Mapped[str] = mapped_column(String(16), index=True)
    score: Mapped[float] = mapped_column(Float)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class DistortionRow(Base):
    __tablename__ = "distortions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("reports.job_id"), index=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    x1: Mapped[int] = mapped_column(Integer)
    y1: Mapped[int] = mapped_column(Integer)
    x2: Mapped[int] = mapped_column(Integer)
    y2: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    key: Mapped[bool] = mapped_column(Boolean, default=False)


class Audit(Base):
    """A batch audit of a merchant's catalogue in S3: where the objects come from, where the report goes."""

    __tablename__ = "audits"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    profile: Mapped[str] = mapped_column(String(64))
    source_kind: Mapped[str] = mapped_column(String(16))  # prefix | csv | inventory
    source_uri: Mapped[str] = mapped_column(String(2000))
    destination_uri: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16), index=True)  # RUNNING | CANCELLED | DONE | FAILED
    listing_done: Mapped[bool] = mapped_column(Boolean, default=False)
    cursor: Mapped[str | None] = mapped_column(Text)  # where listing resumes (continuation token or position)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # the step that holds it
    report_uri: Mapped[str | None] = mapped_column(String(2000))
    summary_uri: Mapped[str | None] = mapped_column(String(2000))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class AuditObject(Base):
    """One object of an audit and its result; (audit, bucket, key, version) is unique, so an
    object is listed, counted and reported once."""

    __tablename__ = "audit_objects"
    __table_args__ = (
        UniqueConstraint("audit_id", "bucket", "key", "version_id", name="uq_audit_object"),
        Index("ix_audit_objects_audit_status", "audit_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_id: Mapped[str] = mapped_column(ForeignKey("audits.id"))
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(1024))
    version_id: Mapped[str] = mapped_column(String(1024), default="")
    etag: Mapped[str] = mapped_column(String(128), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    # PENDING | QUEUED | DONE | FAILED | SKIPPED (not an image) | DUPLICATE (same content as another)
    status: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[str | None] = mapped_column(String(36))
    sha256: Mapped[str | None] = mapped_column(String(64))
    verdict: Mapped[str | None] = mapped_column(String(16))
    grade: Mapped[str | None] = mapped_column(String(16))
    guidance_codes: Mapped[str | None] = mapped_column(String(400))
    distortions: Mapped[str | None] = mapped_column(String(400))
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # times the audit submitted the object again after its job failed on an outage (Triton, broker)
    resubmits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class WebhookEndpoint(Base):
    """A merchant's webhook destination, its signing secret and the events it subscribes to."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[str] = mapped_column(String(400))  # comma-separated event types
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class WebhookRetry(Base):
    """A delivery attempt due later than a broker should hold a delayed message; the workers'
    sweeper claims it (by deleting the row) when it is due and queues the attempt."""

    __tablename__ = "webhook_retries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(64))
    endpoint_id: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class WebhookDelivery(Base):
    """One delivery attempt of one message (webhook_id) to one endpoint."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(64), index=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    endpoint_id: Mapped[str | None] = mapped_column(String(36), index=True)
    event: Mapped[str | None] = mapped_column(String(40))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(16))  # delivered | retry | failed | disabled | refused
    subject_id: Mapped[str | None] = mapped_column(String(64))  # the job (or audit) the event is about


def make_engine(database_url: str) -> Engine:
    """An engine for the URL; SQLite gets WAL, a busy timeout and its parent folder created."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(database_url: str, revision: str = "head") -> None:
    """Run the Alembic migrations up to `revision` (no alembic.ini needed)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
