"""Hostile HL7 input, as properties (RELIABILITY.md F1): MLLP framing, the MSH read
before anything else, decoding and the profile mapping either give a result or a
refusal the ACK can carry; nothing else may escape. Inputs are the catalog's samples
(hl7/) mutated field by field, segment by segment and byte by byte, plus raw bytes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.domain.errors import DomainError
from broker.errors import UnsupportedMessage
from broker.hl7.header import MessageHeader
from broker.hl7.mllp import END, START, FrameReader, FrameTooLarge
from broker.mapping.hl7_in import read_commands
from broker.mapping.profile import Profile, load_profile

CATALOG = Path(__file__).resolve().parents[2] / "hl7"
SAMPLES = sorted(p.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r") for p in CATALOG.rglob("*.hl7"))
PROFILES = [load_profile("ihe-swf"), load_profile("jahis")]
#: A hang detector, not a benchmark: CI machines are shared.
EXAMPLES = settings(max_examples=500, deadline=5000, suppress_health_check=[HealthCheck.too_slow])

#: Text that stresses HL7: its separators and escapes, CR, non-ASCII, control bytes.
short_text = st.lists(
    st.sampled_from([*"|^~\\&#\r\n\x0b\x1c\x00 ABZaz09-.*?%_'\"", "ま", "ｱ", "é", "\x1b$B", "\x1b(B", "\ufffd"]),
    max_size=40,
).map("".join)
long_text = st.builds(lambda c, n: c * n, st.sampled_from(["A", "^", "|", "~", "\\"]), st.integers(1000, 70_000))
#: Mostly short, one in ten up to 70,000 characters (a 1 MiB frame holds that and more).
hostile_text = st.integers(0, 9).flatmap(lambda k: long_text if k == 0 else short_text)


@st.composite
def mutated_message(draw: st.DrawFn) -> bytes:
    """A catalog sample with a few mutations: a field replaced, a segment dropped or
    repeated, bytes inserted, the message cut short."""
    segments = draw(st.sampled_from(SAMPLES)).rstrip(b"\r").split(b"\r")
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(segments) - 1)) if segments else 0
        operation = draw(st.sampled_from(["field", "drop", "repeat", "bytes", "cut"]))
        if not segments:
            segments = [draw(st.binary(max_size=50))]
        elif operation == "field":
            fields = segments[index].split(b"|")
            fields[draw(st.integers(0, len(fields) - 1))] = draw(hostile_text).encode("utf-8")
            segments[index] = b"|".join(fields)
        elif operation == "drop":
            del segments[index]
        elif operation == "repeat":
            segments.insert(index, segments[index])
        elif operation == "bytes":
            at = draw(st.integers(0, len(segments[index])))
            segments[index] = segments[index][:at] + draw(st.binary(min_size=1, max_size=20)) + segments[index][at:]
        else:
            segments[index] = segments[index][: draw(st.integers(0, len(segments[index])))]
    return b"\r".join(segments)


messages = mutated_message() | st.binary(max_size=300)


@EXAMPLES
@given(messages)
def test_the_header_is_read_from_any_bytes(raw: bytes) -> None:
    header = MessageHeader.read(raw)
    assert isinstance(header.control_id, str) and isinstance(header.sender, str)


# python-hl7 logs a bad escape with the deprecated Logger.warn: a warning, not a failure.
@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")
@EXAMPLES
@given(messages, st.sampled_from(PROFILES))
def test_mapping_gives_commands_or_a_refusal(raw: bytes, profile: Profile) -> None:
    """The path of Hl7Intake._commands: decode by MSH-18, check, parse, map."""
    try:
        read_commands(raw, profile)
    except (DomainError, UnsupportedMessage):
        return


@EXAMPLES
@given(st.lists(st.binary(max_size=200) | st.sampled_from([START, END, b"\x1c", b"\r"]), max_size=30))
def test_framing_yields_frames_or_refuses_oversize(chunks: list[bytes]) -> None:
    """FrameReader on any byte stream: frames, then end of stream, or FrameTooLarge."""
    stream = b"".join(chunks)

    source = io.BytesIO(stream)
    reader, found = FrameReader(source.read, 1024), []
    try:
        while (frame := reader.next()) is not None:
            found.append(frame)
    except FrameTooLarge:
        assert len(stream) > 1024
    for frame in found:
        assert END not in frame and frame in stream
