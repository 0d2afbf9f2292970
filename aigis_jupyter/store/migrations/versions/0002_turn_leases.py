"""Turn leases: at most one running chat turn per thread, across processes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "turn_leases",
        sa.Column("thread_id", sa.String(36), nullable=False),
        sa.Column("owner_id", sa.String(36), nullable=False),
        sa.Column("holder", sa.String(36), nullable=False),
        sa.Column("process", sa.String(255), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("thread_id", name="pk_turn_leases"),
        sa.ForeignKeyConstraint(["thread_id"], ["threads.id"], ondelete="CASCADE",
                                name="fk_turn_leases_thread_id_threads"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_turn_leases_owner_id_users"),
    )
    op.create_index("ix_turn_leases_owner_id", "turn_leases", ["owner_id"])


def downgrade() -> None:
    op.drop_table("turn_leases")
