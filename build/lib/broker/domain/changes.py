"""Order change (XO): what an updated order may change, and how steps are matched.

Procedures are matched by Requested Procedure ID and steps by SPS ID; where the placer
does not send those, by position. Identifiers the Order Filler assigned are kept.
"""

from __future__ import annotations

from typing import TypeVar

from broker.domain.errors import InvalidInput, Problem
from broker.domain.model import Order, RequestedProcedure, ScheduledStep
from broker.domain.states import check_unstarted

T = TypeVar("T", RequestedProcedure, ScheduledStep)


def _match(current: list[T], incoming: T, index: int, key: str) -> T:
    wanted = getattr(incoming, key)
    if wanted:
        for item in current:
            if getattr(item, key) == wanted:
                return item
    if index < len(current):
        return current[index]
    raise InvalidInput(key, f"no {key} {wanted!r} in the order", Problem.NOT_IN_TABLE)


def _change_step(step: ScheduledStep, new: ScheduledStep) -> None:
    step.modality = new.modality or step.modality
    step.station_ae = new.station_ae or step.station_ae
    step.station_name = new.station_name or step.station_name
    step.start = new.start or step.start
    step.description = new.description or step.description
    step.protocol_codes = new.protocol_codes or step.protocol_codes
    step.location = new.location or step.location


def _change_procedure(procedure: RequestedProcedure, new: RequestedProcedure) -> None:
    procedure.description = new.description or procedure.description
    procedure.code = new.code or procedure.code
    procedure.priority = new.priority or procedure.priority
    for index, new_step in enumerate(new.steps):
        _change_step(_match(procedure.steps, new_step, index, "sps_id"), new_step)


def change_order(order: Order, new: Order) -> list[ScheduledStep]:
    """Apply `new` to the unstarted `order`; return the steps whose station must be
    (re)assigned because their modality changed and no station was sent."""
    check_unstarted(order, "CHANGE")
    before = {id(s): s.modality for s in order.steps()}
    order.referring_physician = new.referring_physician or order.referring_physician
    for index, new_procedure in enumerate(new.procedures):
        _change_procedure(_match(order.procedures, new_procedure, index, "requested_procedure_id"), new_procedure)
    sent_station = {s.station_ae for s in new.steps()} != {""}
    return [s for s in order.steps() if before[id(s)] != s.modality and not sent_station]
