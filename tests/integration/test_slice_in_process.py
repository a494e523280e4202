"""The Scheduled Workflow path through real sockets against the in-process broker:
HL7 over MLLP, DCMTK findscu, dcmjs-dimse MPPS, and a real MLLP RIS listener."""

from __future__ import annotations

from pathlib import Path

from broker.app import Broker
from support.brokers import make_config
from support.dicompeer import findscu, mpps
from support.hl7peer import RisListener, ack_code, sample, segment, send
from support.mpps import n_create

STATION_DAY_KEYS = [
    "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261123",
    "ScheduledProcedureStepSequence[0].Modality",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
    "PatientName",
    "PatientID",
    "AccessionNumber",
    "StudyInstanceUID",
    "RequestedProcedureID",
]


def test_order_appears_on_worklist_rad2_rad5(broker: Broker, tmp_path: Path) -> None:
    acks = send(
        broker.hl7.port, sample("rad-1-patient-registration/adt_a04.hl7"), sample("rad-2-placer-order/orm_o01_nw.hl7")
    )
    assert [ack_code(a) for a in acks] == ["AA", "AA"]

    [item] = findscu(broker.dicom.port, STATION_DAY_KEYS, tmp_path)
    assert str(item.PatientName) == "DOE^JOHN^Q"
    assert item.PatientID == "PAT001"
    assert item.AccessionNumber == "ACC1001"
    assert item.StudyInstanceUID == "1.2.392.200036.9999.1.1001"
    assert item.RequestedProcedureID == "RP1001"
    step = item.ScheduledProcedureStepSequence[0]
    assert (step.ScheduledProcedureStepID, step.Modality, step.ScheduledStationAETitle) == ("SPS1001", "CT", "CT01")


def test_mpps_progress_reaches_ris_in_order_rad6_rad7_rad3(broker: Broker, ris: RisListener, tmp_path: Path) -> None:
    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
    reference = {
        "ScheduledStepAttributesSequence": [
            {
                "AccessionNumber": "ACC1001",
                "RequestedProcedureID": "RP1001",
                "ScheduledProcedureStepID": "SPS1001",
                "StudyInstanceUID": "1.2.392.200036.9999.1.1001",
            }
        ],
        "PatientName": "DOE^JOHN^Q",
        "PatientID": "PAT001",
        "PerformedStationAETitle": "CT01",
        "PerformedProcedureStepID": "PPS1",
        "PerformedProcedureStepStartDate": "20261123",
        "PerformedProcedureStepStartTime": "100500",
        "Modality": "CT",
    }
    created = mpps(
        broker.dicom.port, "create", tmp_path, dataset={**reference, "PerformedProcedureStepStatus": "IN PROGRESS"}
    )
    assert created["status"] == 0
    uid = str(created["affectedSopInstanceUid"])
    done = mpps(
        broker.dicom.port,
        "set",
        tmp_path,
        uid=uid,
        dataset={
            "PerformedProcedureStepStatus": "COMPLETED",
            "PerformedProcedureStepEndDate": "20261123",
            "PerformedProcedureStepEndTime": "101500",
        },
    )
    assert done["status"] == 0

    first, second = ris.wait_for(2)
    assert [segment(m, "ORC")[1] for m in (first, second)] == ["SC", "SC"]
    assert [segment(m, "ORC")[5] for m in (first, second)] == ["IP", "CM"]
    assert segment(second, "ORC")[2] == "PO1001^RIS"
    assert segment(second, "OBR")[18] == "ACC1001"
    obr = segment(second, "OBR")  # performed times and station from the MPPS
    assert (obr[7], obr[8], obr[21]) == ("20261123100500", "20261123101500", "CT01")

    again = mpps(broker.dicom.port, "set", tmp_path, uid=uid, dataset={"PerformedProcedureStepStatus": "DISCONTINUED"})
    assert (again["status"], again["errorId"]) == (0x0110, 0xA710)
    assert again["errorComment"]


def test_status_in_omg_o19_form_when_the_profile_says_swf_b(
    database_url: str, ris: RisListener, tmp_path: Path
) -> None:
    profile = tmp_path / "site.yaml"
    profile.write_text("name: site\nextends: ihe-swf\nstatus_out:\n  message_type: OMG^O19\n  version: 2.5.1\n")
    broker = Broker(make_config(ris.port, database_url=database_url, profile=str(profile)))
    broker.start()
    try:
        send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
        create = n_create("SPS1001", "ACC1001", "RP1001", "1.2.392.200036.9999.1.1001")
        assert mpps(broker.dicom.port, "create", tmp_path, dataset=create)["status"] == 0
        [status] = ris.wait_for(1)
    finally:
        broker.stop()
    msh = segment(status, "MSH")
    assert (msh[9], msh[12], segment(status, "ORC")[5]) == ("OMG^O19^OMG_O19", "2.5.1", "IP")
