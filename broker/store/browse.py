"""Finding orders and reading one in full, for the console's search and order page.

A search is one indexed query: each typed name word is a prefix range over
`patient_name_keys` (every PN group, folded: broker.store.name_keys), patient ID and
accession are equality on their indexes, station and dates go through the steps'
(station_ae, start) and (start) indexes. The order page reads the order, its MPPS
(through the step links), the inbound messages that applied to it
(`inbound_message_orders`) and its outbound messages (`outbox.ordering_key`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, exists, select
from sqlalchemy.orm import Session

from broker.domain.model import Order, PersonName
from broker.store import tables as t
from broker.store.inbound_log import LoggedMessage
from broker.store.name_keys import PREFIX_END, words
from broker.store.reads import StepLine
from broker.store.records import StoredOrder


@dataclass(frozen=True)
class Criteria:
    """What an operator typed; empty fields do not narrow."""

    name: str = ""
    patient_id: str = ""
    accession_number: str = ""
    station_ae: str = ""
    first_day: date | None = None
    last_day: date | None = None

    def empty(self) -> bool:
        return not (words(self.name) or self.patient_id or self.accession_number or self.station_ae
                    or self.first_day or self.last_day)  # fmt: skip


@dataclass(frozen=True)
class OrderHit:
    order_pk: int
    accession_number: str
    placer_order_number: str
    patient_id: str
    patient_name: PersonName
    birth_date: str
    cancelled: bool
    discontinued: bool
    steps: tuple[StepLine, ...]


def _reading(engine: Engine) -> Any:
    return engine.connect().execution_options(readonly=True)


def _conditions(c: Criteria) -> list[ColumnElement[bool]]:
    o, p, s, rp, k = t.orders.c, t.patients.c, t.scheduled_steps.c, t.requested_procedures.c, t.patient_name_keys.c
    found: list[ColumnElement[bool]] = [
        o.patient_pk.in_(select(k.patient_pk).where(k.name_key >= word, k.name_key < word + PREFIX_END))
        for word in words(c.name)
    ]
    if c.patient_id:
        found.append(p.patient_id == c.patient_id)
    if c.accession_number:
        found.append(o.accession_number == c.accession_number)
    step_rules: list[ColumnElement[bool]] = []
    if c.station_ae:
        step_rules.append(s.station_ae == c.station_ae)
    if c.first_day:
        step_rules.append(s.start >= datetime.combine(c.first_day, time()))
    if c.last_day:
        step_rules.append(s.start < datetime.combine(c.last_day + timedelta(days=1), time()))
    if step_rules:
        steps = select(rp.order_pk).join(t.scheduled_steps, s.procedure_pk == rp.id).where(and_(*step_rules))
        found.append(o.id.in_(steps))
    return found


def search(engine: Engine, criteria: Criteria, limit: int = 100) -> list[OrderHit]:
    """Orders matching every given criterion, newest first, with their steps."""
    o, p = t.orders.c, t.patients.c
    stmt = (
        select(o.id, o.accession_number, o.placer_order_number, o.cancelled, o.discontinued, p.patient_id,
               p.name_alphabetic, p.name_ideographic, p.name_phonetic, p.birth_date)
        .join(t.patients, o.patient_pk == p.id)
        .where(*_conditions(criteria))
        .order_by(o.id.desc())
        .limit(limit)
    )  # fmt: skip
    with _reading(engine) as conn:
        rows = conn.execute(stmt).all()
        steps = _steps(conn, [r.id for r in rows])
    return [
        OrderHit(r.id, r.accession_number, r.placer_order_number, r.patient_id,
                 PersonName(r.name_alphabetic, r.name_ideographic, r.name_phonetic), r.birth_date,
                 r.cancelled, r.discontinued, tuple(steps.get(r.id, ())))
        for r in rows
    ]  # fmt: skip


def _steps(conn: Any, order_pks: list[int]) -> dict[int, list[StepLine]]:
    s, rp = t.scheduled_steps.c, t.requested_procedures.c
    stmt = (
        select(rp.order_pk, s.sps_id, s.station_ae, s.modality, s.start, s.description, s.status)
        .join(t.requested_procedures, s.procedure_pk == rp.id)
        .where(rp.order_pk.in_(order_pks))
        .order_by(s.start, s.id)
    )
    found: dict[int, list[StepLine]] = {}
    for r in conn.execute(stmt):
        line = StepLine(r.sps_id, r.station_ae, r.modality, r.start, r.description, r.status.value)
        found.setdefault(r.order_pk, []).append(line)
    return found


@dataclass(frozen=True)
class PerformedLine:
    sop_instance_uid: str
    status: str
    performed_station_ae: str
    created_at: datetime | None
    linked_sps_ids: tuple[str, ...]
    #: The MPPS's attributes as received, DICOM JSON (PS3.18 F.2).
    attributes: dict[str, Any]


@dataclass(frozen=True)
class InboundLine(LoggedMessage):
    """A logged message with its error text and the message itself (the order page)."""

    error: str
    raw: bytes


@dataclass(frozen=True)
class OutboundLine:
    id: int
    destination: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str
    answer_code: str
    answer_text: str
    answer_error: str
    payload: bytes


@dataclass(frozen=True)
class OrderRecord:
    """An order with everything that happened to it."""

    order: Order
    performed: list[PerformedLine]
    inbound: list[InboundLine]


def order_record(engine: Engine, order_pk: int) -> OrderRecord | None:
    with _reading(engine) as conn, Session(bind=conn) as session:
        order = session.get(StoredOrder, order_pk)
        if order is None:
            return None
        session.expunge_all()
        performed = _performed(conn, order_pk)
        inbound = _inbound(conn, order.placer_application, order.placer_order_number)
    return OrderRecord(order, performed, inbound)


def _performed(conn: Any, order_pk: int) -> list[PerformedLine]:
    s, rp, links, pps = t.scheduled_steps.c, t.requested_procedures.c, t.performed_step_links.c, t.performed_steps.c
    stmt = (
        select(pps.id, pps.sop_instance_uid, pps.status, pps.performed_station_ae, pps.created_at, pps.attributes,
               s.sps_id)
        .join(t.performed_step_links, links.performed_pk == pps.id)
        .join(t.scheduled_steps, s.id == links.step_pk)
        .join(t.requested_procedures, s.procedure_pk == rp.id)
        .where(rp.order_pk == order_pk)
        .order_by(pps.id, s.id)
    )  # fmt: skip
    rows = conn.execute(stmt).all()
    sps: dict[int, list[str]] = {}
    for r in rows:
        sps.setdefault(r.id, []).append(r.sps_id)
    first = {r.id: r for r in reversed(rows)}
    return [
        PerformedLine(r.sop_instance_uid, r.status.value, r.performed_station_ae, r.created_at, tuple(sps[pk]),
                      json.loads(r.attributes))
        for pk, r in sorted(first.items())
    ]  # fmt: skip


def _inbound(conn: Any, placer_application: str, placer_order_number: str) -> list[InboundLine]:
    m, links = t.inbound_messages.c, t.inbound_message_orders.c
    stmt = (
        select(m.id, m.received_at, m.sender, m.control_id, m.message_type, m.answer, m.error_code,
               m.error_location, m.error, m.raw)
        .where(exists().where(links.message_pk == m.id, links.placer_application == placer_application,
                              links.placer_order_number == placer_order_number))
        .order_by(m.id)
    )  # fmt: skip
    return [InboundLine(*r) for r in conn.execute(stmt)]


def outbound(engine: Engine, ordering_key: str) -> list[OutboundLine]:
    """Every message written for one order (RAD-3 status, RAD-4/13 to Image
    Managers), oldest first, with its delivery attempts and the destination's answer."""
    o = t.outbox.c
    stmt = select(
        o.id, o.destination, o.state, o.attempts, o.created_at, o.next_attempt_at, o.sent_at, o.last_error,
        o.answer_code, o.answer_text, o.answer_error, o.payload,
    ).where(o.ordering_key == ordering_key).order_by(o.id)  # fmt: skip
    with _reading(engine) as conn:
        return [OutboundLine(*r) for r in conn.execute(stmt)]
