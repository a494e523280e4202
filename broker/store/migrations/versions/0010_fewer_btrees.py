"""fewer b-trees an order writes (issue #17): on SQLite the two key tables without a
rowid (the primary key is the table), and the orders' assigned placer number indexed
only where the placer gave one

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_KEY_TABLES = ("patient_name_keys", "inbound_message_orders")
_ASSIGNED = "ix_orders_assigned_placer_application_assigned_placer_number"
_NUMBERED = "assigned_placer_number != ''"


def upgrade() -> None:
    _rebuild_key_tables(with_rowid=False)
    op.drop_index(_ASSIGNED, table_name="orders")
    op.create_index(
        _ASSIGNED,
        "orders",
        ["assigned_placer_application", "assigned_placer_number"],
        sqlite_where=sa.text(_NUMBERED),
        postgresql_where=sa.text(_NUMBERED),
    )


def downgrade() -> None:
    op.drop_index(_ASSIGNED, table_name="orders")
    op.create_index(_ASSIGNED, "orders", ["assigned_placer_application", "assigned_placer_number"])
    _rebuild_key_tables(with_rowid=True)


def _rebuild_key_tables(*, with_rowid: bool) -> None:
    """A table's rowid cannot be added or dropped in place: copied into a new table
    (Alembic's batch mode, indexes and foreign keys kept). PostgreSQL has no rowid."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in _KEY_TABLES:
        with op.batch_alter_table(name, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}):
            pass
