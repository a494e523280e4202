"""orders: the number the Order Placer gave an order made at the broker (its NA answer
to the SN, RAD-3), and the index the placer's later messages find the order by

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 11:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_INDEX = "ix_orders_assigned_placer_application_assigned_placer_number"


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("assigned_placer_number", sa.String(length=64), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("assigned_placer_application", sa.String(length=64), nullable=False, server_default="")
        )
    op.create_index(_INDEX, "orders", ["assigned_placer_application", "assigned_placer_number"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("assigned_placer_application")
        batch.drop_column("assigned_placer_number")
