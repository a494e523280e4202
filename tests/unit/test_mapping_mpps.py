"""MPPS datasets ↔ PerformedStep (broker/mapping/mpps.py), PS3.4 F.7 / RAD-6 and RAD-7.

The record is kept as DICOM JSON re-encoded as UTF-8 (ISO_IR 192), so an N-SET sent in
another character set than its N-CREATE merges into one consistent record.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from broker.domain.errors import InvalidInput, Problem
from broker.domain.model import PpsStatus, StepReference
from broker.mapping.mpps import merge, performed_step_from
from broker.mapping.profile import load_profile

RULES = load_profile("ihe-swf").mpps

# PS3.5 H.3.1 name as ISO 2022 IR 87 bytes, the way pynetdicom hands a decoded-on-demand dataset over.
YAMADA_IR87 = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B"
YAMADA = {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}


def _item(sps: str, rp: str, acc: str, study: str) -> Dataset:
    item = Dataset()
    item.StudyInstanceUID = study
    item.AccessionNumber = acc
    item.RequestedProcedureID = rp
    item.ScheduledProcedureStepID = sps
    return item


def _n_create(status: str = "IN PROGRESS", *, ir87: bool = False) -> Dataset:
    ds = Dataset()
    if ir87:
        ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
        ds.PatientName = YAMADA_IR87
    else:
        ds.PatientName = "DOE^JOHN"
    ds.PatientID = "PAT001"
    ds.Modality = "CT"
    ds.PerformedStationAETitle = "CT01"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedProcedureStepStartDate = "20261123"
    ds.PerformedProcedureStepStartTime = "100500"
    ds.PerformedProcedureStepStatus = status
    ds.ScheduledStepAttributesSequence = Sequence(
        [_item("SPS1", "RP1", "ACC1", "1.2.392.1"), _item("SPS2", "RP2", "ACC1", "1.2.392.2")]
    )
    return ds


def _record(json_text: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(json_text)
    return record


def test_performed_step_reads_status_station_and_references_ps3_4_F_7_2_1() -> None:
    pps = performed_step_from(_n_create(), "1.2.392.9.1", RULES)
    assert pps.sop_instance_uid == "1.2.392.9.1"
    assert pps.status is PpsStatus.IN_PROGRESS
    assert pps.performed_station_ae == "CT01"
    assert pps.references == [
        StepReference("SPS1", "RP1", "ACC1", "1.2.392.1"),
        StepReference("SPS2", "RP2", "ACC1", "1.2.392.2"),  # group case, PS3.17 J
    ]
    record = _record(pps.attributes)
    assert record["00400252"] == {"vr": "CS", "Value": ["IN PROGRESS"]}
    assert record["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}


def test_unscheduled_mpps_has_empty_reference_fields_ps3_17_J() -> None:
    ds = _n_create()
    ds.ScheduledStepAttributesSequence = Sequence([_item("", "", "", "1.2.392.7")])
    ds.ScheduledStepAttributesSequence[0].ScheduledProcedureStepID = None
    assert performed_step_from(ds, "1.2", RULES).references == [StepReference("", "", "", "1.2.392.7")]


def test_n_create_without_scheduled_step_sequence_is_missing_attribute_ps3_4_F_7_2_1() -> None:
    ds = _n_create()
    del ds.ScheduledStepAttributesSequence
    with pytest.raises(InvalidInput) as info:
        performed_step_from(ds, "1.2", RULES)
    assert (info.value.location, info.value.problem) == ("ScheduledStepAttributesSequence", Problem.MISSING)


@pytest.mark.parametrize("status", ["COMPLETED", "DISCONTINUED"])
def test_defined_terms_are_read_ps3_3_C_4_14(status: str) -> None:
    assert performed_step_from(_n_create(status), "1.2", RULES).status == PpsStatus(status)


@pytest.mark.parametrize("status", ["IN_PROGRESS", "in progress", "DONE", "CANCELED"])
def test_status_other_than_defined_terms_is_invalid_input_ps3_3_C_4_14(status: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns on a CS value a peer may still send
        ds = _n_create(status)
    with pytest.raises(InvalidInput) as info:
        performed_step_from(ds, "1.2", RULES)
    assert info.value.location == "PerformedProcedureStepStatus"
    assert status in info.value.reason


def test_missing_status_is_invalid_input_required_ps3_4_F_7_2_1() -> None:
    ds = _n_create()
    del ds.PerformedProcedureStepStatus
    with pytest.raises(InvalidInput) as info:
        performed_step_from(ds, "1.2", RULES)
    assert (info.value.location, info.value.reason) == ("PerformedProcedureStepStatus", "is required")


def test_iso_2022_ir87_n_create_is_stored_as_utf8_json_ps3_18_F_2() -> None:
    pps = performed_step_from(_n_create(ir87=True), "1.2", RULES)
    record = _record(pps.attributes)
    assert record["00080005"]["Value"] == ["ISO_IR 192"]
    assert record["00100010"] == {"vr": "PN", "Value": [YAMADA]}
    assert "山田" in pps.attributes  # ensure_ascii=False: readable UTF-8, not \\u escapes


def test_merge_applies_n_set_modification_list_ps3_4_F_7_2_2() -> None:
    stored = performed_step_from(_n_create(), "1.2", RULES).attributes
    modification = Dataset()
    modification.PerformedProcedureStepStatus = "COMPLETED"
    modification.PerformedProcedureStepEndDate = "20261123"
    modification.PerformedProcedureStepEndTime = "103000"
    series = Dataset()
    series.SeriesInstanceUID = "1.2.392.5"
    series.RetrieveAETitle = "PACS"
    modification.PerformedSeriesSequence = Sequence([series])
    status, merged, _ = merge(stored, modification, RULES)
    assert status is PpsStatus.COMPLETED
    record = _record(merged)
    assert record["00400252"]["Value"] == ["COMPLETED"]
    assert record["00400250"]["Value"] == ["20261123"]  # PPS End Date
    assert record["00400251"]["Value"] == ["103000"]  # PPS End Time
    assert record["00400340"]["Value"][0]["0020000E"]["Value"] == ["1.2.392.5"]
    assert record["00400241"]["Value"] == ["CT01"]  # untouched attributes stay
    assert record["00080005"]["Value"] == ["ISO_IR 192"]


def test_merge_replaces_attribute_values_and_clears_with_empty_ps3_4_F_7_2_2() -> None:
    stored = performed_step_from(_n_create(), "1.2", RULES).attributes
    modification = Dataset()
    modification.PerformedProcedureStepStatus = "IN PROGRESS"
    modification.PerformedProcedureStepDescription = ""
    status, merged, _ = merge(stored, modification, RULES)
    assert status is PpsStatus.IN_PROGRESS
    assert "Value" not in _record(merged)["00400254"]


def test_merge_keeps_the_record_utf8_when_n_set_declares_another_charset_ps3_5_6_1() -> None:
    stored = performed_step_from(_n_create(), "1.2", RULES).attributes
    modification = Dataset()
    modification.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    modification.PerformedProcedureStepStatus = "IN PROGRESS"
    modification.PerformedProcedureStepDescription = b"\x1b$B;3ED\x1b(B"  # LO 山田
    _, merged, _ = merge(stored, modification, RULES)
    record = _record(merged)
    assert record["00080005"]["Value"] == ["ISO_IR 192"]
    assert record["00400254"]["Value"] == ["山田"]


def test_merge_keeps_non_latin_names_of_the_stored_record_ps3_4_F_7_2_2() -> None:
    stored = performed_step_from(_n_create(ir87=True), "1.2", RULES).attributes
    assert _record(stored)["00100010"]["Value"] == [YAMADA]
    modification = Dataset()
    modification.PerformedProcedureStepStatus = "IN PROGRESS"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, merged, _ = merge(stored, modification, RULES)
    assert _record(merged)["00100010"]["Value"] == [YAMADA]
    assert [str(w.message) for w in caught] == []


def test_merge_decodes_pn_sent_in_iso_2022_ir87_ps3_5_6_1() -> None:
    stored = performed_step_from(_n_create(), "1.2", RULES).attributes
    modification = Dataset()
    modification.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    modification.PerformedProcedureStepStatus = "IN PROGRESS"
    modification.PerformingPhysicianName = YAMADA_IR87
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, merged, _ = merge(stored, modification, RULES)
    assert _record(merged)["00081050"]["Value"] == [YAMADA]
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("keyword", ["PatientName", "PerformedStationAETitle", "Modality", "StudyID"])
def test_n_set_of_not_allowed_attribute_is_no_such_attribute_ps3_4_F_7_2_1(keyword: str) -> None:
    stored = performed_step_from(_n_create(), "1.2", RULES).attributes
    modification = Dataset()
    setattr(modification, keyword, "X")
    with pytest.raises(InvalidInput) as info:
        merge(stored, modification, RULES)
    assert (info.value.location, info.value.problem) == (keyword, Problem.NOT_ALLOWED)


@pytest.mark.parametrize("status", ["COMPLETED", "DISCONTINUED"])
def test_final_status_needs_end_date_and_time_ps3_4_F_7_2_2(status: str) -> None:
    stored = performed_step_from(_n_create(), "1.2", RULES).attributes
    modification = Dataset()
    modification.PerformedProcedureStepStatus = status
    with pytest.raises(InvalidInput) as info:
        merge(stored, modification, RULES)
    assert (info.value.location, info.value.problem) == ("PerformedProcedureStepEndDate", Problem.MISSING)


@pytest.mark.parametrize(
    ("keyword", "problem"), [("PerformedStationAETitle", Problem.MISSING), ("PerformedProcedureStepID", Problem.EMPTY)]
)
def test_n_create_type_1_attributes_ps3_4_F_7_2_1(keyword: str, problem: Problem) -> None:
    ds = _n_create()
    if problem is Problem.MISSING:
        delattr(ds, keyword)
    else:
        setattr(ds, keyword, "")
    with pytest.raises(InvalidInput) as info:
        performed_step_from(ds, "1.2", RULES)
    assert (info.value.location, info.value.problem) == (keyword, problem)
