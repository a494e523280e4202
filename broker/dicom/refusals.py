"""Every refusal's answer in DIMSE: a status (PS3.7 C.4) and, for an update of a final
MPPS, the Error ID PS3.4 F.7.2.2.3 names. The comment sent is generic."""

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

#: DIMSE failure for each kind of bad attribute (PS3.7 C.4).
_DIMSE_STATUS = {
    Problem.MISSING: MISSING_ATTRIBUTE,
    Problem.EMPTY: MISSING_ATTRIBUTE_VALUE,
    Problem.MALFORMED: INVALID_ATTRIBUTE_VALUE,
    Problem.NOT_IN_TABLE: INVALID_ATTRIBUTE_VALUE,
    Problem.NOT_ALLOWED: NO_SUCH_ATTRIBUTE,
}

MAY_NO_LONGER_BE_UPDATED = 0xA710  # Error ID with 0x0110, PS3.4 F.7.2.2.3


@dataclass(frozen=True)
class DimseRefusal:
    status: int
    comment: str
    error_id: int | None = None


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
