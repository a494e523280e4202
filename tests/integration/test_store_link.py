"""The intake's statements on the driver's cursor (store/link.py) store and read what
SQLAlchemy's own execution would: every column type the intake writes (dates, enums,
booleans, JSON lists and codes, Japanese text) read back through the ORM; statement
constants (a counter's first value and step); a unit of work whose commit failed
hands its connection back to the pool outside any transaction; and on SQLite only the
transaction is inside the writers' turn, not the pool's checkout and checkin."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event

from broker.domain.model import Code, Order, Patient, PersonName, RequestedProcedure, ScheduledStep, StepStatus
from broker.store.db import sqlite_file
from broker.store.uow import SqlUnitOfWorkFactory
from broker.store.writers import writers_of

NAME = PersonName("YAMADA^TAROU", "山田^太郎", "ヤマダ^タロウ")


def _order() -> Order:
    step = ScheduledStep(
        "SPS1", "CT", "CT01", "", datetime(2026, 12, 4, 9, 30, 15, 250000), "頭部単純",
        [Code("32000000", "JJ1017-32", "CT 頭部"), Code("P1", "99LOCAL")], "", "", StepStatus.SCHEDULED,
    )  # fmt: skip
    procedure = RequestedProcedure(
        "RP1", "1.2.392.1", "CT 頭部", Code("32000000", "JJ1017-16P", "頭部"), "HIGH", [step]
    )
    patient = Patient("PAT1", "HOSP", NAME, "19700101", "M")
    return Order("PO1", "FO1", "ACC1", patient, "RIS", procedures=[procedure], cancelled=False, discontinued=True)


def test_what_the_cursor_writes_the_orm_reads_back(engine: Engine) -> None:
    uows, order = SqlUnitOfWorkFactory(engine), _order()
    with uows() as uow:
        uow.patients.insert(order.patient)
        uow.orders.insert(order)
        uow.commit()
    with uows.reading() as uow:
        stored = uow.orders.by_placer_number("PO1", "RIS")
        held = uow.patients.held("PAT1", "HOSP")
    assert held is not None
    assert (held.patient_id, held.issuer, held.name, held.birth_date, held.sex) == (
        "PAT1",
        "HOSP",
        NAME,
        "19700101",
        "M",
    )
    assert stored is not None
    assert (stored.discontinued, stored.cancelled, stored.patient.name) == (True, False, NAME)
    assert [(p.code, p.priority) for p in stored.procedures] == [(order.procedures[0].code, "HIGH")]
    [step] = stored.procedures[0].steps
    assert (step.start, step.protocol_codes, step.status) == (
        datetime(2026, 12, 4, 9, 30, 15, 250000),
        order.procedures[0].steps[0].protocol_codes,
        StepStatus.SCHEDULED,
    )


def test_a_counter_starts_at_one_and_counts_on(engine: Engine) -> None:
    uows = SqlUnitOfWorkFactory(engine)
    with uows() as uow:
        assert [uow.sequences.next("accession"), uow.sequences.next("accession"), uow.sequences.next("sps")] == [
            1,
            2,
            1,
        ]
        uow.commit()


def _in_transaction(dbapi_connection: Any) -> bool:
    if isinstance(dbapi_connection, sqlite3.Connection):
        return dbapi_connection.in_transaction
    return bool(dbapi_connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)


def test_a_failed_commit_leaves_no_transaction_on_the_pooled_connection(engine: Engine) -> None:
    """SQLAlchemy forgets a transaction whose commit failed; the driver's connection,
    pooled again inside it, would fail its next BEGIN (SQLite) or run the next unit of
    work inside the failed one (PostgreSQL)."""
    uows, pooled = SqlUnitOfWorkFactory(engine), []

    def full_disk(_conn: Any) -> None:
        raise OSError(28, "No space left on device")

    event.listen(engine, "commit", full_disk)
    event.listen(engine, "checkin", lambda dbapi_connection, _record: pooled.append(_in_transaction(dbapi_connection)))
    try:
        with pytest.raises(OSError), uows() as uow:
            uow.patients.insert(Patient("PAT2"))
            uow.commit()
    finally:
        event.remove(engine, "commit", full_disk)
    assert pooled == [False]
    with uows() as uow:
        assert uow.patients.held("PAT2", "") is None


def _turn_free(engine: Engine) -> bool:
    """Whether another process could take the writers' turn now (store/writers.py: its
    holder holds an exclusive flock on `<database>-writer.lock`)."""
    database = sqlite_file(engine)
    assert database is not None
    fd = os.open(Path(f"{database}-writer.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_only_the_transaction_is_inside_the_writers_turn(engine: Engine) -> None:
    """The writers of every process take the turn one at a time, so what need not be in
    it is not (issue #17): a unit of work takes its connection from the pool before it
    waits for the turn and gives it back after letting the turn go. What it did not
    commit is rolled back inside the turn: an open SQLite write transaction holds the
    file, and the next writer would find it locked."""
    uows, seen = SqlUnitOfWorkFactory(engine), []
    for name in ("checkout", "checkin", "rollback"):
        event.listen(engine, name, lambda *_, name=name: seen.append((name, _turn_free(engine))))
    holding = threading.Event()

    def second() -> None:
        holding.wait(10)
        with uows() as uow:
            uow.commit()

    worker = threading.Thread(target=second)
    worker.start()
    with uows() as uow:
        holding.set()
        while writers_of(engine).waiting == 0 and worker.is_alive():  # the second one queues for the turn ...
            worker.join(0.01)
        assert seen == [("checkout", True), ("checkout", False)]  # ... its connection taken before
        uow.commit()
    worker.join(10)
    assert not worker.is_alive()

    seen.clear()
    with pytest.raises(RuntimeError), uows() as uow:
        uow.patients.insert(Patient("PAT3"))
        raise RuntimeError("not committed")
    assert seen == [("checkout", True), ("rollback", False), ("checkin", True)]
    with uows() as uow:
        assert uow.patients.held("PAT3", "") is None
