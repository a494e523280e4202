"""The de-identification of worklist bundles (PS3.15 Annex E Basic Profile with the
Retain Device Identity and Retain Longitudinal Temporal Information options): the
same value gives the same pseudonym within a bundle and another in the next one, names
keep their shape and script (so the answer's character set is chosen as for the
original), dates keep their ranges, and what cannot keep its matching is said."""

from __future__ import annotations

from pydicom.dataset import Dataset

from broker.dicom.deid import Deidentifier
from broker.mapping.dicom_charsets import CharsetChoice

KEY = b"k" * 32
JAPANESE = ["\\ISO 2022 IR 87", "ISO 2022 IR 13\\ISO 2022 IR 87", "ISO_IR 192"]


def _query(**elements: object) -> Dataset:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def test_the_same_value_gets_the_same_pseudonym_within_a_bundle_only() -> None:
    one, other = Deidentifier(KEY, -400), Deidentifier(b"o" * 32, -400)
    assert one.identifier("PAT001") == one.identifier("PAT001") != one.identifier("PAT002")
    assert one.identifier("PAT001") != other.identifier("PAT001")
    assert one.name("DOE^JOHN") == one.name("doe^john")  # case-insensitive name matching keeps working
    uid = one.uid("1.2.392.200036.9999.1.1001")
    assert uid == one.uid("1.2.392.200036.9999.1.1001") and uid.startswith("2.25.") and len(uid) <= 64
    assert uid != other.uid("1.2.392.200036.9999.1.1001")


def test_names_keep_their_groups_components_and_script() -> None:
    deid = Deidentifier(KEY, -400)
    name = "YAMADA^TAROU=山田^太郎=ヤマダ^タロウ"
    pseudonym = deid.name(name)
    assert [len(g.split("^")) for g in pseudonym.split("=")] == [2, 2, 2]
    assert set(pseudonym.replace("=", "^").split("^")).isdisjoint(name.replace("=", "^").split("^"))
    choice = CharsetChoice([], JAPANESE)
    for original in (name, "ﾔﾏﾀﾞ^ﾀﾛｳ", "MÜLLER^JÖRG"):
        replaced = deid.name(original)
        assert choice.choose([replaced]) == choice.choose([original]), (original, replaced)


def test_a_wildcard_on_a_whole_component_is_kept_and_one_inside_a_value_is_reported() -> None:
    deid = Deidentifier(KEY, -400)
    kept = deid.dataset(_query(PatientName="DOE^*"), query=True)
    assert str(kept.PatientName) == deid.name("DOE") + "^*" and deid.lost == []
    deid.dataset(_query(PatientName="DO*", PatientID="P?1"), query=True)
    assert deid.lost == [
        "PatientName: a wildcard inside a replaced value",
        "PatientID: a wildcard inside a replaced value",
    ]


def test_removed_keys_are_reported_in_queries_and_return_keys_stay() -> None:
    deid = Deidentifier(KEY, -400)
    query = _query(RequestedProcedureID="RP1", AdmissionID="", InstitutionName="HOSPITAL", PatientBirthDate="")
    query.add_new(0x00091010, "LO", "private")
    out = deid.dataset(query, query=True)
    assert "RequestedProcedureID" not in out and "InstitutionName" not in out and 0x00091010 not in out
    assert "AdmissionID" in out and "PatientBirthDate" in out  # asked, no value: nothing to hide
    assert deid.lost == [f"{name}: removed by the profile" for name in ("InstitutionName", "(0009,1010)",
                                                                        "RequestedProcedureID")]  # fmt: skip
    answer = deid.dataset(_query(AdmissionID="AD1", PatientBirthDate="19700101", PatientSex="M", Modality="CT"))
    assert "AdmissionID" not in answer and answer.PatientBirthDate == "" and answer.PatientSex == ""
    assert answer.Modality == "CT"


def test_dates_shift_by_one_number_of_days_and_ranges_keep_their_length() -> None:
    step = _query(ScheduledProcedureStepStartDate="20261231-20270101", ScheduledProcedureStepStartTime="0900-1000",
                  ScheduledStationAETitle="CT01")  # fmt: skip
    shifted = Deidentifier(KEY, -400).dataset(_query(ScheduledProcedureStepSequence=[step]), query=True)
    item = shifted.ScheduledProcedureStepSequence[0]
    assert item.ScheduledProcedureStepStartDate == "20251126-20251127"
    assert (item.ScheduledProcedureStepStartTime, item.ScheduledStationAETitle) == ("0900-1000", "CT01")
    kept = Deidentifier(KEY, 0)
    assert kept.dataset(step).ScheduledProcedureStepStartDate == "20261231-20270101"
    assert kept.applied.options[-1] == "Retain Longitudinal Temporal Information Full Dates Option"


def test_uid_lists_are_replaced_value_by_value() -> None:
    deid = Deidentifier(KEY, -400)
    out = deid.dataset(_query(StudyInstanceUID=["1.2.3", "1.2.4"]), query=True)
    assert list(out.StudyInstanceUID) == [deid.uid("1.2.3"), deid.uid("1.2.4")]
