"""C-FIND identifier → WorklistQuery (broker/mapping/mwl.py), PS3.4 K and C.2.2.2."""

from __future__ import annotations

import warnings
from datetime import datetime, time

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from broker.domain.errors import InvalidInput
from broker.domain.worklist import Key, Pattern, Period, matches
from broker.mapping.mwl import query_from_identifier
from support.entries import worklist_entry

END_OF_DAY = time(23, 59, 59, 999999)


def _identifier(**step_keys: object) -> Dataset:
    sps = Dataset()
    for keyword, value in step_keys.items():
        setattr(sps, keyword, value)
    ds = Dataset()
    ds.ScheduledProcedureStepSequence = Sequence([sps])
    return ds


# --- query_from_identifier ------------------------------------------------------------


def test_broad_query_station_modality_single_date_ps3_4_C_2_2_2_5() -> None:
    query = query_from_identifier(
        _identifier(ScheduledStationAETitle="CT01", Modality="CT", ScheduledProcedureStepStartDate="20261123"),
        fold_case_names=False,
    )
    assert dict(query.patterns) == {Key.STATION_AE: Pattern("CT01"), Key.MODALITY: Pattern("CT")}
    assert query.period == Period(datetime(2026, 11, 23), datetime.combine(datetime(2026, 11, 23), END_OF_DAY))
    assert query.uid_lists == {}
    assert query.fold_case_names is False


@pytest.mark.parametrize(
    ("dates", "start", "end"),
    [
        ("20261123-20261125", datetime(2026, 11, 23), datetime(2026, 11, 25, 23, 59, 59, 999999)),
        ("20261123-", datetime(2026, 11, 23), None),
        ("-20261125", None, datetime(2026, 11, 25, 23, 59, 59, 999999)),
    ],
)
def test_date_range_and_open_ranges_ps3_4_C_2_2_2_5(dates: str, start: datetime | None, end: datetime | None) -> None:
    query = query_from_identifier(_identifier(ScheduledProcedureStepStartDate=dates), fold_case_names=False)
    assert query.period == Period(start, end)


def test_combined_date_time_range_ps3_4_C_2_2_2_5_1() -> None:
    ident = _identifier(
        ScheduledProcedureStepStartDate="20261123-20261124", ScheduledProcedureStepStartTime="0800-1700"
    )
    period = query_from_identifier(ident, fold_case_names=False).period
    assert period == Period(datetime(2026, 11, 23, 8, 0), datetime(2026, 11, 24, 17, 0, 59, 999999))
    # a combined range is one interval, not "each day between 08:00 and 17:00"
    assert period.contains(datetime(2026, 11, 23, 20, 0)) is True
    assert period.contains(datetime(2026, 11, 23, 7, 59)) is False
    assert period.contains(datetime(2026, 11, 24, 17, 1)) is False


def test_time_without_date_is_not_a_period_ps3_4_C_2_2_2_5_1() -> None:
    assert (
        query_from_identifier(_identifier(ScheduledProcedureStepStartTime="0800-1000"), fold_case_names=False).period
        is None
    )


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("0800-1000", [time(8, 0), time(10, 0, 59)], [time(7, 59, 59), time(10, 1)]),
        ("1200-", [time(12, 0), time(23, 59)], [time(11, 59, 59)]),
        ("-1200", [time(0, 0), time(12, 0, 59)], [time(12, 1)]),
        ("1430", [time(14, 30), time(14, 30, 59)], [time(14, 29, 59), time(14, 31)]),
    ],
)
def test_time_without_date_is_a_time_of_day_range_on_any_day_ps3_4_C_2_2_2_5(
    text: str, inside: list[time], outside: list[time]
) -> None:
    times = query_from_identifier(_identifier(ScheduledProcedureStepStartTime=text), fold_case_names=False).times
    assert times is not None
    for day in (datetime(2026, 11, 23), datetime(2031, 2, 1)):
        assert all(times.contains(datetime.combine(day, t)) for t in inside)
        assert not any(times.contains(datetime.combine(day, t)) for t in outside)
    assert times.contains(None) is False


def test_time_with_date_makes_no_separate_time_of_day_range_ps3_4_C_2_2_2_5_1() -> None:
    ident = _identifier(ScheduledProcedureStepStartDate="20261123", ScheduledProcedureStepStartTime="0800-1000")
    assert query_from_identifier(ident, fold_case_names=False).times is None


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("ScheduledProcedureStepStartDate", "2026-11-23"),
        ("ScheduledProcedureStepStartDate", "20261323"),
        ("ScheduledProcedureStepStartTime", "2599"),
        ("ScheduledProcedureStepStartTime", "08h00"),
    ],
)
def test_bad_date_or_time_is_invalid_input_ps3_5_6_2(keyword: str, value: str) -> None:
    keys = {"ScheduledProcedureStepStartDate": "20261123", keyword: value}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns on the invalid value a peer may send
        ident = _identifier(**keys)
    with pytest.raises(InvalidInput) as info:
        query_from_identifier(ident, fold_case_names=False)
    assert info.value.location == keyword


def test_patient_keys_uid_list_and_fold_case_ps3_4_K_6_1_2() -> None:
    ident = Dataset()
    ident.PatientName = "山田*"
    ident.PatientID = ""
    ident.StudyInstanceUID = ["1.2.392.1", "1.2.392.2"]
    query = query_from_identifier(ident, fold_case_names=True)
    assert dict(query.patterns) == {Key.PATIENT_NAME: Pattern("山田*"), Key.PATIENT_ID: Pattern("")}
    assert query.uid_lists == {Key.STUDY_INSTANCE_UID: frozenset({"1.2.392.1", "1.2.392.2"})}
    assert query.period is None
    assert query.fold_case_names is True
    assert matches(worklist_entry(), query) is True


def test_query_from_identifier_selects_entries_ps3_4_K_4_1_2() -> None:
    query = query_from_identifier(
        _identifier(
            Modality="CT", ScheduledProcedureStepStartDate="20261123", ScheduledProcedureStepStartTime="0900-1100"
        ),
        fold_case_names=False,
    )
    assert matches(worklist_entry(), query) is True
    other_day = query_from_identifier(_identifier(ScheduledProcedureStepStartDate="20261124"), fold_case_names=False)
    assert matches(worklist_entry(), other_day) is False
