"""outbox: the destination's answer (code, MSA-3 or Error Comment, ERR) kept per message

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 17:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = (("answer_code", sa.String(length=16)), ("answer_text", sa.Text()), ("answer_error", sa.Text()))


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
