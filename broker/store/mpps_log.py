"""MPPS as operators read them: the exceptions (unscheduled, not linked to any step)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Engine, select

from broker.store import tables as t


@dataclass(frozen=True)
class UnlinkedStep:
    sop_instance_uid: str
    status: str
    performed_station_ae: str
    started: str  # PPS Start Date + Time as sent
    patient_id: str
    #: Why it is linked to no step: unscheduled, nothing matched, or which attribute
    #: disagreed with the scheduled step it quoted, with both values.
    reason: str


def exceptions(engine: Engine) -> list[UnlinkedStep]:
    """Performed steps linked to no scheduled step, oldest first: to be reconciled."""
    p, links = t.performed_steps, t.performed_step_links
    linked = select(links.c.performed_pk).where(links.c.performed_pk == p.c.id).exists()
    stmt = select(
        p.c.sop_instance_uid, p.c.status, p.c.performed_station_ae, p.c.attributes, p.c.patient_id, p.c.unlinked_reason
    ).where(~linked)
    with engine.connect().execution_options(readonly=True) as conn:
        rows = conn.execute(stmt.order_by(p.c.id)).all()
    return [
        UnlinkedStep(
            r.sop_instance_uid,
            r.status.value,
            r.performed_station_ae,
            started(r.attributes),
            r.patient_id,
            r.unlinked_reason,
        )
        for r in rows
    ]


def started(attributes: str) -> str:
    """PPS Start Date and Time as sent, `YYYYMMDD HHMMSS`."""
    record = json.loads(attributes)
    date, time = (record.get(tag, {}).get("Value", [""])[0] for tag in ("00400244", "00400245"))
    return f"{date} {time}".strip()


@dataclass(frozen=True)
class PerformedRow:
    sop_instance_uid: str
    status: str
    performed_station_ae: str
    started: str
    #: SPS IDs of the scheduled steps it is linked to; none: an exception.
    linked_sps_ids: tuple[str, ...]


def performed(engine: Engine, *, status: str = "", uid: str = "", limit: int = 100) -> list[PerformedRow]:
    """Performed steps, newest first, with the scheduled steps each one drives."""
    p, links, s = t.performed_steps, t.performed_step_links, t.scheduled_steps
    stmt = select(p.c.id, p.c.sop_instance_uid, p.c.status, p.c.performed_station_ae, p.c.attributes)
    if status:
        stmt = stmt.where(p.c.status == status)
    if uid:
        stmt = stmt.where(p.c.sop_instance_uid == uid)
    linked = select(links.c.performed_pk, s.c.sps_id).join(s, s.c.id == links.c.step_pk)
    with engine.connect().execution_options(readonly=True) as conn:
        rows = conn.execute(stmt.order_by(p.c.id.desc()).limit(limit)).all()
        pks = [r.id for r in rows]
        sps: dict[int, list[str]] = {}
        for link in conn.execute(linked.where(links.c.performed_pk.in_(pks)).order_by(s.c.id)):
            sps.setdefault(link.performed_pk, []).append(link.sps_id)
    return [
        PerformedRow(
            r.sop_instance_uid, r.status.value, r.performed_station_ae, started(r.attributes), tuple(sps.get(r.id, []))
        )
        for r in rows
    ]
