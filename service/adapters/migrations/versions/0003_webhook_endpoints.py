"""webhook_endpoints (several per merchant, subscribed events, enabled flag); deliveries record
the endpoint, the event, the latency and the outcome; job_id becomes optional (audit events).
Merchants' single webhook URL and secret become their first endpoint.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LEGACY_EVENTS = "report.completed,report.failed"


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("events", sa.String(length=400), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_endpoints_merchant_id", "webhook_endpoints", ["merchant_id"])
    op.create_table(
        "webhook_retries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", sa.String(length=36), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_retries_due_at", "webhook_retries", ["due_at"])
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("job_id", existing_type=sa.String(length=36), nullable=True)
        batch.add_column(sa.Column("endpoint_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("event", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("latency_ms", sa.Float(), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("subject_id", sa.String(length=64), nullable=True))
        batch.create_index("ix_webhook_deliveries_endpoint_id", ["endpoint_id"])
    conn = op.get_bind()
    merchants = conn.execute(
        sa.text("SELECT id, webhook_url, webhook_secret FROM merchants WHERE webhook_url IS NOT NULL")
    ).fetchall()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    endpoints = sa.table(
        "webhook_endpoints",
        sa.column("id", sa.String),
        sa.column("merchant_id", sa.String),
        sa.column("url", sa.String),
        sa.column("secret", sa.String),
        sa.column("events", sa.String),
        sa.column("enabled", sa.Boolean),
        sa.column("created_at", sa.DateTime),
        sa.column("updated_at", sa.DateTime),
    )
    rows = [
        {
            "id": str(uuid.uuid4()),
            "merchant_id": merchant_id,
            "url": url,
            "secret": secret,
            "events": LEGACY_EVENTS,
            "enabled": True,
            "created_at": now,
            "updated_at": now,
        }
        for merchant_id, url, secret in merchants
        if url and secret
    ]
    if rows:
        op.bulk_insert(endpoints, rows)


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_index("ix_webhook_deliveries_endpoint_id")
        batch.drop_column("subject_id")
        batch.drop_column("outcome")
        batch.drop_column("latency_ms")
        batch.drop_column("event")
        batch.drop_column("endpoint_id")
    op.drop_index("ix_webhook_retries_due_at", table_name="webhook_retries")
    op.drop_table("webhook_retries")
    op.drop_index("ix_webhook_endpoints_merchant_id", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
