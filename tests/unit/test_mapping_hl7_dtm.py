"""HL7 DTM → datetime (broker/mapping/hl7_in.py parse_dtm): YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.errors import InvalidInput
from broker.mapping.hl7_in import parse_dtm


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026", datetime(2026, 1, 1)),
        ("202611", datetime(2026, 11, 1)),
        ("20261123", datetime(2026, 11, 23)),
        ("2026112310", datetime(2026, 11, 23, 10)),
        ("202611231005", datetime(2026, 11, 23, 10, 5)),
        ("20261123100530", datetime(2026, 11, 23, 10, 5, 30)),
        ("20261123100530.1234", datetime(2026, 11, 23, 10, 5, 30)),
        ("20261123100530+0900", datetime(2026, 11, 23, 10, 5, 30)),
        ("202611231005-0500", datetime(2026, 11, 23, 10, 5)),
    ],
)
def test_parse_dtm_precisions_hl7_v2_dtm(text: str, expected: datetime) -> None:
    assert parse_dtm(text, "OBR-27.4") == expected


@pytest.mark.parametrize("text", ["", "20261", "20261323", "2026112325", "tomorrow"])
def test_parse_dtm_refuses_malformed_hl7_v2_dtm(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_dtm(text, "OBR-27.4")
    assert info.value.location == "OBR-27.4"


@pytest.mark.parametrize("text", ["2026-11-23", "2026-11-23T10:00", "20261123-1000-0500"])
def test_parse_dtm_refuses_dash_outside_the_offset_hl7_v2_dtm(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_dtm(text, "OBR-27.4")


_FORMATS = {4: "%Y", 6: "%Y%m", 8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


@given(st.sampled_from(sorted(_FORMATS)).flatmap(lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)))
def test_digits_read_as_strptime_reads_them(digits: str) -> None:
    """What parse_dtm takes for a date and time is what `strptime` with the format of
    that precision takes, and what it refuses (month 13, 30 February, hour 24) too."""
    try:
        expected = datetime.strptime(digits, _FORMATS[len(digits)])
    except ValueError:
        with pytest.raises(InvalidInput):
            parse_dtm(digits, "PID-7")
        return
    assert parse_dtm(digits, "PID-7") == expected
