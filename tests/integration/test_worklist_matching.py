"""RAD-5 matching through DCMTK findscu (PS3.4 C.2.2.2 and K.2.2.1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.app import Broker
from support.dicompeer import findscu
from support.hl7peer import sample, send

SPS = "ScheduledProcedureStepSequence[0]."


@pytest.fixture
def two_orders(broker: Broker) -> Broker:
    send(
        broker.hl7.port,
        sample("rad-2-placer-order/orm_o01_nw.hl7"),
        sample(
            "rad-2-placer-order/orm_o01_nw.hl7",
            ORM0001="ORM0009",
            PO1001="PO2001",
            FO1001="FO2001",
            ACC1001="ACC2001",
            RP1001="RP2001",
            SPS1001="SPS2001",
            PAT001="PAT002",
            **{"DOE^JOHN^Q": "ROE^JANE", "20261123100000": "20261124143000", "9999.1.1001": "9999.1.2001"},
        ),
    )
    return broker


@pytest.mark.parametrize(
    ("keys", "accessions"),
    [
        pytest.param([], ["ACC1001", "ACC2001"], id="universal-C.2.2.2.3"),
        pytest.param(["PatientName=DOE*"], ["ACC1001"], id="PN-wildcard-star-C.2.2.2.4"),
        pytest.param(["PatientName=?OE^JANE"], ["ACC2001"], id="PN-wildcard-question-C.2.2.2.4"),
        pytest.param(["PatientName=DOE"], [], id="PN-single-value-is-exact-C.2.2.2.1"),
        pytest.param(["PatientID=PAT002"], ["ACC2001"], id="patient-id-single-value"),
        pytest.param(["AccessionNumber=ACC1001"], ["ACC1001"], id="accession-single-value"),
        pytest.param([f"{SPS}Modality=CT"], ["ACC1001", "ACC2001"], id="modality-in-sequence-C.2.2.2.6"),
        pytest.param([f"{SPS}Modality=MR"], [], id="modality-no-match"),
        pytest.param([f"{SPS}ScheduledStationAETitle=CT01"], ["ACC1001", "ACC2001"], id="station-ae"),
        pytest.param([f"{SPS}ScheduledProcedureStepStartDate=20261124"], ["ACC2001"], id="date-single-C.2.2.2.5"),
        pytest.param([f"{SPS}ScheduledProcedureStepStartDate=20261101-20261123"], ["ACC1001"], id="date-range"),
        pytest.param([f"{SPS}ScheduledProcedureStepStartDate=20261124-"], ["ACC2001"], id="date-open-end"),
        pytest.param([f"{SPS}ScheduledProcedureStepStartDate=-20261123"], ["ACC1001"], id="date-open-start"),
        pytest.param(
            [
                f"{SPS}ScheduledProcedureStepStartDate=20261123-20261124",
                f"{SPS}ScheduledProcedureStepStartTime=1200-1500",
            ],
            ["ACC2001"],
            id="date-time-combined-C.2.2.2.5.1",
        ),
    ],
)
def test_rad5_matching(two_orders: Broker, tmp_path: Path, keys: list[str], accessions: list[str]) -> None:
    asked = {k.split("=")[0] for k in keys}
    returned = [k for k in ("AccessionNumber", f"{SPS}Modality") if k not in asked]
    answers = findscu(two_orders.dicom.port, [*keys, *returned], tmp_path)
    assert sorted(a.AccessionNumber for a in answers) == accessions


def test_answer_holds_only_requested_keys_K_6_1(two_orders: Broker, tmp_path: Path) -> None:
    [answer] = findscu(two_orders.dicom.port, ["AccessionNumber=ACC1001", "PatientSex", "AdmissionID"], tmp_path)
    assert sorted(e.keyword for e in answer) == ["AccessionNumber", "AdmissionID", "PatientSex"]
    assert answer.PatientSex == "M"
    assert answer.AdmissionID == ""
