"""console search: patients' name keys (every PN group, folded), the orders each
accepted inbound message applied to, and outbound messages by order

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from broker.domain.model import PersonName
from broker.store.name_keys import KEY_LENGTH, name_keys

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    key_type = sa.String(KEY_LENGTH).with_variant(sa.String(KEY_LENGTH, collation="C"), "postgresql")
    keys = op.create_table(
        "patient_name_keys",
        sa.Column("patient_pk", sa.Integer(), nullable=False),
        sa.Column("name_key", key_type, nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_pk"], ["patients.id"], name=op.f("fk_patient_name_keys_patient_pk_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("patient_pk", "name_key", name=op.f("pk_patient_name_keys")),
    )
    op.create_index(op.f("ix_patient_name_keys_name_key_patient_pk"), "patient_name_keys", ["name_key", "patient_pk"])
    op.create_table(
        "inbound_message_orders",
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("placer_application", sa.String(length=64), nullable=False),
        sa.Column("placer_order_number", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_pk"],
            ["inbound_messages.id"],
            name=op.f("fk_inbound_message_orders_message_pk_inbound_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "message_pk", "placer_application", "placer_order_number", name=op.f("pk_inbound_message_orders")
        ),
    )
    op.create_index(
        op.f("ix_inbound_message_orders_placer_application_placer_order_number"),
        "inbound_message_orders",
        ["placer_application", "placer_order_number"],
    )
    op.create_index(op.f("ix_outbox_ordering_key"), "outbox", ["ordering_key"])
    _backfill(keys)


def _backfill(keys: sa.Table) -> None:
    """Keys for the patients already stored (messages received before stay unlinked)."""
    conn = op.get_bind()
    patients = sa.table(
        "patients", *(sa.column(c) for c in ("id", "name_alphabetic", "name_ideographic", "name_phonetic"))
    )
    rows = [
        {"patient_pk": r.id, "name_key": key}
        for r in conn.execute(sa.select(patients))
        for key in sorted(name_keys(PersonName(r.name_alphabetic, r.name_ideographic, r.name_phonetic)))
    ]
    if rows:
        conn.execute(keys.insert(), rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_ordering_key"), table_name="outbox")
    op.drop_index(
        op.f("ix_inbound_message_orders_placer_application_placer_order_number"), table_name="inbound_message_orders"
    )
    op.drop_table("inbound_message_orders")
    op.drop_index(op.f("ix_patient_name_keys_name_key_patient_pk"), table_name="patient_name_keys")
    op.drop_table("patient_name_keys")
