"""The outbox as a queue: which messages are due, and what became of each send.

Per (destination, ordering key) only the oldest waiting message is due, so one order's
messages leave in the order they were written; a message that is refused (AE/AR) goes
to the dead letters and stops blocking the ones behind it. States: pending -> leased
(a sender has it) -> sent | dead | pending again (unreachable, retried later).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Engine, Exists, func, select, update

from broker.store import tables as t

#: The states in which a message still waits to go out (it blocks those behind it).
WAITING = ("pending", "leased")


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
class OutboxHealth:
    """What an operator watches: a growing depth or age means a peer is not taking
    messages; dead letters wait for someone to fix the cause and requeue them."""

    depth: int
    oldest_pending_seconds: float
    dead: int


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

    def lease_due(self, now: datetime, lease_until: datetime, limit: int = 50) -> list[PendingMessage]:
        """Take the due messages (at most one per order: the oldest still waiting) for
        this sender until `lease_until`. On PostgreSQL the rows are locked with
        FOR UPDATE SKIP LOCKED, so brokers sharing the database lease disjoint messages
        without waiting on each other; a leased row blocks the rest of its order until
        it is sent, so each order's messages still leave one after the other. A lease
        that runs out (its broker died) makes the message due again."""
        o = t.outbox
        stmt = (
            select(o.c.id, o.c.destination, o.c.ordering_key, o.c.payload, o.c.attempts)
            .where(o.c.state.in_(WAITING), o.c.next_attempt_at <= now, ~_earlier_waiting(), ~_backing_off(now))
            .order_by(o.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=o)
        )
        with self._row_locked() as conn:
            due = [PendingMessage(*row) for row in conn.execute(stmt)]
            ids = [message.id for message in due]
            conn.execute(update(o).where(o.c.id.in_(ids)).values(state="leased", next_attempt_at=lease_until))
            conn.commit()
        return due

    def release(self, message_ids: list[int], at: datetime) -> None:
        """Leased messages this sender will not try now: due again from `at`."""
        o = t.outbox
        self._update(o.c.id.in_(message_ids) & (o.c.state == "leased"), state="pending", next_attempt_at=at)

    def _row_locked(self) -> Connection:
        """Outbox transactions skip the writers' advisory lock (see store/db.py)."""
        return self._engine.connect().execution_options(row_locked=True)

    def _update(self, where: ColumnElement[bool], **values: object) -> int:
        with self._row_locked() as conn:
            count = int(conn.execute(update(t.outbox).where(where).values(**values)).rowcount)
            conn.commit()
        return count

    def _set(self, message_id: int, **values: object) -> None:
        self._update(t.outbox.c.id == message_id, **values)

    def mark_sent(self, message_id: int, at: datetime) -> None:
        self._set(message_id, state="sent", sent_at=at, last_error="")

    def mark_dead(self, message_id: int, reason: str) -> None:
        self._set(message_id, state="dead", last_error=reason, attempts=t.outbox.c.attempts + 1)

    def defer(self, message_id: int, until: datetime, reason: str) -> None:
        """Back to pending until `until`; meanwhile its destination is backing off."""
        values = {"state": "pending", "next_attempt_at": until, "last_error": reason}
        self._set(message_id, attempts=t.outbox.c.attempts + 1, **values)

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
        return self._update(
            o.c.id.in_(message_ids) & (o.c.state == "dead"), state="pending", next_attempt_at=now, last_error=""
        )

    def retry_now(self, now: datetime, destination: str | None = None) -> int:
        """Pending messages waiting for a retry become due now (the peer is known to
        be back): their destination's backoff ends for every broker. Returns how many."""
        o = t.outbox
        waiting = (o.c.state == "pending") & (o.c.next_attempt_at > now)
        if destination is not None:
            waiting = waiting & (o.c.destination == destination)
        return self._update(waiting, next_attempt_at=now)

    def depth(self) -> int:
        with self._engine.connect().execution_options(readonly=True) as conn:
            stmt = select(func.count()).select_from(t.outbox).where(t.outbox.c.state.in_(WAITING))
            return int(conn.execute(stmt).scalar_one())

    def health(self, now: datetime) -> OutboxHealth:
        o = t.outbox.c
        stmt = select(func.count(), func.min(o.created_at)).where(o.state.in_(WAITING))
        with self._engine.connect().execution_options(readonly=True) as conn:
            depth, oldest = conn.execute(stmt).one()
            dead = conn.execute(select(func.count()).where(o.state == "dead")).scalar_one()
        age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        return OutboxHealth(int(depth), age, int(dead))


def _earlier_waiting() -> Exists:
    """An older message of the same destination and order has not gone out yet."""
    o, earlier = t.outbox, t.outbox.alias("earlier")
    return (
        select(earlier.c.id)
        .where(
            earlier.c.destination == o.c.destination,
            earlier.c.ordering_key == o.c.ordering_key,
            earlier.c.state.in_(WAITING),
            earlier.c.id < o.c.id,
        )
        .exists()
    )


def _backing_off(now: datetime) -> Exists:
    """The destination was unreachable and one of its messages waits for its retry
    time: nothing goes there until then (one attempt per backoff period, shared by
    every broker on the database; `retry_now` ends it)."""
    o, deferred = t.outbox, t.outbox.alias("deferred")
    return (
        select(deferred.c.id)
        .where(
            deferred.c.destination == o.c.destination,
            deferred.c.state == "pending",
            deferred.c.attempts > 0,
            deferred.c.next_attempt_at > now,
        )
        .exists()
    )
