"""HL7 v2 segments read field by field: the values python-hl7 reads, without its tree.

The intake reads a few dozen fields of each message. Building python-hl7's container
tree for that (one object per field, repetition and component: over a hundred for an
order) and walking it with `extract_field` was a fifth of an order's intake time and
a third of a patient update's (issue #17). `TextSegment` keeps each segment's fields
as text and splits only the field asked for.

What it reads is python-hl7's reading, rule for rule: `extract_field` on the tree
`hl7.parse` builds (a missing part reads as empty, a part deeper than the tree reads
as empty, MSH-1 and MSH-2 as they are, every other value unescaped by python-hl7's own
`unescape`). tests/unit/test_mapping_hl7_fields.py holds the two together over
random segments. A message whose encoding characters are unusual (repeated, missing)
is read through python-hl7's tree (`TreeSegment`), as `hl7.parse` defines them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import hl7
from hl7.util import unescape

#: Segments whose second field is the encoding characters (python-hl7 reads all three so).
_HEADERS = ("MSH", "BHS", "FHS")


class Segment(Protocol):
    """One segment as the mapping reads it (1-based numbers, as HL7 counts)."""

    @property
    def name(self) -> str: ...

    def value(self, field: int, repetition: int = 1, component: int = 1, subcomponent: int = 1) -> str:
        """The part named, unescaped; empty if the segment does not have it."""
        ...

    def repetitions(self, field: int) -> int:
        """How many repetitions the field has (0 if the segment does not reach it)."""
        ...

    def filled(self, field: int) -> list[int]:
        """The repetitions (1-based) that hold anything."""
        ...


class _Encoding:
    """The separators as python-hl7's `unescape` reads them off a container."""

    __slots__ = ("component", "esc", "field", "repetition", "separators", "subcomponent")

    def __init__(self, separators: str, esc: str) -> None:
        self.separators, self.esc = separators, esc
        self.field, self.repetition, self.component, self.subcomponent = (separators[n] for n in range(1, 5))


class TextSegment:
    """A segment kept as its fields' text, each field split only when it is read."""

    __slots__ = ("_encoding", "_fields", "_header", "name")

    def __init__(self, text: str, encoding: _Encoding) -> None:
        self._encoding = encoding
        self._header = False
        if not any(s in text for s in encoding.separators[1:]):
            fields = [text]  # the name alone
        elif text[:3] in _HEADERS:  # MSH-1 and MSH-2 are the separators themselves
            self._header, end = True, text.find(text[3], 4)
            fields, rest = [text[:3], text[3], text[4:end]], text[end + 1 :]
            fields += rest.split(encoding.field) if rest else []
        else:
            fields = text.split(encoding.field)
        #: Index n is field n (0: the segment's name).
        self._fields = fields
        self.name = fields[0]

    def value(self, field: int, repetition: int = 1, component: int = 1, subcomponent: int = 1) -> str:
        if field >= len(self._fields):
            return ""
        text, e = self._fields[field], self._encoding
        if self._leaf(field, text):
            if (repetition, component, subcomponent) != (1, 1, 1):
                return ""
            return text if self._header and field < 3 and self.name == "MSH" else unescape(e, text)
        texts = text.split(e.repetition)
        if repetition > len(texts):
            return ""
        text = texts[repetition - 1]
        if e.component not in text and e.subcomponent not in text:
            return unescape(e, text) if component == 1 and subcomponent == 1 else ""
        components = text.split(e.component)
        if component > len(components):
            return ""
        subcomponents = components[component - 1].split(e.subcomponent)
        return unescape(e, subcomponents[subcomponent - 1]) if subcomponent <= len(subcomponents) else ""

    def repetitions(self, field: int) -> int:
        if field >= len(self._fields):
            return 0
        text = self._fields[field]
        return 1 if self._leaf(field, text) else text.count(self._encoding.repetition) + 1

    def filled(self, field: int) -> list[int]:
        if field >= len(self._fields):
            return []
        text = self._fields[field]
        if self._leaf(field, text):
            return [1] if text else []
        return [n for n, repetition in enumerate(text.split(self._encoding.repetition), 1) if repetition]

    def _leaf(self, field: int, text: str) -> bool:
        """A field python-hl7 keeps as one string: MSH-1, MSH-2, or one with no separator
        (most fields; three tests, not a loop: some forty fields are read a message)."""
        e = self._encoding
        return (self._header and field < 3) or (
            e.repetition not in text and e.component not in text and e.subcomponent not in text
        )


class TreeSegment:
    """A segment of python-hl7's tree, read with its `extract_field`."""

    __slots__ = ("_segment", "name")

    def __init__(self, segment: hl7.Segment) -> None:
        self._segment = segment
        self.name = str(segment[0])

    def value(self, field: int, repetition: int = 1, component: int = 1, subcomponent: int = 1) -> str:
        try:
            return str(self._segment.extract_field(1, field, repetition, component, subcomponent))
        except IndexError:  # a path deeper than the tree: python-hl7's "not present"
            return ""

    def repetitions(self, field: int) -> int:
        if len(self._segment) <= field:
            return 0
        parts = self._segment[field]
        return len(parts) if parts and isinstance(parts[0], hl7.Repetition) else 1

    def filled(self, field: int) -> list[int]:
        if len(self._segment) <= field:
            return []
        parts = self._segment[field]
        if not (parts and isinstance(parts[0], hl7.Repetition)):
            return [1] if str(parts) else []
        return [n for n, repetition in enumerate(parts, 1) if str(repetition)]


class Message:
    """A message's segments, in order."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    @classmethod
    def read(cls, text: str) -> Message:
        """As `hl7.parse(text)` reads it (same values, same failures)."""
        stripped = text.strip()
        encoding = _declared(stripped)
        if encoding is None:
            return as_message(hl7.parse(stripped))  # raises python-hl7's own ParseException
        return cls([TextSegment(line, encoding) for line in stripped.split("\r")])


def as_message(message: Message | hl7.Message) -> Message:
    """The reader's view of a message; python-hl7's tree is read through `TreeSegment`
    (tools and tests build messages with `hl7.parse`)."""
    return message if isinstance(message, Message) else Message([TreeSegment(s) for s in message])


def _declared(message: str) -> _Encoding | None:
    """The separators MSH-1 and MSH-2 declare, or None when they are unusual (repeated,
    missing, a CR among them) or there is no header: python-hl7 then defines them."""
    if message[:3] not in _HEADERS:
        return None
    declared = message[3 : message.find(message[3], 4)]
    if len(declared) < 4 or len(set(declared)) != len(declared) or "\r" in declared:
        return None
    field, component, repetition, esc = declared[0], declared[1], declared[2], declared[3]
    subcomponent = declared[4] if len(declared) > 4 else "&"
    separators = "\r" + field + repetition + component + subcomponent
    return _Encoding(separators, esc) if len(set(separators)) == len(separators) else None
