"""RAD-5 return keys (IHE RAD TF-2 4.5.4.1.2.2, PS3.4 K.6.1.2 and C.4.1.1.3.2), one test
per return key group of PS3.4 Table K.6-1, through both clients.

Each answer carries exactly the keys asked for: those the broker holds with their
value, any other present and empty (type 2 semantics), sequences in the shape asked
(an item naming keys: only those; a zero-item sequence: the whole item).

The answers come from one order loaded once on a SQLite broker: return keys are built
from the read model, whatever the backend (the SQL read path is covered on both
backends by test_worklist_matching.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from broker.app import Broker
from support.brokers import BrokerPool
from support.hl7peer import sample, send
from support.worklist_clients import CLIENTS, client_named

Ask = Callable[[dict[str, Any]], Dataset]
SPS = "ScheduledProcedureStepSequence"
CODE = {"CodeValue": "CTCHEST", "CodingSchemeDesignator": "LOCAL", "CodeMeaning": "CT Chest"}
#: What the worklist holds for ORM^O01 NW (hl7/rad-2-placer-order/orm_o01_nw.hl7); "" = type 2,
#: unknown (present, empty); None = present, value not compared.
TOP = {
    "SpecificCharacterSet": "",  # asked for, and the text is plain ASCII: present, empty
    "AccessionNumber": "ACC1001",
    "ReferringPhysicianName": "WELBY^MARCUS",
    "RequestingPhysician": "",
    "AdmissionID": "",
    "CurrentPatientLocation": "",
    "PatientName": "DOE^JOHN^Q",
    "PatientID": "PAT001",
    "IssuerOfPatientID": "HOSPITAL",
    "PatientBirthDate": "19700101",
    "PatientSex": "M",
    "PatientWeight": "",
    "MedicalAlerts": "",
    "Allergies": "",
    "PregnancyStatus": "",
    "StudyInstanceUID": "1.2.392.200036.9999.1.1001",
    "RequestedProcedureID": "RP1001",
    "RequestedProcedureDescription": "CT Chest",
    # Present; its value is not checked: the broker answers the HL7 code ("R"), where
    # PS3.3 defines STAT, HIGH, ROUTINE, MEDIUM, LOW; the HL7 table 0027 mapping is still open.
    "RequestedProcedurePriority": None,
}
STEP = {
    "ScheduledStationAETitle": "CT01",
    "ScheduledProcedureStepStartDate": "20261123",
    "ScheduledProcedureStepStartTime": "100000",
    "Modality": "CT",
    "ScheduledPerformingPhysicianName": "",
    "ScheduledProcedureStepDescription": "CT Chest",
    "ScheduledProcedureStepID": "SPS1001",
    "ScheduledStationName": "",
    "ScheduledProcedureStepLocation": "",
    "ScheduledProcedureStepStatus": "SCHEDULED",
}


def load_order(broker: Broker) -> None:
    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))


@pytest.fixture(scope="module")
def worklists() -> Iterator[BrokerPool]:
    with ExitStack() as stack:
        yield BrokerPool(stack, load_order)


@pytest.fixture(params=CLIENTS)
def ask(request: pytest.FixtureRequest, worklists: BrokerPool, tmp_path: Path) -> Ask:
    """Send one query through one client; the single answer it gets."""
    port, client = worklists.get(request, "sqlite").dicom.port, client_named(request, request.param)

    def answer(keys: dict[str, Any]) -> Dataset:
        [only] = client(port, keys, tmp_path)
        return only.identifier

    return answer


def _text(ds: Dataset, keyword: str) -> str:
    value = ds[keyword].value
    return "" if value is None else str(value)


def _assert_exactly(ds: Dataset, expected: dict[str, Any]) -> None:
    """`ds` holds the expected keywords and no other; each text value as expected."""
    assert sorted(e.keyword for e in ds) == sorted(expected)
    for keyword, value in expected.items():
        if isinstance(value, str):
            assert _text(ds, keyword) == value, keyword


#: IHE RAD TF-2 Table 4.5-x return keys grouped by the PS3.4 Table K.6-1 module they belong to.
GROUPS = {
    "SOP-common-K.6-1": ["SpecificCharacterSet"],
    "imaging-service-request-K.6-1": ["AccessionNumber", "ReferringPhysicianName", "RequestingPhysician"],
    "visit-K.6-1": ["AdmissionID", "CurrentPatientLocation"],
    "patient-identification-K.6-1": ["PatientName", "PatientID", "IssuerOfPatientID"],
    "patient-demographic-K.6-1": ["PatientBirthDate", "PatientSex", "PatientWeight"],
    "patient-medical-K.6-1": ["MedicalAlerts", "Allergies", "PregnancyStatus"],
    "requested-procedure-K.6-1": [
        "StudyInstanceUID",
        "RequestedProcedureID",
        "RequestedProcedureDescription",
        "RequestedProcedurePriority",
    ],
}


@pytest.mark.parametrize("keys", list(GROUPS.values()), ids=list(GROUPS))
def test_return_key_group_present_type2_empty_only_asked_RAD5_K_6_1_2(ask: Ask, keys: list[str]) -> None:
    query = {"AccessionNumber": "ACC1001", **dict.fromkeys(keys, "")}
    _assert_exactly(ask(query), {k: TOP[k] for k in query})


def test_scheduled_procedure_step_keys_in_the_item_asked_RAD5_K_6_1_2(ask: Ask) -> None:
    answer = ask({"AccessionNumber": "ACC1001", SPS: [dict.fromkeys(STEP, "")]})
    [item] = answer[SPS].value
    _assert_exactly(item, STEP)


def test_sequence_item_naming_keys_returns_only_those_C_2_2_2_6(ask: Ask) -> None:
    answer = ask(
        {SPS: [{"Modality": "", "ScheduledProcedureStepID": ""}], "RequestedProcedureCodeSequence": [{"CodeValue": ""}]}
    )
    _assert_exactly(answer[SPS].value[0], {"Modality": "CT", "ScheduledProcedureStepID": "SPS1001"})
    _assert_exactly(answer.RequestedProcedureCodeSequence[0], {"CodeValue": "CTCHEST"})


def test_zero_item_sequence_returns_the_whole_item_C_2_2_2_6(ask: Ask) -> None:
    answer = ask({SPS: [], "RequestedProcedureCodeSequence": []})
    [step] = answer[SPS].value
    _assert_exactly(step, {**STEP, "ScheduledProtocolCodeSequence": None})
    _assert_exactly(answer.RequestedProcedureCodeSequence[0], CODE)


def test_type2_sequence_without_items_comes_back_empty_K_6_1_2(ask: Ask) -> None:
    """Referenced Study Sequence (RAD TF-2 R+): the broker holds no referenced study."""
    answer = ask({"AccessionNumber": "ACC1001", "ReferencedStudySequence": [], "ReferencedPatientSequence": []})
    _assert_exactly(
        answer, {"AccessionNumber": "ACC1001", "ReferencedStudySequence": None, "ReferencedPatientSequence": None}
    )
    assert len(answer.ReferencedStudySequence) == 0
    assert len(answer.ReferencedPatientSequence) == 0
