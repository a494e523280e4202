"""/metrics after real traffic: HL7 over MLLP, a DCMTK findscu query, dcmjs-dimse MPPS.
Each broker counts in its own registry: a second broker in the same process shows none
of the first one's traffic."""

from __future__ import annotations

from pathlib import Path

from support.dicompeer import findscu, mpps
from support.hl7peer import RisListener, sample, send
from support.measure import no_hang
from support.mpps import n_create, n_set_final
from support.web import client, metric, web_broker, web_port

STUDY = "1.2.392.200036.9999.1.1001"


def test_counters_move_with_real_traffic_per_broker(ris: RisListener, tmp_path: Path) -> None:
    with (
        web_broker(ris.port, f"sqlite:///{tmp_path / 'first.db'}") as first,
        web_broker(ris.port, f"sqlite:///{tmp_path / 'second.db'}") as second,
    ):
        unknown_patient = sample("rad-12-patient-update/adt_a08.hl7")
        send(first.hl7.port, unknown_patient, sample("rad-2-placer-order/orm_o01_nw.hl7"))
        findscu(first.dicom.port, ["PatientName", "AccessionNumber"], tmp_path)
        uid = mpps(first.dicom.port, "create", tmp_path, dataset=n_create("SPS1001", "ACC1001", "RP1001", STUDY))[
            "affectedSopInstanceUid"
        ]
        mpps(first.dicom.port, "set", tmp_path, uid=str(uid), dataset=n_set_final())
        again = mpps(first.dicom.port, "set", tmp_path, uid=str(uid), dataset=n_set_final("DISCONTINUED"))
        assert again["status"] == 0x0110
        with client(web_port(first)) as reader:
            text = reader.get("/metrics").text
        with client(web_port(second)) as reader:
            other = reader.get("/metrics").text

    assert metric(text, "broker_hl7_received_total", message_type="ORM^O01") == 1
    assert metric(text, "broker_hl7_acked_total", message_type="ORM^O01", code="AA") == 1
    assert metric(text, "broker_hl7_acked_total", message_type="ADT^A08", code="AE") == 1
    assert metric(text, "broker_hl7_errors_total", message_type="ADT^A08", code="AE") == 1
    assert metric(text, "broker_hl7_errors_total", message_type="ORM^O01", code="AA") == 0
    assert metric(text, "broker_cfind_total", status="0x0000") == 1
    assert metric(text, "broker_cfind_duration_seconds_count") == 1
    assert no_hang(metric(text, "broker_cfind_duration_seconds_sum"), "C-FIND duration in /metrics") > 0
    assert metric(text, "broker_mpps_total", operation="N-CREATE", status="IN PROGRESS") == 1
    assert metric(text, "broker_mpps_total", operation="N-SET", status="COMPLETED") == 1
    assert metric(text, "broker_mpps_total", operation="N-SET", status="refused") == 1
    assert "broker_outbox_depth" in text and "broker_outbox_oldest_pending_seconds" in text

    assert metric(other, "broker_hl7_received_total", message_type="ORM^O01") == 0
    assert metric(other, "broker_cfind_duration_seconds_count") == 0
    assert metric(other, "broker_mpps_total", operation="N-CREATE", status="IN PROGRESS") == 0
