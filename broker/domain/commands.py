"""What an inbound message asks the Order Filler to do, independent of its encoding."""

from __future__ import annotations

from dataclasses import dataclass

from broker.domain.model import Order, Patient


@dataclass(frozen=True)
class RegisterPatient:
    """RAD-1 (A01/A04/A05): create the patient, or refresh the demographics."""

    patient: Patient


@dataclass(frozen=True)
class UpdatePatient:
    """RAD-12 A08: change the demographics of a patient the broker already holds."""

    patient: Patient


@dataclass(frozen=True)
class PlaceOrder:
    """RAD-2 NW: a new order; identifiers it lacks are assigned by the Order Filler."""

    order: Order


@dataclass(frozen=True)
class CancelOrder:
    """RAD-2 CA: the placer withdraws an order that has not started."""

    placer_order_number: str
    placer_application: str


Command = RegisterPatient | UpdatePatient | PlaceOrder | CancelOrder
