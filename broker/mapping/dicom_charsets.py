"""Which Specific Character Set (0008,0005) a worklist answer is written in.

The answer takes the set the query names, when its repertoire holds all the answer's
text (the modality asked for it, PS3.4 C.2.2.2); otherwise the first of the profile's
candidates that holds it (PS3.3 C.12.1.1.2, PS3.5 6.1). A Japanese site lists
`\\ISO 2022 IR 87` (kanji and full-width kana), then `ISO 2022 IR 13\\ISO 2022 IR 87`
for names with half-width katakana (PS3.5 H.3.2), then `ISO_IR 192` for anything else.
Plain ASCII answers carry the set the query named, or none: (0008,0005) is never sent
zero-length (PS3.4 C.2.2.2).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable, Sequence

from pydicom import charset

_HALF_WIDTH_KATAKANA = range(0xFF61, 0xFFA0)

#: The defined terms of PS3.3 Tables C.12-2 to C.12-5 (value 1 empty: the default
#: repertoire, ISO-IR 6). What the broker supports is the part its encoder knows.
DEFINED_TERMS = (
    *(f"ISO_IR {n}" for n in (100, 101, 109, 110, 144, 127, 126, 138, 148, 203, 13, 166)),
    *(f"ISO 2022 IR {n}" for n in (6, 100, 101, 109, 110, 144, 127, 126, 138, 148, 203, 13, 166)),
    *(f"ISO 2022 IR {n}" for n in (87, 159, 149, 58)),
    "ISO_IR 192",
    "GB18030",
    "GBK",
)
#: The defined terms the broker reads in queries and MPPS and writes in answers.
SUPPORTED_TERMS = tuple(term for term in DEFINED_TERMS if term in charset.python_encoding)
_DEFAULT_TERMS = ("", "ISO_IR 6", "ISO 2022 IR 6")
_UNIVERSAL_TERMS = ("ISO_IR 192", "GB18030")


def _codec_holds(codec: str) -> Callable[[str], bool]:
    def holds(char: str) -> bool:
        try:
            char.encode(codec)
        except UnicodeEncodeError:
            return False
        return True

    return holds


def _term_holds(term: str) -> Callable[[str], bool]:
    """A defined term's repertoire beyond ASCII. IR 13 is JIS X 0201 katakana only
    (pydicom decodes it with shift_jis, whose repertoire is far larger)."""
    if term in _DEFAULT_TERMS:
        return lambda char: False
    if term in ("ISO_IR 13", "ISO 2022 IR 13"):
        return lambda char: ord(char) in _HALF_WIDTH_KATAKANA
    return _codec_holds(charset.python_encoding[term])


def codec_name(term: str) -> str:
    """The Python codec a defined term's text is written with (ASCII for the default)."""
    return "ascii" if term in _DEFAULT_TERMS else codecs.lookup(charset.python_encoding[term]).name


def supported(terms: Sequence[str]) -> bool:
    """Whether the broker can write text in the set `terms` names."""
    return all(term in _DEFAULT_TERMS or term in SUPPORTED_TERMS for term in terms)


class _Candidate:
    """One Specific Character Set value, its repertoire test compiled once."""

    def __init__(self, terms: list[str]) -> None:
        self.terms = terms
        self._holders = [_term_holds(term) for term in terms]
        #: UTF-8 and GB18030 encode every character: no test needed.
        self._universal = any(term in _UNIVERSAL_TERMS for term in terms)

    def holds(self, chars: Iterable[str]) -> bool:
        """Whether the set holds each of `chars` (the text's non-ASCII characters)."""
        holders = self._holders
        return self._universal or all(any(holds(char) for holds in holders) for char in chars)


class CharsetChoice:
    """The choice for one query, compiled once: `asked` is the query's (0008,0005)
    (empty, or naming only the default repertoire, or a set the broker cannot write:
    nothing asked), `candidates` the profile's sets in order of preference."""

    def __init__(self, asked: Sequence[str], candidates: Sequence[str]) -> None:
        named = [term.strip() for term in asked]
        self.asked = named if any(t not in _DEFAULT_TERMS for t in named) and supported(named) else None
        profile = [_Candidate(candidate.split("\\")) for candidate in candidates]
        self._widest = profile[-1].terms
        self._candidates = [_Candidate(self.asked), *profile] if self.asked else profile

    def choose(self, text: list[str]) -> list[str]:
        """The (0008,0005) values for an answer holding `text`, not plain ASCII (that
        takes `asked`: None, no element): the first candidate that holds it, else the
        profile's last (its widest)."""
        chars = {char for value in text for char in value if not char.isascii()}
        for candidate in self._candidates:
            if candidate.holds(chars):
                return candidate.terms
        return self._widest
