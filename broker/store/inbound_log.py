"""The inbound message log as operators read it (`broker messages list`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from broker.store import tables as t


@dataclass(frozen=True)
class LoggedMessage:
    id: int
    received_at: datetime
    sender: str
    control_id: str
    message_type: str
    answer: str
    error_code: str
    error_location: str


def recent(engine: Engine, *, limit: int, refused_only: bool) -> list[LoggedMessage]:
    m = t.inbound_messages
    stmt = select(
        m.c.id, m.c.received_at, m.c.sender, m.c.control_id, m.c.message_type, m.c.answer,
        m.c.error_code, m.c.error_location,
    ).order_by(m.c.id.desc()).limit(limit)  # fmt: skip
    if refused_only:
        stmt = stmt.where(m.c.answer != "AA")
    with engine.connect().execution_options(readonly=True) as conn:
        return [LoggedMessage(*row) for row in conn.execute(stmt)]


def key_of(engine: Engine, message_id: int) -> tuple[str, str] | None:
    """(sender, control ID) of the message with that log id."""
    m = t.inbound_messages
    with engine.connect().execution_options(readonly=True) as conn:
        row = conn.execute(select(m.c.sender, m.c.control_id).where(m.c.id == message_id)).first()
    return (row.sender, row.control_id) if row else None
