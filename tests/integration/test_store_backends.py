"""The store keeps the promises the actors rely on, identically on SQLite and on
PostgreSQL: writers queue (no lost update between a unit of work's read and its
write), readers never wait for a writer, counters never hand out a number twice, and
a worklist answer has the same order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import Engine, func, insert, select, text, update

from broker.domain.model import Order, Patient, RequestedProcedure, ScheduledStep
from broker.domain.worklist import WorklistQuery
from broker.store import tables as t
from broker.store.uow import SqlUnitOfWorkFactory
from broker.store.worklist import SqlWorklistReader


def test_writers_queue_so_read_then_write_loses_no_update(engine: Engine) -> None:
    """Each transaction reads the value, then writes value + 1 (as a unit of work reads
    an order, then changes it): 4 threads x 25 must end at exactly 100."""
    with engine.begin() as conn:
        conn.execute(insert(t.sequences).values(name="probe", value=0))
    row = t.sequences.c.name == "probe"

    def bump() -> None:
        for _ in range(25):
            with engine.begin() as conn:
                value = conn.execute(select(t.sequences.c.value).where(row)).scalar_one()
                conn.execute(update(t.sequences).where(row).values(value=value + 1))

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(bump) for _ in range(4)]:
            future.result()
    with engine.connect() as conn:
        assert conn.execute(select(t.sequences.c.value).where(row)).scalar_one() == 100


def test_reader_does_not_wait_for_an_open_write_transaction(engine: Engine) -> None:
    read: list[int] = []
    with engine.begin() as writer:
        writer.execute(insert(t.sequences).values(name="uncommitted", value=1))

        def read_outbox_depth() -> None:
            with engine.connect().execution_options(readonly=True) as conn:
                read.append(int(conn.execute(select(func.count()).select_from(t.sequences)).scalar_one()))

        reader = threading.Thread(target=read_outbox_depth)
        reader.start()
        reader.join(timeout=5)
        assert not reader.is_alive(), "a readonly transaction waited for the writer"
    assert read == [0]


def test_sequence_numbers_are_unique_and_gapless_under_concurrency(engine: Engine) -> None:
    uow = SqlUnitOfWorkFactory(engine)

    def take() -> int:
        with uow() as work:
            number = work.sequences.next("accession")
            work.commit()
            return number

    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(lambda _: take(), range(40)))
    assert sorted(numbers) == list(range(1, 41))


def test_worklist_order_is_by_start_with_unscheduled_steps_first(engine: Engine) -> None:
    steps = [
        ScheduledStep("SPS-LATE", "CT", start=datetime(2026, 11, 23, 15, 0)),
        ScheduledStep("SPS-NONE", "CT"),
        ScheduledStep("SPS-EARLY", "CT", start=datetime(2026, 11, 23, 9, 0)),
    ]
    order = Order("PO1", "FO1", "ACC1", Patient("PAT1"), procedures=[RequestedProcedure("RP1", "1.2.3", steps=steps)])
    with SqlUnitOfWorkFactory(engine)() as work:
        work.orders.add(order)
        work.commit()
    found = SqlWorklistReader(engine).find(WorklistQuery(), limit=10)
    assert [entry.sps_id for entry in found] == ["SPS-NONE", "SPS-EARLY", "SPS-LATE"]


def test_worklist_reads_the_order_details_a_worklist_answer_carries(engine: Engine) -> None:
    """Migration 0004's columns (Admission ID, Requesting Physician and Service) and the
    placer/filler numbers reach the flat read model the worklist answers from."""
    step = ScheduledStep("SPS1", "CT", start=datetime(2026, 11, 23, 9, 0))
    order = Order(
        "PO1", "FO1", "ACC1", Patient("PAT1"), procedures=[RequestedProcedure("RP1", "1.2.3", steps=[step])],
        admission_id="V1", requesting_physician="HOUSE^GREGORY=医師^太郎", requesting_service="CARDIOLOGY",
    )  # fmt: skip
    with SqlUnitOfWorkFactory(engine)() as work:
        work.orders.add(order)
        work.commit()
    [entry] = SqlWorklistReader(engine).find(WorklistQuery(), limit=10)
    assert (entry.placer_order_number, entry.filler_order_number, entry.admission_id) == ("PO1", "FO1", "V1")
    assert (entry.requesting_physician, entry.requesting_service) == ("HOUSE^GREGORY=医師^太郎", "CARDIOLOGY")


def test_database_errors_carry_no_bound_values(engine: Engine) -> None:
    """An error that reaches the log must not show patient data (RELIABILITY S6)."""
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": "YAMADA^TAROU"})
    except Exception as exc:
        message = str(exc)
    assert "YAMADA" not in message
    assert "parameters hidden" in message
