"""The outbox queue shared by brokers: a leased message blocks the rest of its order
until it is sent, a dead letter until an operator requeues or skips it, a lapsed lease
makes it due again, a row another broker holds is skipped rather than waited for
(PostgreSQL: FOR UPDATE SKIP LOCKED), and an unreachable destination backs off for
every broker until `retry_now`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from broker.store import tables as t
from broker.store.db import build_engine
from broker.store.migrate import upgrade
from broker.store.outbox import Answer, PendingMessage, SqlOutboxQueue
from support.postgres import PostgresServer

NOW = datetime(2026, 11, 23, 12, 0)
LEASE = NOW + timedelta(minutes=2)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    yield from _queue_of_four(database_url)


@pytest.fixture
def postgresql_engine(postgres_server: PostgresServer) -> Iterator[Engine]:
    with postgres_server.database() as url:
        yield from _queue_of_four(url)


def _queue_of_four(url: str) -> Iterator[Engine]:
    """Orders A (two messages) and B to the RIS, C to an Image Manager."""
    upgrade(url, create=True)
    engine = build_engine(url)
    with engine.begin() as conn:
        for order, destination in (("A", "ris"), ("A", "ris"), ("B", "ris"), ("C", "pacs")):
            conn.execute(t.outbox.insert().values(
                destination=destination, ordering_key=order, payload=b"x", state="pending", attempts=0,
                created_at=NOW, next_attempt_at=NOW, last_error="",
            ))  # fmt: skip
    yield engine
    engine.dispose()


def _keys(messages: list[PendingMessage]) -> list[tuple[int, str]]:
    return [(m.id, m.ordering_key) for m in messages]


def test_a_leased_message_blocks_its_order_until_sent(engine: Engine) -> None:
    first, second = SqlOutboxQueue(engine), SqlOutboxQueue(engine)  # two brokers
    assert _keys(first.lease_due(NOW, LEASE)) == [(1, "A"), (3, "B"), (4, "C")]
    assert second.lease_due(NOW, LEASE) == []  # message 2 waits for message 1
    first.mark_sent(1, NOW)
    assert _keys(second.lease_due(NOW, LEASE)) == [(2, "A")]


def test_a_lapsed_lease_is_due_again(engine: Engine) -> None:
    queue = SqlOutboxQueue(engine)
    queue.lease_due(NOW, LEASE)
    assert queue.lease_due(LEASE - timedelta(seconds=1), LEASE) == []
    assert _keys(queue.lease_due(LEASE, LEASE + timedelta(minutes=2))) == [(1, "A"), (3, "B"), (4, "C")]


def test_rows_another_broker_holds_are_skipped_not_waited_for(postgresql_engine: Engine) -> None:
    """PostgreSQL only: a SQLite database has one broker process, whose writers queue
    on BEGIN IMMEDIATE."""
    engine = postgresql_engine
    holding, release = threading.Event(), threading.Event()

    def other_broker() -> None:
        with engine.connect().execution_options(row_locked=True) as conn:
            conn.execute(text("SELECT id FROM outbox WHERE id IN (1, 3) FOR UPDATE"))
            holding.set()
            release.wait(30)
            conn.rollback()

    holder = threading.Thread(target=other_broker)
    holder.start()
    try:
        assert holding.wait(10)
        assert _keys(SqlOutboxQueue(engine).lease_due(NOW, LEASE)) == [(4, "C")]  # 2 still behind 1
    finally:
        release.set()
        holder.join()


def test_an_unreachable_destination_backs_off_for_every_broker_until_retried(engine: Engine) -> None:
    first, second = SqlOutboxQueue(engine), SqlOutboxQueue(engine)
    first.lease_due(NOW, LEASE)
    first.defer(1, NOW + timedelta(minutes=10), "ConnectionRefusedError")
    first.release([3], NOW)
    first.mark_sent(4, NOW)
    assert second.lease_due(NOW + timedelta(minutes=1), LEASE) == []  # order B waits too: same destination
    assert second.retry_now(NOW + timedelta(minutes=1)) == 1
    assert _keys(second.lease_due(NOW + timedelta(minutes=1), LEASE)) == [(1, "A"), (3, "B")]


def test_a_dead_letter_holds_its_order_for_every_broker_until_requeued_or_skipped(engine: Engine) -> None:
    """R8: per-order FIFO is never broken by a refusal; other orders are not held."""
    first, second = SqlOutboxQueue(engine), SqlOutboxQueue(engine)
    first.lease_due(NOW, LEASE)
    first.mark_dead(1, "AE: refused", Answer("AE", "refused", "^^^207&Application internal error&HL70357"))
    first.mark_sent(3, NOW)
    first.mark_sent(4, NOW)
    assert second.lease_due(NOW + timedelta(days=1), LEASE) == []  # message 2 waits behind dead 1
    [dead] = second.listing("dead", 10)
    assert (dead.id, dead.answer_code, dead.answer_text, dead.attempts) == (1, "AE", "refused", 1)

    assert [e.id for e in second.requeue([1, 2, 3, 99], NOW)] == [1]  # dead letters only
    assert _keys(first.lease_due(NOW, LEASE)) == [(1, "A")]  # it goes first, 2 still behind it
    first.mark_dead(1, "AE: refused again")
    assert [e.id for e in second.skip([1])] == [1]
    assert second.skip([1]) == []
    assert _keys(first.lease_due(NOW, LEASE)) == [(2, "A")]


def test_a_lease_for_one_destination_takes_none_of_another(engine: Engine) -> None:
    """#17: each destination drains on its own; an unknown destination's messages are
    leased apart (to be refused) by excluding the known ones."""
    ris, pacs = SqlOutboxQueue(engine), SqlOutboxQueue(engine)
    assert _keys(pacs.lease_due(NOW, LEASE, destination="pacs")) == [(4, "C")]
    assert _keys(ris.lease_due(NOW, LEASE, destination="ris")) == [(1, "A"), (3, "B")]
    ris.mark_dead(1, "AE: refused")
    pacs.mark_sent(4, NOW)
    assert ris.lease_due(NOW, LEASE, excluding=["ris", "pacs"]) == []
    assert ris.lease_due(NOW, LEASE, destination="ris") == []  # 2 waits behind dead 1, 3 is leased
