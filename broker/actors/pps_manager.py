"""PPS Manager: Modality Performed Procedure Step in (RAD-6 In Progress, RAD-7
Completed/Discontinued), the scheduled step and order following it, and the status the
RIS must learn written to the outbox in the same transaction (RAD-3)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from broker.domain.errors import DuplicateRecord, InvalidInput, Problem, UnknownRecord
from broker.domain.model import PerformedStep, PpsStatus, ScheduledStep, StatusChange, StepReference
from broker.domain.ports import StatusNotifier, UnitOfWork, UnitOfWorkFactory
from broker.domain.states import check_pps_updatable, check_pps_update, step_follows_pps

log = logging.getLogger(__name__)

#: Given the stored attributes, the N-SET's new status and merged attributes.
Merge = Callable[[str], tuple[PpsStatus, str]]


class PpsManager:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        notifier: StatusNotifier,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._uow = uow
        self._notifier = notifier
        self._clock = clock

    def rad6_modality_pps_in_progress(self, pps: PerformedStep) -> None:
        """N-CREATE: only IN PROGRESS may be created (PS3.4 F.7.2.1.2); link the
        scheduled steps the modality quotes and mark them STARTED."""
        if pps.status is not PpsStatus.IN_PROGRESS:
            raise InvalidInput("PerformedProcedureStepStatus", "must be IN PROGRESS on N-CREATE", Problem.NOT_IN_TABLE)
        with self._uow() as uow:
            if uow.performed.get(pps.sop_instance_uid) is not None:
                raise DuplicateRecord("SOP Instance UID")
            for ref in pps.references:
                step = self._scheduled_step(uow, ref)
                if step is not None and step not in pps.linked_steps:
                    pps.linked_steps.append(step)
            if not pps.linked_steps:
                log.info("MPPS %s is unscheduled (no known scheduled step)", pps.sop_instance_uid)
            uow.performed.add(pps)
            self._follow(uow, pps)
            uow.commit()

    def rad7_modality_pps_update(self, sop_instance_uid: str, merge: Merge) -> PerformedStep:
        """N-SET: refused once the step is COMPLETED or DISCONTINUED (F.7.2.2.3)."""
        with self._uow() as uow:
            pps = uow.performed.get(sop_instance_uid)
            if pps is None:
                raise UnknownRecord("SOP Instance")
            check_pps_updatable(pps.status)
            new_status, attributes = merge(pps.attributes)
            check_pps_update(pps.status, new_status)
            pps.status, pps.attributes = new_status, attributes
            self._follow(uow, pps)
            uow.commit()
            return pps

    @staticmethod
    def _scheduled_step(uow: UnitOfWork, ref: StepReference) -> ScheduledStep | None:
        if not ref.sps_id:
            return None
        order = uow.orders.with_step(ref)
        if order is None:
            return None
        return next((s for s in order.steps() if s.sps_id == ref.sps_id), None)

    def _follow(self, uow: UnitOfWork, pps: PerformedStep) -> None:
        """Move the linked steps to the status the MPPS implies; notify each change."""
        for step in pps.linked_steps:
            if step_follows_pps(step, pps.status):
                change = StatusChange(uow.orders.of_step(step), step, step.status, self._clock())
                uow.outbox.add(self._notifier.messages_for(change))
