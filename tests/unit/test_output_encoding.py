"""What the broker writes carries values, never structure (RELIABILITY O1, issue #15):
HL7 through the one writer (broker/mapping/hl7_out.py), answers included; audit XML
(broker/audit/messages.py). The page (HTML) is checked in
tests/integration/test_web_page.py::test_names_from_the_wire_are_escaped."""

from __future__ import annotations

import unicodedata
from datetime import datetime

import hl7
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from broker.audit.messages import AuditSource, audit_xml
from broker.domain.audit import Action, Audited, AuditEvent, PatientRef, Requestor
from broker.domain.ports import InboundRecord
from broker.hl7.ack import render_ack
from broker.hl7.header import MessageHeader
from broker.mapping.hl7_out import Hl7Writer, escape
from support.audit import valid_message
from support.hl7_structure import missing_msh_fields

HOSTILE = "A\rMSH|^~\\&|EVIL\nPID|1||X\x00\x1b\x7f\x85\u202eZ"
EXAMPLES = settings(max_examples=500, deadline=5000, suppress_health_check=[HealthCheck.too_slow])


def _value(text: str, segment: str, field: int) -> str:
    message = hl7.parse(text)
    return str(message.unescape(str(message.segment(segment)[field])))


@pytest.mark.parametrize(
    ("text", "hex_escaped", "dropped"),
    [
        ("\r", "\\X0D\\", ""),
        ("\n", "\\X0A\\", ""),
        ("a\r\nb", "a\\X0D\\\\X0A\\b", "ab"),
        ("\x00", "\\X00\\", ""),
        ("\x1b$B", "\\X1B\\$B", "$B"),  # a raw ESC would switch ISO 2022 sets at the receiver
        ("\x7f\x85\x9f", "\\X7F\\\\X85\\\\X9F\\", ""),  # DEL and C1
        ("\t", "\\X09\\", ""),
        ("\u202eevil", "\u202eevil", "\u202eevil"),  # bidi override: text, not a control code
        ("|^~\\&", "\\F\\\\S\\\\R\\\\E\\\\T\\", "\\F\\\\S\\\\R\\\\E\\\\T\\"),
    ],
)
def test_control_characters_hex_escaped_or_dropped_per_profile_hl7_2_7_5(
    text: str, hex_escaped: str, dropped: str
) -> None:
    assert escape(text) == hex_escaped
    assert escape(text, "drop") == dropped


def test_every_character_is_escaped_exactly_when_it_is_a_delimiter_or_a_control_code() -> None:
    """Over all of Unicode, one character at a time inside a value: the writer's
    shortcut for values that need no escape must miss none (Cc is C0, DEL and C1)."""
    delimiters = {"|": "\\F\\", "^": "\\S\\", "~": "\\R\\", "\\": "\\E\\", "&": "\\T\\"}
    for code in range(0x110000):
        char = chr(code)
        control = unicodedata.category(char) == "Cc"
        hex_escaped = delimiters.get(char) or (f"\\X{code:02X}\\" if control else char)
        dropped = delimiters.get(char) or ("" if control else char)
        assert (escape(f"a{char}b"), escape(f"a{char}b", "drop")) == (f"a{hex_escaped}b", f"a{dropped}b"), hex(code)


@EXAMPLES
@given(value=st.text())
def test_any_text_through_the_writer_parses_back_to_itself_and_adds_no_segment(value: str) -> None:
    """HL7 segment injection: whatever a peer sent, the receiver sees one value."""
    writer = Hl7Writer()
    text = "MSH|^~\\&|A|B|C|D|20261123||ORM^O01|1|P|2.3.1\r" + writer.segment("NTE", "1", "", value, "END") + "\r"
    assert text.count("\r") == 2 and "\n" not in text
    assert [str(s[0]) for s in hl7.parse(text)] == ["MSH", "NTE"]
    assert _value(text, "NTE", 3) == value


@EXAMPLES
@given(value=st.text())
def test_dropping_control_characters_keeps_the_rest_of_the_value(value: str) -> None:
    text = "MSH|^~\\&|A|B|C|D|20261123||ORM^O01|1|P|2.3.1\r" + Hl7Writer("drop").segment("NTE", "1", "", value, "END")
    assert [str(s[0]) for s in hl7.parse(text)] == ["MSH", "NTE"]
    assert _value(text, "NTE", 3) == "".join(c for c in value if not (c < " " or "\x7f" <= c <= "\x9f"))


def test_components_and_repetitions_escape_each_value_hl7_2_5() -> None:
    writer = Hl7Writer()
    assert writer.segment("PID", "1", "", [["A\rB", "C"], ["D~E"]]) == "PID|1||A\\X0D\\B^C~D\\R\\E"
    assert writer.segment("ERR", ["PID", "1", "3", ("101", "a&b\n", "HL70357")]) == (
        "ERR|PID^1^3^101&a\\T\\b\\X0A\\&HL70357"
    )


def test_ack_to_a_hostile_header_adds_no_segment_and_echoes_msh10_hl7_segment_injection() -> None:
    """An answer quotes the sender (MSH-3/4 → MSH-5/6, MSH-10 → MSA-2, MSH-18/20) and
    the refusal text: with other delimiters declared (`#`), a `|` or a control character
    in those fields must come back as a value, not as structure. (An LF ends the MSH, as
    CR does: tests/integration/test_hl7_inbound_tolerance.py.)"""
    raw = b"MSH#^~\\&#RIS|EVIL#HOSP\tPID#BROKER#RAD#20261123##ORM^O01#C1|\x0bX#P#2.5.1\rPID#1##PAT001\r"
    header = MessageHeader.read(raw)
    record = InboundRecord(header.sender, header.control_id, "ORM^O01", raw, "AE", "102", "PID-3", HOSTILE)
    ack = render_ack(header, record, datetime(2026, 11, 23), ("BROKER", "RADIOLOGY"), Hl7Writer())
    assert "\n" not in ack
    message = hl7.parse(ack)
    assert [str(s[0]) for s in message] == ["MSH", "MSA", "ERR"]
    assert message.unescape(str(message.segment("MSA")[2])) == "C1|\x0bX"
    assert message.unescape(str(message.segment("MSA")[3])) == HOSTILE
    assert message.unescape(str(message.segment("MSH")[5])) == "RIS|EVIL"
    assert missing_msh_fields(ack) == []


SOURCE = AuditSource("broker-host", "HOSPITAL", "BROKER", "swf-broker", host="broker.example")


@pytest.mark.parametrize("value", ['<&"]]>', "A\rB\nC\tD", "NUL\x00ESC\x1bVT\x0b", "\u202eevil\ufffe"])
def test_audit_message_with_hostile_values_is_well_formed_xml_ps3_15_a_5(value: str) -> None:
    """Values from the wire (a sender's MSH-3, a patient ID, an accession number) end up
    in attributes and text: XML injection would forge audit elements; a NUL made the
    message unparseable for the Audit Record Repository."""
    event = AuditEvent(
        Audited.ORDER_RECORD,
        Action.DELETE,
        datetime(2026, 11, 23, 10, 5),
        requestor=Requestor(f"{value}|HOSP"),
        patient=PatientRef(value, "HOSPITAL", value),
        accession_number=value,
        study_uids=("1.2.3",),
    )
    root = valid_message(audit_xml(event, SOURCE))
    assert len(root.findall("ParticipantObjectIdentification")) == 1  # the patient; none forged
    patient = next(
        o for o in root.iter("ParticipantObjectIdentification") if o.get("ParticipantObjectTypeCodeRole") == "1"
    )
    expected = "".join("\ufffd" if c in "\x00\x1b\x0b\ufffe" else c for c in value)
    assert patient.get("ParticipantObjectID") == f"{expected}^^^HOSPITAL"
    assert patient.findtext("ParticipantObjectName") == expected.replace("\r\n", "\n").replace("\r", "\n")
    assert [a.get("Number") for a in root.iter("Accession")] == [expected]
    assert etree.tostring(root)  # parsed back by a second XML implementation


#: What a sender's MSH-10 can hold: anything but its field separator, CR and LF (which
#: end it) and lone surrogates (which no encoding writes).
CONTROL_ID_CHARACTERS = st.characters(blacklist_characters="\r\n|", blacklist_categories=("Cs",))


@EXAMPLES
@given(control_id=st.text(alphabet=CONTROL_ID_CHARACTERS, max_size=30), error=st.text())
def test_any_control_id_and_refusal_text_come_back_as_values_in_the_ack(control_id: str, error: str) -> None:
    """MSA-2 echoes the sender's MSH-10 (whatever it holds but its own field separator,
    CR and LF, which end it); MSA-3 and ERR-8 carry the refusal text."""
    raw = f"MSH|^~\\&|RIS|HOSP|BROKER|RAD|20261123||ORM^O01|{control_id}|P|2.5.1\rPID|1\r".encode()
    header = MessageHeader.read(raw)
    record = InboundRecord(header.sender, header.control_id, "ORM^O01", raw, "AE", "207", "", error)
    message = hl7.parse(render_ack(header, record, datetime(2026, 11, 23), ("BROKER", "RADIOLOGY"), Hl7Writer()))
    assert [str(s[0]) for s in message] == ["MSH", "MSA", "ERR"]
    assert message.unescape(_at(message.segment("MSA"), 2)) == header.control_id
    assert message.unescape(_at(message.segment("ERR"), 8)) == _without_trailing_spaces(error)


def _without_trailing_spaces(text: str) -> str:
    """python-hl7 (the decoder here) drops white space at the end of a segment, and
    ERR-8 is last: spaces written as they are come back without them (the bytes carry
    them); control characters are written as \\X..\\ escapes and survive."""
    while text and text[-1].isspace() and not unicodedata.category(text[-1]).startswith("C"):
        text = text[:-1]
    return text


def _at(segment: hl7.Segment, field: int) -> str:
    """A field's text; empty trailing fields are not written."""
    return str(segment[field]) if len(segment) > field else ""
