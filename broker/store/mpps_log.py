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


def exceptions(engine: Engine) -> list[UnlinkedStep]:
    """Performed steps linked to no scheduled step, oldest first: to be reconciled."""
    p, links = t.performed_steps, t.performed_step_links
    linked = select(links.c.performed_pk).where(links.c.performed_pk == p.c.id).exists()
    stmt = select(p.c.sop_instance_uid, p.c.status, p.c.performed_station_ae, p.c.attributes).where(~linked)
    with engine.connect().execution_options(readonly=True) as conn:
        rows = conn.execute(stmt.order_by(p.c.id)).all()
    return [UnlinkedStep(r.sop_instance_uid, r.status, r.performed_station_ae, _started(r.attributes)) for r in rows]


def _started(attributes: str) -> str:
    record = json.loads(attributes)
    date, time = (record.get(tag, {}).get("Value", [""])[0] for tag in ("00400244", "00400245"))
    return f"{date} {time}".strip()
