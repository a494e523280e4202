"""Modality Worklist matching rules (broker/domain/worklist.py), PS3.4 C.2.2.2."""

from __future__ import annotations

from datetime import datetime

import pytest

from broker.domain.model import Order, Patient, PersonName, RequestedProcedure, ScheduledStep
from broker.domain.worklist import (
    Key,
    Pattern,
    Period,
    WorklistEntry,
    WorklistQuery,
    matches,
    name_matches,
)

JAPANESE = PersonName("YAMADA^TAROU", "山田^太郎", "ヤマダ^タロウ")


def _entry(
    name: PersonName = JAPANESE,
    *,
    start: datetime | None = datetime(2026, 11, 23, 10, 0),
    modality: str = "CT",
    station_ae: str = "CT01",
    study_uid: str = "1.2.392.1",
    performing_physician: str = "",
) -> WorklistEntry:
    step = ScheduledStep(
        "SPS1", modality, station_ae=station_ae, start=start, performing_physician=performing_physician
    )
    rp = RequestedProcedure("RP1", study_uid, steps=[step])
    order = Order("PO1", "FO1", "ACC1", Patient("PAT1", name=name), procedures=[rp])
    return WorklistEntry.of(order, rp, step)


# --- Pattern: single value and wildcards (C.2.2.2.1, C.2.2.2.4) -----------------------


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("CT", "CT", True),
        ("CT", "CTX", False),  # single value matching is whole-value
        ("CT", "XCT", False),
        ("CT", "ct", False),  # case-sensitive unless fold_case
        ("CT", "CT  ", True),  # trailing padding of the stored value is not significant
        ("C*", "CT", True),
        ("C*", "C", True),  # * matches zero characters
        ("*T", "CT", True),
        ("C?", "CT", True),
        ("C?", "C", False),  # ? matches exactly one character
        ("C?", "CTT", False),
        ("??", "MR", True),
        ("*", "", True),
        ("DOE^J*", "DOE^JOHN", True),
    ],
)
def test_pattern_single_value_and_wildcards_ps3_4_C_2_2_2_4(pattern: str, value: str, expected: bool) -> None:
    assert Pattern(pattern).matches(value) is expected


@pytest.mark.parametrize(("text", "wild"), [("CT", False), ("C*", True), ("C?", True), ("", False)])
def test_pattern_is_wildcard_only_with_star_or_question_mark_ps3_4_C_2_2_2_4(text: str, wild: bool) -> None:
    assert Pattern(text).is_wildcard is wild


@pytest.mark.parametrize(
    ("pattern", "literal_match", "regex_match"),
    [
        ("A.B", "A.B", "AxB"),
        ("A+", "A+", "AA"),
        ("(1)", "(1)", "1"),
        ("[AB]", "[AB]", "A"),
        ("^DOE$", "^DOE$", "DOE"),
        ("A|B", "A|B", "A"),
        ("A{2}", "A{2}", "AA"),
        ("A.*", "A.xyz", "Axyz"),  # '.' literal, '*' wildcard
    ],
)
def test_pattern_regex_metacharacters_are_literal_ps3_4_C_2_2_2_4(
    pattern: str, literal_match: str, regex_match: str
) -> None:
    assert Pattern(pattern).matches(literal_match) is True
    assert Pattern(pattern).matches(regex_match) is False


def test_pattern_fold_case_ps3_4_C_2_2_2_1() -> None:
    assert Pattern("yamada*").matches("YAMADA^TAROU") is False
    assert Pattern("yamada*").matches("YAMADA^TAROU", fold_case=True) is True
    assert Pattern("YAMADA^TAROU").matches("Yamada^Tarou", fold_case=True) is True


# --- Period: range matching (C.2.2.2.5) -------------------------------------------------

T0 = datetime(2026, 11, 23, 8, 0)
T1 = datetime(2026, 11, 23, 17, 0)


@pytest.mark.parametrize(
    ("period", "moment", "expected"),
    [
        (Period(T0, T1), T0, True),  # inclusive start
        (Period(T0, T1), T1, True),  # inclusive end
        (Period(T0, T1), datetime(2026, 11, 23, 12, 0), True),
        (Period(T0, T1), datetime(2026, 11, 23, 7, 59, 59), False),
        (Period(T0, T1), datetime(2026, 11, 23, 17, 0, 1), False),
        (Period(T0, None), datetime(2099, 1, 1), True),  # "a-": open end
        (Period(T0, None), datetime(2026, 11, 22), False),
        (Period(None, T1), datetime(1900, 1, 1), True),  # "-b": open start
        (Period(None, T1), datetime(2026, 11, 24), False),
        (Period(T0, T1), None, False),  # a step without start time never falls in a range
    ],
)
def test_period_inclusive_and_open_ranges_ps3_4_C_2_2_2_5(
    period: Period, moment: datetime | None, expected: bool
) -> None:
    assert period.contains(moment) is expected


# --- PN matching per component group -------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("山田*", True),  # kanji wildcard against the ideographic group
        ("山田^太郎", True),
        ("ヤマダ*", True),  # phonetic group
        ("YAMADA*", True),  # alphabetic group
        ("山本*", False),
        ("=山田*", True),  # explicit: ideographic group only
        ("山田*=", False),  # explicit: alphabetic group is 山田* -> no
        ("YAMADA^TAROU=山田^太郎", True),
        ("YAMADA^TAROU=山本^太郎", False),
        ("==ヤマダ^タロウ", True),
        ("*=*=*", True),
    ],
)
def test_pn_matching_per_component_group_ps3_4_C_2_2_2_1(query: str, expected: bool) -> None:
    assert name_matches(Pattern(query), JAPANESE, fold_case=False) is expected


def test_pn_kanji_wildcard_selects_entry_via_matches_ps3_4_C_2_2_2_4() -> None:
    query = WorklistQuery(patterns={Key.PATIENT_NAME: Pattern("山田*")})
    assert str(_entry().patient_name) == "YAMADA^TAROU=山田^太郎=ヤマダ^タロウ"
    assert matches(_entry(), query) is True
    assert matches(_entry(PersonName("SATO^HANAKO", "佐藤^花子")), query) is False


def test_pn_fold_case_option_applies_to_names_ps3_4_C_2_2_2_1() -> None:
    entry = _entry(PersonName("Doe^John"))
    strict = WorklistQuery(patterns={Key.PATIENT_NAME: Pattern("DOE*")})
    folded = WorklistQuery(patterns={Key.PATIENT_NAME: Pattern("DOE*")}, fold_case_names=True)
    assert matches(entry, strict) is False
    assert matches(entry, folded) is True


def test_pn_fold_case_option_applies_to_the_performing_physician_ps3_4_C_2_2_2_1() -> None:
    entry = _entry(performing_physician="House^Gregory")
    strict = WorklistQuery(patterns={Key.PERFORMING_PHYSICIAN: Pattern("HOUSE*")})
    folded = WorklistQuery(patterns={Key.PERFORMING_PHYSICIAN: Pattern("HOUSE*")}, fold_case_names=True)
    assert matches(entry, strict) is False
    assert matches(entry, folded) is True


def test_fold_case_does_not_apply_to_non_pn_keys_ps3_4_C_2_2_2_1() -> None:
    query = WorklistQuery(patterns={Key.MODALITY: Pattern("ct")}, fold_case_names=True)
    assert matches(_entry(modality="CT"), query) is False


# --- universal matching, uid lists, combinations -------------------------------------


@pytest.mark.parametrize("text", ["", "*"])
@pytest.mark.parametrize("key", list(Key))
def test_empty_or_star_is_universal_matching_ps3_4_C_2_2_2_3(text: str, key: Key) -> None:
    assert matches(_entry(), WorklistQuery(patterns={key: Pattern(text)})) is True


def test_universal_matching_includes_steps_without_value_ps3_4_C_2_2_2_3() -> None:
    entry = _entry(station_ae="")
    assert matches(entry, WorklistQuery(patterns={Key.STATION_AE: Pattern("")})) is True
    assert matches(entry, WorklistQuery(patterns={Key.STATION_AE: Pattern("CT01")})) is False


def test_empty_query_matches_everything_ps3_4_C_2_2_2_3() -> None:
    assert matches(_entry(start=None), WorklistQuery()) is True


@pytest.mark.parametrize(
    ("uids", "expected"),
    [
        (frozenset({"1.2.392.1"}), True),
        (frozenset({"1.2.392.9", "1.2.392.1"}), True),
        (frozenset({"1.2.392.9", "1.2.392.10"}), False),
        (frozenset({"1.2.392"}), False),  # no prefix matching on UIDs
        (frozenset(), True),  # empty list: universal
    ],
)
def test_uid_list_matching_ps3_4_C_2_2_2_2(uids: frozenset[str], expected: bool) -> None:
    query = WorklistQuery(uid_lists={Key.STUDY_INSTANCE_UID: uids})
    assert matches(_entry(), query) is expected


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        ({Key.STATION_AE: "CT01", Key.MODALITY: "CT"}, True),
        ({Key.STATION_AE: "CT01", Key.MODALITY: "MR"}, False),  # every key must match
        ({Key.PATIENT_ID: "PAT1", Key.ACCESSION_NUMBER: "ACC*"}, True),
        ({Key.REQUESTED_PROCEDURE_ID: "RP1", Key.SPS_ID: "SPS?"}, True),
        ({Key.SPS_ID: "SPS2"}, False),
    ],
)
def test_all_keys_must_match_ps3_4_C_2_2_2(patterns: dict[Key, str], expected: bool) -> None:
    query = WorklistQuery(patterns={k: Pattern(v) for k, v in patterns.items()})
    assert matches(_entry(), query) is expected


def test_period_combines_with_other_keys_ps3_4_C_2_2_2_5() -> None:
    query = WorklistQuery(patterns={Key.MODALITY: Pattern("CT")}, period=Period(T0, T1))
    assert matches(_entry(start=datetime(2026, 11, 23, 10, 0)), query) is True
    assert matches(_entry(start=datetime(2026, 11, 23, 18, 0)), query) is False
    assert matches(_entry(start=None), query) is False
