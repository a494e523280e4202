"""HL7 intake over a real MLLP socket: ACK after commit, refusals with ERR, raw kept,
duplicates answered without being applied twice, the listener always serving on."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from broker.app import Broker
from broker.hl7.mllp import END
from broker.store import tables as t
from support.dicompeer import findscu
from support.hl7peer import ack_code, sample, segment, send

NW = "rad-2-placer-order/orm_o01_nw.hl7"


def _count(broker: Broker, table: object) -> int:
    with broker.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_missing_patient_id_gets_AE_with_ERR_naming_PID_3_and_is_kept(broker: Broker) -> None:
    bad = sample(NW, **{"PID|1||PAT001^^^HOSPITAL|": "PID|1|||", "ORM0001": "BAD0001"})
    [reply] = send(broker.hl7.port, bad)
    assert ack_code(reply) == "AE"
    assert segment(reply, "MSA")[2] == "BAD0001"
    assert segment(reply, "ERR")[1] == "PID^1^3^101&Required field missing&HL70357"
    with broker.engine.connect() as conn:
        row = conn.execute(select(t.inbound_messages).where(t.inbound_messages.c.control_id == "BAD0001")).one()
    assert (row.answer, row.error_code, row.error_location, row.raw) == ("AE", "101", "PID-3.1", bad)
    assert _count(broker, t.orders) == 0


def test_unsupported_message_type_gets_AR_200(broker: Broker) -> None:
    [reply] = send(broker.hl7.port, sample(NW, **{"ORM^O01": "ORU^R01"}))
    assert ack_code(reply) == "AR"
    assert segment(reply, "ERR")[1].endswith("200&Unsupported message type&HL70357")


def test_garbage_then_valid_message_listener_keeps_serving(broker: Broker) -> None:
    """No MSH: AE (cannot be read). MSH without MSH-9: AR (message type not acceptable)."""
    replies = send(broker.hl7.port, b"this is not HL7 at all", b"MSH|^~\\&|X", sample(NW))
    assert [ack_code(r) for r in replies] == ["AE", "AR", "AA"]
    assert _count(broker, t.inbound_messages) == 3


def test_oversize_frame_closes_connection_but_listener_serves_next(broker: Broker) -> None:
    with socket.create_connection(("127.0.0.1", broker.hl7.port), timeout=10) as sock:
        sock.sendall(b"\x0b" + b"X" * (broker.config.hl7.max_frame_bytes + 10) + END)
        assert sock.recv(100) == b""
    [reply] = send(broker.hl7.port, sample(NW))
    assert ack_code(reply) == "AA"


def test_duplicate_control_id_same_answer_applied_once(broker: Broker) -> None:
    first, second = send(broker.hl7.port, sample(NW), sample(NW))
    assert ack_code(first) == ack_code(second) == "AA"
    assert segment(first, "MSA") == segment(second, "MSA")
    assert _count(broker, t.orders) == 1
    assert _count(broker, t.inbound_messages) == 1


def test_same_placer_order_new_control_id_is_AE_205(broker: Broker) -> None:
    first, second = send(broker.hl7.port, sample(NW), sample(NW, ORM0001="ORM0001B"))
    assert (ack_code(first), ack_code(second)) == ("AA", "AE")
    assert "205&Duplicate key identifier" in segment(second, "ERR")[1]


def test_order_without_identifiers_gets_them_assigned(broker: Broker, tmp_path: Path) -> None:
    [reply] = send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7"))
    assert ack_code(reply) == "AA"
    [item] = findscu(
        broker.dicom.port,
        [
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=MR01",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
            "AccessionNumber",
            "StudyInstanceUID",
            "RequestedProcedureID",
        ],
        tmp_path,
    )
    assert item.AccessionNumber == "A00000001"
    assert item.RequestedProcedureID == "RP00000001"
    assert item.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID == "SPS00000001"
    assert item.StudyInstanceUID.startswith("1.2.392.200036.9999.7.")


def test_cancel_removes_order_from_worklist_rad2_ca(broker: Broker, tmp_path: Path) -> None:
    keys = ["ScheduledProcedureStepSequence[0].Modality=MR", "AccessionNumber"]
    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7"))
    assert len(findscu(broker.dicom.port, keys, tmp_path)) == 1
    [reply] = send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_ca.hl7"))
    assert ack_code(reply) == "AA"
    assert findscu(broker.dicom.port, keys, tmp_path) == []


def test_cancel_of_unknown_order_is_AE_204(broker: Broker) -> None:
    [reply] = send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_ca.hl7"))
    assert ack_code(reply) == "AE"
    assert "204&Unknown key identifier" in segment(reply, "ERR")[1]


def test_update_of_unknown_patient_is_AE_then_applies_after_registration(broker: Broker) -> None:
    a08 = sample("rad-12-patient-update/adt_a08.hl7")
    a04 = sample("rad-1-patient-registration/adt_a04.hl7")
    replies = send(broker.hl7.port, a08, a04, sample("rad-12-patient-update/adt_a08.hl7", ADT0002="ADT0003"))
    assert [ack_code(r) for r in replies] == ["AE", "AA", "AA"]
    with broker.engine.connect() as conn:
        name = conn.execute(text("select name_alphabetic from patients")).scalar_one()
    assert name == "DOE^JONATHAN^Q"


def test_ack_is_framed_mllp(broker: Broker) -> None:
    with socket.create_connection(("127.0.0.1", broker.hl7.port), timeout=10) as sock:
        sock.sendall(b"\x0b" + sample(NW) + END)
        raw = b""
        while END not in raw:
            raw += sock.recv(4096)
    assert raw.startswith(b"\x0bMSH|") and raw.endswith(END)


def test_reused_control_id_with_changed_body_is_AE_205_and_kept_r4(broker: Broker) -> None:
    changed = sample(NW, PO1001="PO9999")
    first, second, third = send(broker.hl7.port, sample(NW), changed, changed)
    assert [ack_code(r) for r in (first, second, third)] == ["AA", "AE", "AE"]
    assert segment(second, "MSA")[2] == "ORM0001"
    assert "205&Duplicate key identifier" in segment(second, "ERR")[1]
    assert _count(broker, t.orders) == 1
    with broker.engine.connect() as conn:
        raws = conn.execute(select(t.inbound_messages.c.raw).order_by(t.inbound_messages.c.id)).scalars().all()
    assert raws == [sample(NW), changed]


def test_a11_cancels_registration_only_without_orders_rad12(broker: Broker) -> None:
    a11 = "rad-12-patient-update/adt_a11.hl7"
    replies = send(
        broker.hl7.port,
        sample("rad-1-patient-registration/adt_a04.hl7"),
        sample(a11),
        sample(a11, ADT0011="ADT0012"),
    )
    assert [ack_code(r) for r in replies] == ["AA", "AA", "AE"]  # the second: patient already gone
    [ordered, refused] = send(broker.hl7.port, sample(NW), sample(a11, ADT0011="ADT0013"))
    assert (ack_code(ordered), ack_code(refused)) == ("AA", "AE")
    assert "206&Application record locked" in segment(refused, "ERR")[1]


def test_order_answered_with_orr_o02_reporting_filler_number_rad2(broker: Broker) -> None:
    nw, ca = send(
        broker.hl7.port,
        sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7"),
        sample("rad-2-placer-order/orm_o01_ca.hl7"),
    )
    assert segment(nw, "MSH")[9] == "ORR^O02^ORR_O02"  # v2.3.1 has the message structure
    assert segment(nw, "ORC")[1:4] == ["OK", "PO1002^RIS", "A00000001"]
    assert segment(nw, "OBR")[2:5] == ["PO1002^RIS", "A00000001", "MRHEAD^MR Head^LOCAL"]  # ORC needs its OBR
    assert segment(ca, "ORC")[1:3] == ["CR", "PO1002^RIS"]
    [refused] = send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_ca.hl7", ORM0003="ORM0004"))
    assert (ack_code(refused), segment(refused, "ORC")[1]) == ("AE", "UC")


def test_omg_answered_with_org_o20_swf_b(broker: Broker) -> None:
    [reply] = send(broker.hl7.port, sample("rad-2-placer-order/omg_o19_nw.hl7"))
    assert segment(reply, "MSH")[9] == "ORG^O20^ORG_O20"
    assert segment(reply, "ORC")[1] == "OK"


def test_adt_still_answered_with_general_ack(broker: Broker) -> None:
    [reply] = send(broker.hl7.port, sample("rad-1-patient-registration/adt_a04.hl7"))
    assert segment(reply, "MSH")[9] == "ACK^A04^ACK"


@pytest.mark.parametrize(
    ("old", "new", "location"),
    [
        ("ACC1001", "A" * 17, "OBR^1^18"),
        ("SPS1001", "S" * 17, "OBR^1^20"),
        ("|CT|", "|" + "M" * 17 + "|", "OBR^1^24"),
        ("PAT001", "P" * 65, "PID^1^3"),
    ],
)
def test_value_longer_than_dicom_allows_is_AE_naming_the_field(
    broker: Broker, old: str, new: str, location: str
) -> None:
    """Refused (AE, not AR): resending it could never succeed (PS3.5 Table 6.2-1)."""
    [reply] = send(broker.hl7.port, sample(NW, **{old: new}))
    assert ack_code(reply) == "AE"
    assert segment(reply, "ERR")[1].startswith(f"{location}^102&Data type error")
    assert _count(broker, t.orders) == 0


def test_control_id_of_199_characters_is_kept_v2_5(broker: Broker) -> None:
    [reply] = send(broker.hl7.port, sample(NW, ORM0001="C" * 199))
    assert (ack_code(reply), segment(reply, "MSA")[2]) == ("AA", "C" * 199)
