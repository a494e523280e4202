"""Read queries for the REST API and the page for the day: what operators look at.

Every query runs in a read-only transaction (on PostgreSQL it skips the writers' lock,
on SQLite it is a plain BEGIN under WAL), so a page refresh never waits for HL7 intake.
Orders and patients come back as the domain's own objects, detached and fully loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, or_, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from broker.domain.model import Order, Patient, PersonName
from broker.store import tables as t
from broker.store.records import StoredOrder, StoredPatient


@dataclass(frozen=True)
class StepLine:
    """A scheduled step as listed (an order's page)."""

    sps_id: str
    station_ae: str
    modality: str
    start: datetime | None
    description: str
    status: str


@dataclass(frozen=True)
class StepRow(StepLine):
    """One scheduled step with what a technologist needs beside it on the day's list."""

    patient_id: str
    patient_name: PersonName
    accession_number: str
    requested_procedure_id: str
    #: Status of the latest MPPS linked to the step; empty when none reported yet.
    mpps_status: str


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    with engine.connect().execution_options(readonly=True) as conn:
        yield conn


def _domain(engine: Engine, stmt: Select[Any], limit: int) -> list[Any]:
    with _reading(engine) as conn, Session(bind=conn) as session:
        return list(session.scalars(stmt.limit(limit)).unique())


def patients(engine: Engine, *, patient_id: str = "", limit: int = 100) -> list[Patient]:
    stmt = select(StoredPatient).order_by(t.patients.c.id.desc())
    if patient_id:
        stmt = stmt.where(t.patients.c.patient_id == patient_id)
    return _domain(engine, stmt, limit)


def orders(engine: Engine, *, accession_number: str = "", patient_id: str = "", limit: int = 100) -> list[Order]:
    """Newest first, each with its patient, procedures and steps."""
    stmt = select(StoredOrder).join(t.patients, t.orders.c.patient_pk == t.patients.c.id).order_by(t.orders.c.id.desc())
    if accession_number:
        stmt = stmt.where(t.orders.c.accession_number == accession_number)
    if patient_id:
        stmt = stmt.where(t.patients.c.patient_id == patient_id)
    return _domain(engine, stmt, limit)


def steps(engine: Engine, *, day: date | None = None, station_ae: str = "", limit: int = 1000) -> list[StepRow]:
    """Scheduled steps by station and start time; with `day`, those starting that day
    and those that have no start time at all (they are due whenever a modality asks)."""
    s, rp, o, p = t.scheduled_steps.c, t.requested_procedures.c, t.orders.c, t.patients.c
    links, pps = t.performed_step_links.c, t.performed_steps.c
    stmt = (
        select(
            s.id, s.sps_id, s.station_ae, s.modality, s.start, s.description, s.status, p.patient_id,
            p.name_alphabetic, p.name_ideographic, p.name_phonetic, o.accession_number,
            rp.requested_procedure_id, pps.status.label("mpps_status"),
        )
        .join(t.requested_procedures, s.procedure_pk == rp.id)
        .join(t.orders, rp.order_pk == o.id)
        .join(t.patients, o.patient_pk == p.id)
        .outerjoin(t.performed_step_links, links.step_pk == s.id)
        .outerjoin(t.performed_steps, pps.id == links.performed_pk)
        .order_by(s.station_ae, s.start.nulls_first(), s.id, pps.id)
    )  # fmt: skip
    if day is not None:
        first = datetime.combine(day, time())
        stmt = stmt.where(or_(s.start.is_(None), (s.start >= first) & (s.start < first + timedelta(days=1))))
    if station_ae:
        stmt = stmt.where(s.station_ae == station_ae)
    with _reading(engine) as conn:
        rows = conn.execute(stmt.limit(limit)).all()
    latest: dict[int, StepRow] = {}  # a step with several MPPS: the last one counts
    for r in rows:
        name = PersonName(r.name_alphabetic, r.name_ideographic, r.name_phonetic)
        mpps = r.mpps_status.value if r.mpps_status is not None else ""
        latest[r.id] = StepRow(
            r.sps_id, r.station_ae, r.modality, r.start, r.description, r.status.value, r.patient_id, name,
            r.accession_number, r.requested_procedure_id, mpps,
        )  # fmt: skip
    return list(latest.values())


def reachable(engine: Engine) -> bool:
    """Whether the database answers now (readiness, not liveness)."""
    try:
        with _reading(engine) as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    return True
