"""How many times an audit submitted an object again after its job failed on an outage.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_objects") as batch:
        batch.add_column(sa.Column("resubmits", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("audit_objects") as batch:
        batch.drop_column("resubmits")
