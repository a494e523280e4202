"""What the audit trail records (IHE ATNA): who did what to which record, and how it ended.

The actors describe events in these terms only; the audit adapter (broker/audit) turns
them into DICOM audit messages (PS3.15 A.5) and syslog. Keeping the description here,
free of XML, lets the record events be written in the same transaction as the change.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import assert_never

from broker.domain.commands import (
    ORDER_CONTROL,
    CancelOrder,
    CancelRegistration,
    ChangeOrder,
    Command,
    DiscontinueOrder,
    MergePatient,
    PlaceOrder,
    RegisterPatient,
    UpdatePatient,
)
from broker.domain.model import Order, Patient, PerformedStep


class Audited(enum.StrEnum):
    """The kinds of event the broker reports (each one DICOM audit message type)."""

    APPLICATION_START = "application-start"
    APPLICATION_STOP = "application-stop"
    PATIENT_RECORD = "patient-record"
    ORDER_RECORD = "order-record"
    PROCEDURE_RECORD = "procedure-record"
    QUERY = "query"
    SECURITY_ALERT = "security-alert"


class Action(enum.StrEnum):
    """EventActionCode: what was done to the record."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class Outcome(enum.IntEnum):
    """EventOutcomeIndicator."""

    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8
    MAJOR_FAILURE = 12


@dataclass(frozen=True)
class Requestor:
    """Who asked: a calling AE title or an HL7 sending application, and its address."""

    user_id: str
    address: str = ""


@dataclass(frozen=True)
class PatientRef:
    """The patient a record event concerns (the name may be unknown, e.g. a merged-away ID)."""

    patient_id: str
    issuer: str = ""
    name: str = ""

    @classmethod
    def of(cls, patient: Patient) -> PatientRef:
        return cls(patient.patient_id, patient.issuer, str(patient.name))


@dataclass(frozen=True)
class Query:
    """A query as the requestor sent it: the encoded identifier, under its SOP class."""

    sop_class_uid: str
    identifier: bytes
    transfer_syntax: str


@dataclass(frozen=True)
class AuditEvent:
    what: Audited
    action: Action
    at: datetime
    outcome: Outcome = Outcome.SUCCESS
    requestor: Requestor | None = None
    patient: PatientRef | None = None
    accession_number: str = ""
    study_uids: tuple[str, ...] = ()
    mpps_uid: str = ""
    query: Query | None = None
    #: Security alerts: the kind of refusal (e.g. "association", "hl7") and its reason.
    alert: str = ""
    detail: str = ""


#: The Order Record action of each order control code: NW creates the order, XO and DC
#: change it (a discontinued order stays on record with its performed part), CA
#: withdraws it.
ORDER_ACTION = {"NW": Action.CREATE, "XO": Action.UPDATE, "DC": Action.UPDATE, "CA": Action.DELETE}


def order_event(order: Order, control: str, at: datetime, requestor: Requestor) -> AuditEvent:
    return AuditEvent(
        Audited.ORDER_RECORD,
        ORDER_ACTION[control],
        at,
        requestor=requestor,
        patient=PatientRef.of(order.patient),
        accession_number=order.accession_number,
        study_uids=tuple(rp.study_instance_uid for rp in order.procedures if rp.study_instance_uid),
    )


def restricted_function(kind: str, detail: str, at: datetime, operator: Requestor) -> AuditEvent:
    """An operator's repair (requeue, skip, replay): a Security Alert, "Use of
    Restricted Function", naming the operator, the kind of repair and what it touched."""
    return AuditEvent(
        Audited.SECURITY_ALERT, Action.EXECUTE, at, Outcome.SUCCESS, requestor=operator, alert=kind, detail=detail
    )


def patient_event(patient: PatientRef, action: Action, at: datetime, requestor: Requestor) -> AuditEvent:
    return AuditEvent(Audited.PATIENT_RECORD, action, at, requestor=requestor, patient=patient)


def command_events(command: Command, order: Order | None, at: datetime, requestor: Requestor) -> list[AuditEvent]:
    """The Patient Record or Order Record events of one applied command. A merge (A40)
    deletes the prior record and updates the surviving one: two events, as IHE ITI-8
    audits a merge."""
    match command:
        case RegisterPatient():
            return [patient_event(PatientRef.of(command.patient), Action.CREATE, at, requestor)]
        case UpdatePatient():
            return [patient_event(PatientRef.of(command.patient), Action.UPDATE, at, requestor)]
        case MergePatient():
            prior = PatientRef(command.prior_patient_id, command.prior_issuer)
            survivor = PatientRef.of(command.survivor)
            return [
                patient_event(prior, Action.DELETE, at, requestor),
                patient_event(survivor, Action.UPDATE, at, requestor),
            ]
        case CancelRegistration():
            return [patient_event(PatientRef(command.patient_id, command.issuer), Action.DELETE, at, requestor)]
        case PlaceOrder() | ChangeOrder() | CancelOrder() | DiscontinueOrder():
            return [order_event(order, ORDER_CONTROL[type(command)], at, requestor)] if order else []
        case _:  # a new command without its audit event fails type checking here
            assert_never(command)


def procedure_event(
    pps: PerformedStep, orders: list[Order], action: Action, at: datetime, requestor: Requestor | None
) -> AuditEvent:
    """Procedure Record for an MPPS: the patient and accession of the order it serves
    (none for an unscheduled one), and the studies it names or its steps belong to."""
    steps = set(map(id, pps.linked_steps))
    studies = [rp.study_instance_uid for o in orders for rp in o.procedures if steps & set(map(id, rp.steps))]
    studies += [ref.study_instance_uid for ref in pps.references]
    return AuditEvent(
        Audited.PROCEDURE_RECORD,
        action,
        at,
        requestor=requestor,
        patient=PatientRef.of(orders[0].patient) if orders else None,
        accession_number=orders[0].accession_number if orders else "",
        study_uids=tuple(dict.fromkeys(uid for uid in studies if uid)),
        mpps_uid=pps.sop_instance_uid,
    )
