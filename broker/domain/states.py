"""State tables of the workflow: what may follow what.

Scheduled steps follow IHE RAD TF-1 SWF; Performed Procedure Steps follow PS3.4
F.7.2.2.3: COMPLETED and DISCONTINUED are final ("may no longer be updated").
"""

from __future__ import annotations

from broker.domain.errors import IllegalTransition
from broker.domain.model import Order, PpsStatus, ScheduledStep, StepStatus

_STEP_NEXT: dict[StepStatus, frozenset[StepStatus]] = {
    StepStatus.SCHEDULED: frozenset(
        {StepStatus.STARTED, StepStatus.CANCELLED, StepStatus.DISCONTINUED, StepStatus.COMPLETED}
    ),
    StepStatus.STARTED: frozenset({StepStatus.STARTED, StepStatus.COMPLETED, StepStatus.DISCONTINUED}),
    StepStatus.COMPLETED: frozenset(),
    StepStatus.DISCONTINUED: frozenset(),
    StepStatus.CANCELLED: frozenset(),
}

_PPS_NEXT: dict[PpsStatus, frozenset[PpsStatus]] = {
    PpsStatus.IN_PROGRESS: frozenset({PpsStatus.IN_PROGRESS, PpsStatus.COMPLETED, PpsStatus.DISCONTINUED}),
    PpsStatus.COMPLETED: frozenset(),
    PpsStatus.DISCONTINUED: frozenset(),
}

#: The scheduled step's status that a performed step's status implies.
STEP_FOR_PPS: dict[PpsStatus, StepStatus] = {
    PpsStatus.IN_PROGRESS: StepStatus.STARTED,
    PpsStatus.COMPLETED: StepStatus.COMPLETED,
    PpsStatus.DISCONTINUED: StepStatus.DISCONTINUED,
}

#: Steps in these states are offered on the Modality Worklist.
ON_WORKLIST: frozenset[StepStatus] = frozenset({StepStatus.SCHEDULED, StepStatus.STARTED})


def advance_step(step: ScheduledStep, new: StepStatus) -> bool:
    """Move `step` to `new`; return whether the status changed."""
    if new not in _STEP_NEXT[step.status]:
        raise IllegalTransition(f"scheduled step {step.sps_id}", step.status, new)
    changed = step.status != new
    step.status = new
    return changed


def check_pps_updatable(current: PpsStatus) -> None:
    """Refuse any N-SET of a final MPPS, whatever it sets (PS3.4 F.7.2.2.3)."""
    if not _PPS_NEXT[current]:
        raise IllegalTransition("performed procedure step", current, "N-SET")


def check_pps_update(current: PpsStatus, new: PpsStatus) -> None:
    if new not in _PPS_NEXT[current]:
        raise IllegalTransition("performed procedure step", current, new)


def step_follows_pps(step: ScheduledStep, pps_status: PpsStatus) -> bool:
    """The scheduled step takes the status its MPPS implies; a step already final keeps
    it (a later MPPS may append to a completed step). Returns whether it changed."""
    if not _STEP_NEXT[step.status]:
        return False
    return advance_step(step, STEP_FOR_PPS[pps_status])


def check_unstarted(order: Order, requested: str) -> None:
    """Cancel (CA) and change (XO) apply only while no step has started (RAD-2)."""
    for step in order.steps():
        if step.status != StepStatus.SCHEDULED:
            raise IllegalTransition(f"order {order.placer_order_number}", step.status, requested)


def cancel_order(order: Order) -> None:
    check_unstarted(order, "CANCEL")
    order.cancelled = True
    for step in order.steps():
        advance_step(step, StepStatus.CANCELLED)


def discontinue_order(order: Order) -> None:
    """DC: every step not yet final becomes DISCONTINUED and leaves the worklist."""
    if order.cancelled or not any(_STEP_NEXT[s.status] for s in order.steps()):
        raise IllegalTransition(f"order {order.placer_order_number}", "final", "DISCONTINUE")
    order.discontinued = True
    for step in order.steps():
        if _STEP_NEXT[step.status]:
            advance_step(step, StepStatus.DISCONTINUED)
