"""Which Specific Character Set (0008,0005) a worklist answer is written in.

The profile lists candidates in order of preference; an answer takes the first whose
repertoire holds all its text (PS3.3 C.12.1.1.2, PS3.5 6.1). A Japanese site lists
`\\ISO 2022 IR 87` (kanji and full-width kana), then `ISO 2022 IR 13\\ISO 2022 IR 87`
for names with half-width katakana (PS3.5 H.3.2), then `ISO_IR 192` for anything else.
Plain ASCII answers carry no character set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from pydicom import charset

_HALF_WIDTH_KATAKANA = range(0xFF61, 0xFFA0)


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
    if term in ("", "ISO_IR 6", "ISO 2022 IR 6"):
        return lambda char: False
    if term in ("ISO_IR 13", "ISO 2022 IR 13"):
        return lambda char: ord(char) in _HALF_WIDTH_KATAKANA
    return _codec_holds(charset.python_encoding[term])


def fits(text: Iterable[str], terms: Sequence[str]) -> bool:
    holders = [_term_holds(term) for term in terms]
    return all(any(holds(char) for holds in holders) for value in text for char in value if not char.isascii())


def choose(text: list[str], candidates: Sequence[str]) -> list[str] | None:
    """The Specific Character Set values for `text`: None when it is plain ASCII, else
    the first candidate that holds it, else the last candidate (the widest)."""
    if all(value.isascii() for value in text):
        return None
    for candidate in candidates:
        terms = candidate.split("\\")
        if fits(text, terms):
            return terms
    return candidates[-1].split("\\")
