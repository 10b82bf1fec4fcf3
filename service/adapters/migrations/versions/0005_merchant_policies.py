"""Per-merchant overrides of marketplace profile thresholds and verdict policy.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merchant_policies",
        sa.Column("merchant_id", sa.String(length=36), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"]),
        sa.PrimaryKeyConstraint("merchant_id", "profile"),
    )


def downgrade() -> None:
    op.drop_table("merchant_policies")
