"""HL7 person names → DICOM PN component groups (broker/mapping/hl7_in.py).

XPN (PID-5) and XCN (ORC-12, PV1-8) repetitions are flagged by their name
representation code (XPN-8, XCN-15: A alphabetic, I ideographic, P phonetic), which
selects the PN component group (PS3.5 6.2.1.1); JAHIS sends kanji and kana this way.
"""

from __future__ import annotations

import hl7

from broker.domain.commands import PlaceOrder, RegisterPatient, UpdatePatient
from broker.domain.model import Order, Patient, PersonName
from broker.mapping.hl7_in import SegmentGroup, interpret, read_patient
from broker.mapping.profile import Profile, load_profile

SWF = load_profile("ihe-swf")
JAHIS = load_profile("jahis")
PID = "PID|1||PAT001^^^HOSPITAL||DOE^JOHN^Q||19700101|M"


def seg(name: str, **fields: str) -> str:
    """A segment from `f<n>=value` keyword arguments, so field numbers are explicit."""
    last = max((int(k[1:]) for k in fields), default=0)
    return "|".join([name, *(fields.get(f"f{n}", "") for n in range(1, last + 1))])


def msh(message_type: str, version: str = "2.5") -> str:
    return f"MSH|^~\\&|RIS|HOSPITAL|BROKER|RADIOLOGY|20261123081000||{message_type}|MSG0001|P|{version}"


def parse(*segments: str) -> hl7.Message:
    return hl7.parse("\r".join(segments))


def place(message: hl7.Message, profile: Profile) -> Order:
    [command] = interpret(message, profile)
    assert isinstance(command, PlaceOrder)
    return command.order


def patient_of(message: hl7.Message, profile: Profile) -> Patient:
    [command] = interpret(message, profile)
    assert isinstance(command, RegisterPatient | UpdatePatient)
    return command.patient


def test_xpn_repetitions_map_to_pn_groups_by_xpn8_jahis() -> None:
    pid = seg("PID", f1="1", f3="PAT001", f5="YAMADA^TAROU^^^^^L^A~山田^太郎^^^^^L^I~やまだ^たろう^^^^^L^P")
    name = patient_of(parse(msh("ADT^A04", "2.5"), pid), JAHIS).name
    assert name == PersonName("YAMADA^TAROU", "山田^太郎", "やまだ^たろう")
    assert str(name) == "YAMADA^TAROU=山田^太郎=やまだ^たろう"


def test_xpn_order_of_repetitions_does_not_matter_jahis() -> None:
    pid = seg("PID", f1="1", f3="PAT001", f5="やまだ^たろう^^^^^L^P~山田^太郎^^^^^L^I~YAMADA^TAROU^^^^^L^A")
    name = patient_of(parse(msh("ADT^A04"), pid), JAHIS).name
    assert name == PersonName("YAMADA^TAROU", "山田^太郎", "やまだ^たろう")


def test_xpn_components_reordered_to_pn_prefix_suffix_ps3_5_6_2() -> None:
    """XPN is family^given^middle^suffix^prefix; PN is family^given^middle^prefix^suffix."""
    pid = seg("PID", f1="1", f3="PAT001", f5="DOE^JOHN^Q^JR^DR")
    patient = patient_of(parse(msh("ADT^A04"), pid), SWF)
    assert patient.name == PersonName("DOE^JOHN^Q^DR^JR")


def test_xpn_without_code_is_alphabetic_and_first_repetition_wins() -> None:
    pid = seg("PID", f1="1", f3="PAT001", f5="DOE^JOHN~ROE^RICHARD")
    assert patient_of(parse(msh("ADT^A04"), pid), SWF).name == PersonName("DOE^JOHN")


def test_xcn_repetitions_map_to_pn_groups_by_xcn15_jahis() -> None:
    orc = seg(
        "ORC",
        f1="NW",
        f2="PO1^RIS",
        f7="^^^20261123100000",
        f12="1234^Yamada^Tarou^^^^^^^^^^^^A~1234^山田^太郎^^^^^^^^^^^^I",
    )
    obr = seg("OBR", f1="1", f24="CT")
    order = place(parse(msh("ORM^O01"), PID, orc, obr), JAHIS)
    assert order.referring_physician == "Yamada^Tarou=山田^太郎"


def _pid5(value: str) -> Patient:
    message = hl7.parse(f"{msh('ADT^A08')}\rPID|1||P1||{value}||19700101|M\r")
    return read_patient(SegmentGroup(message, []), JAHIS)


def test_null_pid_5_deletes_the_whole_name_hl7_2_5_3() -> None:
    assert _pid5('""').deleted == frozenset({"name"})


def test_null_repetition_deletes_its_group_only_hl7_2_5_3() -> None:
    patient = _pid5('YAMADA^TAROU^^^^^L^A~""^^^^^^L^I')
    assert patient.name == PersonName("YAMADA^TAROU")
    assert patient.deleted == frozenset({"name.ideographic"})


def test_empty_pid_5_deletes_nothing_hl7_2_5_3() -> None:
    patient = _pid5("")
    assert (str(patient.name), patient.deleted) == ("", frozenset())
