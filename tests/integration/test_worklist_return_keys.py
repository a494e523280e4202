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
from support.dicompeer import findscu
from support.hl7peer import ack_code, sample, send
from support.worklist_clients import CLIENTS, client_named

Ask = Callable[[dict[str, Any]], Dataset]
SPS = "ScheduledProcedureStepSequence"
CODE = {"CodeValue": "CTCHEST", "CodingSchemeDesignator": "LOCAL", "CodeMeaning": "CT Chest"}
#: What the worklist holds for ORM^O01 NW (hl7/rad-2-placer-order/orm_o01_nw.hl7, with the
#: ordering provider, entering organization and visit number of ORDER_DETAILS); "" = type 2,
#: unknown (present, empty); None = present, value not compared; ABSENT = not in the answer.
ABSENT = object()
TOP = {
    # Asked for empty, and the text is plain ASCII: left out, never zero-length (PS3.4 C.2.2.2).
    "SpecificCharacterSet": ABSENT,
    "AccessionNumber": "ACC1001",
    "ReferringPhysicianName": "WELBY^MARCUS",
    "RequestingPhysician": "HOUSE^GREGORY",
    "RequestingService": "CARDIOLOGY",
    "PlacerOrderNumberImagingServiceRequest": "PO1001",
    "FillerOrderNumberImagingServiceRequest": "FO1001",
    "AdmissionID": "V1001",
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
    "RequestedProcedurePriority": "ROUTINE",  # HL7 "R" through the profile's table (PS3.3 C.4.11)
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


#: PV1-19 Visit Number, ORC-12 Ordering Provider, ORC-17 Entering Organization.
ORDER_DETAILS = {
    "REF01^WELBY^MARCUS": "REF01^WELBY^MARCUS|||||||||||V1001",
    "||SC||^^^20261123100000^^R": "||SC||^^^20261123100000^^R|||||ORD01^HOUSE^GREGORY|||||CARD^CARDIOLOGY",
}


def load_order(broker: Broker) -> None:
    [ack] = send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7", **ORDER_DETAILS))
    assert ack_code(ack) == "AA"


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
    """`ds` holds the expected keywords (but the ABSENT ones) and no other; each text
    value as expected."""
    assert sorted(e.keyword for e in ds) == sorted(k for k, v in expected.items() if v is not ABSENT)
    for keyword, value in expected.items():
        if isinstance(value, str):
            assert _text(ds, keyword) == value, keyword


#: IHE RAD TF-2 Table 4.5-x return keys grouped by the PS3.4 Table K.6-1 module they belong to.
GROUPS = {
    "SOP-common-K.6-1": ["SpecificCharacterSet"],
    "imaging-service-request-K.6-1": [
        "AccessionNumber",
        "ReferringPhysicianName",
        "RequestingPhysician",
        "RequestingService",
        "PlacerOrderNumberImagingServiceRequest",
        "FillerOrderNumberImagingServiceRequest",
    ],
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


def test_one_zero_length_item_returns_the_whole_item_C_2_2_2_6(ask: Ask) -> None:
    """#13 defect 6: a sequence holding one empty item (Orthanc's `[{}]`) asks for the
    whole item, nested sequences included, as a zero-item sequence does."""
    answer = ask({SPS: [{}], "RequestedProcedureCodeSequence": [{}]})
    [step] = answer[SPS].value
    _assert_exactly(step, {**STEP, "ScheduledProtocolCodeSequence": None})
    _assert_exactly(step.ScheduledProtocolCodeSequence[0], CODE)
    _assert_exactly(answer.RequestedProcedureCodeSequence[0], CODE)


def test_findscu_k_sequence_item_zero_returns_the_whole_item_C_2_2_2_6(
    worklists: BrokerPool, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The same through findscu's own key syntax: `-k Seq[0]` sends one zero-length item."""
    port = worklists.get(request, "sqlite").dicom.port
    [answer] = findscu(port, ["AccessionNumber=ACC1001", f"{SPS}[0]"], tmp_path)
    [step] = answer[SPS].value
    _assert_exactly(step, {**STEP, "ScheduledProtocolCodeSequence": None})


@pytest.mark.parametrize(
    ("asked", "answered"), [("", ABSENT), ("ISO_IR 100", "ISO_IR 100"), ("ISO_IR 192", "ISO_IR 192")]
)
def test_specific_character_set_only_with_a_value_C_2_2_2(ask: Ask, asked: str, answered: object) -> None:
    """#13 defect 7: a plain ASCII answer names the set the query named, or carries no
    (0008,0005): never a zero-length one."""
    answer = ask({"SpecificCharacterSet": asked, "PatientName": ""})
    _assert_exactly(answer, {"SpecificCharacterSet": answered, "PatientName": "DOE^JOHN^Q"})
