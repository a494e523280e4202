"""Every accepted sample in `hl7/` drives the broker, and a real C-FIND (DCMTK findscu)
shows the worklist its trigger event requires."""

from __future__ import annotations

from pathlib import Path

from broker.app import Broker
from support.dicompeer import findscu
from support.hl7peer import ack_code, sample, send

SPS = "ScheduledProcedureStepSequence[0]."
KEYS = [
    "PatientID",
    "PatientName",
    "AccessionNumber",
    "RequestedProcedureID",
    "StudyInstanceUID",
    f"{SPS}ScheduledProcedureStepID",
    f"{SPS}ScheduledStationAETitle",
    f"{SPS}ScheduledStationName",
    f"{SPS}ScheduledProcedureStepLocation",
    f"{SPS}Modality",
    f"{SPS}ScheduledProcedureStepStartDate",
    f"{SPS}ScheduledProcedureStepStartTime",
    f"{SPS}ScheduledProcedureStepDescription",
]


def _apply(broker: Broker, *names: str) -> None:
    acks = send(broker.hl7.port, *(sample(name) for name in names))
    assert [ack_code(a) for a in acks] == ["AA"] * len(names)


def _worklist(broker: Broker, tmp_path: Path) -> list:  # type: ignore[type-arg]
    return findscu(broker.dicom.port, KEYS, tmp_path)


def test_adt_a04_registers_without_worklist_item_rad1(broker: Broker, tmp_path: Path) -> None:
    _apply(broker, "rad-1-patient-registration/adt_a04.hl7")
    assert _worklist(broker, tmp_path) == []


def test_adt_a08_name_shows_in_next_cfind_rad12(broker: Broker, tmp_path: Path) -> None:
    _apply(broker, "rad-2-placer-order/orm_o01_nw.hl7", "rad-12-patient-update/adt_a08.hl7")
    [item] = _worklist(broker, tmp_path)
    assert str(item.PatientName) == "DOE^JONATHAN^Q"


def test_adt_a40_moves_steps_to_surviving_patient_rad12(broker: Broker, tmp_path: Path) -> None:
    prior_order = sample("rad-2-placer-order/orm_o01_nw.hl7", PAT001="PAT009", **{"DOE^JOHN^Q": "DOE^J"})
    assert ack_code(send(broker.hl7.port, prior_order)[0]) == "AA"
    _apply(broker, "rad-1-patient-registration/adt_a04.hl7", "rad-12-patient-update/adt_a40.hl7")
    [item] = _worklist(broker, tmp_path)
    assert (item.PatientID, str(item.PatientName), item.AccessionNumber) == ("PAT001", "DOE^JOHN^Q", "ACC1001")
    [again] = send(broker.hl7.port, sample("rad-12-patient-update/adt_a40.hl7", ADT0040="ADT0041"))
    assert ack_code(again) == "AE"  # the prior record is gone: merging it twice is refused


def test_orm_xo_changes_time_and_procedure_rad2(broker: Broker, tmp_path: Path) -> None:
    _apply(broker, "rad-2-placer-order/orm_o01_nw.hl7", "rad-2-placer-order/orm_o01_xo.hl7")
    [item] = _worklist(broker, tmp_path)
    step = item.ScheduledProcedureStepSequence[0]
    assert (step.ScheduledProcedureStepStartTime, step.ScheduledProcedureStepDescription) == ("143000", "CT Abdomen")
    assert (item.AccessionNumber, step.ScheduledProcedureStepID) == ("ACC1001", "SPS1001")


def test_orm_dc_removes_item_rad2(broker: Broker, tmp_path: Path) -> None:
    _apply(broker, "rad-2-placer-order/orm_o01_nw.hl7", "rad-2-placer-order/orm_o01_dc.hl7")
    assert _worklist(broker, tmp_path) == []


def test_omg_o19_places_order_with_tq1_start_swf_b(broker: Broker, tmp_path: Path) -> None:
    _apply(broker, "rad-2-placer-order/omg_o19_nw.hl7")
    [item] = _worklist(broker, tmp_path)
    step = item.ScheduledProcedureStepSequence[0]
    assert (step.Modality, step.ScheduledStationAETitle, step.ScheduledProcedureStepStartTime) == (
        "US",
        "US01",
        "120000",
    )
    assert item.AccessionNumber == "A00000001"


def test_omi_o23_one_step_per_ipc_swf_b(broker: Broker, tmp_path: Path) -> None:
    _apply(broker, "rad-4-procedure-scheduled/omi_o23_two_ipc.hl7")
    items = sorted(_worklist(broker, tmp_path), key=lambda i: i.RequestedProcedureID)
    seen = [
        (
            i.AccessionNumber,
            i.RequestedProcedureID,
            i.StudyInstanceUID,
            i.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID,
            i.ScheduledProcedureStepSequence[0].ScheduledStationAETitle,
            i.ScheduledProcedureStepSequence[0].ScheduledStationName,
            i.ScheduledProcedureStepSequence[0].ScheduledProcedureStepLocation,
            i.ScheduledProcedureStepSequence[0].ScheduledProcedureStepDescription,
        )
        for i in items
    ]
    assert seen == [
        ("ACC4001", "RP4001", "1.2.392.200036.9999.1.4001", "SPS4001A", "CT01", "CTSTATION1", "ROOM1", "CT Chest"),
        ("ACC4001", "RP4002", "1.2.392.200036.9999.1.4002", "SPS4002A", "CT02", "CTSTATION2", "ROOM2", "CT Abdomen"),
    ]


def test_one_requested_procedure_with_two_steps_two_items_with_protocol_codes(broker: Broker, tmp_path: Path) -> None:
    _apply(broker, "rad-4-procedure-scheduled/omi_o23_one_procedure_two_steps.hl7")
    keys = [*KEYS, f"{SPS}ScheduledProtocolCodeSequence", "RequestedProcedureCodeSequence"]
    items = sorted(
        findscu(broker.dicom.port, keys, tmp_path),
        key=lambda i: i.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID,
    )
    assert [(i.RequestedProcedureID, i.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID) for i in items] == [
        ("RP5001", "SPS5001A"),
        ("RP5001", "SPS5001B"),
    ]
    protocols = [i.ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence[0].CodeValue for i in items]
    assert protocols == ["CTNC", "CTCE"]
    assert {i.RequestedProcedureCodeSequence[0].CodeValue for i in items} == {"CTCAP"}
