"""The outbox as a queue: which messages are due, and what became of each send.

Per (destination, ordering key) only the oldest message not yet gone is due, so one
order's messages leave in the order they were written. States: pending -> leased (a
sender has it) -> sent | pending again (unreachable or refused for now: retried later)
| dead (refused for good). A dead letter keeps blocking the messages of its order
behind it until an operator requeues it (pending again: it goes first) or skips it
(skipped: the rest of its order moves on); other orders are not held up by it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Exists, Select, func, select, update

from broker.store import tables as t
from broker.store.writers import writers_of

#: The states in which a message still waits to go out.
WAITING = ("pending", "leased")
#: The states in which a message holds back the later messages of its order (a dead
#: letter too: the destination must never get them out of order).
BLOCKING = (*WAITING, "dead")


@dataclass(frozen=True)
class Answer:
    """What the destination answered: an HL7 MSA-1 (AA, AE, AR, CA, CE, CR) or a DIMSE
    status (0x0110), its text (MSA-3, Error Comment), and the ERR segments as received.
    Empty when there was no answer."""

    code: str = ""
    text: str = ""
    error: str = ""

    def columns(self) -> dict[str, str]:
        return {"answer_code": self.code[:16], "answer_text": self.text[:500], "answer_error": self.error[:2000]}


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    destination: str
    ordering_key: str
    state: str
    attempts: int
    created_at: datetime
    last_error: str
    answer_code: str
    answer_text: str
    answer_error: str


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

    def lease_due(
        self,
        now: datetime,
        lease_until: datetime,
        limit: int = 50,
        destination: str | None = None,
        excluding: Collection[str] = (),
    ) -> list[PendingMessage]:
        """Take the due messages (at most one per order: the oldest still waiting) for
        this sender until `lease_until`: those of `destination` alone when given (each
        destination is drained on its own, so a slow one holds up no other), and none of
        the destinations in `excluding`. On PostgreSQL the rows are locked with
        FOR UPDATE SKIP LOCKED, so brokers sharing the database lease disjoint messages
        without waiting on each other; a leased row blocks the rest of its order until
        it is sent, so each order's messages still leave one after the other. A lease
        that runs out (its broker died) makes the message due again."""
        o = t.outbox
        waiting = (o.c.state.in_(WAITING), o.c.next_attempt_at <= now, *_of(destination, excluding))
        if not self._any(select(o.c.id).where(*waiting).limit(1)):
            return []
        stmt = (
            select(o.c.id, o.c.destination, o.c.ordering_key, o.c.payload, o.c.attempts)
            .where(*waiting, ~_earlier_blocking(), ~_backing_off(now))
            .order_by(o.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=o)
        )
        with self._row_locked() as conn:
            due = [PendingMessage(*row) for row in conn.execute(stmt)]
            if due:
                ids = [message.id for message in due]
                conn.execute(update(o).where(o.c.id.in_(ids)).values(state="leased", next_attempt_at=lease_until))
                conn.commit()
        return due

    def _any(self, probe: Select[Any]) -> bool:
        """Whether `probe` finds a row, read without taking a writer's turn: each
        destination's sender asks every `outbox.poll_seconds`, mostly to find nothing,
        and on SQLite a writer's turn is one HL7 intake waits for. What the probe misses
        (written just after it) the next round takes."""
        with self._engine.connect().execution_options(readonly=True) as conn:
            return conn.execute(probe).first() is not None

    def release(self, message_ids: list[int], at: datetime) -> None:
        """Leased messages this sender will not try now: due again from `at`."""
        o = t.outbox
        self._update(o.c.id.in_(message_ids) & (o.c.state == "leased"), state="pending", next_attempt_at=at)

    @contextmanager
    def _row_locked(self) -> Iterator[Connection]:
        """Outbox transactions skip the writers' advisory lock on PostgreSQL (see
        store/db.py); on SQLite they take their turn among the process's writers
        (store/writers.py), as every destination's sender writes beside HL7 intake."""
        with writers_of(self._engine), self._engine.connect().execution_options(row_locked=True) as conn:
            yield conn

    def _update(self, where: ColumnElement[bool], **values: object) -> int:
        with self._row_locked() as conn:
            count = int(conn.execute(update(t.outbox).where(where).values(**values)).rowcount)
            conn.commit()
        return count

    def _set(self, message_id: int, **values: object) -> None:
        self._update(t.outbox.c.id == message_id, **values)

    def mark_sent(self, message_id: int, at: datetime, answer: Answer = Answer()) -> None:
        self._set(message_id, state="sent", sent_at=at, last_error="", **answer.columns())

    def mark_dead(self, message_id: int, reason: str, answer: Answer = Answer()) -> None:
        """Refused for good: it stays at the head of its order until an operator acts."""
        values = {"state": "dead", "last_error": reason, **answer.columns()}
        self._set(message_id, attempts=t.outbox.c.attempts + 1, **values)

    def defer(self, message_id: int, until: datetime, reason: str, answer: Answer = Answer()) -> None:
        """Back to pending until `until`; meanwhile its destination is backing off."""
        values = {"state": "pending", "next_attempt_at": until, "last_error": reason, **answer.columns()}
        self._set(message_id, attempts=t.outbox.c.attempts + 1, **values)

    def listing(self, state: str, limit: int) -> list[OutboxEntry]:
        stmt = _entries().where(t.outbox.c.state == state).order_by(t.outbox.c.id.desc()).limit(limit)
        with self._engine.connect().execution_options(readonly=True) as conn:
            return [OutboxEntry(*row) for row in conn.execute(stmt)][::-1]

    def requeue(self, message_ids: list[int], now: datetime) -> list[OutboxEntry]:
        """Dead letters back to pending (after the cause is fixed at the peer): each goes
        out again before the later messages of its order, which follow once it is
        sent. Returns the dead letters requeued, as they were."""
        return self._leave_dead(message_ids, state="pending", next_attempt_at=now, last_error="")

    def skip(self, message_ids: list[int]) -> list[OutboxEntry]:
        """Dead letters dropped for good (the destination will never take them, and an
        operator decided the order goes on without them): the later messages of their
        order are due at once. Returns the dead letters skipped, as they were."""
        return self._leave_dead(message_ids, state="skipped")

    def _leave_dead(self, message_ids: list[int], **values: object) -> list[OutboxEntry]:
        """Only dead letters change (a row another operator or broker just moved on is
        left alone); the rows are locked while they are read and changed."""
        o = t.outbox
        dead = _entries().where(o.c.id.in_(message_ids), o.c.state == "dead").order_by(o.c.id).with_for_update(of=o)
        with self._row_locked() as conn:
            entries = [OutboxEntry(*row) for row in conn.execute(dead)]
            conn.execute(update(o).where(o.c.id.in_([e.id for e in entries])).values(**values))
            conn.commit()
        return entries

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


def _entries() -> Select[Any]:
    o = t.outbox.c
    columns = (o.id, o.destination, o.ordering_key, o.state, o.attempts, o.created_at, o.last_error)
    return select(*columns, o.answer_code, o.answer_text, o.answer_error)


def _of(destination: str | None, excluding: Collection[str]) -> list[ColumnElement[bool]]:
    """The lease's choice of destinations, as conditions on the outbox row."""
    column = t.outbox.c.destination
    return ([column == destination] if destination is not None else []) + (
        [column.not_in(sorted(excluding))] if excluding else []
    )


def _earlier_blocking() -> Exists:
    """An older message of the same destination and order has not gone out yet (or
    is a dead letter waiting for an operator)."""
    o, earlier = t.outbox, t.outbox.alias("earlier")
    return (
        select(earlier.c.id)
        .where(
            earlier.c.destination == o.c.destination,
            earlier.c.ordering_key == o.c.ordering_key,
            earlier.c.state.in_(BLOCKING),
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
