"""Which sending applications/facilities (MSH-3/MSH-4) the broker takes messages from."""

from __future__ import annotations

from collections.abc import Sequence

from broker.config import Hl7SenderConfig
from broker.errors import SenderNotAllowed
from broker.hl7.header import MessageHeader


class SenderPolicy:
    """An empty allow-list lets every sender in (the broker's behaviour before the list
    existed); a listed application without a facility may send from any facility."""

    def __init__(self, allowed: Sequence[Hl7SenderConfig]) -> None:
        self._allowed = [(s.application, s.facility) for s in allowed]

    def allows(self, header: MessageHeader) -> bool:
        try:
            self.check(header)
        except SenderNotAllowed:
            return False
        return True

    def check(self, header: MessageHeader) -> None:
        """Raises SenderNotAllowed naming the field at fault (MSH-3, or MSH-4 when the
        application is known but not from this facility)."""
        if not self._allowed:
            return
        application, facility = header.sending_application, header.sending_facility
        known = [f for a, f in self._allowed if a == application]
        if not known:
            raise SenderNotAllowed("MSH-3")
        if None not in known and facility not in known:
            raise SenderNotAllowed("MSH-4")
