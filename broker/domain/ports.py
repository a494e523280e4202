"""What the domain needs from the outside, as Protocols the adapters implement.

A unit of work is one database transaction: everything an HL7 message or a DIMSE
request changes, including the outbound messages it causes, commits together or not
at all. That is what lets the broker ACK only after a durable commit and never lose a
status message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Literal, Protocol, TypeVar

from broker.domain.audit import AuditEvent
from broker.domain.model import (
    Order,
    Patient,
    PerformedStep,
    ScheduledStep,
    StatusChange,
    StepReference,
)
from broker.domain.worklist import WorklistEntry, WorklistQuery

T = TypeVar("T")


@dataclass(frozen=True)
class OutboundMessage:
    """A message for a peer; `ordering_key` keeps one order's messages in sequence."""

    destination: str
    ordering_key: str
    payload: bytes


@dataclass(frozen=True)
class InboundRecord:
    """An inbound message as received, with the answer it got.

    `sender` + `control_id` identify it (MSH-3/4 and MSH-10); `answer` is the
    acknowledgement code (AA, AE, AR) and the error fields the refusal, if any, as the
    HL7 ERR segment gives it (table 0357 code, field location, text).
    """

    sender: str
    control_id: str
    message_type: str
    raw: bytes
    answer: str = "AA"
    error_code: str = ""
    error_location: str = ""
    error: str = ""
    #: (placer application, placer order number) of each order the message applied to.
    orders: tuple[tuple[str, str], ...] = ()


class Patients(Protocol):
    def get(self, patient_id: str, issuer: str) -> Patient | None: ...
    def add(self, patient: Patient) -> Patient:
        """The patient as now stored: the object to change further (a store may keep
        a copy of what it was given)."""
        ...

    def remove(self, patient: Patient) -> None: ...
    def held(self, patient_id: str, issuer: str) -> Patient | None:
        """The stored demographics as a value: changing it changes nothing stored
        (`store` does). The intake's fast path; `get` gives the tracked record."""
        ...

    def insert(self, patient: Patient) -> None: ...
    def store(self, patient: Patient) -> None:
        """Write the demographics of the stored patient with `patient`'s identifiers."""
        ...


class Orders(Protocol):
    def by_placer_number(self, placer_order_number: str, placer_application: str) -> Order | None: ...
    def own_by_filler_number(self, filler_order_number: str, own_application: str) -> Order | None:
        """The order made at the broker (placed by `own_application`, its placer number
        its filler number) that has this filler order number."""
        ...

    def by_assigned_placer_number(self, placer_order_number: str, placer_application: str) -> Order | None:
        """The order made at the broker to which the Order Placer gave this number;
        None for an empty number."""
        ...

    def add(self, order: Order) -> Order:
        """The order as now stored: the object to change further."""
        ...

    def placed(self, placer_order_number: str, placer_application: str) -> bool:
        """Whether an order with this placer number exists (an index probe)."""
        ...

    def accession_held(self, accession_number: str) -> bool:
        """Whether an active order carries this accession number."""
        ...

    def study_held(self, study_instance_uid: str) -> bool:
        """Whether an active order has a requested procedure with this Study Instance UID."""
        ...

    def insert(self, order: Order) -> None:
        """Store a new order (its patient stored already) and its procedures and steps."""
        ...

    def with_step(self, ref: StepReference) -> list[Order]:
        """Every order holding a step with the reference's SPS ID (narrowed by its
        Requested Procedure ID and accession number when given)."""
        ...

    def of_step(self, step: ScheduledStep) -> Order: ...
    def active_by_accession(self, accession_number: str) -> list[Order]:
        """The orders not cancelled nor discontinued that carry this accession number
        (one, once the Order Filler's rule holds; more only in data older than it)."""
        ...

    def active_with_study(self, study_instance_uid: str) -> list[Order]:
        """The active orders with a requested procedure of this Study Instance UID."""
        ...

    def active_for_patient_id(self, patient_id: str) -> list[Order]:
        """The active orders of every patient with this ID, whatever the issuer."""
        ...

    def for_patient(self, patient: Patient) -> list[Order]: ...


class PerformedSteps(Protocol):
    def get(self, sop_instance_uid: str) -> PerformedStep | None: ...
    def add(self, pps: PerformedStep) -> PerformedStep:
        """The MPPS as now stored: the object to change further."""
        ...


class Inbound(Protocol):
    def get(self, sender: str, control_id: str) -> InboundRecord | None: ...
    def add(self, record: InboundRecord) -> None: ...
    def update(self, record: InboundRecord) -> None: ...


class Outbox(Protocol):
    def add(self, messages: Sequence[OutboundMessage]) -> None: ...


class Sequences(Protocol):
    def next(self, name: str) -> int: ...


class UnitOfWork(Protocol):
    # Read-only properties, so an implementation may hold more specific repositories.
    @property
    def patients(self) -> Patients: ...
    @property
    def orders(self) -> Orders: ...
    @property
    def performed(self) -> PerformedSteps: ...
    @property
    def inbound(self) -> Inbound: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def sequences(self) -> Sequences: ...

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...

    def reading(self) -> UnitOfWork:
        """A unit of work for reading alone: it never waits for a writer (and may not
        commit changes)."""
        ...


class Transactions(Protocol):
    """Runs a piece of work in a transaction and returns its result once that
    transaction has committed (the HL7 ACK waits for this).

    An implementation may run several pieces of work in one transaction (group commit):
    then `rollback` inside one undoes that work's changes only and `commit` is left to
    the implementation; and it may run a piece again on a fresh transaction when the
    shared one fails, so work must not carry state from one run to the next. An
    exception from the work, or from the commit, reaches its caller only.
    """

    def __call__(self, work: Callable[[UnitOfWork], T]) -> T: ...


class OwnTransactions:
    """Each piece of work in a transaction of its own (no grouping)."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def __call__(self, work: Callable[[UnitOfWork], T]) -> T:
        with self._uow() as uow:
            result = work(uow)
            uow.commit()
            return result


class WorklistReader(Protocol):
    def find(self, query: WorklistQuery, limit: int, offset: int | None = None) -> list[WorklistEntry]:
        """At most `limit` matches. `offset` None: in scheduled start order (C-FIND);
        a number: that many matches skipped, in the order the steps were made, so that
        pages stay put while new orders arrive (DICOMweb offset/limit)."""
        ...

    def around(self, query: WorklistQuery, limit: int) -> list[WorklistEntry]:
        """At most `limit` steps in the query's period, whatever their status or other
        keys: the candidates an explanation goes through."""
        ...


class ProcedureNotifier(Protocol):
    """Renders an order's scheduling event (NW, XO, CA, DC) for the Image Managers
    (RAD-4 Procedure Scheduled, RAD-13 Procedure Update)."""

    def messages_for(self, order: Order, control: str, at: datetime) -> list[OutboundMessage]: ...


#: What the broker itself did to an order (its console and API), which the RIS must hear.
FillerEvent = Literal["new", "change", "cancel"]


class FillerOrderNotifier(Protocol):
    """Renders an order the broker created, changed or cancelled for the Order Placer
    (RAD-3 Filler Order Management: ORC-1 SN, XO, OC); none when no RIS is configured."""

    def messages_for(self, order: Order, event: FillerEvent, at: datetime) -> list[OutboundMessage]: ...


class MppsForwarder(Protocol):
    """The MPPS operations a PPS Manager passes on to other SCPs (e.g. Image Managers)."""

    def messages_for(self, operation: str, sop_instance_uid: str, dataset_json: str) -> list[OutboundMessage]: ...


class StatusNotifier(Protocol):
    """Renders a procedure status change as the messages peers must receive (RAD-3)."""

    def messages_for(self, change: StatusChange) -> list[OutboundMessage]: ...


@dataclass(frozen=True)
class Refusal:
    """How a refused inbound message is answered and kept: the acknowledgement code
    (AE, AR) and the error as HL7's ERR gives it (table 0357 code, field, text)."""

    ack: str
    code: str
    location: str
    text: str


class RefusalRule(Protocol):
    """The wire answer of an exception raised while applying a message. It belongs to
    the protocol adapter: the actor only records what the adapter says."""

    def __call__(self, exc: Exception) -> Refusal: ...


class AuditTrail(Protocol):
    """Renders an audited event as the messages the audit repository must receive
    (IHE ATNA). Record events (patient, order, procedure) are written with the change
    they record, in its unit of work: no change without its audit message, and back."""

    def messages_for(self, event: AuditEvent) -> list[OutboundMessage]: ...


class AuditLog(Protocol):
    """Keeps an event that changes no record (a query, an alert, start/stop) durably,
    apart from any change (a query may be queued and written a moment later, with
    others: see broker/audit/trail.py). Never raises: auditing must not break the service."""

    def record(self, event: AuditEvent) -> None: ...
