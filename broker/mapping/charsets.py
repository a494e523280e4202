"""MSH-18 ↔ Python codecs, as the profile names them.

MSH-18 may repeat: JAHIS senders write `~ISO IR87` (first repetition empty: ASCII by
default, then ISO IR87 reached by ISO 2022 escapes, which MSH-20 `ISO 2022-1994`
announces). The last named set is the one the message switches to, and the Python
ISO-2022 codec handles the ASCII default too.
The header is read as ASCII before decoding: no supported set uses the CR or LF bytes,
so the MSH segment ends at the first of them whatever the encoding.
"""

from __future__ import annotations

import codecs
from typing import NoReturn

from broker.domain.errors import InvalidInput, Problem
from broker.mapping.hl7_text import first_segment, locate

#: MSH-20 values (HL7 table 0356) the decoder honours: none (no code extension), and
#: ISO 2022 escapes, which the ISO-2022 codecs read. `2.3` (HL7 `\C..\`/`\M..\` escape
#: switching) is not supported and is refused rather than misread.
HANDLING_SCHEMES = ("", "ISO 2022-1994")


def _msh_fields(raw: bytes) -> list[str]:
    header = first_segment(raw).decode("ascii", errors="replace")
    if len(header) < 4 or not header.startswith("MSH"):
        raise InvalidInput("MSH", "a message starts with an MSH segment", Problem.MISSING)
    return header.split(header[3])


def declared_charset(raw: bytes) -> str:
    """MSH-18 as written (all repetitions), read from the raw bytes."""
    fields = _msh_fields(raw)
    return fields[17] if len(fields) > 17 else ""


def _repetition_separator(fields: list[str]) -> str:
    return fields[1][1] if len(fields) > 1 and len(fields[1]) > 1 else "~"


def _check_handling(fields: list[str]) -> None:
    handling = fields[19].strip() if len(fields) > 19 else ""
    if handling not in HANDLING_SCHEMES:
        raise InvalidInput("MSH-20", f"character set handling {handling!r} is not supported", Problem.NOT_IN_TABLE)


def _codecs(msh18: str, charsets: dict[str, str], repetition_separator: str = "~") -> list[str]:
    """The codecs of the sets MSH-18 names, the last named first."""
    named = [part.strip() for part in msh18.split(repetition_separator) if part.strip()] or [""]
    found: list[str] = []
    for key in reversed(named):
        if key not in charsets:
            raise InvalidInput("MSH-18", f"character set {key!r} is not supported", Problem.NOT_IN_TABLE)
        codec = codecs.lookup(charsets[key]).name
        if codec not in found:
            found.append(codec)
    return found


def codec_for(msh18: str, charsets: dict[str, str]) -> str:
    """The codec to write a message whose MSH-18 is `msh18`."""
    return _codecs(msh18, charsets)[0]


def decode(raw: bytes, charsets: dict[str, str]) -> str:
    """The message text, decoded as MSH-18 declares. When it names several ISO 2022
    sets (`~ISO IR87~ISO IR13`), the first of their codecs that reads the whole message
    wins: the JIS codecs differ in which of those sets they cover. Undecodable bytes
    are refused: a wrongly decoded name would reach the modality."""
    fields = _msh_fields(raw)
    _check_handling(fields)
    msh18 = fields[17] if len(fields) > 17 else ""
    candidates = _codecs(msh18, charsets, _repetition_separator(fields))
    for codec in candidates:
        try:
            return raw.decode(codec)
        except UnicodeDecodeError as exc:
            failure = exc
    _refuse_undecodable(raw, candidates[0], failure.start)


def _refuse_undecodable(raw: bytes, codec: str, start: int) -> NoReturn:
    """Name the field holding the first byte the declared set cannot read, and its
    position there, as for any other invalid text (hl7_text.check_text)."""
    read = raw[:start].decode(codec, errors="replace")
    location, position = locate(read, len(read))
    raise InvalidInput(location, f"not valid {codec} (MSH-18) at position {position} (byte {start})")
