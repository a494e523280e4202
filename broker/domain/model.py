"""Entities of IHE Scheduled Workflow: Patient → Order → Requested Procedure → Scheduled
Procedure Step, and the Performed Procedure Step a modality reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class PersonName:
    """A person name in its three DICOM component groups.

    Each group keeps the DICOM component order (family^given^middle^prefix^suffix);
    Japanese names carry kanji in `ideographic` and kana in `phonetic`.
    """

    alphabetic: str = ""
    ideographic: str = ""
    phonetic: str = ""

    def groups(self) -> tuple[str, str, str]:
        return (self.alphabetic, self.ideographic, self.phonetic)

    def __str__(self) -> str:
        return "=".join(self.groups()).rstrip("=")

    @classmethod
    def parse(cls, value: str) -> PersonName:
        """Read the DICOM `A=I=P` form."""
        parts = ([*value.split("="), "", ""])[:3]
        return cls(*parts)


@dataclass(frozen=True)
class Code:
    """A coded entry (value, coding scheme designator, meaning), e.g. a JJ1017 code."""

    value: str
    scheme: str
    meaning: str = ""


class StepStatus(enum.StrEnum):
    """Scheduled Procedure Step status (0040,0020).

    CANCELLED is the broker's own: a cancelled order's steps leave the worklist.
    """

    SCHEDULED = "SCHEDULED"
    STARTED = "STARTED"
    COMPLETED = "COMPLETED"
    DISCONTINUED = "DISCONTINUED"
    CANCELLED = "CANCELLED"


class PpsStatus(enum.StrEnum):
    """Performed Procedure Step Status (0040,0252), PS3.3 C.4.14."""

    IN_PROGRESS = "IN PROGRESS"
    COMPLETED = "COMPLETED"
    DISCONTINUED = "DISCONTINUED"


#: The demographics a message may delete (HL7 `""`): `deleted` names them, a name group
#: as `name.<group>` (e.g. `name.ideographic`) or the whole name as `name`.
DEMOGRAPHICS = ("name", "name.alphabetic", "name.ideographic", "name.phonetic", "birth_date", "sex")


@dataclass(eq=False)
class Patient:
    """A patient as the Order Filler holds it, or as a message describes it.

    In a message, an empty value means "no change" and `deleted` lists what the sender
    explicitly deleted (HL7's null `""`); the held record never carries `deleted` (it
    is not stored): `broker.domain.demographics.merged` applies it.
    """

    patient_id: str
    issuer: str = ""
    name: PersonName = field(default_factory=PersonName)
    birth_date: str = ""
    sex: str = ""
    deleted: frozenset[str] = frozenset()


@dataclass(eq=False)
class ScheduledStep:
    sps_id: str
    modality: str
    station_ae: str = ""
    station_name: str = ""
    start: datetime | None = None
    description: str = ""
    protocol_codes: list[Code] = field(default_factory=list)
    performing_physician: str = ""
    location: str = ""
    status: StepStatus = StepStatus.SCHEDULED


@dataclass(eq=False)
class RequestedProcedure:
    requested_procedure_id: str
    study_instance_uid: str
    description: str = ""
    code: Code | None = None
    priority: str = ""
    steps: list[ScheduledStep] = field(default_factory=list)


@dataclass(eq=False)
class Order:
    """An imaging service request as the Order Filler holds it."""

    placer_order_number: str
    filler_order_number: str
    accession_number: str
    patient: Patient
    placer_application: str = ""
    referring_physician: str = ""
    procedures: list[RequestedProcedure] = field(default_factory=list)
    cancelled: bool = False
    discontinued: bool = False
    admission_id: str = ""
    requesting_physician: str = ""
    requesting_service: str = ""
    #: The placer's facility as received (MSH-4 of the order): where its status goes.
    placer_facility: str = ""
    #: For an order made at the broker: the number the Order Placer gave it (ORC-2 of
    #: its NA answer to the broker's SN, RAD-3), by which it names the order from then
    #: on; empty until that answer came.
    assigned_placer_number: str = ""
    assigned_placer_application: str = ""

    def steps(self) -> list[ScheduledStep]:
        return [step for rp in self.procedures for step in rp.steps]

    @property
    def active(self) -> bool:
        """Whether the order still holds its accession number and Study Instance UIDs:
        a cancelled (CA) or discontinued (DC) order releases them for a new order."""
        return not (self.cancelled or self.discontinued)


@dataclass(frozen=True)
class StepReference:
    """What a modality quotes from the worklist in Scheduled Step Attributes Sequence."""

    sps_id: str = ""
    requested_procedure_id: str = ""
    accession_number: str = ""
    study_instance_uid: str = ""


@dataclass(eq=False)
class PerformedStep:
    """A Modality Performed Procedure Step (MPPS).

    `attributes` is the adapter's full record of the instance (opaque here): the domain
    only rules on status, on the patient it names and on links. `unlinked_reason` says
    why an MPPS that quoted scheduled steps was linked to none (an exception).
    """

    sop_instance_uid: str
    status: PpsStatus
    references: list[StepReference]
    attributes: str
    performed_station_ae: str = ""
    patient_id: str = ""
    patient_issuer: str = ""
    linked_steps: list[ScheduledStep] = field(default_factory=list)
    unlinked_reason: str = ""


@dataclass(frozen=True)
class StatusChange:
    """A procedure's progress that the RIS must learn (IHE RAD-3)."""

    order: Order
    step: ScheduledStep
    status: StepStatus
    at: datetime
    #: The MPPS that caused it: where and when the procedure was performed.
    performed: PerformedStep | None = None
