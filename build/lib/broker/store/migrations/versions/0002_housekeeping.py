"""housekeeping

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:42:18.925898
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
        "archived_orders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("placer_application", sa.String(length=64), nullable=False),
        sa.Column("placer_order_number", sa.String(length=64), nullable=False),
        sa.Column("accession_number", sa.String(length=16), nullable=False),
        sa.Column("archived_at", sa.DateTime(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archived_orders")),
    )
    with op.batch_alter_table("archived_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_archived_orders_accession_number"), ["accession_number"], unique=False)

    with op.batch_alter_table("performed_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("flagged_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("performed_steps", schema=None) as batch_op:
        batch_op.drop_column("flagged_at")
        batch_op.drop_column("created_at")

    with op.batch_alter_table("archived_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_archived_orders_accession_number"))

    op.drop_table("archived_orders")
