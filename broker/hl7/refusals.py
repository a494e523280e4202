"""Every refusal's answer in HL7: the ACK code and an ERR with an HL7 table 0357 code.

The domain raises what went wrong; this says how HL7 expresses it. The text sent to a
peer is generic; details stay in the log (no patient data above DEBUG).
"""

from __future__ import annotations

from collections.abc import Mapping

from broker.domain.errors import (
    DuplicateRecord,
    IdentifierInUse,
    IllegalTransition,
    InvalidInput,
    Problem,
    UnknownRecord,
)
from broker.domain.ports import Refusal
from broker.errors import SenderNotAllowed, StoreUnavailable, UnsupportedMessage
from broker.mapping.profile import Profile

#: HL7 table 0357 code for each kind of bad value.
_HL7_CODE = {
    Problem.MISSING: "101",
    Problem.EMPTY: "101",
    Problem.MALFORMED: "102",
    Problem.NOT_IN_TABLE: "103",
    Problem.NOT_ALLOWED: "102",
}

#: Where IHE RAD-2 (HL7 v2.3.1) carries the identifiers the Order Filler keeps unique.
IHE_LOCATIONS = {"accession_number": "OBR-18", "study_instance_uid": "ZDS-1"}


def hl7_refusal(exc: Exception, locations: Mapping[str, str] = IHE_LOCATIONS) -> Refusal:
    """`locations` names the field that carries each logical identifier (from the profile)."""
    match exc:
        case InvalidInput():
            return Refusal("AE", _HL7_CODE[exc.problem], exc.location, exc.reason)
        case UnknownRecord():
            return Refusal("AE", "204", exc.location, f"unknown {exc.what}")
        case IdentifierInUse():
            return Refusal("AE", "205", locations.get(exc.field, ""), f"{exc.what} in use by another order")
        case DuplicateRecord():
            return Refusal("AE", "205", exc.location, f"duplicate {exc.what}")
        case IllegalTransition():
            return Refusal("AE", "206", "", str(exc))
        case SenderNotAllowed():  # table 0357 has no "unknown sender": the value is not in our table
            return Refusal("AR", "103", exc.location, "sender not allowed")
        case UnsupportedMessage():
            return Refusal("AR", "200", "MSH-9", f"unsupported message type {exc}")
        case StoreUnavailable():
            return Refusal("AR", "207", "", "not stored; resend later")
        case _:
            return Refusal("AE", "207", "", "application internal error")


def _field(paths: list[str]) -> str:
    """`OBR-18` of `OBR-18`, `ZDS-1` of `ZDS-1.1`: the field, as ERR-2 names it."""
    return paths[0].split(".")[0] if paths else ""


class Hl7Refusals:
    """The refusal rule for one profile: identifiers are named where it maps them."""

    def __init__(self, profile: Profile) -> None:
        order, ipc = profile.hl7_in.order, profile.hl7_in.ipc
        self._locations = {
            "accession_number": _field(order.accession_number or ipc.accession_number),
            "study_instance_uid": _field(order.study_instance_uid or ipc.study_instance_uid),
        }

    def __call__(self, exc: Exception) -> Refusal:
        return hl7_refusal(exc, self._locations)
