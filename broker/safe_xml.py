"""The one way the broker reads XML from outside (today nothing; DICOMweb's
`application/dicom+xml` or an audit repository's answer tomorrow).

XML parsers resolve entities and fetch DTDs by default: an `<!ENTITY x SYSTEM
"file:///etc/passwd">` reads a local file into the answer (XXE, as in a DICOMweb
archive's STOW-RS/UPS-RS), a nested entity expands a few hundred bytes into gigabytes
(billion laughs), and an external DTD makes the server fetch a URL. `parse_xml`
refuses any document with a DTD, an entity declaration or an external reference
(defusedxml), and bounds the size and the nesting depth before building the tree.
Nothing else in broker/ may parse XML (tests/integration/test_attack_classes.py checks).
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, TreeBuilder
from xml.sax.saxutils import escape as _escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

MAX_BYTES = 1 << 20
MAX_DEPTH = 32


class UnsafeXml(ValueError):
    """A document the broker will not read: a DTD or entities, too large, too deep, or
    not well-formed. The message names the reason, never the content."""


class _DepthLimited(TreeBuilder):
    def __init__(self, max_depth: int) -> None:
        super().__init__()
        self._depth = 0
        self._max_depth = max_depth

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self._depth += 1
        if self._depth > self._max_depth:
            raise UnsafeXml(f"XML nested deeper than {self._max_depth} elements")
        return super().start(tag, attrs)

    def end(self, tag: str) -> Element:
        self._depth -= 1
        return super().end(tag)


def parse_xml(data: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Element:
    """The document's root element; UnsafeXml for anything but plain, bounded XML."""
    if len(data) > max_bytes:
        raise UnsafeXml(f"XML document over {max_bytes} bytes")
    parser = DefusedXMLParser(
        target=_DepthLimited(max_depth), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(data)
        root: Element = parser.close()
    except DefusedXmlException as exc:
        raise UnsafeXml(f"XML with {type(exc).__name__.removesuffix('Forbidden')} refused") from None
    except SyntaxError as exc:  # xml.etree.ElementTree.ParseError
        raise UnsafeXml(f"XML not well-formed ({exc.msg})") from None
    return root


def text(value: str) -> str:
    """`value` as XML character data (&, <, > escaped): what the broker writes goes
    through this module too, so one place holds every XML rule."""
    return _escape(value)
