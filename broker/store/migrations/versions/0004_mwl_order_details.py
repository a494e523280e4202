"""mwl order details: Admission ID, Requesting Physician and Service for worklist answers

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 17:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = (("admission_id", 64), ("requesting_physician", 200), ("requesting_service", 64))


def upgrade() -> None:
    # Orders already held have none of these: empty, as the worklist answers unknown values.
    with op.batch_alter_table("orders") as batch:
        for name, length in _COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
