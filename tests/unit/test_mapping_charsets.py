"""MSH-18 → codec (broker/mapping/charsets.py): HL7 table 0211, JAHIS `~ISO IR87`.

JAHIS senders write ISO-2022-JP; a JIS X 0208 byte pair may look like an HL7 delimiter,
so the whole message must be decoded before it is split into fields.
"""

from __future__ import annotations

import hl7
import pytest

from broker.domain.commands import RegisterPatient
from broker.domain.errors import InvalidInput
from broker.domain.model import PersonName
from broker.mapping.charsets import codec_for, declared_charset, decode
from broker.mapping.hl7_in import interpret
from broker.mapping.profile import load_profile

SWF = load_profile("ihe-swf").hl7_in.charsets
JAHIS_PROFILE = load_profile("jahis")
JAHIS = JAHIS_PROFILE.hl7_in.charsets


def _raw(msh18: str, *segments: str, encoding: str = "ascii", version: str = "2.5") -> bytes:
    header = f"MSH|^~\\&|HIS|HOSP|BROKER|RAD|20261123080000||ADT^A04|MSG1|P|{version}||||||{msh18}|"
    return "\r".join([header, *segments]).encode(encoding) + b"\r"


@pytest.mark.parametrize(
    ("msh18", "expected"),
    [("", ""), ("UNICODE UTF-8", "UNICODE UTF-8"), ("~ISO IR87", "~ISO IR87"), ("8859/1", "8859/1")],
)
def test_declared_charset_reads_msh_18_hl7_table_0211(msh18: str, expected: str) -> None:
    assert declared_charset(_raw(msh18, "PID|1||P1")) == expected


def test_declared_charset_of_short_msh_is_empty_hl7_2_15_9_18() -> None:
    assert declared_charset(b"MSH|^~\\&|HIS|HOSP\rPID|1") == ""


def test_declared_charset_needs_msh_first_hl7_2_15_9() -> None:
    with pytest.raises(InvalidInput) as info:
        declared_charset(b"PID|1||P1\r")
    assert info.value.location == "MSH"


@pytest.mark.parametrize(
    ("charsets", "msh18", "codec"),
    [
        (SWF, "", "utf-8"),
        (SWF, "UNICODE UTF-8", "utf-8"),
        (SWF, "8859/1", "iso8859-1"),
        (SWF, "ASCII", "ascii"),
        (SWF, "~ISO IR87", "iso2022_jp"),  # JAHIS through the default profile (#13 Deliver 6)
        (SWF, "GB 18030-2000", "gb18030"),
        (JAHIS, "", "iso2022_jp"),
        (JAHIS, "~ISO IR87", "iso2022_jp"),  # first repetition empty: ASCII, then ISO IR87
        (JAHIS, "ISO IR87", "iso2022_jp"),
        (JAHIS, "UNICODE UTF-8", "utf-8"),
    ],
)
def test_codec_for_msh_18_per_profile_hl7_table_0211(charsets: dict[str, str], msh18: str, codec: str) -> None:
    assert codec_for(msh18, charsets) == codec


@pytest.mark.parametrize(("charsets", "msh18"), [(SWF, "ISO IR999"), (SWF, "CNS 11643-1992"), (JAHIS, "~ISO IR999")])
def test_unknown_charset_is_invalid_input_at_msh_18_hl7_table_0211(charsets: dict[str, str], msh18: str) -> None:
    with pytest.raises(InvalidInput) as info:
        codec_for(msh18, charsets)
    assert info.value.location == "MSH-18"
    assert msh18.strip("~") in info.value.reason


def test_decode_latin1_8859_1_hl7_table_0211() -> None:
    raw = _raw("8859/1", "PID|1||P1||MÜLLER^JOSÉ", encoding="latin-1")
    assert b"\xdc" in raw
    assert "PID|1||P1||MÜLLER^JOSÉ" in decode(raw, SWF)


def test_decode_utf8_unicode_utf_8_hl7_table_0211() -> None:
    raw = _raw("UNICODE UTF-8", "PID|1||P1||山田^太郎", encoding="utf-8")
    assert "山田^太郎" in decode(raw, SWF)


def test_jahis_iso_ir87_decoded_before_split_jahis_common_rules() -> None:
    xpn = "YAMADA^TAROU^^^^^L^A~山田^太郎^^^^^L^I~ヤマダ^タロウ^^^^^L^P"
    raw = _raw("~ISO IR87", f"PID|1||PAT001||{xpn}||19700101|M", encoding="iso2022_jp")
    # the bytes are 7-bit ISO-2022-JP with the JIS X 0208 escapes...
    assert raw.isascii()
    assert b"\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B" in raw  # 山田^太郎
    # ...and the kana bytes contain pairs that look like delimiters: マ = '%^', ウ = '%&'
    kana = "ヤマダ^タロウ".encode("iso2022_jp")
    assert b"%^" in kana and b"%&" in kana
    assert kana.count(b"^") == 2  # one real component separator + one inside マ
    # so decoding first is what keeps the name intact
    text = decode(raw, JAHIS)
    [command] = interpret(hl7.parse(text.rstrip("\r")), JAHIS_PROFILE)
    assert isinstance(command, RegisterPatient)
    assert command.patient.name == PersonName("YAMADA^TAROU", "山田^太郎", "ヤマダ^タロウ")


def test_jahis_kanji_bytes_with_backslash_and_tilde_survive_jahis_common_rules() -> None:
    """本 = 'K\\' (the HL7 escape character) and 美 = 'H~' (the repetition separator)."""
    raw = _raw("~ISO IR87", "PID|1||PAT001||YAMAMOTO^YOSHIKO^^^^^L^A~山本^美子^^^^^L^I", encoding="iso2022_jp")
    assert b"K\\" in raw and b"H~" in raw
    [command] = interpret(hl7.parse(decode(raw, JAHIS).rstrip("\r")), JAHIS_PROFILE)
    assert isinstance(command, RegisterPatient)
    assert command.patient.name == PersonName("YAMAMOTO^YOSHIKO", "山本^美子")


@pytest.mark.parametrize(
    ("charsets", "msh18", "body"),
    [
        (SWF, "UNICODE UTF-8", b"PID|1||P1||\xff\xfe"),
        (SWF, "", b"PID|1||P1||\xc3"),  # truncated UTF-8 sequence
        (SWF, "ASCII", b"PID|1||P1||\xe9"),
        (JAHIS, "~ISO IR87", b"PID|1||P1||\x8e\xb3"),  # 8-bit bytes are not ISO-2022-JP
    ],
)
def test_undecodable_bytes_are_invalid_input_naming_their_field(
    charsets: dict[str, str], msh18: str, body: bytes
) -> None:
    raw = _raw(msh18) + body + b"\r"
    with pytest.raises(InvalidInput) as info:
        decode(raw, charsets)
    assert info.value.location == "PID-5"
    assert info.value.reason.endswith(f"(MSH-18) at position 1 (byte {raw.index(body) + 11})")


def test_jis_x_0212_kanji_decoded_with_iso_ir159_jahis() -> None:
    """鷗 is in JIS X 0212 only (ESC $ ( D): MSH-18 `~ISO IR87~ISO IR159` must read it."""
    raw = _raw(
        "~ISO IR87~ISO IR159", "PID|1||PAT001||MORI^OUGAI^^^^^L^A~森^鷗外^^^^^L^I||19620117|M", encoding="iso2022_jp_2"
    )
    assert b"\x1b$(D" in raw
    [command] = interpret(hl7.parse(decode(raw, JAHIS).rstrip("\r")), JAHIS_PROFILE)
    assert isinstance(command, RegisterPatient)
    assert command.patient.name.ideographic == "森^鷗外"
