"""Profile rules a site sets without code: code maps, unmapped-code refusal, station by
procedure, time zone, and refusal of a bad profile at start-up."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import hl7
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.commands import PlaceOrder
from broker.domain.errors import InvalidInput, Problem
from broker.domain.identifiers import AssignmentPolicy
from broker.mapping.hl7_in import interpret, parse_dtm
from broker.mapping.profile import ProfileError, load_profile

NW = (Path(__file__).resolve().parents[2] / "hl7/rad-2-placer-order/orm_o01_nw.hl7").read_text()


def _site_profile(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text("name: site\nextends: ihe-swf\n" + body, encoding="utf-8")
    return path


def _order(profile_path: Path) -> PlaceOrder:
    [command] = interpret(hl7.parse(NW.replace("\n", "\r")), load_profile(str(profile_path)))
    assert isinstance(command, PlaceOrder)
    return command


def test_local_code_mapped_to_jj1017(tmp_path: Path) -> None:
    path = _site_profile(tmp_path, "codes:\n  map:\n    LOCAL:\n      CTCHEST: {value: GX.01.00, scheme: JJ1017}\n")
    procedure = _order(path).order.procedures[0]
    assert (procedure.code.value, procedure.code.scheme, procedure.code.meaning) == ("GX.01.00", "JJ1017", "CT Chest")
    assert procedure.steps[0].protocol_codes == [procedure.code]


def test_unmapped_code_refused_at_obr_4_when_required(tmp_path: Path) -> None:
    path = _site_profile(tmp_path, "codes:\n  require_mapped: true\n  map: {}\n")
    with pytest.raises(InvalidInput) as refused:
        _order(path)
    assert (refused.value.location, refused.value.problem) == ("OBR-4", Problem.NOT_IN_TABLE)


def test_station_by_procedure_wins_over_modality() -> None:
    policy = AssignmentPolicy(station_by_modality={"CT": "CT01"}, station_by_procedure={"CTCARDIAC": "CT02"})
    assert (policy.station_for("CTCARDIAC", "CT"), policy.station_for("CTCHEST", "CT")) == ("CT02", "CT01")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20261123100000+0000", datetime(2026, 11, 23, 19, 0)),  # UTC 10:00 is 19:00 in Tokyo
        ("20261123100000+0900", datetime(2026, 11, 23, 10, 0)),
        ("20261123100000", datetime(2026, 11, 23, 10, 0)),  # no offset: already local
    ],
)
def test_times_with_offset_shown_in_site_time(text: str, expected: datetime) -> None:
    assert parse_dtm(text, "TQ1-7", ZoneInfo("Asia/Tokyo")) == expected


def test_bad_time_zone_stops_start_up_with_file_and_key(tmp_path: Path) -> None:
    path = _site_profile(tmp_path, "time_zone: Mars/Olympus\n")
    with pytest.raises(ProfileError, match=r"site.yaml: time_zone = 'Mars/Olympus': .*unknown time zone"):
        load_profile(str(path))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("dicom:\n  character_sets: ['ISO_IR 203']\n", r"character set 'ISO_IR 203' is not one the broker can write"),
        ("dicom:\n  priorities: {R: NORMAL}\n", r"priorities.*'STAT', 'HIGH', 'ROUTINE', 'MEDIUM' or 'LOW'"),
    ],
    ids=["unsupported-character-set", "priority-not-a-defined-term"],
)
def test_dicom_answer_rules_outside_the_standard_stop_start_up(tmp_path: Path, body: str, message: str) -> None:
    """A profile naming a character set the encoder lacks, or a priority PS3.3 C.4.11
    does not define, is refused at start-up rather than at the first answer."""
    with pytest.raises(ProfileError, match=message):
        load_profile(str(_site_profile(tmp_path, body)))


A08 = (Path(__file__).resolve().parents[2] / "hl7/rad-12-patient-update/adt_a08.hl7").read_text()


@pytest.mark.parametrize(("choice", "command"), [("refuse", "UpdatePatient"), ("register", "RegisterPatient")])
def test_a08_before_registration_follows_the_profile_r5(tmp_path: Path, choice: str, command: str) -> None:
    path = _site_profile(tmp_path, f"hl7_in:\n  unknown_patient_update: {choice}\n")
    [result] = interpret(hl7.parse(A08.replace("\n", "\r")), load_profile(str(path)))
    assert type(result).__name__ == command


@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)),
    st.sampled_from("+-"),
    st.integers(0, 30),
    st.integers(0, 99),
)
def test_offsets_read_as_strptime_reads_them(moment: datetime, sign: str, hours: int, minutes: int) -> None:
    """The offset of a full date and time is taken and refused as `strptime`'s %z does
    (minutes over 59, 24 hours or more), and the site time is the same."""
    text = f"{moment:%Y%m%d%H%M%S}{sign}{hours:02d}{minutes:02d}"
    tokyo = ZoneInfo("Asia/Tokyo")
    try:
        expected = datetime.strptime(text, "%Y%m%d%H%M%S%z").astimezone(tokyo).replace(tzinfo=None)
    except ValueError:
        with pytest.raises(InvalidInput):
            parse_dtm(text, "TQ1-7", tokyo)
        return
    assert parse_dtm(text, "TQ1-7", tokyo) == expected


def test_a_date_of_any_precision_takes_an_offset() -> None:
    """HL7 DTM allows an offset after a year alone: its first moment, in site time."""
    assert parse_dtm("2026+0000", "TQ1-7", ZoneInfo("Asia/Tokyo")) == datetime(2026, 1, 1, 9, 0)
