"""Worklist entry → C-FIND answer identifier (broker/mapping/mwl.py), PS3.4 K and PS3.5 character sets."""

from __future__ import annotations

import warnings
from collections.abc import Sequence as Strings
from dataclasses import replace
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.sequence import Sequence

from broker.domain.model import PersonName
from broker.domain.worklist import WorklistEntry
from broker.mapping.mwl import AnswerPlan
from broker.mapping.profile import Profile, load_profile
from support.entries import worklist_entry

SWF = load_profile("ihe-swf")
JAHIS = load_profile("jahis")

# PS3.5 H.3.1 "Yamada^Tarou=山田^太郎=やまだ^たろう" with (0008,0005) "\ISO 2022 IR 87": ASCII group,
# then each ideographic/phonetic component as ESC $ B + JIS X 0208 + ESC ( B. The same bytes
# appear in DCMTK's tests (ofstd tests, "example taken from DICOM PS 3.5 Annex H.3.1") and
# pydicom's PersonName tests ("Example name from PS3.5-2008 section H p. 98").
H31_BYTES = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B"


def _encoded(entry: WorklistEntry, request: Dataset, character_sets: Strings[str], *, implicit: bool = True) -> bytes:
    return AnswerPlan(request, character_sets).encode(entry, implicit=implicit)


def answer_for(entry: WorklistEntry, request: Dataset, character_sets: Strings[str]) -> Dataset:
    """The answer as an independent decoder (pydicom) reads it, in both transfer syntaxes."""
    implicit, explicit = (
        read_dataset(BytesIO(_encoded(entry, request, character_sets, implicit=i)), i, True) for i in (True, False)
    )
    assert implicit == explicit
    return implicit


def _element_bytes(entry: WorklistEntry, request: Dataset, character_sets: Strings[str], tag: bytes) -> bytes:
    """The value bytes of one top-level element as the broker writes it (implicit VR LE)."""
    data = _encoded(entry, request, character_sets)
    at = data.index(tag)
    length = int.from_bytes(data[at + 4 : at + 8], "little")
    return data[at + 8 : at + 8 + length]


# --- answer_for ---------------------------------------------------------------------


def test_answer_has_exactly_the_requested_keys_ps3_4_C_4_1_1_3_2() -> None:
    request = Dataset()
    request.PatientName = ""
    request.PatientID = ""
    request.OtherPatientIDs = ""  # requested, not held: comes back empty
    request.ScheduledProcedureStepSequence = Sequence([Dataset()])
    request.ScheduledProcedureStepSequence[0].Modality = ""
    request.ScheduledProcedureStepSequence[0].ScheduledStationAETitle = ""
    request.ScheduledProcedureStepSequence[0].ScheduledProcedureStepLocation = ""
    answer = answer_for(worklist_entry(PersonName("DOE^JOHN")), request, SWF.dicom.character_sets)
    assert [e.keyword for e in answer] == [
        "PatientName",
        "PatientID",
        "OtherPatientIDs",
        "ScheduledProcedureStepSequence",
    ]
    assert (str(answer.PatientName), answer.PatientID) == ("DOE^JOHN", "PAT001")
    assert answer["OtherPatientIDs"].value in (None, "")
    [item] = answer.ScheduledProcedureStepSequence
    assert [e.keyword for e in item] == ["Modality", "ScheduledStationAETitle", "ScheduledProcedureStepLocation"]
    assert (item.Modality, item.ScheduledStationAETitle, item.ScheduledProcedureStepLocation) == ("CT", "CT01", "")


def test_empty_requested_sequence_returns_whole_item_ps3_4_C_2_2_2_6() -> None:
    request = Dataset()
    request.ScheduledProcedureStepSequence = Sequence()
    answer = answer_for(worklist_entry(PersonName("DOE^JOHN")), request, SWF.dicom.character_sets)
    [item] = answer.ScheduledProcedureStepSequence
    assert {e.keyword for e in item} >= {
        "ScheduledStationAETitle",
        "ScheduledProcedureStepStartDate",
        "ScheduledProcedureStepStartTime",
        "Modality",
        "ScheduledProcedureStepID",
        "ScheduledProcedureStepDescription",
        "ScheduledProtocolCodeSequence",
        "ScheduledProcedureStepStatus",
    }
    assert (item.ScheduledProcedureStepStartDate, item.ScheduledProcedureStepStartTime) == ("20261123", "100000")
    assert item.ScheduledProcedureStepStatus == "SCHEDULED"
    assert item.ScheduledProtocolCodeSequence[0].CodeValue == "CTCHEST"


def test_one_zero_length_item_returns_whole_item_like_no_item_ps3_4_C_2_2_2_6() -> None:
    """Defect 6: `[{}]` (Orthanc, findscu `-k Seq[0]`) asks for the whole item, nested
    sequences included, exactly as a zero-item sequence does."""
    entry = worklist_entry(PersonName("DOE^JOHN"))
    zero_items, one_empty_item = Dataset(), Dataset()
    zero_items.ScheduledProcedureStepSequence = Sequence()
    zero_items.RequestedProcedureCodeSequence = Sequence()
    one_empty_item.ScheduledProcedureStepSequence = Sequence([Dataset()])
    one_empty_item.RequestedProcedureCodeSequence = Sequence([Dataset()])
    whole = answer_for(entry, zero_items, SWF.dicom.character_sets)
    asked_with_item = answer_for(entry, one_empty_item, SWF.dicom.character_sets)
    assert asked_with_item == whole
    [item] = asked_with_item.ScheduledProcedureStepSequence
    assert len(item) == 11 and item.ScheduledProtocolCodeSequence[0].CodeValue == "CTCHEST"
    assert asked_with_item.RequestedProcedureCodeSequence[0].CodeMeaning == "CT Chest"


def test_requested_sequence_not_held_comes_back_empty_ps3_4_C_4_1_1_3_2() -> None:
    request = Dataset()
    request.ReferencedStudySequence = Sequence()
    request.ReferencedPatientSequence = Sequence()
    request.ReferencedPatientAliasSequence = Sequence([Dataset()])
    answer = answer_for(worklist_entry(PersonName("DOE^JOHN")), request, SWF.dicom.character_sets)
    assert [e.keyword for e in answer] == [
        "ReferencedStudySequence",
        "ReferencedPatientSequence",
        "ReferencedPatientAliasSequence",
    ]
    assert all(len(e.value) == 0 for e in answer)


@pytest.mark.parametrize("asked", ["", None, "ISO_IR 6"], ids=["zero-length", "absent", "default"])
def test_ascii_answer_has_no_zero_length_specific_character_set_ps3_4_C_2_2_2(asked: str | None) -> None:
    """Defect 7: the query carried (0008,0005) empty (or named the default repertoire),
    the answer is plain ASCII: the element is left out, never sent zero-length."""
    request = Dataset()
    if asked is not None:
        request.SpecificCharacterSet = asked
    request.PatientName = ""
    encoded = _encoded(worklist_entry(PersonName("DOE^JOHN")), request, SWF.dicom.character_sets)
    assert b"\x08\x00\x05\x00" not in encoded
    assert "SpecificCharacterSet" not in answer_for(
        worklist_entry(PersonName("DOE^JOHN")), request, SWF.dicom.character_sets
    )


def test_ascii_answer_names_the_character_set_the_query_named_ps3_4_C_2_2_2() -> None:
    request = Dataset()
    request.SpecificCharacterSet = "ISO_IR 100"
    request.PatientName = ""
    answer = answer_for(worklist_entry(PersonName("DOE^JOHN")), request, SWF.dicom.character_sets)
    assert answer.SpecificCharacterSet == "ISO_IR 100"
    assert str(answer.PatientName) == "DOE^JOHN"


@pytest.mark.parametrize("profile", [SWF, JAHIS], ids=["ihe-swf", "jahis"])
def test_query_asking_iso_ir_192_gets_utf8_on_every_profile_ps3_5_6_1_2_3(profile: Profile) -> None:
    """Defect: the jahis profile answered a query in `ISO_IR 192` with ISO 2022 bytes."""
    request = Dataset()
    request.SpecificCharacterSet = "ISO_IR 192"
    request.PatientName = ""
    answer = answer_for(worklist_entry(), request, profile.dicom.character_sets)
    assert answer.SpecificCharacterSet == "ISO_IR 192"
    written = _element_bytes(worklist_entry(), request, profile.dicom.character_sets, b"\x10\x00\x10\x00")
    assert written.rstrip(b" ") == "Yamada^Tarou=山田^太郎=やまだ^たろう".encode()


def test_query_set_that_cannot_hold_the_text_gives_the_profiles_first_that_can_ps3_5_6_1() -> None:
    """A Latin-1 query gets a Latin-1 answer for MÜLLER, the profile's set for 山田."""
    request = Dataset()
    request.SpecificCharacterSet = "ISO_IR 100"
    request.PatientName = ""
    latin = answer_for(worklist_entry(PersonName("MÜLLER^HANS")), request, JAHIS.dicom.character_sets)
    assert (latin.SpecificCharacterSet, str(latin.PatientName)) == ("ISO_IR 100", "MÜLLER^HANS")
    assert (
        _element_bytes(
            worklist_entry(PersonName("MÜLLER^HANS")), request, JAHIS.dicom.character_sets, b"\x10\x00\x10\x00"
        )
        == b"M\xdcLLER^HANS "
    )
    japanese = answer_for(worklist_entry(), request, JAHIS.dicom.character_sets)
    assert list(japanese.SpecificCharacterSet) == ["", "ISO 2022 IR 87"]


@pytest.mark.parametrize("asked", ["ISO_IR 203", "NOT A CHARSET"])
def test_query_set_the_broker_cannot_write_is_passed_over_ps3_3_C_12_1_1_2(asked: str) -> None:
    request = Dataset()
    request.SpecificCharacterSet = asked
    request.PatientName = ""
    assert "SpecificCharacterSet" not in answer_for(
        worklist_entry(PersonName("DOE^JOHN")), request, SWF.dicom.character_sets
    )
    assert answer_for(worklist_entry(), request, SWF.dicom.character_sets).SpecificCharacterSet == "ISO_IR 192"


@pytest.mark.parametrize("profile", [SWF, JAHIS], ids=["ihe-swf", "jahis"])
def test_non_ascii_answer_carries_profile_character_set_ps3_3_C_12_1_1_2(profile: Profile) -> None:
    request = Dataset()
    request.PatientName = ""
    answer = answer_for(worklist_entry(), request, profile.dicom.character_sets)
    value = answer.SpecificCharacterSet
    assert ([value] if isinstance(value, str) else list(value)) == profile.dicom.character_sets[0].split("\\")
    assert str(answer.PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"


def test_utf8_answer_writes_utf8_bytes_ps3_5_6_1_2_3() -> None:
    request = Dataset()
    request.PatientName = ""
    written = _element_bytes(worklist_entry(), request, SWF.dicom.character_sets, b"\x10\x00\x10\x00")
    assert written.rstrip(b" ") == "Yamada^Tarou=山田^太郎=やまだ^たろう".encode()


def test_iso2022_ir87_with_empty_value_1_writes_annex_h_bytes_ps3_5_H_3_1() -> None:
    """The character set PS3.5 H.3.1 uses (`\\ISO 2022 IR 87`) gives the Annex H bytes."""
    request = Dataset()
    request.PatientName = ""
    answer = answer_for(worklist_entry(), request, ["\\ISO 2022 IR 87"])
    assert list(answer.SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
    written = _element_bytes(worklist_entry(), request, ["\\ISO 2022 IR 87"], b"\x10\x00\x10\x00")
    assert written.rstrip(b" ") == H31_BYTES


def test_jahis_answer_patient_name_bytes_are_annex_h_bytes_ps3_5_H_3_1() -> None:
    """The jahis profile's character set writes PS3.5 H.3.1 bytes, with no pydicom warning."""
    request = Dataset()
    request.PatientName = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = _element_bytes(worklist_entry(), request, JAHIS.dicom.character_sets, b"\x10\x00\x10\x00")
    assert written.rstrip(b" ") == H31_BYTES
    assert [str(w.message) for w in caught] == []


#: PS3.5 H.3.2: half-width katakana in JIS X 0201 (G1), kanji in JIS X 0208.
H32_NAME = "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=ﾔﾏﾀﾞ^ﾀﾛｳ"
H32_BYTES = b"\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\xd4\xcf\xc0\xde^\xc0\xdb\xb3"


def test_half_width_katakana_answer_is_ir13_ir87_annex_h_bytes_ps3_5_H_3_2() -> None:
    request = Dataset()
    request.PatientName = ""
    answer = answer_for(worklist_entry(PersonName.parse(H32_NAME)), request, JAHIS.dicom.character_sets)
    assert list(answer.SpecificCharacterSet) == ["ISO 2022 IR 13", "ISO 2022 IR 87"]
    entry = worklist_entry(PersonName.parse(H32_NAME))
    written = _element_bytes(entry, request, JAHIS.dicom.character_sets, b"\x10\x00\x10\x00")
    assert written.rstrip(b" ") == H32_BYTES


def test_text_outside_jis_falls_back_to_the_next_candidate_ps3_3_C_12_1_1_2() -> None:
    request = Dataset()
    request.PatientName = ""
    answer = answer_for(worklist_entry(PersonName("MÜLLER^HANS")), request, JAHIS.dicom.character_sets)
    assert answer.SpecificCharacterSet == "ISO_IR 192"


@pytest.mark.parametrize(
    ("hl7", "dicom"),
    [("S", "STAT"), ("A", "HIGH"), ("R", "ROUTINE"), ("T", "MEDIUM"), ("", ""), ("X", ""), ("LOW", "LOW")],
)
@pytest.mark.parametrize("profile", [SWF, JAHIS], ids=["ihe-swf", "jahis"])
def test_requested_procedure_priority_is_a_dicom_defined_term_ps3_3_C_4_11(
    profile: Profile, hl7: str, dicom: str
) -> None:
    """The HL7 priority the broker keeps goes out as the profile maps it; one it does not
    map is unknown (empty), never the HL7 code."""
    request = Dataset()
    request.RequestedProcedurePriority = ""
    entry = replace(worklist_entry(), priority=hl7)
    answer = read_dataset(
        BytesIO(
            AnswerPlan(request, profile.dicom.character_sets, profile.dicom.priorities).encode(entry, implicit=True)
        ),
        True,
        True,
    )
    assert answer.RequestedProcedurePriority == dicom


def test_imaging_service_request_and_visit_keys_are_answered_when_known_ps3_4_K_6_1() -> None:
    request = Dataset()
    for keyword in (
        "PlacerOrderNumberImagingServiceRequest",
        "FillerOrderNumberImagingServiceRequest",
        "AdmissionID",
        "ReferringPhysicianName",
        "RequestingPhysician",
        "RequestingService",
    ):
        setattr(request, keyword, "")
    entry = replace(
        worklist_entry(), admission_id="V1001", requesting_physician="HOUSE^GREGORY", requesting_service="CARDIOLOGY"
    )
    answer = answer_for(entry, request, SWF.dicom.character_sets)
    assert answer.PlacerOrderNumberImagingServiceRequest == "PO1001"
    assert answer.FillerOrderNumberImagingServiceRequest == "FO1001"
    assert answer.AdmissionID == "V1001"
    assert str(answer.ReferringPhysicianName) == "WELBY^MARCUS"
    assert str(answer.RequestingPhysician) == "HOUSE^GREGORY"
    assert answer.RequestingService == "CARDIOLOGY"
