"""Housekeeping in SQL: flag steps left IN PROGRESS, archive old finished orders,
prune old log rows. Run by the scheduler, once per database (see `lease`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import Engine, Select, and_, delete, func, select, text, update
from sqlalchemy.orm import Session

from broker.domain.model import Order, PerformedStep
from broker.domain.states import ON_WORKLIST
from broker.store import tables as t

#: Advisory lock key of the housekeeping jobs (see outbox.SENDER_LOCK_KEY, db.WRITER_LOCK_KEY).
HOUSEKEEPING_LOCK_KEY = 0x5357_484B  # "SWHK"


@contextmanager
def lease(engine: Engine) -> Iterator[bool]:
    """Whether this broker runs the jobs now: one broker per PostgreSQL database."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect().execution_options(readonly=True) as conn:
        mine = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": HOUSEKEEPING_LOCK_KEY}).scalar())
        conn.commit()
        try:
            yield mine
        finally:
            if mine:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": HOUSEKEEPING_LOCK_KEY})
                conn.commit()


def flag_stale(engine: Engine, started_before: datetime, now: datetime) -> list[str]:
    """MPPS still IN PROGRESS since before `started_before`, flagged once; their UIDs."""
    p = t.performed_steps
    stale = and_(p.c.status == "IN PROGRESS", p.c.created_at < started_before, p.c.flagged_at.is_(None))
    with engine.begin() as conn:
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


def archive_finished(engine: Engine, cutoff: datetime, now: datetime, batch: int = 500) -> int:
    """Move finished orders (with their steps and the MPPS that served only them) into
    `archived_orders` as JSON; the worklist tables keep only what is current."""
    archived = 0
    with Session(engine) as session, session.begin():
        for order_pk in list(session.scalars(_finished_before(cutoff).limit(batch))):
            order = session.get(Order, order_pk)
            if order is None:
                continue
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
            archived += 1
    return archived


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
    return [pps for pk in performed_pks - elsewhere if (pps := session.get(PerformedStep, pk)) is not None]


def _snapshot(order: Order, performed: list[PerformedStep]) -> str:
    record = asdict(order)
    record["performed"] = [{"uid": p.sop_instance_uid, "status": p.status, "attributes": json.loads(p.attributes)}
                           for p in performed]  # fmt: skip
    return json.dumps(record, ensure_ascii=False, default=str)


def prune_logs(engine: Engine, before: datetime) -> int:
    """Sent outbox rows and accepted inbound messages older than `before` (refused ones
    and dead letters stay until an operator deals with them)."""
    with engine.begin() as conn:
        sent = conn.execute(delete(t.outbox).where(t.outbox.c.state == "sent", t.outbox.c.sent_at < before))
        accepted = conn.execute(
            delete(t.inbound_messages).where(
                t.inbound_messages.c.answer == "AA", t.inbound_messages.c.received_at < before
            )
        )
    return int(sent.rowcount) + int(accepted.rowcount)
