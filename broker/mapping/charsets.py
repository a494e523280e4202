"""MSH-18 ↔ Python codecs, as the profile names them.

MSH-18 may repeat: JAHIS senders write `~ISO IR87` (first repetition empty: ASCII by
default, then ISO IR87 reached by ISO 2022 escapes). The last named set is the one the
message switches to, and the Python ISO-2022 codec handles the ASCII default too.
The header is read as ASCII before decoding: JIS X 0208 bytes never include CR, so
the MSH segment ends at the first CR whatever the encoding.
"""

from __future__ import annotations

import codecs

from broker.domain.errors import InvalidInput, Problem


def declared_charset(raw: bytes) -> str:
    """MSH-18 as written (all repetitions), read from the raw bytes."""
    header = raw.split(b"\r", 1)[0].decode("ascii", errors="replace")
    if len(header) < 4 or not header.startswith("MSH"):
        raise InvalidInput("MSH", "a message starts with an MSH segment", Problem.MISSING)
    fields = header.split(header[3])
    return fields[17] if len(fields) > 17 else ""


def codec_for(msh18: str, charsets: dict[str, str], repetition_separator: str = "~") -> str:
    named = [part for part in msh18.split(repetition_separator) if part.strip()]
    key = named[-1].strip() if named else ""
    try:
        return codecs.lookup(charsets[key]).name
    except KeyError:
        raise InvalidInput("MSH-18", f"character set {key!r} is not supported", Problem.NOT_IN_TABLE) from None


def decode(raw: bytes, charsets: dict[str, str]) -> str:
    """The message text, decoded as MSH-18 declares; undecodable bytes are refused
    (a wrongly decoded name would reach the modality)."""
    codec = codec_for(declared_charset(raw), charsets)
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise InvalidInput("MSH-18", f"text is not valid {codec} at byte {exc.start}") from None
