"""Segments of an HL7 v2 message as senders really write them.

HL7 ends a segment with CR, but files and some interfaces use LF or CRLF, and
python-hl7's `mllp_send` drops the final CR. Every reader of inbound text (the header
reader, the decoder, the parser, the duplicate check) splits segments here, so a
message means the same whichever terminator it came with.
"""

from __future__ import annotations

import re

from broker.domain.errors import InvalidInput

_TERMINATOR = re.compile(r"\r\n|\r|\n")
_TERMINATOR_BYTES = re.compile(rb"\r\n|\r|\n")


def first_segment(raw: bytes) -> bytes:
    """The first segment (MSH) of a raw message, whatever ends it. JIS X 0208 and the
    other ISO 2022 and 8-bit sets never use the CR or LF bytes, so this is safe before
    decoding."""
    return _TERMINATOR_BYTES.split(raw.lstrip(b"\x0b\r\n"), maxsplit=1)[0]


def segments(text: str) -> list[str]:
    """The segments of decoded text, empty lines (a trailing terminator) left out."""
    return [line for line in _TERMINATOR.split(text) if line]


def with_cr(text: str) -> str:
    """The text with every segment ended by CR, as HL7 (and python-hl7) expects."""
    return "".join(line + "\r" for line in segments(text))


def canonical(text: str) -> str:
    """The content of a message without the differences HL7 gives no meaning to: the
    segment terminators, a trailing terminator, and trailing empty fields, repetitions,
    components and subcomponents (HL7 v2.5 2.5.3: a trailing delimiter may be left
    out). Two resends that differ only in these are the same message."""
    lines = segments(text)
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        return "\r".join(lines)
    field, encoding = lines[0][3], lines[0][4:8]
    component, repetition, subcomponent = encoding[0], encoding[1], encoding[3]

    def trim(value: str, separators: str) -> str:
        if not separators:
            return value
        parts = [trim(part, separators[1:]) for part in value.split(separators[0])]
        while len(parts) > 1 and not parts[-1]:
            parts.pop()
        return separators[0].join(parts)

    def segment(line: str) -> str:
        values = line.split(field)
        start = 2 if values[0] == "MSH" else 1  # MSH-2 holds the separators themselves
        values[start:] = [trim(v, repetition + component + subcomponent) for v in values[start:]]
        while len(values) > start and not values[-1]:
            values.pop()
        return field.join(values)

    return "\r".join(segment(line) for line in lines)


#: Characters no text value may hold once decoded (HL7 v2.5 2.7: text is printable
#: characters and the delimiters): C0 controls but the segment terminators, DEL, C1
#: controls, the byte order mark, the bidirectional embeddings, overrides and isolates
#: (they reorder what a reader sees), and the two noncharacters. ESC is among the C0
#: controls: an ISO 2022 codec consumes the escapes its sets allow, so one left over
#: means the bytes were not in the declared set.
_FORBIDDEN = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\u202a-\u202e\u2066-\u2069\ufffe\uffff]")
_KINDS = {"\ufeff": "byte order mark", "\ufffe": "noncharacter", "\uffff": "noncharacter"}


def _kind(char: str) -> str:
    if char in _KINDS:
        return _KINDS[char]
    return "bidirectional control" if ord(char) > 0x2000 else "control character"


def check_text(text: str) -> None:
    """Refuse text holding a character no value may hold, naming the field (`PID-5`)
    and the position in it (1-based), so the sender can find it."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return
    char = found.group()
    location, position = locate(text, found.start())
    raise InvalidInput(location, f"{_kind(char)} U+{ord(char):04X} at position {position} is not allowed")


def locate(text: str, offset: int) -> tuple[str, int]:
    """The field (`SEG-n`) holding character `offset` of `text`, and its position there."""
    start = max(text.rfind("\r", 0, offset), text.rfind("\n", 0, offset)) + 1
    line = text[start:offset]
    name = line[:3]
    separator = text[3] if text.startswith("MSH") and len(text) > 3 else "|"
    before = line.split(separator)
    field = len(before) - 1 + (1 if name == "MSH" else 0)
    return (f"{name}-{field}" if field else name), len(before[-1]) + 1
