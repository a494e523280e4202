"""Orthanc as a second worklist client (#13 Deliver 7): it asks for a key sequence as
one zero-length item (`[{}]`, PS3.4 C.2.2.2.6: the whole item) and, with UTF-8 as its
default encoding, names ISO_IR 192 in its query. It shows ISO_IR 192 answers decoded,
but ISO 2022 answers as raw JIS bytes: the jahis profile must answer it in UTF-8.

The broker runs the jahis profile and holds the JAHIS ISO-2022-JP order
(YAMADA^TAROU=山田^太郎=ヤマダ^タロウ); Orthanc runs from a configuration of its own
(support/orthanc.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from broker.app import Broker
from support.brokers import module_broker
from support.hl7peer import ack_code, sample, send
from support.orthanc import Orthanc

JAHIS_ORM = "rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"
NAME = "YAMADA^TAROU=山田^太郎=ヤマダ^タロウ"
#: Every Scheduled Procedure Step attribute the broker holds (the whole item).
WHOLE_STEP = {
    "Modality": "CR",
    "ScheduledStationAETitle": "CR01",
    "ScheduledProcedureStepStartDate": "20261123",
    "ScheduledProcedureStepStartTime": "093000",
    "ScheduledPerformingPhysicianName": "",
    "ScheduledProcedureStepDescription": "胸部単純撮影",
    "ScheduledProtocolCodeSequence": [
        {"CodeValue": "GX.01.00", "CodingSchemeDesignator": "JJ1017", "CodeMeaning": "胸部単純撮影"}
    ],
    "ScheduledProcedureStepID": "JPSPS0001",
    "ScheduledStationName": "",
    "ScheduledProcedureStepLocation": "",
    "ScheduledProcedureStepStatus": "SCHEDULED",
}
QUERY: dict[str, Any] = {
    "PatientName": "",
    "PatientID": "",
    "AccessionNumber": "",
    "RequestedProcedurePriority": "",
    "PlacerOrderNumberImagingServiceRequest": "",
    "ScheduledProcedureStepSequence": [{}],
}


@pytest.fixture(scope="module")
def jahis_broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    with module_broker(request, "sqlite", profile="jahis") as broker:
        [ack] = send(broker.hl7.port, sample(JAHIS_ORM))
        assert ack_code(ack) == "AA"
        yield broker


@pytest.fixture(scope="module")
def orthanc(jahis_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    with Orthanc(tmp_path_factory.mktemp("orthanc"), {"broker": ("BROKER", jahis_broker.dicom.port)}) as peer:
        yield peer


@pytest.fixture(scope="module")
def answers(orthanc: Orthanc) -> list[dict[str, Any]]:
    return orthanc.find_worklist("broker", QUERY)


def test_orthanc_sends_one_zero_length_item_and_names_iso_ir_192(
    orthanc: Orthanc, answers: list[dict[str, Any]]
) -> None:
    """What Orthanc put on the wire (its --trace-dicom log), so the tests below test
    the `[{}]` form and the query-named character set."""
    sent = orthanc.logged()
    assert re.search(r"\(0008,0005\) CS \[ISO_IR 192\]", sent)
    one_empty_item = r"\(0040,0100\) SQ \(Sequence with explicit length #=1\).*\n"
    one_empty_item += r".*\(fffe,e000\) na \(Item with explicit length #=0\)"
    assert re.search(one_empty_item, sent)


def test_orthanc_zero_length_item_gets_the_whole_scheduled_step_C_2_2_2_6(answers: list[dict[str, Any]]) -> None:
    """#13 defect 6: `[{}]` came back as an empty item."""
    [answer] = answers
    [step] = answer["ScheduledProcedureStepSequence"]
    assert step == WHOLE_STEP


def test_orthanc_shows_the_japanese_name_of_an_iso_ir_192_answer_ps3_5_6_1_2_3(answers: list[dict[str, Any]]) -> None:
    """#13: the jahis profile answered a query naming ISO_IR 192 in ISO 2022 bytes,
    which Orthanc shows as raw JIS."""
    [answer] = answers
    assert answer["SpecificCharacterSet"] == "ISO_IR 192"
    assert answer["PatientName"] == NAME
    assert (answer["PatientID"], answer["AccessionNumber"]) == ("JP0001", "JPACC0001")
    assert answer["RequestedProcedurePriority"] == "ROUTINE"  # HL7 "R" (ORC-7.6)
    assert answer["PlacerOrderNumberImagingServiceRequest"] == "JPPO0001"
