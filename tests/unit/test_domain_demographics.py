"""HL7's update rule for demographics (#14 Deliver 3), in the domain: an empty value
is "no change", a deleted one (HL7 `""`) goes; a name changes group by group."""

from __future__ import annotations

from broker.domain.demographics import merged
from broker.domain.model import Patient, PersonName

HELD = Patient(
    "PAT001",
    "HOSP",
    PersonName("YAMADA^TAROU", "山田^太郎", "ヤマダ^タロウ"),
    birth_date="19700101",
    sex="M",
)


def test_order_pid_with_only_the_alphabetic_name_keeps_kanji_and_kana_14_defect_3() -> None:
    result = merged(HELD, Patient("PAT001", "HOSP", PersonName("YAMADA")))
    assert result.name == PersonName("YAMADA", "山田^太郎", "ヤマダ^タロウ")
    assert (result.birth_date, result.sex) == ("19700101", "M")


def test_empty_message_changes_nothing() -> None:
    result = merged(HELD, Patient("PAT001", "HOSP"))
    assert (result.name, result.birth_date, result.sex) == (HELD.name, HELD.birth_date, HELD.sex)


def test_given_values_replace_held_ones() -> None:
    incoming = Patient("PAT001", "HOSP", PersonName("", "山田^花子"), birth_date="19710202", sex="F")
    result = merged(HELD, incoming)
    assert result.name == PersonName("YAMADA^TAROU", "山田^花子", "ヤマダ^タロウ")
    assert (result.birth_date, result.sex) == ("19710202", "F")


def test_deleted_values_go_and_only_those() -> None:
    incoming = Patient("PAT001", "HOSP", deleted=frozenset({"name.phonetic", "birth_date"}))
    result = merged(HELD, incoming)
    assert result.name == PersonName("YAMADA^TAROU", "山田^太郎", "")
    assert (result.birth_date, result.sex) == ("", "M")


def test_deleting_the_whole_name_empties_every_group() -> None:
    result = merged(HELD, Patient("PAT001", "HOSP", deleted=frozenset({"name", "sex"})))
    assert (str(result.name), result.sex, result.birth_date) == ("", "", "19700101")


def test_identifiers_stay_the_held_ones_and_inputs_are_untouched() -> None:
    incoming = Patient("PAT001", "HOSP", PersonName("DOE"))
    result = merged(HELD, incoming)
    assert (result.patient_id, result.issuer) == ("PAT001", "HOSP")
    assert result is not HELD and HELD.name.alphabetic == "YAMADA^TAROU"
