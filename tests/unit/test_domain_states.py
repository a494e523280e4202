"""State tables of the workflow (broker/domain/states.py).

Scheduled steps follow IHE RAD TF-1 SWF; Performed Procedure Steps follow PS3.4
F.7.2.2.3 (COMPLETED and DISCONTINUED are final). The expected tables are written out
here, independently of the module's own tables.
"""

from __future__ import annotations

import itertools

import pytest

from broker.domain.errors import IllegalTransition
from broker.domain.model import (
    Order,
    Patient,
    PpsStatus,
    RequestedProcedure,
    ScheduledStep,
    StepStatus,
)
from broker.domain.states import (
    ON_WORKLIST,
    STEP_FOR_PPS,
    advance_step,
    cancel_order,
    check_pps_updatable,
    check_pps_update,
    check_unstarted,
    discontinue_order,
    step_follows_pps,
)

S = StepStatus
P = PpsStatus

# Scheduled Procedure Step: (from, to) pairs the SWF workflow allows.
SPS_ALLOWED = {
    (S.SCHEDULED, S.STARTED),
    (S.SCHEDULED, S.CANCELLED),
    (S.SCHEDULED, S.DISCONTINUED),
    (S.SCHEDULED, S.COMPLETED),
    (S.STARTED, S.STARTED),  # a second MPPS IN PROGRESS for the same step
    (S.STARTED, S.COMPLETED),
    (S.STARTED, S.DISCONTINUED),
}
SPS_ALL = list(itertools.product(S, S))

# MPPS: only IN PROGRESS may be updated (PS3.4 F.7.2.2.3).
PPS_ALLOWED = {(P.IN_PROGRESS, P.IN_PROGRESS), (P.IN_PROGRESS, P.COMPLETED), (P.IN_PROGRESS, P.DISCONTINUED)}
PPS_ALL = list(itertools.product(P, P))


def _step(status: StepStatus = S.SCHEDULED, sps_id: str = "SPS1") -> ScheduledStep:
    return ScheduledStep(sps_id=sps_id, modality="CT", status=status)


def _order(*statuses: StepStatus) -> Order:
    steps = [_step(status, f"SPS{i}") for i, status in enumerate(statuses, 1)]
    rp = RequestedProcedure("RP1", "1.2.3", steps=steps)
    return Order("PO1", "FO1", "ACC1", Patient("PAT1"), procedures=[rp])


@pytest.mark.parametrize(("current", "new"), sorted(SPS_ALLOWED))
def test_sps_allowed_transition_rad_tf1_swf(current: StepStatus, new: StepStatus) -> None:
    step = _step(current)
    changed = advance_step(step, new)
    assert step.status is new
    assert changed is (current != new)


@pytest.mark.parametrize(("current", "new"), [p for p in SPS_ALL if p not in SPS_ALLOWED])
def test_sps_refused_transition_raises_illegal_transition_rad_tf1_swf(current: StepStatus, new: StepStatus) -> None:
    step = _step(current)
    with pytest.raises(IllegalTransition) as info:
        advance_step(step, new)
    assert step.status is current  # unchanged
    assert (info.value.entity, info.value.current, info.value.requested) == ("scheduled step SPS1", current, new)


def test_worklist_offers_only_scheduled_and_started_steps_ps3_4_K() -> None:
    assert {S.SCHEDULED, S.STARTED} == ON_WORKLIST


@pytest.mark.parametrize(("current", "new"), sorted(PPS_ALLOWED))
def test_pps_in_progress_may_be_updated_ps3_4_F_7_2_2_3(current: PpsStatus, new: PpsStatus) -> None:
    check_pps_update(current, new)  # raises IllegalTransition if refused
    check_pps_updatable(current)
    assert STEP_FOR_PPS[new] is not S.SCHEDULED


@pytest.mark.parametrize(("current", "new"), [p for p in PPS_ALL if p not in PPS_ALLOWED])
def test_pps_completed_or_discontinued_is_final_ps3_4_F_7_2_2_3(current: PpsStatus, new: PpsStatus) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_pps_update(current, new)
    assert (info.value.entity, info.value.current, info.value.requested) == ("performed procedure step", current, new)


@pytest.mark.parametrize("final", [P.COMPLETED, P.DISCONTINUED])
def test_pps_final_refuses_any_nset_ps3_4_F_7_2_2_3(final: PpsStatus) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_pps_updatable(final)
    assert info.value.current == final
    assert info.value.requested == "N-SET"
    assert str(info.value) == f"performed procedure step is {final}; N-SET is not allowed"


@pytest.mark.parametrize(
    ("pps", "step_status"),
    [(P.IN_PROGRESS, S.STARTED), (P.COMPLETED, S.COMPLETED), (P.DISCONTINUED, S.DISCONTINUED)],
)
def test_step_status_implied_by_pps_status_rad_tf1_swf(pps: PpsStatus, step_status: StepStatus) -> None:
    assert STEP_FOR_PPS[pps] is step_status


@pytest.mark.parametrize(
    ("before", "pps", "after", "changed"),
    [
        (S.SCHEDULED, P.IN_PROGRESS, S.STARTED, True),
        (S.SCHEDULED, P.COMPLETED, S.COMPLETED, True),
        (S.STARTED, P.IN_PROGRESS, S.STARTED, False),
        (S.STARTED, P.COMPLETED, S.COMPLETED, True),
        (S.STARTED, P.DISCONTINUED, S.DISCONTINUED, True),
    ],
)
def test_step_follows_pps_rad_6_7(before: StepStatus, pps: PpsStatus, after: StepStatus, changed: bool) -> None:
    step = _step(before)
    assert step_follows_pps(step, pps) is changed
    assert step.status is after


@pytest.mark.parametrize("final", [S.COMPLETED, S.DISCONTINUED, S.CANCELLED])
@pytest.mark.parametrize("pps", list(P))
def test_step_follows_pps_keeps_final_step_ps3_17_J(final: StepStatus, pps: PpsStatus) -> None:
    """A later MPPS may append to a completed step: the step keeps its final status."""
    step = _step(final)
    assert step_follows_pps(step, pps) is False
    assert step.status is final


def test_cancel_while_all_steps_scheduled_cancels_every_step_rad_2_ca() -> None:
    order = _order(S.SCHEDULED, S.SCHEDULED)
    cancel_order(order)
    assert order.cancelled is True
    assert [s.status for s in order.steps()] == [S.CANCELLED, S.CANCELLED]


@pytest.mark.parametrize("other", [S.STARTED, S.COMPLETED, S.DISCONTINUED, S.CANCELLED])
def test_cancel_refused_once_any_step_left_scheduled_rad_2_ca(other: StepStatus) -> None:
    order = _order(S.SCHEDULED, other)
    with pytest.raises(IllegalTransition) as info:
        cancel_order(order)
    assert info.value.entity == "order PO1"
    assert info.value.current == other
    assert info.value.requested == "CANCEL"
    # nothing changed: the refusal is checked before any step moves
    assert order.cancelled is False
    assert [s.status for s in order.steps()] == [S.SCHEDULED, other]


def test_cancel_of_order_without_steps_is_allowed_rad_2_ca() -> None:
    order = Order("PO9", "", "", Patient("PAT1"))
    cancel_order(order)
    assert order.cancelled is True


@pytest.mark.parametrize("requested", ["CANCEL", "CHANGE"])
def test_change_or_cancel_only_while_unstarted_rad_2_xo_ca(requested: str) -> None:
    assert check_unstarted(_order(S.SCHEDULED, S.SCHEDULED), requested) is None
    with pytest.raises(IllegalTransition) as info:
        check_unstarted(_order(S.SCHEDULED, S.STARTED), requested)
    assert (info.value.current, info.value.requested) == (S.STARTED, requested)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ([S.SCHEDULED, S.SCHEDULED], [S.DISCONTINUED, S.DISCONTINUED]),
        ([S.STARTED, S.SCHEDULED], [S.DISCONTINUED, S.DISCONTINUED]),
        ([S.COMPLETED, S.STARTED], [S.COMPLETED, S.DISCONTINUED]),  # final steps keep their status
    ],
)
def test_discontinue_moves_every_non_final_step_rad_2_dc(before: list[StepStatus], after: list[StepStatus]) -> None:
    order = _order(*before)
    discontinue_order(order)
    assert [s.status for s in order.steps()] == after


@pytest.mark.parametrize("statuses", [[S.COMPLETED, S.DISCONTINUED], [S.CANCELLED]])
def test_discontinue_of_final_order_is_refused_rad_2_dc(statuses: list[StepStatus]) -> None:
    order = _order(*statuses)
    with pytest.raises(IllegalTransition) as info:
        discontinue_order(order)
    assert info.value.requested == "DISCONTINUE"
    assert [s.status for s in order.steps()] == statuses


def test_discontinue_of_cancelled_order_is_refused_rad_2_dc() -> None:
    order = _order(S.SCHEDULED)
    cancel_order(order)
    with pytest.raises(IllegalTransition):
        discontinue_order(order)
