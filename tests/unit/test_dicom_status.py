"""Named DIMSE statuses (broker/dicom/status.py) checked against pynetdicom's tables
(pynetdicom.status), so a name never drifts from the value PS3.7 C / PS3.4 give it."""

from __future__ import annotations

import pytest
from pynetdicom import status as pnd

from broker.dicom import status

# name → (pynetdicom table, category, description or a part of it)
EXPECTED = {
    "SUCCESS": (pnd.GENERAL_STATUS, "Success", ""),
    "CANCEL": (pnd.GENERAL_STATUS, "Cancel", ""),
    "PROCESSING_FAILURE": (pnd.GENERAL_STATUS, "Failure", "Processing Failure"),
    "DUPLICATE_SOP_INSTANCE": (pnd.GENERAL_STATUS, "Failure", "Duplication SOP Instance"),
    "NO_SUCH_SOP_INSTANCE": (pnd.GENERAL_STATUS, "Failure", "No Such SOP Instance"),
    "INVALID_ATTRIBUTE_VALUE": (pnd.GENERAL_STATUS, "Failure", "Invalid Attribute Value"),
    "MISSING_ATTRIBUTE": (pnd.GENERAL_STATUS, "Failure", "Missing Attribute"),
    "MISSING_ATTRIBUTE_VALUE": (pnd.GENERAL_STATUS, "Failure", "Missing Attribute Value"),
    "NO_SUCH_ATTRIBUTE": (pnd.GENERAL_STATUS, "Failure", "No Such Attribute"),
    "RESOURCE_LIMITATION": (pnd.GENERAL_STATUS, "Failure", "Resource Limitation"),
    "PENDING": (pnd.MODALITY_WORKLIST_SERVICE_CLASS_STATUS, "Pending", "any Optional Keys were supported"),
    "PENDING_WARNING": (pnd.MODALITY_WORKLIST_SERVICE_CLASS_STATUS, "Pending", "Optional Keys were not supported"),
    "OUT_OF_RESOURCES": (pnd.MODALITY_WORKLIST_SERVICE_CLASS_STATUS, "Failure", "Out of resources"),
    "IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS": (
        pnd.MODALITY_WORKLIST_SERVICE_CLASS_STATUS,
        "Failure",
        "Identifier does not match SOP class",
    ),
    "UNABLE_TO_PROCESS": (pnd.MODALITY_WORKLIST_SERVICE_CLASS_STATUS, "Failure", "Unable to Process"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_status_matches_pynetdicom_table_ps3_7_C(name: str) -> None:
    table, category, description = EXPECTED[name]
    value = getattr(status, name)
    assert value in table, f"{name} = {value:#06x} is not in pynetdicom's table"
    assert table[value][0] == category
    assert description in table[value][1]
    if description == "":
        assert table[value][1] == ""


def test_processing_failure_is_0x0110_ps3_7_C_4_3() -> None:
    assert status.PROCESSING_FAILURE == 0x0110
    assert pnd.GENERAL_STATUS[0x0110] == ("Failure", "Processing Failure")


def test_mpps_n_services_use_general_statuses_ps3_4_F_7() -> None:
    for name in (
        "PROCESSING_FAILURE",
        "DUPLICATE_SOP_INSTANCE",
        "NO_SUCH_SOP_INSTANCE",
        "INVALID_ATTRIBUTE_VALUE",
        "MISSING_ATTRIBUTE",
    ):
        assert getattr(status, name) in pnd.PROCEDURE_STEP_STATUS


def test_every_named_status_is_checked() -> None:
    public = {n for n in dir(status) if n.isupper() and isinstance(getattr(status, n), int)}
    assert public == set(EXPECTED)


def test_status_values_are_unique() -> None:
    values = [getattr(status, n) for n in EXPECTED]
    assert len(values) == len(set(values))
