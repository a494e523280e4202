"""In-memory fakes of the domain's store ports (broker/domain/ports.py): the rules of
the actors and the domain, tested without sockets or a database.

A unit of work copies the committed state on entry and puts its copy back on commit,
so a rollback (or leaving without commit) discards everything, as a transaction does;
inside one unit of work, an object is the same object however it is found, as in an
ORM session.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from broker.domain.model import Order, Patient, PerformedStep, ScheduledStep, StepReference
from broker.domain.ports import InboundRecord, OutboundMessage


@dataclass
class State:
    patients: list[Patient] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    performed: list[PerformedStep] = field(default_factory=list)
    inbound: dict[tuple[str, str], InboundRecord] = field(default_factory=dict)
    outbox: list[OutboundMessage] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)


class FakePatients:
    def __init__(self, state: State) -> None:
        self._state = state

    def get(self, patient_id: str, issuer: str) -> Patient | None:
        return next((p for p in self._state.patients if (p.patient_id, p.issuer) == (patient_id, issuer)), None)

    def add(self, patient: Patient) -> Patient:
        self._state.patients.append(patient)
        return patient

    def remove(self, patient: Patient) -> None:
        self._state.patients.remove(patient)

    def held(self, patient_id: str, issuer: str) -> Patient | None:
        found = self.get(patient_id, issuer)
        return copy.copy(found) if found else None

    def insert(self, patient: Patient) -> None:
        self.add(copy.copy(patient))

    def store(self, patient: Patient) -> None:
        found = self.get(patient.patient_id, patient.issuer)
        assert found is not None
        found.name, found.birth_date, found.sex = patient.name, patient.birth_date, patient.sex


class FakeOrders:
    def __init__(self, state: State) -> None:
        self._state = state

    def by_placer_number(self, placer_order_number: str, placer_application: str) -> Order | None:
        key = (placer_order_number, placer_application)
        return next((o for o in self._state.orders if (o.placer_order_number, o.placer_application) == key), None)

    def own_by_filler_number(self, filler_order_number: str, own_application: str) -> Order | None:
        return self.by_placer_number(filler_order_number, own_application)

    def by_assigned_placer_number(self, placer_order_number: str, placer_application: str) -> Order | None:
        key = (placer_order_number, placer_application)
        orders = self._state.orders if placer_order_number else []
        return next((o for o in orders if (o.assigned_placer_number, o.assigned_placer_application) == key), None)

    def add(self, order: Order) -> Order:
        self._state.orders.append(order)
        return order

    def placed(self, placer_order_number: str, placer_application: str) -> bool:
        return self.by_placer_number(placer_order_number, placer_application) is not None

    def accession_held(self, accession_number: str) -> bool:
        return bool(self.active_by_accession(accession_number))

    def study_held(self, study_instance_uid: str) -> bool:
        return bool(self.active_with_study(study_instance_uid))

    def insert(self, order: Order) -> None:
        """As the store does: the order refers to the stored patient record."""
        stored = FakePatients(self._state).get(order.patient.patient_id, order.patient.issuer)
        assert stored is not None
        order.patient = stored
        self.add(order)

    def with_step(self, ref: StepReference) -> list[Order]:
        return [
            o
            for o in self._state.orders
            if (not ref.accession_number or o.accession_number == ref.accession_number)
            and any(
                s.sps_id == ref.sps_id
                for rp in o.procedures
                if not ref.requested_procedure_id or rp.requested_procedure_id == ref.requested_procedure_id
                for s in rp.steps
            )
        ]

    def of_step(self, step: ScheduledStep) -> Order:
        return next(o for o in self._state.orders if any(s is step for s in o.steps()))

    def active_by_accession(self, accession_number: str) -> list[Order]:
        return [o for o in self._state.orders if o.active and o.accession_number == accession_number]

    def active_with_study(self, study_instance_uid: str) -> list[Order]:
        return [
            o
            for o in self._state.orders
            if o.active and any(rp.study_instance_uid == study_instance_uid for rp in o.procedures)
        ]

    def active_for_patient_id(self, patient_id: str) -> list[Order]:
        return [o for o in self._state.orders if o.active and o.patient.patient_id == patient_id]

    def for_patient(self, patient: Patient) -> list[Order]:
        return [o for o in self._state.orders if o.patient is patient]


class FakePerformed:
    def __init__(self, state: State) -> None:
        self._state = state

    def get(self, sop_instance_uid: str) -> PerformedStep | None:
        return next((p for p in self._state.performed if p.sop_instance_uid == sop_instance_uid), None)

    def add(self, pps: PerformedStep) -> PerformedStep:
        self._state.performed.append(pps)
        return pps


class FakeInbound:
    def __init__(self, state: State) -> None:
        self._state = state

    def get(self, sender: str, control_id: str) -> InboundRecord | None:
        return self._state.inbound.get((sender, control_id))

    def add(self, record: InboundRecord) -> None:
        self._state.inbound[(record.sender, record.control_id)] = record

    def update(self, record: InboundRecord) -> None:
        self.add(record)


class FakeOutbox:
    def __init__(self, state: State) -> None:
        self._state = state

    def add(self, messages: Sequence[OutboundMessage]) -> None:
        self._state.outbox.extend(messages)


class FakeSequences:
    def __init__(self, state: State) -> None:
        self._state = state

    def next(self, name: str) -> int:
        self._state.sequences[name] = self._state.sequences.get(name, 0) + 1
        return self._state.sequences[name]


class FakeUnitOfWork:
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    def __enter__(self) -> FakeUnitOfWork:
        self._begin()
        return self

    def _begin(self) -> None:
        self._work = copy.deepcopy(self._store.committed)
        self.patients = FakePatients(self._work)
        self.orders = FakeOrders(self._work)
        self.performed = FakePerformed(self._work)
        self.inbound = FakeInbound(self._work)
        self.outbox = FakeOutbox(self._work)
        self.sequences = FakeSequences(self._work)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        del self._work

    def commit(self) -> None:
        self._store.committed = self._work
        self._begin()

    def rollback(self) -> None:
        self._begin()


class FakeStore:
    """The committed state, and the unit-of-work factory over it."""

    def __init__(self) -> None:
        self.committed = State()

    def __call__(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def reading(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def sent(self, destination: str) -> list[bytes]:
        """The committed outbox messages for `destination`, in order."""
        return [m.payload for m in self.committed.outbox if m.destination == destination]
