"""Demographics merge by HL7's rule (#14 Deliver 3): an empty field is "no change",
`""` is "delete". An order's PID that carries only `YAMADA` used to wipe the kanji and
kana groups an ADT had registered, on every order of the patient; the worklist shows
the merged name at once."""

from __future__ import annotations

from pathlib import Path

from broker.app import Broker
from broker.store.browse import Criteria, search
from support.dicompeer import findscu
from support.hl7peer import ack_code, sample, send

A04 = "rad-1-patient-registration/adt_a04.hl7"
A08 = "rad-12-patient-update/adt_a08.hl7"
NW = "rad-2-placer-order/orm_o01_nw.hl7"
JAPANESE = "YAMADA^TAROU^^^^^L^A~山田^太郎^^^^^L^I~ヤマダ^タロウ^^^^^L^P"


def _utf8(name: str, pid: str, name_then: str) -> bytes:
    """`name` (a catalog message) in UTF-8 (MSH-18) with PID-5..8 replaced by `then`."""
    raw = sample(name).replace(b"|P|2.3.1", b"|P|2.3.1||||||UNICODE UTF-8")
    return raw.replace(pid.encode(), name_then.encode())


def _registered(broker: Broker) -> None:
    replies = send(broker.hl7.port, _utf8(A04, "DOE^JOHN^Q||19700101|M", f"{JAPANESE}||19700101|M"))
    assert [ack_code(r) for r in replies] == ["AA"]


def _worklist(broker: Broker, tmp_path: Path) -> tuple[str, str, str]:
    [answer] = findscu(
        broker.dicom.port,
        ["PatientID=PAT001", "PatientName", "PatientBirthDate", "PatientSex", "SpecificCharacterSet=ISO_IR 192"],
        tmp_path,
    )
    return str(answer.PatientName), answer.PatientBirthDate, answer.PatientSex


def test_order_pid_with_only_alphabetic_name_keeps_kanji_and_kana_14_defect_3(broker: Broker, tmp_path: Path) -> None:
    _registered(broker)
    [ack] = send(broker.hl7.port, sample(NW).replace(b"DOE^JOHN^Q||19700101|M", b"YAMADA||19700101|M"))
    assert ack_code(ack) == "AA"
    assert _worklist(broker, tmp_path) == ("YAMADA=山田^太郎=ヤマダ^タロウ", "19700101", "M")


def test_order_pid_with_empty_fields_changes_nothing(broker: Broker, tmp_path: Path) -> None:
    _registered(broker)
    [ack] = send(broker.hl7.port, sample(NW).replace(b"DOE^JOHN^Q||19700101|M", b"||"))
    assert ack_code(ack) == "AA"
    assert _worklist(broker, tmp_path) == ("YAMADA^TAROU=山田^太郎=ヤマダ^タロウ", "19700101", "M")


def test_a08_applies_the_same_rule_and_the_worklist_follows(broker: Broker, tmp_path: Path) -> None:
    _registered(broker)
    [order] = send(broker.hl7.port, sample(NW).replace(b"DOE^JOHN^Q||19700101|M", b"||"))
    assert ack_code(order) == "AA"
    [update] = send(broker.hl7.port, _utf8(A08, "DOE^JONATHAN^Q||19700101|M", "YAMADA^JIROU^^^^^L^A||19700101|"))
    assert ack_code(update) == "AA"
    assert _worklist(broker, tmp_path) == ("YAMADA^JIROU=山田^太郎=ヤマダ^タロウ", "19700101", "M")


def test_null_deletes_a_name_group_and_the_birth_date_hl7_2_5_3(broker: Broker, tmp_path: Path) -> None:
    _registered(broker)
    [order] = send(broker.hl7.port, sample(NW).replace(b"DOE^JOHN^Q||19700101|M", b"||"))
    assert ack_code(order) == "AA"
    deletion = _utf8(A08, "DOE^JONATHAN^Q||19700101|M", '""^^^^^^L^P||""|')
    [update] = send(broker.hl7.port, deletion.replace(b"ADT0002", b"ADT0003"))
    assert ack_code(update) == "AA"
    assert _worklist(broker, tmp_path) == ("YAMADA^TAROU=山田^太郎", "", "M")


def _found(broker: Broker, name: str) -> set[str]:
    return {hit.accession_number for hit in search(broker.engine, Criteria(name=name))}


def test_intake_keeps_the_name_search_keys_through_an_a08_rename(broker: Broker) -> None:
    """The intake writes patients in SQLAlchemy Core, which the ORM's mapper event
    that keeps `patient_name_keys` never sees: the repository keeps them itself."""
    _registered(broker)
    [order] = send(broker.hl7.port, sample(NW).replace(b"DOE^JOHN^Q||19700101|M", b"||"))
    assert ack_code(order) == "AA"
    assert _found(broker, "山田") == _found(broker, "ヤマダ") == {"ACC1001"}
    renamed = "SUZUKI^JIROU^^^^^L^A~鈴木^次郎^^^^^L^I~スズキ^ジロウ^^^^^L^P||19700101|"
    [update] = send(broker.hl7.port, _utf8(A08, "DOE^JONATHAN^Q||19700101|M", renamed))
    assert ack_code(update) == "AA"
    assert _found(broker, "鈴木 次郎") == _found(broker, "スズキ") == _found(broker, "suzuki") == {"ACC1001"}
    assert _found(broker, "山田") == _found(broker, "ヤマダ") == set()
