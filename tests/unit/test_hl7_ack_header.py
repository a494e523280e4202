"""ACK rendering (broker/hl7/ack.py) and the raw MSH reader (broker/hl7/header.py).

HL7 v2 original-mode acknowledgement: MSA-1 code, MSA-2 = the message's MSH-10, sender
and receiver swapped. ERR is ERR-1 ELD in v2.3.1 and ERR-2/3/4 from v2.5.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from broker.domain.ports import InboundRecord
from broker.hl7.ack import render_ack
from broker.hl7.header import MessageHeader
from broker.mapping.hl7_out import Hl7Writer

NOW = datetime(2026, 11, 23, 8, 10, 0)
BROKER = ("BROKER", "RADIOLOGY")


def render(header: MessageHeader, record: InboundRecord) -> str:
    return render_ack(header, record, NOW, BROKER, Hl7Writer())


def _raw(version: str, msh9: str = "ORM^O01", msh18: str = "") -> bytes:
    return (
        f"MSH|^~\\&|RIS|HOSPITAL|BROKER|RADIOLOGY|20261123081000||{msh9}|MSG0001|P|{version}||||||{msh18}\r"
        "PID|1||PAT001\r"
    ).encode()


def _segments(ack: str) -> dict[str, list[str]]:
    assert ack.endswith("\r")
    return {line[:3]: line.split("|") for line in ack.rstrip("\r").split("\r")}


def _record(answer: str = "AA", code: str = "", location: str = "", error: str = "") -> InboundRecord:
    return InboundRecord("RIS|HOSPITAL", "MSG0001", "ORM^O01", b"", answer, code, location, error)


def test_header_reads_msh_fields_hl7_2_15_9() -> None:
    header = MessageHeader.read(b"\x0b" + _raw("2.3.1", "ADT^A04^ADT_A01", "~ISO IR87"))
    assert header == MessageHeader(
        sending_application="RIS",
        sending_facility="HOSPITAL",
        receiving_application="BROKER",
        receiving_facility="RADIOLOGY",
        message_type="ADT",
        trigger_event="A04",
        control_id="MSG0001",
        version="2.3.1",
        charset="~ISO IR87",
    )
    assert header.sender == "RIS|HOSPITAL"


def test_header_takes_first_component_of_hd_fields_hl7_2_15_9() -> None:
    raw = b"MSH|^~\\&|RIS^1.2.3^ISO|HOSP^9^L|BROKER|RAD|20261123||ORM^O01|C1|P|2.5.1^JPN"
    header = MessageHeader.read(raw)
    assert (header.sending_application, header.sending_facility, header.version) == ("RIS", "HOSP", "2.5.1")


def test_header_uses_declared_separators_hl7_2_5() -> None:
    header = MessageHeader.read(b"MSH#$~\\&#RIS#HOSP#BROKER#RAD#20261123##ORM$O01#C7#P#2.3.1")
    assert (header.sending_application, header.message_type, header.trigger_event, header.control_id) == (
        "RIS",
        "ORM",
        "O01",
        "C7",
    )


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00\xff\xfe",
        b"MSH",
        b"MSH|^~",
        b"\x0b\x1c\r",
        b"PID|1||X\rMSH|^~\\&|A",
        b"MSH\xff\xfe\xfd\xfc\xfb\xfa\xf9",
    ],
)
def test_header_from_garbage_does_not_raise_and_is_empty(garbage: bytes) -> None:
    header = MessageHeader.read(garbage)
    assert (header.sending_application, header.control_id, header.message_type) == ("", "", "")
    assert header.version == "2.5.1"


def test_header_of_truncated_msh_keeps_what_is_there() -> None:
    header = MessageHeader.read(b"MSH|^~\\&|RIS|HOSP")
    assert (header.sending_application, header.sending_facility, header.control_id) == ("RIS", "HOSP", "")


@pytest.mark.parametrize("version", ["2.3.1", "2.5.1"])
def test_aa_ack_echoes_msh10_and_swaps_sender_receiver_hl7_2_9_2(version: str) -> None:
    header = MessageHeader.read(_raw(version))
    ack = render(header, _record())
    seg = _segments(ack)
    assert list(seg) == ["MSH", "MSA"]  # no ERR on AA
    msh = seg["MSH"]
    assert msh[1] == "^~\\&"
    assert msh[2:6] == ["BROKER", "RADIOLOGY", "RIS", "HOSPITAL"]  # MSH-3..6 swapped
    assert msh[6] == "20261123081000"  # MSH-7
    assert 0 < len(msh[9]) <= 20 and msh[9] != "MSG0001"  # MSH-10: its own control id
    assert msh[11] == version  # MSH-12 echoes the version
    assert seg["MSA"] == ["MSA", "AA", "MSG0001"]  # MSA-2 = MSH-10 of the message


@pytest.mark.parametrize(
    ("version", "msh9"),
    [("2.3", "ACK^O01"), ("2.3.1", "ACK^O01^ACK"), ("2.5.1", "ACK^O01^ACK"), ("2.5", "ACK^O01^ACK")],
)
def test_ack_message_type_per_version_hl7_2_9_2(version: str, msh9: str) -> None:
    assert _segments(render(MessageHeader.read(_raw(version)), _record()))["MSH"][8] == msh9


def test_ack_control_ids_are_unique_and_fit_st20_hl7_2_15_9_10() -> None:
    """Two senders' MSH-10 of 20 characters differing only at the end used to give the
    same ACK control ID (`ACK` + the first 17)."""
    ids = set()
    for tail in "ST":
        raw = f"MSH|^~\\&|RIS|H|B|R|20261123||ORM^O01|ABCDEFGHIJKLMNOPQRS{tail}|P|2.5.1".encode()
        ids.add(_segments(render(MessageHeader.read(raw), _record()))["MSH"][9])
    assert len(ids) == 2
    assert all(0 < len(i) <= 20 for i in ids)


def test_ack_echoes_msh18_hl7_2_15_9_18() -> None:
    msh = _segments(render(MessageHeader.read(_raw("2.5", msh18="UNICODE UTF-8")), _record()))["MSH"]
    assert msh[17] == "UNICODE UTF-8"


def test_ae_ack_v231_err1_eld_hl7_v2_3_1_2_16_5() -> None:
    header = MessageHeader.read(_raw("2.3.1"))
    ack = render(header, _record("AE", "101", "PID-3.1", "patient ID is required"))
    seg = _segments(ack)
    assert list(seg) == ["MSH", "MSA", "ERR"]
    assert seg["MSA"] == ["MSA", "AE", "MSG0001", "patient ID is required"]
    assert ack.split("\r")[2] == "ERR|PID^1^3^101&Required field missing&HL70357"


def test_ae_ack_v251_err2_err3_err4_hl7_v2_5_2_15_5() -> None:
    header = MessageHeader.read(_raw("2.5.1"))
    ack = render(header, _record("AE", "101", "PID-3", "patient ID is required"))
    err = _segments(ack)["ERR"]
    assert err[1] == ""  # ERR-1 not used from v2.5
    assert err[2] == "PID^1^3"  # ERR-2 ERL
    assert err[3] == "101^Required field missing^HL70357"  # ERR-3 CWE, table 0357
    assert err[4] == "E"  # ERR-4 severity
    assert err[8] == "patient ID is required"  # ERR-8 user message
    assert len(err) == 9


def test_ar_ack_for_unsupported_message_type_hl7_table_0357_200() -> None:
    header = MessageHeader.read(_raw("2.5.1", "ORU^R01"))
    seg = _segments(render(header, _record("AR", "200", "MSH-9", "unsupported")))
    assert seg["MSA"][1] == "AR"
    assert seg["ERR"][2:5] == ["MSH^1^9", "200^Unsupported message type^HL70357", "E"]


def test_err_without_location_v231_hl7_v2_3_1_2_16_5() -> None:
    ack = render(MessageHeader.read(_raw("2.3.1")), _record("AE", "207", "", "internal"))
    assert ack.split("\r")[2] == "ERR|^^^207&Application internal error&HL70357"


def test_ack_escapes_delimiters_in_text_hl7_2_7() -> None:
    ack = render(MessageHeader.read(_raw("2.5.1")), _record("AE", "102", "OBR-27.4", "bad |value^"))
    assert _segments(ack)["MSA"] == ["MSA", "AE", "MSG0001", "bad \\F\\value\\S\\"]
