"""PPS Manager: Modality Performed Procedure Step in (RAD-6 In Progress, RAD-7
Completed/Discontinued), the scheduled step and order following it, and the status the
RIS must learn written to the outbox in the same transaction (RAD-3)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from broker.domain.audit import Action, Requestor, procedure_event
from broker.domain.errors import DuplicateRecord, InvalidInput, Problem, UnknownRecord
from broker.domain.model import PerformedStep, PpsStatus, ScheduledStep, StatusChange, StepReference
from broker.domain.ports import AuditTrail, MppsForwarder, StatusNotifier, UnitOfWork, UnitOfWorkFactory
from broker.domain.states import ON_WORKLIST, check_pps_updatable, check_pps_update, step_follows_pps

log = logging.getLogger(__name__)

#: Given the stored attributes: the N-SET's new status, the merged attributes, and the
#: change list as received (what is forwarded).
Merge = Callable[[str], tuple[PpsStatus, str, str]]


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
            for ref in pps.references:
                self._link(pps, self._scheduled_steps(uow, ref))
            if not pps.linked_steps:
                log.info("MPPS %s is unscheduled: kept as an exception to reconcile", pps.sop_instance_uid)
            uow.performed.add(pps)
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
        with self._uow() as uow:
            pps = uow.performed.get(sop_instance_uid)
            if pps is None:
                raise UnknownRecord("SOP Instance")
            return pps.attributes

    def reconcile(
        self, sop_instance_uid: str, accession_number: str, requested_procedure_id: str = ""
    ) -> PerformedStep:
        """Link an unscheduled MPPS (e.g. trauma) to the order it turned out to serve;
        the order's steps then follow it as if it had quoted them (PS3.17 Annex J)."""
        with self._uow() as uow:
            pps = uow.performed.get(sop_instance_uid)
            if pps is None:
                raise UnknownRecord("performed procedure step")
            ref = StepReference(accession_number=accession_number, requested_procedure_id=requested_procedure_id)
            steps = self._accession_steps(uow, ref)
            if not steps:
                raise UnknownRecord("order with steps on the worklist")
            self._link(pps, steps)
            self._follow(uow, pps)
            uow.commit()
            return pps

    def _audited(self, uow: UnitOfWork, pps: PerformedStep, action: Action, requestor: Requestor | None) -> None:
        """The Procedure Record audit message, in the MPPS's transaction."""
        if self._audit is None:
            return
        orders = list({id(o): o for o in map(uow.orders.of_step, pps.linked_steps)}.values())
        event = procedure_event(pps, orders, action, self._clock(), requestor)
        uow.outbox.add(self._audit.messages_for(event))

    @staticmethod
    def _link(pps: PerformedStep, steps: list[ScheduledStep]) -> None:
        pps.linked_steps.extend(s for s in steps if s not in pps.linked_steps)

    def _scheduled_steps(self, uow: UnitOfWork, ref: StepReference) -> list[ScheduledStep]:
        """The steps an N-CREATE item names: by SPS ID, else by accession if allowed."""
        if not ref.sps_id:
            return self._accession_steps(uow, ref) if self._link_by_accession and ref.accession_number else []
        order = uow.orders.with_step(ref)
        return [s for s in order.steps() if s.sps_id == ref.sps_id] if order else []

    @staticmethod
    def _accession_steps(uow: UnitOfWork, ref: StepReference) -> list[ScheduledStep]:
        order = uow.orders.by_accession(ref.accession_number)
        if order is None:
            return []
        return [
            step
            for procedure in order.procedures
            if not ref.requested_procedure_id or procedure.requested_procedure_id == ref.requested_procedure_id
            for step in procedure.steps
            if step.status in ON_WORKLIST
        ]

    def _follow(self, uow: UnitOfWork, pps: PerformedStep) -> None:
        """Move the linked steps to the status the MPPS implies; notify each change."""
        for step in pps.linked_steps:
            if step_follows_pps(step, pps.status):
                change = StatusChange(uow.orders.of_step(step), step, step.status, self._clock(), pps)
                uow.outbox.add(self._notifier.messages_for(change))
