"""Connection grants: an administrator shares a connection with users or hub groups.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connection_grants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connection_id", sa.String(36), nullable=False),
        sa.Column("grantee_kind", sa.String(8), nullable=False),
        sa.Column("grantee", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_connection_grants"),
        sa.ForeignKeyConstraint(["connection_id"], ["connections.id"], ondelete="CASCADE",
                                name="fk_connection_grants_connection_id_connections"),
        sa.UniqueConstraint("connection_id", "grantee_kind", "grantee",
                            name="uq_connection_grants_connection_id_grantee_kind_grantee"),
    )
    op.create_index("ix_connection_grants_grantee", "connection_grants", ["grantee"])


def downgrade() -> None:
    op.drop_table("connection_grants")
