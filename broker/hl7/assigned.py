"""The Order Placer's numbers for the orders made at the broker: its NA answer to their
SN (IHE RAD-3 Filler Order Management, ORR^O02 with ORC-1 `NA`, ORC-2 its number,
ORC-3 the broker's).

Read from the RIS's answer as the outbox delivers the SN, and kept with the order
(OrderFiller.rad3_placer_number_assigned): the broker's later messages to the RIS
name the order by it (ORC-2), and the RIS's later messages are found by it.
"""

from __future__ import annotations

import logging

from broker.actors.order_filler import OrderFiller
from broker.domain.errors import InvalidInput
from broker.mapping.hl7_in import read_message
from broker.mapping.profile import Profile
from broker.mapping.vr import check

log = logging.getLogger(__name__)


def assigned_number(reply: bytes, profile: Profile) -> tuple[str, str, str] | None:
    """(filler order number, placer order number, placer application) of the answer's
    ORC with ORC-1 `NA`; None when it has none (a general ACK, any other answer, an
    answer that is not HL7). A number the broker could not send back as a placer order
    number (LO) raises InvalidInput, as it would in an order."""
    try:
        message = read_message(reply, profile)
    except InvalidInput:
        return None
    for segment in message:
        if segment.name == "ORC" and segment.value(1) == "NA":
            placer, application, filler = segment.value(2), segment.value(2, component=2), segment.value(3)
            if placer and filler:
                check(placer, "LO", "ORC-2.1")
                check(application, "LO", "ORC-2.2")
                return filler, placer, application
    return None


class AssignedNumbers:
    """What the outbox is told of each answer the RIS gave to a delivered message."""

    def __init__(self, order_filler: OrderFiller, profile: Profile) -> None:
        self._order_filler = order_filler
        self._profile = profile

    def __call__(self, reply: bytes) -> None:
        try:
            found = assigned_number(reply, self._profile)
        except InvalidInput as refused:
            log.warning("NA answer from the RIS not kept: %s at %s", refused.reason, refused.location)
            return
        if found is not None and not self._order_filler.rad3_placer_number_assigned(*found):
            log.warning("NA answer from the RIS for an order the broker did not make or no longer holds")
