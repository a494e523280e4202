"""Errors of the adapters that the actors also see. Their wire answers, like those of
the domain's errors, live with the protocols: `broker.hl7.refusals` (HL7 ACK code +
ERR) and `broker.dicom.refusals` (DIMSE status + Error ID)."""

from __future__ import annotations


class UnsupportedMessage(Exception):
    """A message type or trigger event the broker does not accept (HL7 error 200)."""


class SenderNotAllowed(UnsupportedMessage):
    """MSH-3/MSH-4 names a sender not on the allow-list: not applied, kept as refused.
    A kind of unsupported message, so every path that refuses those refuses this too."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class StoreUnavailable(Exception):
    """The database did not take the change: nothing was stored, the sender must retry."""
