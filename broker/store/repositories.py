"""Repositories over one SQLAlchemy session: the domain's ports, in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from broker.domain.model import (
    Order,
    Patient,
    PerformedStep,
    ScheduledStep,
    StepReference,
)
from broker.domain.ports import InboundRecord, OutboundMessage
from broker.store import tables as t


class PatientRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, patient_id: str, issuer: str) -> Patient | None:
        stmt = select(Patient).where(t.patients.c.patient_id == patient_id, t.patients.c.issuer == issuer)
        return self._session.scalars(stmt).first()

    def add(self, patient: Patient) -> None:
        self._session.add(patient)

    def remove(self, patient: Patient) -> None:
        self._session.flush()  # orders moved away first, so no row still refers to it
        self._session.delete(patient)


class OrderRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def by_placer_number(self, placer_order_number: str, placer_application: str) -> Order | None:
        stmt = select(Order).where(
            t.orders.c.placer_order_number == placer_order_number,
            t.orders.c.placer_application == placer_application,
        )
        return self._session.scalars(stmt).first()

    def add(self, order: Order) -> None:
        self._session.add(order)

    def with_step(self, ref: StepReference) -> list[Order]:
        """The orders holding the step a modality names (SPS ID, narrowed by the others)."""
        stmt = (
            select(Order)
            .join(t.requested_procedures, t.requested_procedures.c.order_pk == t.orders.c.id)
            .join(t.scheduled_steps, t.scheduled_steps.c.procedure_pk == t.requested_procedures.c.id)
            .where(t.scheduled_steps.c.sps_id == ref.sps_id)
            .order_by(t.orders.c.id)
        )
        if ref.requested_procedure_id:
            stmt = stmt.where(t.requested_procedures.c.requested_procedure_id == ref.requested_procedure_id)
        if ref.accession_number:
            stmt = stmt.where(t.orders.c.accession_number == ref.accession_number)
        return list(self._session.scalars(stmt).unique())

    @staticmethod
    def _active(stmt: Select[Order]) -> Select[Order]:
        return stmt.where(t.orders.c.cancelled.is_(False), t.orders.c.discontinued.is_(False)).order_by(t.orders.c.id)

    def active_by_accession(self, accession_number: str) -> list[Order]:
        stmt = select(Order).where(t.orders.c.accession_number == accession_number)
        return list(self._session.scalars(self._active(stmt)).unique())

    def active_with_study(self, study_instance_uid: str) -> list[Order]:
        rp = t.requested_procedures.c
        stmt = select(Order).join(t.requested_procedures, rp.order_pk == t.orders.c.id)
        return list(
            self._session.scalars(self._active(stmt.where(rp.study_instance_uid == study_instance_uid))).unique()
        )

    def active_for_patient_id(self, patient_id: str) -> list[Order]:
        p = t.patients.c
        stmt = select(Order).join(t.patients, t.orders.c.patient_pk == p.id).where(p.patient_id == patient_id)
        return list(self._session.scalars(self._active(stmt)).unique())

    def for_patient(self, patient: Patient) -> list[Order]:
        p = t.patients.c
        patient_pk = select(p.id).where(p.patient_id == patient.patient_id, p.issuer == patient.issuer)
        return list(self._session.scalars(select(Order).where(t.orders.c.patient_pk == patient_pk.scalar_subquery())))

    def of_step(self, step: ScheduledStep) -> Order:
        stmt = (
            select(Order)
            .join(t.requested_procedures, t.requested_procedures.c.order_pk == t.orders.c.id)
            .join(t.scheduled_steps, t.scheduled_steps.c.procedure_pk == t.requested_procedures.c.id)
            .where(t.scheduled_steps.c.id == step._id)  # type: ignore[attr-defined]
        )
        return self._session.scalars(stmt).one()


class PerformedStepRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, sop_instance_uid: str) -> PerformedStep | None:
        stmt = select(PerformedStep).where(t.performed_steps.c.sop_instance_uid == sop_instance_uid)
        return self._session.scalars(stmt).first()

    def add(self, pps: PerformedStep) -> None:
        self._session.add(pps)


class InboundRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, sender: str, control_id: str) -> InboundRecord | None:
        row = self._session.execute(
            select(t.inbound_messages).where(
                t.inbound_messages.c.sender == sender, t.inbound_messages.c.control_id == control_id
            )
        ).first()
        if row is None:
            return None
        return InboundRecord(
            row.sender,
            row.control_id,
            row.message_type,
            row.raw,
            row.answer,
            row.error_code,
            row.error_location,
            row.error,
        )

    def add(self, record: InboundRecord) -> None:
        message_pk = self._session.scalar(
            t.inbound_messages.insert()
            .returning(t.inbound_messages.c.id)
            .values(
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
        )
        self._link(message_pk, record.orders)

    def update(self, record: InboundRecord) -> None:
        """A replay's (or a resend's, after a storage failure) new answer for a stored message."""
        m = t.inbound_messages
        self._session.execute(
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
        if record.orders:
            message_pk = self._session.scalars(
                select(m.c.id).where(m.c.sender == record.sender, m.c.control_id == record.control_id)
            ).one()
            self._link(message_pk, record.orders)

    def _link(self, message_pk: int | None, orders: Sequence[tuple[str, str]]) -> None:
        """The message in each of its orders' HL7 history (the order's page)."""
        rows = [{"message_pk": message_pk, "placer_application": a, "placer_order_number": n} for a, n in set(orders)]
        if rows and message_pk is not None:
            self._session.execute(t.inbound_message_orders.insert(), rows)


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, messages: Sequence[OutboundMessage]) -> None:
        now = datetime.now()
        for message in messages:
            self._session.execute(
                t.outbox.insert().values(
                    destination=message.destination,
                    ordering_key=message.ordering_key,
                    payload=message.payload,
                    state="pending",
                    attempts=0,
                    created_at=now,
                    next_attempt_at=now,
                )
            )


class SequenceRepository:
    """Counters for identifiers the broker assigns (accession, RP ID, SPS ID)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def next(self, name: str) -> int:
        dialect = self._session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        self._session.execute(
            insert(t.sequences).values(name=name, value=0).on_conflict_do_nothing(index_elements=["name"])
        )
        return int(
            self._session.execute(
                update(t.sequences)
                .where(t.sequences.c.name == name)
                .values(value=t.sequences.c.value + 1)
                .returning(t.sequences.c.value)
            ).scalar_one()
        )
