"""Text from the wire shown to a person, on the page or in a terminal.

Values come from peers (HL7 senders, modalities, any MWL SCP that `broker find`
queries): control and format characters in them (ESC, NUL, CR, bidi overrides, BOM)
are shown as visible escapes — C0 as their Unicode control pictures (ESC as ␛),
anything else as `\\xhh` / `\\uhhhh` — so a terminal or browser never interprets them.
Columns are measured in terminal cells: ideographs and full-width kana take two.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with control and format characters replaced by visible escapes."""
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)


def cells(text: str) -> int:
    """How many terminal cells `text` takes (East Asian Wide and Fullwidth: two)."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def pad(text: str, width: int) -> str:
    """`text` filled with spaces to `width` terminal cells."""
    return text + " " * max(0, width - cells(text))


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns as wide as their widest cell in terminal cells, values made visible:
    what a terminal shows of peers' values (`broker find`, `--explain`)."""
    shown = [tuple(header), *(tuple(visible(cell) for cell in line) for line in rows)]
    widths = [max(cells(cell) for cell in column) for column in zip(*shown, strict=True)]
    return "\n".join("  ".join(pad(c, w) for c, w in zip(line, widths, strict=True)).rstrip() for line in shown)


def lines(text: str) -> str:
    """A multi-line text with each line made visible (its line breaks kept)."""
    return "\n".join(visible(line) for line in text.split("\n"))
