"""The outbox as a queue: which messages are due, and what became of each send.

Per (destination, ordering key) only the oldest pending message is due, so one order's
messages leave in the order they were written; a message that is refused (AE/AR) goes
to the dead letters and stops blocking the ones behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, func, select, text, update

from broker.store import tables as t

#: Advisory lock key of the outbox sender (distinct from the writers' lock in db.py).
SENDER_LOCK_KEY = 0x5357_4F42  # "SWOB"


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    destination: str
    ordering_key: str
    state: str
    attempts: int
    created_at: datetime
    last_error: str


@dataclass(frozen=True)
class PendingMessage:
    id: int
    destination: str
    ordering_key: str
    payload: bytes
    attempts: int


class SqlOutboxQueue:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def lease(self) -> Iterator[bool]:
        """Whether this broker may drain now. Several brokers on one PostgreSQL take
        turns on a session advisory lock, so each message is sent by one of them, in
        order; the lock goes with the session if a broker dies. A SQLite database has
        one broker process, which always may."""
        if self._engine.dialect.name != "postgresql":
            yield True
            return
        with self._engine.connect().execution_options(readonly=True) as conn:
            mine = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": SENDER_LOCK_KEY}).scalar())
            conn.commit()  # the session-level lock outlives this short transaction
            try:
                yield mine
            finally:
                if mine:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SENDER_LOCK_KEY})
                    conn.commit()

    def due(self, now: datetime, limit: int = 100) -> list[PendingMessage]:
        o, earlier = t.outbox, t.outbox.alias("earlier")
        blocked = (
            select(earlier.c.id)
            .where(
                and_(
                    earlier.c.destination == o.c.destination,
                    earlier.c.ordering_key == o.c.ordering_key,
                    earlier.c.state == "pending",
                    earlier.c.id < o.c.id,
                )
            )
            .exists()
        )
        stmt = (
            select(o.c.id, o.c.destination, o.c.ordering_key, o.c.payload, o.c.attempts)
            .where(o.c.state == "pending", o.c.next_attempt_at <= now, ~blocked)
            .order_by(o.c.id)
            .limit(limit)
        )
        with self._engine.connect().execution_options(readonly=True) as conn:
            return [PendingMessage(*row) for row in conn.execute(stmt)]

    def _set(self, message_id: int, **values: object) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(t.outbox).where(t.outbox.c.id == message_id).values(**values))

    def mark_sent(self, message_id: int, at: datetime) -> None:
        self._set(message_id, state="sent", sent_at=at, last_error="")

    def mark_dead(self, message_id: int, reason: str) -> None:
        self._set(message_id, state="dead", last_error=reason, attempts=t.outbox.c.attempts + 1)

    def defer(self, message_id: int, until: datetime, reason: str) -> None:
        self._set(message_id, next_attempt_at=until, last_error=reason, attempts=t.outbox.c.attempts + 1)

    def listing(self, state: str, limit: int) -> list[OutboxEntry]:
        o = t.outbox.c
        stmt = select(o.id, o.destination, o.ordering_key, o.state, o.attempts, o.created_at, o.last_error)
        stmt = stmt.where(o.state == state).order_by(o.id.desc()).limit(limit)
        with self._engine.connect().execution_options(readonly=True) as conn:
            return [OutboxEntry(*row) for row in conn.execute(stmt)][::-1]

    def requeue(self, message_ids: list[int], now: datetime) -> int:
        """Dead letters back to pending (after the cause is fixed at the peer); they go
        in their original order among their order's messages. Returns how many."""
        o = t.outbox
        with self._engine.begin() as conn:
            result = conn.execute(
                update(o)
                .where(o.c.id.in_(message_ids), o.c.state == "dead")
                .values(state="pending", next_attempt_at=now, last_error="")
            )
        return int(result.rowcount)

    def depth(self) -> int:
        with self._engine.connect().execution_options(readonly=True) as conn:
            stmt = select(func.count()).select_from(t.outbox).where(t.outbox.c.state == "pending")
            return int(conn.execute(stmt).scalar_one())
