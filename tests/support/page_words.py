"""The words a page shows a reader: the text nodes of an HTML page (and the attributes
a browser displays), without what is code (`<code>`, `<pre>`, scripts and styles).
The language tests look in them for Latin words that are not names of products,
standards or syntax, which no page in Japanese should contain."""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: Names every language writes the same: the product, standards, protocols, units.
NAMES = frozenset({
    "swf", "broker", "HL", "MPPS", "DICOM", "JSON", "AE", "API", "RIS", "RAD", "SOP", "UID", "ID",
    "ASCII", "SCP", "FIND", "ISO", "IR", "Specific", "Character", "Set",
})  # fmt: skip
_SHOWN_ATTRIBUTES = ("placeholder", "title", "alt", "aria-label")
_CODE = {"code", "pre", "script", "style"}
_WORD = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z'\u2019]*[A-Za-z](?![\w-])")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._code += tag in _CODE
        self.parts.extend(value for name, value in attrs if name in _SHOWN_ATTRIBUTES and value)

    def handle_endtag(self, tag: str) -> None:
        self._code -= tag in _CODE

    def handle_data(self, data: str) -> None:
        if not self._code:
            self.parts.append(data)


def shown_text(html: str) -> list[str]:
    """The page's text nodes and displayed attributes, code left out."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    return [part for part in parser.parts if part.strip()]


def latin_words(html: str, allowed: frozenset[str] = NAMES) -> list[str]:
    """The Latin words (two letters or more) the page shows that are not `allowed`."""
    return [word for part in shown_text(html) for word in _WORD.findall(part) if word not in allowed]
