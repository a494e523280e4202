"""Repositories over one unit of work's link (store/link.py): the domain's ports, in SQL.

The HL7 intake path (duplicate probe, new orders, patient registration and update) is
written in SQLAlchemy Core, compiled once per dialect and run on the driver's cursor:
at feed speed the ORM's flush and SQLAlchemy's execution path cost more than the SQL
itself. A statement on the cursor writes the session's pending changes first, and one
that changes rows drops the session's copies, so an ORM read later in the same
transaction (a change, a merge) loads the rows as they now are, never a stale copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, Table, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from broker.domain.model import (
    Order,
    Patient,
    PerformedStep,
    PersonName,
    RequestedProcedure,
    ScheduledStep,
    StepReference,
)
from broker.domain.ports import InboundRecord, OutboundMessage
from broker.store import tables as t
from broker.store.link import Link, Statement
from broker.store.records import StoredOrder, StoredPatient, StoredPerformedStep, stored


def _insert(table: Table, *columns: str, **values: Any) -> Any:
    """An INSERT of `columns`, each from the parameter of its name, and of `values`."""
    return table.insert().values({**{name: bindparam(name) for name in columns}, **values})


_p, _o, _rp, _m = t.patients.c, t.orders.c, t.requested_procedures.c, t.inbound_messages.c
_DEMOGRAPHICS = ("name_alphabetic", "name_ideographic", "name_phonetic", "birth_date", "sex")
_PATIENT = Statement(
    select(_p.name_alphabetic, _p.name_ideographic, _p.name_phonetic, _p.birth_date, _p.sex).where(
        _p.patient_id == bindparam("patient_id"), _p.issuer == bindparam("issuer")
    )
)
_INSERT_PATIENT = Statement(_insert(t.patients, "patient_id", "issuer", *_DEMOGRAPHICS).returning(_p.id))
_STORE_PATIENT = Statement(
    update(t.patients)
    .where(_p.patient_id == bindparam("key_id"), _p.issuer == bindparam("key_issuer"))
    .values({name: bindparam(name) for name in _DEMOGRAPHICS})
    .returning(_p.id)
)
_PLACED = Statement(
    select(_o.id).where(
        _o.placer_order_number == bindparam("placer_order_number"),
        _o.placer_application == bindparam("placer_application"),
    )
)
_ACTIVE = (_o.cancelled.is_(False), _o.discontinued.is_(False))
_ACCESSION_HELD = Statement(
    select(_o.id).where(_o.accession_number == bindparam("accession_number"), *_ACTIVE).limit(1)
)
_STUDY_HELD = Statement(
    select(_o.id)
    .select_from(t.requested_procedures.join(t.orders, _rp.order_pk == _o.id))
    .where(_rp.study_instance_uid == bindparam("study_instance_uid"), *_ACTIVE)
    .limit(1)
)
_ORDER_COLUMNS = (
    "placer_order_number", "placer_application", "filler_order_number", "accession_number", "referring_physician",
    "cancelled", "discontinued", "admission_id", "requesting_physician", "requesting_service", "placer_facility",
    "assigned_placer_number", "assigned_placer_application",
)  # fmt: skip
_PROCEDURE_COLUMNS = ("requested_procedure_id", "study_instance_uid", "description", "code", "priority")
_STEP_COLUMNS = (
    "sps_id", "modality", "station_ae", "station_name", "start", "description", "protocol_codes",
    "performing_physician", "location", "status",
)  # fmt: skip
_INSERT_ORDER = Statement(
    _insert(
        t.orders,
        *_ORDER_COLUMNS,
        patient_pk=select(_p.id)
        .where(_p.patient_id == bindparam("patient_id"), _p.issuer == bindparam("issuer"))
        .scalar_subquery(),
    ).returning(_o.id)
)
_INSERT_PROCEDURE = Statement(_insert(t.requested_procedures, "order_pk", *_PROCEDURE_COLUMNS).returning(_rp.id))
_INSERT_STEP = Statement(_insert(t.scheduled_steps, "procedure_pk", *_STEP_COLUMNS))
_INBOUND = Statement(
    select(
        _m.sender, _m.control_id, _m.message_type, _m.raw, _m.answer, _m.error_code, _m.error_location, _m.error
    ).where(_m.sender == bindparam("sender"), _m.control_id == bindparam("control_id"))
)
_INSERT_INBOUND = Statement(
    _insert(
        t.inbound_messages, "sender", "control_id", "message_type", "received_at", "raw", "answer", "error_code",
        "error_location", "error",
    ).returning(_m.id)
)  # fmt: skip
_LINK_INBOUND = Statement(_insert(t.inbound_message_orders, "message_pk", "placer_application", "placer_order_number"))
_INSERT_OUTBOX = Statement(
    _insert(
        t.outbox, "destination", "ordering_key", "payload", "state", "attempts", "created_at", "next_attempt_at",
        "last_error", "answer_code", "answer_text", "answer_error",
    )
)  # fmt: skip
_NAME_KEYS = t.patient_name_keys
_DROP_NAME_KEYS = Statement(delete(_NAME_KEYS).where(_NAME_KEYS.c.patient_pk == bindparam("patient_pk")))
_ADD_NAME_KEYS = Statement(_insert(_NAME_KEYS, "patient_pk", "name_key"))


def _name_keys(link: Link, patient_pk: int, name: PersonName, *, new: bool = False) -> None:
    """The patient's search keys (tables.name_key_rows) after a Core write of its name:
    the ORM's mapper events do not see the cursor."""
    if not new:
        link.run(_DROP_NAME_KEYS, {"patient_pk": patient_pk})
    rows = t.name_key_rows(patient_pk, name)
    if rows:
        link.run_many(_ADD_NAME_KEYS, rows)


E = TypeVar("E")


def _added(link: Link, entity: E) -> E:
    """The stored record of `entity` (store/records.py), added to the session: the one
    to change further."""
    record = stored(entity)
    link.session.add(record)
    return record


def _demographics(patient: Patient) -> dict[str, str]:
    return {
        "name_alphabetic": patient.name.alphabetic,
        "name_ideographic": patient.name.ideographic,
        "name_phonetic": patient.name.phonetic,
        "birth_date": patient.birth_date,
        "sex": patient.sex,
    }


class PatientRepository:
    def __init__(self, link: Link) -> None:
        self._link = link

    def held(self, patient_id: str, issuer: str) -> Patient | None:
        """The stored patient as a plain value (Core; not tracked by the session)."""
        row = self._link.first(_PATIENT, {"patient_id": patient_id, "issuer": issuer})
        if row is None:
            return None
        alphabetic, ideographic, phonetic, birth_date, sex = row
        return Patient(patient_id, issuer, PersonName(alphabetic, ideographic, phonetic), birth_date, sex)

    def insert(self, patient: Patient) -> None:
        """A new patient and its name's search keys."""
        params = {"patient_id": patient.patient_id, "issuer": patient.issuer, **_demographics(patient)}
        _name_keys(self._link, self._link.scalar(_INSERT_PATIENT, params), patient.name, new=True)

    def store(self, patient: Patient) -> None:
        """Write `patient`'s demographics, and its name's search keys, over the stored
        record of the same identifiers."""
        params = {"key_id": patient.patient_id, "key_issuer": patient.issuer, **_demographics(patient)}
        _name_keys(self._link, self._link.scalar(_STORE_PATIENT, params), patient.name)
        self._link.forget()

    def get(self, patient_id: str, issuer: str) -> Patient | None:
        stmt = select(StoredPatient).where(t.patients.c.patient_id == patient_id, t.patients.c.issuer == issuer)
        return self._link.session.scalars(stmt).first()

    def add(self, patient: Patient) -> Patient:
        return _added(self._link, patient)

    def remove(self, patient: Patient) -> None:
        session = self._link.session
        session.flush()  # orders moved away first, so no row still refers to it
        session.delete(patient)


class OrderRepository:
    def __init__(self, link: Link) -> None:
        self._link = link

    def by_placer_number(self, placer_order_number: str, placer_application: str) -> Order | None:
        stmt = select(StoredOrder).where(
            t.orders.c.placer_order_number == placer_order_number,
            t.orders.c.placer_application == placer_application,
        )
        return self._link.session.scalars(stmt).first()

    def own_by_filler_number(self, filler_order_number: str, own_application: str) -> Order | None:
        stmt = select(StoredOrder).where(
            t.orders.c.placer_order_number == filler_order_number,
            t.orders.c.placer_application == own_application,
            t.orders.c.filler_order_number == filler_order_number,
        )
        return self._link.session.scalars(stmt).first()

    def by_assigned_placer_number(self, placer_order_number: str, placer_application: str) -> Order | None:
        if not placer_order_number:  # every order not (yet) numbered by the placer has ""
            return None
        stmt = select(StoredOrder).where(
            t.orders.c.assigned_placer_number == placer_order_number,
            t.orders.c.assigned_placer_application == placer_application,
            t.ASSIGNED_NUMBERED,  # lets the planner use the partial index
        )
        return self._link.session.scalars(stmt.order_by(t.orders.c.id.desc())).first()

    def add(self, order: Order) -> Order:
        return _added(self._link, order)

    def placed(self, placer_order_number: str, placer_application: str) -> bool:
        params = {"placer_order_number": placer_order_number, "placer_application": placer_application}
        return self._link.first(_PLACED, params) is not None

    def accession_held(self, accession_number: str) -> bool:
        return self._link.first(_ACCESSION_HELD, {"accession_number": accession_number}) is not None

    def study_held(self, study_instance_uid: str) -> bool:
        return self._link.first(_STUDY_HELD, {"study_instance_uid": study_instance_uid}) is not None

    def insert(self, order: Order) -> None:
        """A new order with its procedures and steps, for its stored patient (Core)."""
        order_pk = self._link.scalar(_INSERT_ORDER, _order_row(order))
        steps: list[dict[str, Any]] = []
        for procedure in order.procedures:
            procedure_pk = self._link.scalar(_INSERT_PROCEDURE, _procedure_row(procedure, order_pk))
            steps += (_step_row(step, procedure_pk) for step in procedure.steps)
        if steps:
            self._link.run_many(_INSERT_STEP, steps)
        self._link.forget()

    def with_step(self, ref: StepReference) -> list[Order]:
        """The orders holding the step a modality names (SPS ID, narrowed by the others)."""
        stmt = (
            select(StoredOrder)
            .join(t.requested_procedures, t.requested_procedures.c.order_pk == t.orders.c.id)
            .join(t.scheduled_steps, t.scheduled_steps.c.procedure_pk == t.requested_procedures.c.id)
            .where(t.scheduled_steps.c.sps_id == ref.sps_id)
            .order_by(t.orders.c.id)
        )
        if ref.requested_procedure_id:
            stmt = stmt.where(t.requested_procedures.c.requested_procedure_id == ref.requested_procedure_id)
        if ref.accession_number:
            stmt = stmt.where(t.orders.c.accession_number == ref.accession_number)
        return list(self._link.session.scalars(stmt).unique())

    @staticmethod
    def _active(stmt: Select[Order]) -> Select[Order]:
        return stmt.where(t.orders.c.cancelled.is_(False), t.orders.c.discontinued.is_(False)).order_by(t.orders.c.id)

    def active_by_accession(self, accession_number: str) -> list[Order]:
        stmt = select(StoredOrder).where(t.orders.c.accession_number == accession_number)
        return list(self._link.session.scalars(self._active(stmt)).unique())

    def active_with_study(self, study_instance_uid: str) -> list[Order]:
        rp = t.requested_procedures.c
        stmt = select(StoredOrder).join(t.requested_procedures, rp.order_pk == t.orders.c.id)
        return list(
            self._link.session.scalars(self._active(stmt.where(rp.study_instance_uid == study_instance_uid))).unique()
        )

    def active_for_patient_id(self, patient_id: str) -> list[Order]:
        p = t.patients.c
        stmt = select(StoredOrder).join(t.patients, t.orders.c.patient_pk == p.id).where(p.patient_id == patient_id)
        return list(self._link.session.scalars(self._active(stmt)).unique())

    def for_patient(self, patient: Patient) -> list[Order]:
        p = t.patients.c
        patient_pk = select(p.id).where(p.patient_id == patient.patient_id, p.issuer == patient.issuer)
        return list(
            self._link.session.scalars(select(StoredOrder).where(t.orders.c.patient_pk == patient_pk.scalar_subquery()))
        )

    def of_step(self, step: ScheduledStep) -> Order:
        stmt = (
            select(StoredOrder)
            .join(t.requested_procedures, t.requested_procedures.c.order_pk == t.orders.c.id)
            .join(t.scheduled_steps, t.scheduled_steps.c.procedure_pk == t.requested_procedures.c.id)
            .where(t.scheduled_steps.c.id == step._id)  # type: ignore[attr-defined]
        )
        return self._link.session.scalars(stmt).one()


def _order_row(order: Order) -> dict[str, Any]:
    return {
        "patient_id": order.patient.patient_id,
        "issuer": order.patient.issuer,
        **{name: getattr(order, name) for name in _ORDER_COLUMNS},
    }


def _procedure_row(procedure: RequestedProcedure, order_pk: int) -> dict[str, Any]:
    return {"order_pk": order_pk, **{name: getattr(procedure, name) for name in _PROCEDURE_COLUMNS}}


def _step_row(step: ScheduledStep, procedure_pk: int) -> dict[str, Any]:
    return {"procedure_pk": procedure_pk, **{name: getattr(step, name) for name in _STEP_COLUMNS}}


class PerformedStepRepository:
    def __init__(self, link: Link) -> None:
        self._link = link

    def get(self, sop_instance_uid: str) -> PerformedStep | None:
        stmt = select(StoredPerformedStep).where(t.performed_steps.c.sop_instance_uid == sop_instance_uid)
        return self._link.session.scalars(stmt).first()

    def add(self, pps: PerformedStep) -> PerformedStep:
        return _added(self._link, pps)


class InboundRepository:
    def __init__(self, link: Link) -> None:
        self._link = link

    def get(self, sender: str, control_id: str) -> InboundRecord | None:
        """One probe of the (sender, control ID) unique index: the duplicate check."""
        row = self._link.first(_INBOUND, {"sender": sender, "control_id": control_id})
        return None if row is None else InboundRecord(*row)

    def add(self, record: InboundRecord) -> None:
        values = dict(
            sender=record.sender,
            control_id=record.control_id,
            message_type=record.message_type,
            received_at=datetime.now(),
            raw=record.raw,
            answer=record.answer,
            error_code=record.error_code,
            error_location=record.error_location,
            error=record.error,
        )
        self._in_history(self._link.scalar(_INSERT_INBOUND, values), record.orders)

    def update(self, record: InboundRecord) -> None:
        """A replay's (or a resend's, after a storage failure) new answer for a stored message."""
        m = t.inbound_messages
        session = self._link.session
        session.execute(
            update(m)
            .where(m.c.sender == record.sender, m.c.control_id == record.control_id)
            .values(
                raw=record.raw,
                answer=record.answer,
                error_code=record.error_code,
                error_location=record.error_location,
                error=record.error,
            )
        )
        if record.orders:  # the refusal may have linked the same orders already
            message_pk = session.scalars(
                select(m.c.id).where(m.c.sender == record.sender, m.c.control_id == record.control_id)
            ).one()
            links = t.inbound_message_orders
            session.execute(delete(links).where(links.c.message_pk == message_pk))
            self._in_history(message_pk, record.orders)

    def _in_history(self, message_pk: int | None, orders: Sequence[tuple[str, str]]) -> None:
        """The message in each of its orders' HL7 history (the order's page)."""
        rows = [{"message_pk": message_pk, "placer_application": a, "placer_order_number": n} for a, n in set(orders)]
        if rows and message_pk is not None:
            self._link.run_many(_LINK_INBOUND, rows)


class OutboxRepository:
    def __init__(self, link: Link) -> None:
        self._link = link

    def add(self, messages: Sequence[OutboundMessage]) -> None:
        if not messages:
            return
        now = datetime.now()
        rows = [
            dict(
                destination=message.destination,
                ordering_key=message.ordering_key,
                payload=message.payload,
                state="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
                last_error="",
                answer_code="",
                answer_text="",
                answer_error="",
            )
            for message in messages
        ]
        self._link.run_many(_INSERT_OUTBOX, rows)


class SequenceRepository:
    """Counters for identifiers the broker assigns (accession, RP ID, SPS ID)."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def next(self, name: str) -> int:
        """One upsert (the first value is 1), built once per dialect: three per new order."""
        return int(self._link.scalar(_NEXT_VALUE[self._link.dialect], {"name": name}))


def _next_value(insert: Any) -> Any:
    stmt = insert(t.sequences).values(name=bindparam("name"), value=1)
    counted = stmt.on_conflict_do_update(index_elements=["name"], set_={"value": t.sequences.c.value + 1})
    return counted.returning(t.sequences.c.value)


_NEXT_VALUE = {"postgresql": Statement(_next_value(pg_insert)), "sqlite": Statement(_next_value(sqlite_insert))}
