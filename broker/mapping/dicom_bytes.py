"""Data elements written straight to bytes, in the two little-endian transfer syntaxes.

The worklist answer path writes thousands of small identifiers per query; building a
pydicom Dataset and running `write_dataset` on each costs more than the whole lookup.
Values are encoded with pydicom's own character-set functions, so the bytes are the
ones pydicom would write (PS3.5 Annex H escapes included); only the element framing
(PS3.5 7.1) is written here. Sequences and items get explicit lengths (PS3.5 7.5).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import cache
from io import BytesIO

from pydicom.charset import convert_encodings, encode_string
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.valuerep import PersonName

#: VRs whose explicit-VR header has 2 reserved bytes and a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
#: VRs whose text is in the Specific Character Set (PS3.5 6.1.2.3); others are ASCII.
TEXT_VRS = frozenset({"PN", "SH", "LO", "ST", "LT", "UT", "UC"})
_ITEM_TAG = struct.pack("<HH", 0xFFFE, 0xE000)


_LENGTH_32, _LENGTH_16 = struct.Struct("<I"), struct.Struct("<H")


@cache
def _framing(tag: int, vr: str, implicit: bool) -> tuple[bytes, struct.Struct]:
    """An element header without its length, and how its length is written: the same
    few dozen tags are framed for every answer."""
    prefix = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if implicit:
        return prefix, _LENGTH_32
    if vr in _LONG_VRS:
        return prefix + vr.encode("ascii") + b"\x00\x00", _LENGTH_32
    return prefix + vr.encode("ascii"), _LENGTH_16


def header(tag: int, vr: str, length: int, *, implicit: bool) -> bytes:
    prefix, length_format = _framing(tag, vr, implicit)
    return prefix + length_format.pack(length)


class ValueEncoder:
    """Encodes string values in one Specific Character Set (None: the default, ASCII)."""

    def __init__(self, terms: Sequence[str] | None) -> None:
        self._encodings = convert_encodings(list(terms)) if terms else None

    def encode(self, vr: str, value: str) -> bytes:
        if not value:
            return b""
        if vr not in TEXT_VRS or self._encodings is None:
            raw = value.encode("ascii", "replace")
        elif vr == "PN":
            raw = PersonName(value).encode(self._encodings)
        else:
            raw = encode_string(value, self._encodings)
        if len(raw) % 2:
            raw += b"\x00" if vr == "UI" else b" "
        return raw


def element(tag: int, vr: str, value: bytes, *, implicit: bool) -> bytes:
    return header(tag, vr, len(value), implicit=implicit) + value


def sequence(tag: int, items: list[bytes], *, implicit: bool) -> bytes:
    """A sequence of already-encoded item datasets."""
    body = b"".join(_ITEM_TAG + _LENGTH_32.pack(len(item)) + item for item in items)
    return header(tag, "SQ", len(body), implicit=implicit) + body


def read_identifier(raw: bytes, *, implicit: bool = False) -> Dataset:
    """Identifier bytes (a C-FIND query or answer) read back, text decoded with its own
    (0008,0005): what the web, the worklist lab and a bundle show is what went on the wire."""
    ds = read_dataset(BytesIO(raw), is_implicit_VR=implicit, is_little_endian=True)
    ds.decode()
    return ds
