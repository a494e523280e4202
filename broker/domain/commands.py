"""What an inbound message asks the Order Filler to do, independent of its encoding."""

from __future__ import annotations

from dataclasses import dataclass

from broker.domain.model import Order, Patient, RequestedProcedure


@dataclass(frozen=True)
class RegisterPatient:
    """RAD-1 (A01/A04/A05): create the patient, or refresh the demographics."""

    patient: Patient


@dataclass(frozen=True)
class UpdatePatient:
    """RAD-12 A08: change the demographics of a patient the broker already holds."""

    patient: Patient


@dataclass(frozen=True)
class CancelRegistration:
    """RAD-12 A11 (cancel admit) / A23 (delete patient record)."""

    patient_id: str
    issuer: str


@dataclass(frozen=True)
class PlaceOrder:
    """RAD-2 NW: a new order; identifiers it lacks are assigned by the Order Filler."""

    order: Order


@dataclass(frozen=True)
class CancelOrder:
    """RAD-2 CA: the placer withdraws an order that has not started."""

    placer_order_number: str
    placer_application: str
    #: ORC-3: how the RIS names an order the broker made (it numbered it in its NA).
    filler_order_number: str = ""


@dataclass(frozen=True)
class MergePatient:
    """RAD-12 A40: the prior patient's record (MRG-1) is merged into `survivor` (PID-3)."""

    survivor: Patient
    prior_patient_id: str
    prior_issuer: str


@dataclass(frozen=True)
class ChangeOrder:
    """RAD-2/RAD-13 XO: new time, procedure, station or modality for an unstarted order."""

    order: Order


@dataclass(frozen=True)
class DiscontinueOrder:
    """RAD-2 DC: the order stops; steps not yet final are DISCONTINUED."""

    placer_order_number: str
    placer_application: str
    #: ORC-3, as for CancelOrder.
    filler_order_number: str = ""


@dataclass(frozen=True)
class OrderOutcome:
    """What became of one order of an order message, for the placer's answer."""

    control: str  # the order control code received (NW, XO, CA, DC)
    placer_order_number: str
    placer_application: str
    filler_order_number: str = ""
    #: What the order asks for (procedure codes, scheduled steps): the order detail of
    #: the answer (OBR-4; IPC for ORI^O24).
    procedures: tuple[RequestedProcedure, ...] = ()
    accession_number: str = ""


#: Order control code of each order command.
ORDER_CONTROL = {PlaceOrder: "NW", ChangeOrder: "XO", CancelOrder: "CA", DiscontinueOrder: "DC"}

Command = (
    RegisterPatient
    | UpdatePatient
    | MergePatient
    | CancelRegistration
    | PlaceOrder
    | CancelOrder
    | ChangeOrder
    | DiscontinueOrder
)
