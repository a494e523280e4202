"""The Order Placer's numbers for the orders made at the broker: its NA answer to their
SN (IHE RAD-3 Filler Order Management, ORR^O02 with ORC-1 `NA`, ORC-2 its number,
ORC-3 the broker's).

Read from the RIS's answer, by the profile's order fields, as the outbox delivers the
SN, and kept with the order (OrderFiller.rad3_placer_number_assigned): the broker's
later messages to the RIS name the order by it (ORC-2), and the RIS's later messages
are found by it.
"""

from __future__ import annotations

import logging

from broker.actors.order_filler import OrderFiller
from broker.domain.errors import InvalidInput
from broker.mapping.hl7_in import assigned_placer_number, read_message
from broker.mapping.profile import Profile

log = logging.getLogger(__name__)


def assigned_number(reply: bytes, profile: Profile) -> tuple[str, str, str] | None:
    """(filler order number, placer order number, placer application) the answer gives
    (mapping.hl7_in.assigned_placer_number), read in its declared character set; None
    when it gives none or is not HL7. A number that could not go back out raises
    InvalidInput."""
    try:
        message = read_message(reply, profile)
    except InvalidInput:
        return None
    return assigned_placer_number(message, profile)


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
