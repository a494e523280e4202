"""Every refusal's answer on the wire, in one table per protocol.

The domain raises what went wrong; these functions say how HL7 (ACK code + ERR with an
HL7 table 0357 code) and DIMSE (status + Error ID) express it. The text sent to a peer
is generic; details stay in the log (no patient data above DEBUG).
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.dicom.status import (
    DUPLICATE_SOP_INSTANCE,
    INVALID_ATTRIBUTE_VALUE,
    MISSING_ATTRIBUTE,
    MISSING_ATTRIBUTE_VALUE,
    NO_SUCH_ATTRIBUTE,
    NO_SUCH_SOP_INSTANCE,
    PROCESSING_FAILURE,
)
from broker.domain.errors import DuplicateRecord, IllegalTransition, InvalidInput, Problem, UnknownRecord


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


#: HL7 table 0357 code for each kind of bad value.
_HL7_CODE = {
    Problem.MISSING: "101",
    Problem.EMPTY: "101",
    Problem.MALFORMED: "102",
    Problem.NOT_IN_TABLE: "103",
    Problem.NOT_ALLOWED: "102",
}

#: DIMSE failure for each kind of bad attribute (PS3.7 C.4).
_DIMSE_STATUS = {
    Problem.MISSING: MISSING_ATTRIBUTE,
    Problem.EMPTY: MISSING_ATTRIBUTE_VALUE,
    Problem.MALFORMED: INVALID_ATTRIBUTE_VALUE,
    Problem.NOT_IN_TABLE: INVALID_ATTRIBUTE_VALUE,
    Problem.NOT_ALLOWED: NO_SUCH_ATTRIBUTE,
}


@dataclass(frozen=True)
class Hl7Refusal:
    ack: str  # AE: the content is wrong; AR: rejected, may be resent later
    code: str  # HL7 table 0357
    location: str  # e.g. PID-3
    text: str


def hl7_refusal(exc: Exception) -> Hl7Refusal:
    match exc:
        case InvalidInput():
            return Hl7Refusal("AE", _HL7_CODE[exc.problem], exc.location, exc.reason)
        case UnknownRecord():
            return Hl7Refusal("AE", "204", exc.location, f"unknown {exc.what}")
        case DuplicateRecord():
            return Hl7Refusal("AE", "205", exc.location, f"duplicate {exc.what}")
        case IllegalTransition():
            return Hl7Refusal("AE", "206", "", str(exc))
        case SenderNotAllowed():  # table 0357 has no "unknown sender": the value is not in our table
            return Hl7Refusal("AR", "103", exc.location, "sender not allowed")
        case UnsupportedMessage():
            return Hl7Refusal("AR", "200", "MSH-9", f"unsupported message type {exc}")
        case StoreUnavailable():
            return Hl7Refusal("AR", "207", "", "not stored; resend later")
        case _:
            return Hl7Refusal("AE", "207", "", "application internal error")


@dataclass(frozen=True)
class DimseRefusal:
    status: int
    comment: str
    error_id: int | None = None


#: PS3.7 C.4 / PS3.4 F.7 statuses the MPPS SCP answers with.
MAY_NO_LONGER_BE_UPDATED = 0xA710  # Error ID with 0x0110, PS3.4 F.7.2.2.3


def dimse_refusal(exc: Exception) -> DimseRefusal:
    match exc:
        case IllegalTransition():
            return DimseRefusal(
                PROCESSING_FAILURE, "Performed Procedure Step may no longer be updated", MAY_NO_LONGER_BE_UPDATED
            )
        case InvalidInput():
            return DimseRefusal(_DIMSE_STATUS[exc.problem], f"{exc.location}: {exc.reason}")
        case DuplicateRecord():
            return DimseRefusal(DUPLICATE_SOP_INSTANCE, f"duplicate {exc.what}")
        case UnknownRecord():
            return DimseRefusal(NO_SUCH_SOP_INSTANCE, f"unknown {exc.what}")
        case _:
            return DimseRefusal(PROCESSING_FAILURE, "processing failure")
