"""#17 Writers and readers apart. A prune working through a large backlog releases the
writer between bounded batches, and an HL7 message that came meanwhile commits (and is
ACKed) before the next batch: the statements' order shows it, no clock involved. A
C-FIND is answered, and its association released, while a writer transaction is open:
neither the worklist read nor the query's audit waits for it; the audit message follows
once the writer is done, exactly once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text

from broker.app import Broker
from broker.config import HousekeepingConfig
from broker.domain.errors import UnknownRecord
from broker.jobs.housekeeping import Housekeeper
from broker.store import tables as t
from broker.store.outbox import SqlOutboxQueue
from broker.store.uow import SqlUnitOfWorkFactory
from broker.store.writers import WriterQueue, writers_of
from support.audit import event_key, valid_message
from support.brokers import make_config
from support.dicompeer import findscu
from support.hl7peer import RisListener, ack_code, sample, send
from support.net import free_port
from support.recorder import settled

BATCH, BATCHES = 20, 5
LONG_AGO = datetime(2020, 1, 1)


def _writer_waits(engine: Engine) -> bool:
    """Whether a writer waits for its turn: in the process's queue (SQLite), or for
    the writers' advisory lock (PostgreSQL)."""
    writers = writers_of(engine)
    if isinstance(writers, WriterQueue):
        return writers.waiting > 0
    waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    with engine.connect().execution_options(readonly=True) as conn:
        return bool(conn.execute(waiting).scalar())


@pytest.fixture
def intake_only(database_url: str, ris: RisListener) -> Iterator[Broker]:
    """A broker whose HL7 listener alone runs: no outbox rounds or scheduled
    housekeeping that would queue among the writers too."""
    broker = Broker(make_config(ris.port, database_url=database_url))
    broker.hl7.start()
    yield broker
    broker.hl7.stop()
    broker.services.close()


def _backlog(engine: Engine) -> None:
    """BATCH * BATCHES sent outbox rows, all past retention."""
    with engine.begin() as conn:
        conn.execute(t.outbox.insert(), [
            {"destination": "ris", "ordering_key": f"old-{n}", "payload": b"x", "state": "sent", "attempts": 1,
             "created_at": LONG_AGO, "next_attempt_at": LONG_AGO, "sent_at": LONG_AGO, "last_error": ""}
            for n in range(BATCH * BATCHES)
        ])  # fmt: skip


def test_hl7_intake_commits_between_prune_batches(intake_only: Broker) -> None:
    broker = intake_only
    _backlog(broker.engine)
    writes: list[str] = []
    acks: list[bytes] = []
    sender = threading.Thread(
        target=lambda: acks.extend(send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7")))
    )

    def observe(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO inbound_messages"):
            writes.append("intake")
        elif statement.startswith("DELETE FROM outbox"):
            writes.append("prune")
            if writes == ["prune"]:  # inside the first batch: the HL7 message arrives
                sender.start()
                assert settled(lambda: _writer_waits(broker.engine), bool), "the HL7 message never queued"

    event.listen(broker.engine, "before_cursor_execute", observe)
    config = HousekeepingConfig(retention_days=90, prune_batch=BATCH)
    Housekeeper(broker.engine, config, clock=lambda: datetime.now() + timedelta(days=100)).run()
    sender.join(30)
    event.remove(broker.engine, "before_cursor_execute", observe)
    assert [ack_code(ack) for ack in acks] == ["AA"]
    # the rest of the backlog after the message: BATCHES - 1 full batches, one empty
    assert writes == ["prune", "intake"] + ["prune"] * BATCHES


def test_a_c_find_is_answered_while_a_writer_is_open(database_url: str, ris: RisListener, tmp_path: Path) -> None:
    audit = {"enabled": True, "host": "127.0.0.1", "port": free_port(), "protocol": "udp"}
    broker = Broker(make_config(ris.port, database_url=database_url, audit=audit))
    broker.start()
    try:
        assert ack_code(send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))[0]) == "AA"
        with SqlUnitOfWorkFactory(broker.engine)() as writer:
            writer.link.session.execute(select(1))  # the write transaction has begun
            answers = findscu(broker.dicom.port, ["AccessionNumber", "PatientID"], tmp_path)
            assert [a.AccessionNumber for a in answers] == ["ACC1001"]
            assert _read_elsewhere(lambda: broker.pps_manager.candidates("1.2.3.4")) == "UnknownRecord"
        assert settled(lambda: _audited_queries(broker), lambda found: found > 0) == 1
    finally:
        broker.stop()


def _read_elsewhere(read: Any) -> str:
    """What a read on another thread than the writer's came to (it must not wait)."""
    outcome: list[str] = []

    def run() -> None:
        try:
            read()
            outcome.append("answered")
        except UnknownRecord:
            outcome.append("UnknownRecord")

    reader = threading.Thread(target=run)
    reader.start()
    reader.join(30)
    return outcome[0] if outcome else "still waiting"


def _audited_queries(broker: Broker) -> int:
    with broker.engine.connect().execution_options(readonly=True) as conn:
        payloads = conn.execute(select(t.outbox.c.payload).where(t.outbox.c.destination == "audit")).scalars()
        keys = [event_key(valid_message(p[p.index(b"<?xml") :])) for p in payloads]
    return keys.count(("110112", "E", ""))


def test_an_outbox_round_that_finds_nothing_due_takes_no_writers_turn(intake_only: Broker) -> None:
    """Each destination's sender looks every `outbox.poll_seconds`, mostly to find
    nothing: that look is a read, and HL7 intake never queues behind it."""
    queue, now = SqlOutboxQueue(intake_only.engine), datetime.now()
    lease = lambda: queue.lease_due(now, now + timedelta(minutes=1), destination="ris")  # noqa: E731
    with SqlUnitOfWorkFactory(intake_only.engine)() as writer:
        writer.link.session.execute(select(1))  # the write transaction has begun
        assert _read_elsewhere(lease) == "answered"
