"""PPS Manager: Modality Performed Procedure Step in (RAD-6 In Progress, RAD-7
Completed/Discontinued), the scheduled step and order following it, and the status the
RIS must learn written to the outbox in the same transaction (RAD-3)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from broker.domain.audit import Action, Requestor, procedure_event
from broker.domain.errors import (
    DuplicateRecord,
    IdentifierInUse,
    InvalidInput,
    PatientMismatch,
    Problem,
    UnknownRecord,
)
from broker.domain.integrity import link_disagreement, patient_disagreement
from broker.domain.model import (
    Order,
    PerformedStep,
    PpsStatus,
    RequestedProcedure,
    ScheduledStep,
    StatusChange,
    StepReference,
)
from broker.domain.ports import AuditTrail, MppsForwarder, StatusNotifier, UnitOfWork, UnitOfWorkFactory
from broker.domain.states import ON_WORKLIST, check_pps_updatable, check_pps_update, step_follows_pps
from broker.domain.unlinked import Reason, joined

log = logging.getLogger(__name__)

#: Given the stored attributes: the N-SET's new status, the merged attributes, and the
#: change list as received (what is forwarded).
Merge = Callable[[str], tuple[PpsStatus, str, str]]

#: A scheduled step an MPPS names, with the order and procedure it belongs to.
Match = tuple[Order, RequestedProcedure, ScheduledStep]


@dataclass(frozen=True)
class CandidateStep:
    """A step of a candidate order still on the worklist: what was to be done, where, when."""

    sps_id: str
    requested_procedure_id: str
    description: str
    modality: str
    station_ae: str
    start: datetime | None


@dataclass(frozen=True)
class Candidate:
    """An order an MPPS exception may be reconciled with, as an operator chooses it:
    with the patient's name and birth date and each step's procedure and time, to be
    set side by side with what the MPPS says."""

    accession_number: str
    patient_id: str
    requested_procedure_ids: tuple[str, ...]
    sps_ids: tuple[str, ...]
    patient_name: str = ""
    birth_date: str = ""
    steps: tuple[CandidateStep, ...] = ()

    @classmethod
    def of(cls, order: Order, steps: list[ScheduledStep]) -> Candidate:
        procedure_of = {id(s): rp for rp in order.procedures for s in rp.steps}
        return cls(
            order.accession_number,
            order.patient.patient_id,
            tuple(rp.requested_procedure_id for rp in order.procedures),
            tuple(s.sps_id for s in steps),
            str(order.patient.name),
            order.patient.birth_date,
            tuple(
                CandidateStep(
                    s.sps_id,
                    procedure_of[id(s)].requested_procedure_id,
                    s.description or procedure_of[id(s)].description,
                    s.modality,
                    s.station_ae,
                    s.start,
                )
                for s in steps
            ),
        )


class PpsManager:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        notifier: StatusNotifier,
        forwarder: MppsForwarder,
        *,
        link_by_accession: bool,
        clock: Callable[[], datetime] = datetime.now,
        audit: AuditTrail | None = None,
    ) -> None:
        self._uow = uow
        self._notifier = notifier
        self._forwarder = forwarder
        self._link_by_accession = link_by_accession
        self._clock = clock
        self._audit = audit

    def rad6_modality_pps_in_progress(self, pps: PerformedStep, requestor: Requestor | None = None) -> None:
        """N-CREATE: only IN PROGRESS may be created (PS3.4 F.7.2.1.2); link the
        scheduled steps the modality quotes and mark them STARTED."""
        if pps.status is not PpsStatus.IN_PROGRESS:
            raise InvalidInput("PerformedProcedureStepStatus", "must be IN PROGRESS on N-CREATE", Problem.NOT_IN_TABLE)
        with self._uow() as uow:
            if uow.performed.get(pps.sop_instance_uid) is not None:
                raise DuplicateRecord("SOP Instance UID")
            self._link_references(uow, pps)
            if not pps.linked_steps:
                log.info("MPPS %s linked to no scheduled step: kept as an exception", pps.sop_instance_uid)
            pps = uow.performed.add(pps)
            self._follow(uow, pps)
            uow.outbox.add(self._forwarder.messages_for("create", pps.sop_instance_uid, pps.attributes))
            self._audited(uow, pps, Action.CREATE, requestor)
            uow.commit()

    def rad7_modality_pps_update(
        self, sop_instance_uid: str, merge: Merge, requestor: Requestor | None = None
    ) -> PerformedStep:
        """N-SET: refused once the step is COMPLETED or DISCONTINUED (F.7.2.2.3)."""
        with self._uow() as uow:
            pps = uow.performed.get(sop_instance_uid)
            if pps is None:
                raise UnknownRecord("SOP Instance")
            check_pps_updatable(pps.status)
            new_status, attributes, changes = merge(pps.attributes)
            check_pps_update(pps.status, new_status)
            pps.status, pps.attributes = new_status, attributes
            self._follow(uow, pps)
            uow.outbox.add(self._forwarder.messages_for("set", sop_instance_uid, changes))
            self._audited(uow, pps, Action.UPDATE, requestor)
            uow.commit()
            return pps

    def retrieve(self, sop_instance_uid: str) -> str:
        """N-GET (MPPS Retrieve SOP Class, PS3.4 F.8) and its DICOMweb twin: the
        record's attributes as they stand, for a client that lost track of an MPPS."""
        with self._uow.reading() as uow:
            pps = uow.performed.get(sop_instance_uid)
            if pps is None:
                raise UnknownRecord("SOP Instance")
            return pps.attributes

    def reconcile(
        self,
        sop_instance_uid: str,
        accession_number: str,
        requested_procedure_id: str = "",
        *,
        force: bool = False,
        requestor: Requestor | None = None,
    ) -> None:
        """Link an MPPS kept as an exception (unscheduled, e.g. trauma, or refused for a
        disagreement) to the order it turned out to serve; the order's steps then follow
        it as if it had quoted them (PS3.17 Annex J). Only an order of the MPPS's own
        patient is taken, unless an administrator forces it: that is audited with the
        disagreement it overrode."""
        with self._uow() as uow:
            pps = uow.performed.get(sop_instance_uid)
            if pps is None:
                raise UnknownRecord("performed procedure step")
            orders = uow.orders.active_by_accession(accession_number)
            if len(orders) > 1:
                raise IdentifierInUse("accession number", "accession_number")
            steps = self._worklist_steps(orders[0], requested_procedure_id) if orders else []
            if not steps:
                raise UnknownRecord("order with steps on the worklist")
            mismatch = patient_disagreement(pps, orders[0].patient)
            if mismatch is not None and not force:
                raise PatientMismatch(str(mismatch))
            self._link(pps, steps)
            pps.unlinked_reason = ""
            self._follow(uow, pps)
            detail = f"reconciled by an operator, forced past: {mismatch}" if mismatch else "reconciled by an operator"
            self._audited(uow, pps, Action.UPDATE, requestor, detail)
            uow.commit()
        log.info("MPPS %s reconciled%s", sop_instance_uid, " (forced past a patient disagreement)" if mismatch else "")

    def candidates(self, sop_instance_uid: str) -> list[Candidate]:
        """The orders an exception may be reconciled with: the MPPS's own patient's,
        with steps still on the worklist."""
        with self._uow.reading() as uow:
            pps = uow.performed.get(sop_instance_uid)
            if pps is None:
                raise UnknownRecord("performed procedure step")
            orders = uow.orders.active_for_patient_id(pps.patient_id) if pps.patient_id else []
            return [
                Candidate.of(order, steps)
                for order in orders
                if patient_disagreement(pps, order.patient) is None and (steps := self._worklist_steps(order, ""))
            ]

    def _audited(
        self, uow: UnitOfWork, pps: PerformedStep, action: Action, requestor: Requestor | None, detail: str = ""
    ) -> None:
        """The Procedure Record audit message, in the MPPS's transaction."""
        if self._audit is None:
            return
        orders = list({id(o): o for o in map(uow.orders.of_step, pps.linked_steps)}.values())
        event = replace(procedure_event(pps, orders, action, self._clock(), requestor), detail=detail)
        uow.outbox.add(self._audit.messages_for(event))

    @staticmethod
    def _link(pps: PerformedStep, steps: list[ScheduledStep]) -> None:
        pps.linked_steps.extend(s for s in steps if s not in pps.linked_steps)

    def _link_references(self, uow: UnitOfWork, pps: PerformedStep) -> None:
        """Link every step the N-CREATE quotes, if each agrees with the MPPS on patient
        and study; if any disagrees, or a reference is ambiguous, link none and keep the
        MPPS as an exception saying why."""
        found: list[ScheduledStep] = []
        problems: list[Reason] = []
        for ref in pps.references:
            matches, ambiguity = self._referenced(uow, ref)
            problems += [ambiguity] if ambiguity is not None else []
            for order, procedure, step in matches:
                disagreement = link_disagreement(pps, ref, order, procedure)
                if disagreement is None:
                    found.append(step)
                else:
                    problems.append(disagreement.at_step(step.sps_id))
        if problems:
            pps.unlinked_reason = joined(problems)
        elif found:
            self._link(pps, found)
        elif any(ref.sps_id or ref.accession_number for ref in pps.references):
            pps.unlinked_reason = str(Reason("no_match", {}))
        else:
            pps.unlinked_reason = str(Reason("unscheduled", {}))

    def _referenced(self, uow: UnitOfWork, ref: StepReference) -> tuple[list[Match], Reason | None]:
        """The steps one Scheduled Step Attributes item names: by SPS ID, else (if the
        profile allows) by accession number among active orders' steps on the worklist;
        and why they are ambiguous, when they belong to more than one order."""
        if ref.sps_id:
            orders = uow.orders.with_step(ref)
            matches = [(o, rp, s) for o in orders for rp in o.procedures for s in rp.steps if s.sps_id == ref.sps_id]
            if len({id(o) for o, _, _ in matches}) > 1:  # prefer the one still to be done
                matches = [(o, rp, s) for o, rp, s in matches if o.active and s.status in ON_WORKLIST]
            named = {"attribute": "ScheduledProcedureStepID", "value": ref.sps_id}
        elif self._link_by_accession and ref.accession_number:
            orders = uow.orders.active_by_accession(ref.accession_number)
            matches = [(o, rp, s) for o in orders for rp, s in self._worklist_procedure_steps(o, ref)]
            named = {"attribute": "AccessionNumber", "value": ref.accession_number}
        else:
            return [], None
        count = len({id(o) for o, _, _ in matches})
        return ([], Reason("ambiguous", {**named, "count": str(count)})) if count > 1 else (matches, None)

    @staticmethod
    def _worklist_procedure_steps(order: Order, ref: StepReference) -> list[tuple[RequestedProcedure, ScheduledStep]]:
        return [
            (procedure, step)
            for procedure in order.procedures
            if not ref.requested_procedure_id or procedure.requested_procedure_id == ref.requested_procedure_id
            for step in procedure.steps
            if step.status in ON_WORKLIST
        ]

    def _worklist_steps(self, order: Order, requested_procedure_id: str) -> list[ScheduledStep]:
        ref = StepReference(requested_procedure_id=requested_procedure_id)
        return [step for _, step in self._worklist_procedure_steps(order, ref)]

    def _follow(self, uow: UnitOfWork, pps: PerformedStep) -> None:
        """Move the linked steps to the status the MPPS implies; notify each change."""
        for step in pps.linked_steps:
            if step_follows_pps(step, pps.status):
                change = StatusChange(uow.orders.of_step(step), step, step.status, self._clock(), pps)
                uow.outbox.add(self._notifier.messages_for(change))
