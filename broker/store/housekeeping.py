"""Housekeeping in SQL: flag steps left IN PROGRESS, archive old finished orders,
prune old log rows. Run by the scheduler, once per database and interval (see `claim_round`).

Every transaction here is short and bounded (a batch of rows or orders), and each takes
its turn among the process's writers (store/writers.py): between two batches the
writer is released, and an HL7 message that came meanwhile commits before the next
batch begins, however large the backlog (the first round after an upgrade, or after
retention was shortened). Between two batches the writer is also left free for a moment
(`_give_way`), so a writer of another process gets it too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Engine, Select, Table, and_, delete, func, select, update
from sqlalchemy.orm import Session

from broker.domain.model import Order, PerformedStep
from broker.domain.states import ON_WORKLIST
from broker.store import tables as t
from broker.store.records import StoredOrder, StoredPerformedStep
from broker.store.writers import writers_of


def claim_round(engine: Engine, job: str, now: datetime, interval: timedelta) -> bool:
    """Whether this broker runs `job` now. The round is claimed in the database under
    the writers' lock (store/db.py), so brokers sharing it run the job once per interval
    between them whatever their schedulers' phases: a round is taken only when the last
    one (by any broker) is at least 90% of an interval old (the slack absorbs scheduler
    jitter), or when the clock went back by more than an interval."""
    runs = t.job_runs
    with _writing(engine) as conn:
        last = conn.execute(select(runs.c.last_run_at).where(runs.c.name == job).with_for_update()).scalar()
        if last is None:
            conn.execute(runs.insert().values(name=job, last_run_at=now, runs=1))
            return True
        if interval * 0.9 <= now - last or now - last < -interval:
            conn.execute(update(runs).where(runs.c.name == job).values(last_run_at=now, runs=runs.c.runs + 1))
            return True
    return False


def rounds_run(engine: Engine, job: str) -> int:
    """How many rounds of `job` all brokers on the database have run."""
    with engine.connect().execution_options(readonly=True) as conn:
        return int(conn.execute(select(t.job_runs.c.runs).where(t.job_runs.c.name == job)).scalar() or 0)


def flag_stale(engine: Engine, started_before: datetime, now: datetime) -> list[str]:
    """MPPS still IN PROGRESS since before `started_before`, flagged once; their UIDs."""
    p = t.performed_steps
    stale = and_(p.c.status == "IN PROGRESS", p.c.created_at < started_before, p.c.flagged_at.is_(None))
    with _writing(engine) as conn:
        uids = [str(uid) for uid in conn.execute(select(p.c.sop_instance_uid).where(stale)).scalars()]
        conn.execute(update(p).where(stale).values(flagged_at=now))
    return uids


def _finished_before(cutoff: datetime) -> Select[tuple[int]]:
    """Orders none of whose steps is still on the worklist, last scheduled before `cutoff`."""
    s, rp = t.scheduled_steps, t.requested_procedures
    active = [status.value for status in ON_WORKLIST]
    latest = select(func.max(s.c.start)).join(rp, s.c.procedure_pk == rp.c.id).where(rp.c.order_pk == t.orders.c.id)
    open_steps = (
        select(s.c.id)
        .join(rp, s.c.procedure_pk == rp.c.id)
        .where(rp.c.order_pk == t.orders.c.id, s.c.status.in_(active))
        .exists()
    )
    return select(t.orders.c.id).where(~open_steps, latest.scalar_subquery() < cutoff)


def archive_finished(engine: Engine, cutoff: datetime, now: datetime, batch: int = 50) -> int:
    """Move finished orders (with their steps and the MPPS that served only them) into
    `archived_orders` as JSON, `batch` orders per transaction; the worklist tables keep
    only what is current."""
    archived = 0
    while True:
        began = time.monotonic()
        with writers_of(engine), Session(engine) as session, session.begin():
            order_pks = list(session.scalars(_finished_before(cutoff).limit(batch)))
            archived += sum(_archive(session, order_pk, now) for order_pk in order_pks)
        if len(order_pks) < batch:
            return archived
        _give_way(began)


def _archive(session: Session, order_pk: object, now: datetime) -> bool:
    """Archive one order; False when it is gone already."""
    order = session.get(StoredOrder, order_pk)
    if order is None:
        return False
    performed = _performed_for(session, order)
    session.execute(t.archived_orders.insert().values(
        placer_application=order.placer_application, placer_order_number=order.placer_order_number,
        accession_number=order.accession_number, archived_at=now, record=_snapshot(order, performed),
    ))  # fmt: skip
    step_pks = [step._id for step in order.steps()]  # type: ignore[attr-defined]
    session.execute(delete(t.performed_step_links).where(t.performed_step_links.c.step_pk.in_(step_pks)))
    for pps in performed:
        session.delete(pps)
    session.delete(order)
    return True


def _performed_for(session: Session, order: Order) -> list[PerformedStep]:
    """The MPPS linked only to this order's steps (an MPPS that also served another,
    still current order stays)."""
    step_pks = {step._id for step in order.steps()}  # type: ignore[attr-defined]
    links = t.performed_step_links
    performed_pks = set(session.scalars(select(links.c.performed_pk).where(links.c.step_pk.in_(step_pks))))
    elsewhere = set(
        session.scalars(
            select(links.c.performed_pk).where(links.c.performed_pk.in_(performed_pks), ~links.c.step_pk.in_(step_pks))
        )
    )
    return [pps for pk in performed_pks - elsewhere if (pps := session.get(StoredPerformedStep, pk)) is not None]


def _snapshot(order: Order, performed: list[PerformedStep]) -> str:
    record = asdict(order)
    record["performed"] = [{"uid": p.sop_instance_uid, "status": p.status, "attributes": json.loads(p.attributes)}
                           for p in performed]  # fmt: skip
    return json.dumps(record, ensure_ascii=False, default=str)


def prune_logs(engine: Engine, before: datetime, refused_before: datetime, batch: int = 1000) -> int:
    """Sent outbox rows and accepted inbound messages older than `before`, and refused
    inbound messages (raw bytes and all) older than `refused_before`: a sender that
    keeps sending junk must not grow the database forever. Dead letters stay until an
    operator deals with them. Deleted `batch` rows per transaction, so HL7 intake never
    waits long behind the writers' lock however much is due."""
    i, o = t.inbound_messages, t.outbox
    rules = [
        (o, and_(o.c.state == "sent", o.c.sent_at < before)),
        (i, and_(i.c.answer == "AA", i.c.received_at < before)),
        (i, and_(i.c.answer != "AA", i.c.received_at < refused_before)),
    ]
    return sum(_delete_in_batches(engine, table, due, batch) for table, due in rules)


def _delete_in_batches(engine: Engine, table: Table, due: ColumnElement[bool], batch: int) -> int:
    deleted = 0
    while True:
        began = time.monotonic()
        with _writing(engine) as conn:
            ids = select(table.c.id).where(due).order_by(table.c.id).limit(batch).scalar_subquery()
            count = int(conn.execute(delete(table).where(table.c.id.in_(ids))).rowcount)
        deleted += count
        if count < batch:
            return deleted
        _give_way(began)


def _give_way(began: float) -> None:
    """The writer left free, after a batch, for as long as the batch took (1-50 ms).
    Across processes the writers' turn is a file lock (store/writers.py), which the
    kernel does not hand on in order: a loop asking again at once took it back before a
    waiting intake process ran (measured: an HL7 ACK waited 1.1 s behind a 300,000-row
    prune, against 0.18 s in one process). Paused, it lets the waiting writer in, and
    a prune takes at most about half of the writer's time while others want it."""
    time.sleep(min(max(time.monotonic() - began, 0.001), 0.05))


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """One short write transaction, in its turn among the process's writers."""
    with writers_of(engine), engine.begin() as conn:
        yield conn
