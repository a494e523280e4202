"""HL7 v2 text → `hl7.Message`, the same tree `hl7.parse` builds, built faster.

`hl7.parse` makes a new parse plan for every element it descends into and scans for
every separator at each level; on an order message that is most of the intake's
parse time. This walks the same five levels (message, segment, field, repetition,
component; subcomponents stay text) with plans made once per message, and creates the
same containers through python-hl7's public `Factory`, so every reader (`extract_field`,
`str()`) sees what it saw before. A message whose encoding characters are unusual
(repeated or missing) is left to `hl7.parse` itself, which defines what they mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hl7

_HEADERS = ("MSH", "BHS", "FHS")
_FACTORY = hl7.Factory
_CONTAINERS: tuple[Callable[..., Any], ...] = (
    _FACTORY.create_message,
    _FACTORY.create_segment,
    _FACTORY.create_field,
    _FACTORY.create_repetition,
    _FACTORY.create_component,
)


def parse(text: str) -> hl7.Message:
    """As `hl7.parse(text)` (same result, same failures)."""
    message = text.strip()
    if message[:3] not in _HEADERS:
        return hl7.parse(message)  # raises python-hl7's own ParseException
    declared = message[3 : message.find(message[3], 4)]
    if len(declared) < 4 or len(set(declared)) != len(declared) or "\r" in declared:
        return hl7.parse(message)
    field, component, repetition, esc = declared[0], declared[1], declared[2], declared[3]
    subcomponent = declared[4] if len(declared) > 4 else "&"
    separators = "\r" + field + repetition + component + subcomponent
    if len(set(separators)) != len(separators):
        return hl7.parse(message)
    return _Levels(separators, esc).split(message, 0)


class _Levels:
    def __init__(self, separators: str, esc: str) -> None:
        self._separators = separators
        self._esc = esc

    def _container(self, level: int, data: list[Any]) -> Any:
        return _CONTAINERS[level](sequence=data, esc=self._esc, separators=self._separators, factory=_FACTORY)

    def split(self, text: str, level: int) -> Any:
        """`hl7.parser._split` at `level` (0 = message): text with none of this
        level's or deeper separators is one element of its container."""
        if level == len(_CONTAINERS):
            return text
        if not any(s in text for s in self._separators[level:]):
            return self._container(level, [text])
        data: list[Any] = []
        if level == 1 and text[:3] in _HEADERS:  # MSH-1 and MSH-2 are the separators themselves
            end = text.find(text[3], 4)
            data = [self._container(2, [part]) for part in (text[:3], text[3], text[4:end])]
            text = text[end + 1 :]
        if text:
            data += [self.split(part, level + 1) for part in text.split(self._separators[level])]
        return self._container(level, data)
