"""integrity: discontinued orders release their identifiers; an MPPS keeps the patient
it names and why it was linked to no scheduled step

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 17:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("discontinued", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("performed_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_id", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("patient_issuer", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("unlinked_reason", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("performed_steps", schema=None) as batch_op:
        batch_op.drop_column("unlinked_reason")
        batch_op.drop_column("patient_issuer")
        batch_op.drop_column("patient_id")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("discontinued")
