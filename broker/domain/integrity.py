"""Identifiers that decide which patient an image belongs to, and the checks that keep
them from pointing at two patients.

An accession number names one active order and a Study Instance UID one requested
procedure; a cancelled or discontinued order gives them back. A modality's performed
step is linked to a scheduled step only when both name the same patient (and study):
a modality that quotes just an accession number, or a wrong one, must never start or
complete another patient's exam.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from broker.domain.errors import IdentifierInUse
from broker.domain.model import Order, Patient, PerformedStep, RequestedProcedure, StepReference
from broker.domain.ports import Orders
from broker.domain.unlinked import Reason


def claim_identifiers(order: Order, orders: Orders) -> None:
    """Refuse a changed order whose accession number another active order holds, or
    whose Study Instance UIDs name another requested procedure."""
    _claim(
        order,
        lambda accession: any(o is not order for o in orders.active_by_accession(accession)),
        lambda uid: any(o is not order for o in orders.active_with_study(uid)),
    )


def claim_new_identifiers(order: Order, orders: Orders) -> None:
    """The same rule for an order not stored yet: any active holder is another order,
    so an index probe answers it (the intake's fast path)."""
    _claim(order, orders.accession_held, orders.study_held)


def _claim(order: Order, accession_held: Callable[[str], bool], study_held: Callable[[str], bool]) -> None:
    if order.accession_number and accession_held(order.accession_number):
        raise IdentifierInUse("accession number", "accession_number")
    seen: set[str] = set()
    for procedure in order.procedures:
        uid = procedure.study_instance_uid
        if not uid:
            continue
        if uid in seen or study_held(uid):
            raise IdentifierInUse("Study Instance UID", "study_instance_uid")
        seen.add(uid)


@dataclass(frozen=True)
class Disagreement:
    """Which attribute of the MPPS contradicts the scheduled step, with both values."""

    attribute: str
    performed: str
    scheduled: str

    def __str__(self) -> str:
        return str(self.at_step(""))

    def at_step(self, sps_id: str) -> Reason:
        """The reason an MPPS is kept unlinked, naming the step it disagrees with."""
        values = {"attribute": self.attribute, "performed": self.performed, "scheduled": self.scheduled}
        return Reason("disagrees_at_step", {**values, "sps_id": sps_id}) if sps_id else Reason("disagrees", values)


def patient_disagreement(pps: PerformedStep, patient: Patient) -> Disagreement | None:
    """The MPPS names this patient when the Patient IDs are equal and, when both carry
    one, so are the issuers (many modalities send no Issuer of Patient ID). An MPPS
    without a Patient ID names nobody: it is never linked on its own say-so."""
    if pps.patient_id != patient.patient_id:
        return Disagreement("PatientID", pps.patient_id, patient.patient_id)
    if pps.patient_issuer and patient.issuer and pps.patient_issuer != patient.issuer:
        return Disagreement("IssuerOfPatientID", pps.patient_issuer, patient.issuer)
    return None


def link_disagreement(
    pps: PerformedStep, ref: StepReference, order: Order, procedure: RequestedProcedure
) -> Disagreement | None:
    """Why `pps`, quoting `ref`, must not be linked to a step of `procedure`, if it must not."""
    found = patient_disagreement(pps, order.patient)
    if found is None and ref.study_instance_uid and ref.study_instance_uid != procedure.study_instance_uid:
        return Disagreement("StudyInstanceUID", ref.study_instance_uid, procedure.study_instance_uid)
    return found
