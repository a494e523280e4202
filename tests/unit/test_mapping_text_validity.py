"""Text is valid before it is stored (#14 Deliver 4) and every HL7 table 0211 set with
a codec is read by the default profile (#13 Deliver 6).

After decoding with the declared set, control characters (but the segment
terminators), NUL, a BOM and bidirectional overrides are refused, naming the field and
the position; valid text from every supported set comes out unchanged."""

from __future__ import annotations

import codecs
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.domain.errors import InvalidInput
from broker.mapping.charsets import decode
from broker.mapping.hl7_text import canonical, check_text, first_segment, segments, with_cr
from broker.mapping.profile import load_profile

CHARSETS = load_profile("ihe-swf").hl7_in.charsets
DELIMITERS = set("|^~\\&\r\n")


def _message(msh18: str, name: str, handling: str = "") -> str:
    return (
        f"MSH|^~\\&|RIS|HOSP|BROKER|RAD|20261123||ADT^A04|C1|P|2.5||||||{msh18}||{handling}\r"
        f"PID|1||P1^^^HOSP||{name}||19700101|M\r"
    )


def _invalid(raw: bytes) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        check_text(decode(raw, CHARSETS))
    return caught.value


@pytest.mark.parametrize(
    "key",
    [
        "ASCII",
        "ISO IR6",
        *(f"8859/{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)),
        *("ISO IR14", "ISO IR87", "ISO IR13", "ISO IR159", "GB 18030-2000", "KS X 1001", "BIG-5"),
        *("UNICODE UTF-8", "UNICODE"),
    ],
)
def test_default_profile_reads_each_table_0211_set_with_a_codec_13_deliver_6(key: str) -> None:
    assert codecs.lookup(CHARSETS[key])


@cache
def _alphabet(codec: str) -> list[str]:
    """Every BMP character the codec writes and reads back, but delimiters and the
    characters no value may hold."""
    found = []
    for point in range(0x20, 0x10000):
        char = chr(point)
        if char in DELIMITERS or 0xD800 <= point < 0xE000:
            continue
        try:
            if char.encode(codec).decode(codec) != char:
                continue
            check_text(char)
        except (UnicodeError, InvalidInput):
            continue
        found.append(char)
    return found


@settings(max_examples=40, deadline=None)
@given(data=st.data(), key=st.sampled_from(sorted(k for k in CHARSETS if k)))
def test_valid_text_of_every_supported_set_is_unchanged_14_deliver_4(data: st.DataObject, key: str) -> None:
    codec = CHARSETS[key]
    name = data.draw(st.text(st.sampled_from(_alphabet(codec)), min_size=1, max_size=30))
    msh18 = f"~{key}" if codec.startswith("iso2022") else key
    text = _message(msh18, name, "ISO 2022-1994" if codec.startswith("iso2022") else "")
    decoded = decode(text.encode(codec), CHARSETS)
    check_text(decoded)
    assert decoded == text


def test_iso_2022_jp_bytes_declared_utf_8_are_refused_at_pid_5_14_defect_4() -> None:
    kanji = "山田^太郎".encode("iso2022_jp")
    raw = _message("UNICODE UTF-8", "").encode().replace(b"||19700101", kanji + b"||19700101")
    refusal = _invalid(raw)
    assert refusal.location == "PID-5"
    assert "U+001B at position 1" in refusal.reason


def test_iso_2022_jp_bytes_with_msh_18_empty_are_refused_14_defect_4() -> None:
    raw = _message("", "YAMADA").encode().replace(b"YAMADA", "YAMADA山田".encode("iso2022_jp"))
    refusal = _invalid(raw)
    assert (refusal.location, refusal.reason) == ("PID-5", "control character U+001B at position 7 is not allowed")


def test_shift_jis_bytes_declared_8859_1_are_refused_14_defect_4() -> None:
    raw = _message("8859/1", "").encode().replace(b"||19700101", "山田^太郎".encode("shift_jis") + b"||19700101")
    refusal = _invalid(raw)
    assert refusal.location == "PID-5"
    assert "U+008E" in refusal.reason


@pytest.mark.parametrize(
    ("name", "what", "position"),
    [
        ("DOE\x00^JOHN", "control character U+0000", 4),
        ("\ufeffDOE^JOHN", "byte order mark U+FEFF", 1),
        ("DOE^JO\u202eHN", "bidirectional control U+202E", 7),
        ("DOE^\u2066JOHN\u2069", "bidirectional control U+2066", 5),
        ("DOE\tJOHN", "control character U+0009", 4),
        ("DOE^JOHN\x85", "control character U+0085", 9),
    ],
)
def test_nul_bom_bidi_and_controls_are_refused_naming_field_and_position_14_defect_5(
    name: str, what: str, position: int
) -> None:
    refusal = _invalid(_message("UNICODE UTF-8", name).encode())
    assert (refusal.location, refusal.reason) == ("PID-5", f"{what} at position {position} is not allowed")


def test_escape_left_by_a_wrong_iso_2022_escape_is_refused_in_msh_field() -> None:
    refusal = _invalid(_message("", "X").replace("RIS", "R\x1bIS").encode())
    assert refusal.location == "MSH-3"


def test_msh_20_other_than_iso_2022_is_refused_hl7_table_0356() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode(_message("~ISO IR87", "X", "2.3").encode(), CHARSETS)
    assert caught.value.location == "MSH-20"


@pytest.mark.parametrize("terminator", ["\r", "\n", "\r\n"])
def test_segments_split_at_cr_lf_and_crlf_13_deliver_3(terminator: str) -> None:
    text = _message("", "DOE").replace("\r", terminator)
    assert segments(text) == segments(_message("", "DOE"))
    assert with_cr(text) == _message("", "DOE")
    assert first_segment(text.encode()) == _message("", "DOE").split("\r")[0].encode()


def test_canonical_form_ignores_terminators_and_trailing_empties_hl7_2_5_3() -> None:
    base = _message("", "DOE^JOHN")
    padded = base.replace("19700101|M\r", "19700101|M|||\n").replace("P1^^^HOSP|", "P1^^^HOSP^^~|") + "\n"
    assert canonical(padded) == canonical(base)
    assert canonical(base.replace("DOE^JOHN", "DOE^JON")) != canonical(base)
    assert canonical(base.replace("|M\r", "|F\r")) != canonical(base)
