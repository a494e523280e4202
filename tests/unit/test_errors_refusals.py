"""Each refusal's wire answer (broker/hl7/refusals.py, broker/dicom/refusals.py): HL7 ACK code + table 0357 code, and
DIMSE status + Error ID (PS3.4 F.7.2.2.3: 0x0110 with Error ID 0xA710)."""

from __future__ import annotations

import pytest

from broker.dicom.refusals import MAY_NO_LONGER_BE_UPDATED, DimseRefusal, dimse_refusal
from broker.dicom.status import (
    DUPLICATE_SOP_INSTANCE,
    INVALID_ATTRIBUTE_VALUE,
    MISSING_ATTRIBUTE,
    NO_SUCH_SOP_INSTANCE,
    PROCESSING_FAILURE,
)
from broker.domain.errors import DuplicateRecord, IllegalTransition, InvalidInput, Problem, UnknownRecord
from broker.domain.model import PpsStatus
from broker.domain.ports import Refusal as Hl7Refusal
from broker.errors import StoreUnavailable, UnsupportedMessage
from broker.hl7.refusals import hl7_refusal

ILLEGAL = IllegalTransition("performed procedure step", PpsStatus.COMPLETED, "N-SET")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            InvalidInput("PID-3.1", "patient ID is required", Problem.MISSING),
            Hl7Refusal("AE", "101", "PID-3.1", "patient ID is required"),
        ),
        (
            InvalidInput("OBR-27.4", "not an HL7 date/time: 'x'"),
            Hl7Refusal("AE", "102", "OBR-27.4", "not an HL7 date/time: 'x'"),
        ),
        (UnknownRecord("order", "ORC-2"), Hl7Refusal("AE", "204", "ORC-2", "unknown order")),
        (DuplicateRecord("order", "ORC-2"), Hl7Refusal("AE", "205", "ORC-2", "duplicate order")),
        (
            IllegalTransition("order PO1", "STARTED", "CANCEL"),
            Hl7Refusal("AE", "206", "", "order PO1 is STARTED; CANCEL is not allowed"),
        ),
        (UnsupportedMessage("ORU^R01"), Hl7Refusal("AR", "200", "MSH-9", "unsupported message type ORU^R01")),
        (StoreUnavailable("db down"), Hl7Refusal("AR", "207", "", "not stored; resend later")),
        (RuntimeError("secret detail"), Hl7Refusal("AE", "207", "", "application internal error")),
    ],
)
def test_hl7_refusal_per_error_hl7_table_0357(error: Exception, expected: Hl7Refusal) -> None:
    assert hl7_refusal(error) == expected


def test_hl7_refusal_does_not_leak_unexpected_error_text_style_anti_pattern_4() -> None:
    refusal = hl7_refusal(ValueError("Patient DOE^JOHN at /var/lib/broker.db"))
    assert "DOE" not in refusal.text and "/var" not in refusal.text


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ILLEGAL, DimseRefusal(PROCESSING_FAILURE, "Performed Procedure Step may no longer be updated", 0xA710)),
        (
            InvalidInput("PerformedProcedureStepStatus", "is required", Problem.MISSING),
            DimseRefusal(MISSING_ATTRIBUTE, "PerformedProcedureStepStatus: is required"),
        ),
        (
            InvalidInput("PerformedProcedureStepStatus", "'DONE' is not a defined term"),
            DimseRefusal(INVALID_ATTRIBUTE_VALUE, "PerformedProcedureStepStatus: 'DONE' is not a defined term"),
        ),
        (
            InvalidInput("PerformedProcedureStepID", "must have a value", Problem.EMPTY),
            DimseRefusal(0x0121, "PerformedProcedureStepID: must have a value"),
        ),
        (
            InvalidInput("PatientName", "may not be set by N-SET", Problem.NOT_ALLOWED),
            DimseRefusal(0x0105, "PatientName: may not be set by N-SET"),
        ),
        (
            DuplicateRecord("performed procedure step"),
            DimseRefusal(DUPLICATE_SOP_INSTANCE, "duplicate performed procedure step"),
        ),
        (
            UnknownRecord("performed procedure step"),
            DimseRefusal(NO_SUCH_SOP_INSTANCE, "unknown performed procedure step"),
        ),
        (RuntimeError("boom"), DimseRefusal(PROCESSING_FAILURE, "processing failure")),
    ],
)
def test_dimse_refusal_per_error_ps3_7_C_4(error: Exception, expected: DimseRefusal) -> None:
    assert dimse_refusal(error) == expected


def test_illegal_transition_is_0x0110_with_error_id_0xa710_ps3_4_F_7_2_2_3() -> None:
    refusal = dimse_refusal(ILLEGAL)
    assert (refusal.status, refusal.error_id) == (0x0110, 0xA710)
    assert MAY_NO_LONGER_BE_UPDATED == 0xA710


@pytest.mark.parametrize(
    ("status", "value"),
    [
        (PROCESSING_FAILURE, 0x0110),
        (MISSING_ATTRIBUTE, 0x0120),
        (INVALID_ATTRIBUTE_VALUE, 0x0106),
        (DUPLICATE_SOP_INSTANCE, 0x0111),
        (NO_SUCH_SOP_INSTANCE, 0x0112),
    ],
)
def test_dimse_statuses_used_by_refusals_ps3_7_C_4(status: int, value: int) -> None:
    assert status == value
