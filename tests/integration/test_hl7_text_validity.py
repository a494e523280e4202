"""Text that contradicts its declared character set, or holds characters no value may
hold, is refused AE at intake with ERR naming the field; the raw message is kept
(#14 defects 4 and 5). Before, these were answered AA and reached the modality as
escape sequences and control characters. Values DICOM does not allow (PID-8 U/A/N,
PID-7 19701340) no longer reach the worklist."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from broker.app import Broker
from broker.store import tables as t
from support.dicompeer import findscu
from support.hl7peer import ack_code, sample, segment, send

A04 = "rad-1-patient-registration/adt_a04.hl7"
NW = "rad-2-placer-order/orm_o01_nw.hl7"


def _a04(msh18: str, name: bytes) -> bytes:
    return sample(A04).replace(b"|P|2.3.1", f"|P|2.3.1||||||{msh18}".encode()).replace(b"DOE^JOHN^Q", name)


@pytest.mark.parametrize(
    ("msh18", "name"),
    [
        ("UNICODE UTF-8", "山田^太郎".encode("iso2022_jp")),
        ("", "山田^太郎".encode("iso2022_jp")),
        ("8859/1", "山田^太郎".encode("shift_jis")),
        ("UNICODE UTF-8", "DOE^JO\u202eHN".encode()),
        ("UNICODE UTF-8", b"DOE\x00^JOHN"),
        ("UNICODE UTF-8", "\ufeffDOE^JOHN".encode()),
    ],
    ids=["iso2022jp-as-utf8", "iso2022jp-undeclared", "sjis-as-latin1", "rlo", "nul", "bom"],
)
def test_text_invalid_in_its_declared_set_is_AE_at_pid_5_and_kept(broker: Broker, msh18: str, name: bytes) -> None:
    message = _a04(msh18, name)
    [reply] = send(broker.hl7.port, message)
    assert ack_code(reply) == "AE"
    assert segment(reply, "ERR")[1].startswith("PID^1^5^102&")
    assert "at position" in segment(reply, "MSA")[3]
    with broker.engine.connect() as conn:
        row = conn.execute(select(t.inbound_messages)).one()
        patients = conn.execute(select(func.count()).select_from(t.patients)).scalar_one()
    assert (row.answer, row.error_location, row.raw, patients) == ("AE", "PID-5", message, 0)


@pytest.mark.parametrize("code", ["U", "A", "N"])
def test_pid_8_outside_dicom_reaches_the_worklist_as_O_14_defect_5(broker: Broker, code: str, tmp_path: Path) -> None:
    [reply] = send(broker.hl7.port, sample(NW).replace(b"|19700101|M\r", f"|19700101|{code}\r".encode()))
    assert ack_code(reply) == "AA"
    [answer] = findscu(broker.dicom.port, ["PatientID=PAT001", "PatientSex"], tmp_path)
    assert answer.PatientSex == "O"


def test_impossible_birth_date_is_AE_naming_pid_7_14_defect_5(broker: Broker) -> None:
    [reply] = send(broker.hl7.port, sample(NW).replace(b"|19700101|M\r", b"|19701340|M\r"))
    assert ack_code(reply) == "AE"
    assert segment(reply, "ERR")[1].startswith("PID^1^7^102&")
    with broker.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.orders)).scalar_one() == 0


def test_escapes_decoding_to_cr_lf_esc_are_AE_at_pid_5_segment_injection(broker: Broker) -> None:
    """`\\X0D\\` is valid HL7 text, but the CR it decodes to fits no DICOM PN (and would
    start a segment wherever the name is written again): refused at intake."""
    [reply] = send(broker.hl7.port, sample(NW).replace(b"DOE^JOHN", b"DOE\\X0D\\PID\\F\\1^JOHN"))
    assert ack_code(reply) == "AE"
    assert segment(reply, "ERR")[1].startswith("PID^1^5^102&")
    with broker.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.orders)).scalar_one() == 0
