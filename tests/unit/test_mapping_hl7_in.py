"""HL7 v2 → domain commands (broker/mapping/hl7_in.py) with the ihe-swf and jahis
profiles. Field positions follow IHE RAD TF-2 (HL7 v2.3.1 ORM^O01, RAD-1/2/12)."""

from __future__ import annotations

from datetime import datetime

import hl7
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.commands import (
    CancelOrder,
    ChangeOrder,
    DiscontinueOrder,
    MergePatient,
    PlaceOrder,
    RegisterPatient,
    UpdatePatient,
)
from broker.domain.errors import InvalidInput
from broker.domain.model import Code, Order, Patient, PersonName
from broker.mapping.hl7_in import interpret, message_type, read_commands, updated_patient
from broker.mapping.profile import Profile, load_profile

SWF = load_profile("ihe-swf")
JAHIS = load_profile("jahis")
BOTH = pytest.mark.parametrize("profile", [SWF, JAHIS], ids=["ihe-swf", "jahis"])


def seg(name: str, **fields: str) -> str:
    """A segment from `f<n>=value` keyword arguments, so field numbers are explicit."""
    last = max((int(k[1:]) for k in fields), default=0)
    return "|".join([name, *(fields.get(f"f{n}", "") for n in range(1, last + 1))])


def msh(message_type: str, version: str = "2.3.1") -> str:
    return f"MSH|^~\\&|RIS|HOSPITAL|BROKER|RADIOLOGY|20261123081000||{message_type}|MSG0001|P|{version}"


PID = seg("PID", f1="1", f3="PAT001^^^HOSPITAL", f5="DOE^JOHN^Q", f7="19700101", f8="M")
PV1 = seg("PV1", f1="1", f2="O", f8="REF01^WELBY^MARCUS")
ORC_NW = seg("ORC", f1="NW", f2="PO1001^RIS", f3="FO1001", f5="SC", f7="^^^20261123100000^^R")
OBR_NW = seg(
    "OBR",
    f1="1",
    f2="PO1001^RIS",
    f3="FO1001",
    f4="CTCHEST^CT Chest^LOCAL",
    f18="ACC1001",
    f19="RP1001",
    f20="SPS1001",
    f24="CT",
    f27="^^^20261123100000^^R",
)
ZDS = seg("ZDS", f1="1.2.392.200036.9999.1.1001^BROKER^Application^DICOM")


def parse(*segments: str) -> hl7.Message:
    return hl7.parse("\r".join(segments))


def orders(message: hl7.Message, profile: Profile) -> list[Order]:
    commands = interpret(message, profile)
    assert all(isinstance(c, PlaceOrder) for c in commands)
    return [c.order for c in commands if isinstance(c, PlaceOrder)]


def place(message: hl7.Message, profile: Profile) -> Order:
    [order] = orders(message, profile)
    return order


def patient_of(message: hl7.Message, profile: Profile) -> Patient:
    [command] = interpret(message, profile)
    assert isinstance(command, RegisterPatient | UpdatePatient)
    return command.patient


@BOTH
def test_orm_nw_reads_ihe_v231_fields_rad_2(profile: Profile) -> None:
    order = place(parse(msh("ORM^O01"), PID, PV1, ORC_NW, OBR_NW, ZDS), profile)
    assert (order.placer_order_number, order.placer_application) == ("PO1001", "RIS")
    assert order.filler_order_number == "FO1001"
    assert order.accession_number == "ACC1001"  # OBR-18
    assert order.referring_physician == "WELBY^MARCUS"  # PV1-8, ID dropped
    assert (order.patient.patient_id, order.patient.issuer) == ("PAT001", "HOSPITAL")
    [rp] = order.procedures
    assert rp.requested_procedure_id == "RP1001"  # OBR-19
    assert rp.study_instance_uid == "1.2.392.200036.9999.1.1001"  # ZDS-1.1
    assert rp.code == Code("CTCHEST", "LOCAL", "CT Chest")  # OBR-4
    assert rp.description == "CT Chest"
    assert rp.priority == "R"  # OBR-27.6
    [step] = rp.steps
    assert step.sps_id == "SPS1001"  # OBR-20
    assert step.modality == "CT"  # OBR-24
    assert step.start == datetime(2026, 11, 23, 10, 0)  # OBR-27.4
    assert step.protocol_codes == [Code("CTCHEST", "LOCAL", "CT Chest")]


@BOTH
def test_orm_nw_reads_visit_and_requester_for_the_worklist_ps3_4_K_6_1(profile: Profile) -> None:
    """Admission ID ← PV1-19, Requesting Physician ← ORC-12 (else OBR-16), Requesting
    Service ← ORC-17; the Referring Physician stays PV1-8 when ORC-12 names the orderer."""
    pv1 = seg("PV1", f1="1", f2="O", f8="REF01^WELBY^MARCUS", f19="V1001^^^HOSPITAL")
    orc = seg(
        "ORC", f1="NW", f2="PO1001^RIS", f3="FO1001", f5="SC", f7="^^^20261123100000^^R",
        f12="ORD01^HOUSE^GREGORY", f17="CARD^CARDIOLOGY",
    )  # fmt: skip
    order = place(parse(msh("ORM^O01"), PID, pv1, orc, OBR_NW, ZDS), profile)
    assert (order.admission_id, order.requesting_service) == ("V1001", "CARDIOLOGY")
    assert (order.requesting_physician, order.referring_physician) == ("HOUSE^GREGORY", "WELBY^MARCUS")
    obr = seg("OBR", **{f"f{n}": v for n, v in enumerate(OBR_NW.split("|")[1:], 1) if v}, f16="ORD02^CUDDY^LISA")
    order = place(parse(msh("ORM^O01"), PID, PV1, ORC_NW, obr, ZDS), profile)
    assert (order.admission_id, order.requesting_physician, order.requesting_service) == ("", "CUDDY^LISA", "")


@BOTH
def test_orm_nw_without_identifiers_leaves_them_for_the_order_filler_rad_2(profile: Profile) -> None:
    orc = seg("ORC", f1="NW", f2="PO1002^RIS", f5="SC", f7="^^^20261123110000^^R")
    obr = seg("OBR", f1="1", f2="PO1002^RIS", f4="MRHEAD^MR Head^LOCAL", f24="MR", f27="^^^20261123110000^^R")
    order = place(parse(msh("ORM^O01"), PID, orc, obr), profile)
    [rp] = order.procedures
    assert (order.accession_number, order.filler_order_number) == ("", "")
    assert (rp.requested_procedure_id, rp.study_instance_uid, rp.steps[0].sps_id) == ("", "", "")
    assert rp.steps[0].modality == "MR"
    assert rp.steps[0].start == datetime(2026, 11, 23, 11, 0)
    assert order.referring_physician == ""


def test_orm_dc_becomes_discontinue_order_rad_2() -> None:
    orc = seg("ORC", f1="DC", f2="PO1002^RIS")
    assert interpret(parse(msh("ORM^O01"), PID, orc), SWF) == [DiscontinueOrder("PO1002", "RIS")]


def test_orm_xo_becomes_change_order_with_new_values_rad_2() -> None:
    obr = seg("OBR", f1="1", f2="PO1001^RIS", f18="ACC1001", f24="MR", f27="^^^20261124090000")
    [command] = interpret(parse(msh("ORM^O01"), PID, seg("ORC", f1="XO", f2="PO1001^RIS"), obr), SWF)
    assert isinstance(command, ChangeOrder)
    step = command.order.procedures[0].steps[0]
    assert (command.order.placer_order_number, step.modality, step.start) == (
        "PO1001",
        "MR",
        datetime(2026, 11, 24, 9, 0),
    )


def test_adt_a40_merges_prior_patient_from_mrg_1_rad_12() -> None:
    [command] = interpret(parse(msh("ADT^A40"), PID, seg("MRG", f1="PAT999^^^HOSPITAL")), SWF)
    assert isinstance(command, MergePatient)
    assert (command.survivor.patient_id, command.prior_patient_id, command.prior_issuer) == (
        "PAT001",
        "PAT999",
        "HOSPITAL",
    )


def test_orm_ca_becomes_cancel_order_rad_2() -> None:
    orc = seg("ORC", f1="CA", f2="PO1002^RIS")
    obr = seg("OBR", f1="1", f2="PO1002^RIS", f4="MRHEAD^MR Head^LOCAL")
    assert interpret(parse(msh("ORM^O01"), PID, orc, obr), SWF) == [CancelOrder("PO1002", "RIS")]


def test_orm_placer_number_falls_back_to_obr2_rad_2() -> None:
    orc = seg("ORC", f1="CA")
    obr = seg("OBR", f1="1", f2="PO7^OP")
    assert interpret(parse(msh("ORM^O01"), PID, orc, obr), SWF) == [CancelOrder("PO7", "OP")]


@BOTH
def test_adt_a04_registers_patient_rad_1(profile: Profile) -> None:
    [command] = interpret(parse(msh("ADT^A04^ADT_A01"), "EVN|A04|20261123080000", PID, "PV1|1|O"), profile)
    assert isinstance(command, RegisterPatient)
    p = command.patient
    assert (p.patient_id, p.issuer, p.name, p.birth_date, p.sex) == (
        "PAT001",
        "HOSPITAL",
        PersonName("DOE^JOHN^Q"),
        "19700101",
        "M",
    )


@pytest.mark.parametrize("event", ["A01", "A05"])
def test_adt_a01_a05_also_register_rad_1(event: str) -> None:
    [command] = interpret(parse(msh(f"ADT^{event}"), PID), SWF)
    assert isinstance(command, RegisterPatient)


def test_adt_a08_updates_patient_rad_12() -> None:
    pid = seg("PID", f1="1", f3="PAT001^^^HOSPITAL", f5="DOE^JONATHAN^Q", f7="197001011230", f8="M")
    [command] = interpret(parse(msh("ADT^A08"), pid), SWF)
    assert isinstance(command, UpdatePatient)
    assert command.patient.name == PersonName("DOE^JONATHAN^Q")
    assert command.patient.birth_date == "19700101"  # DA part of a DTM


def test_message_type_drops_structure_component() -> None:
    assert message_type(parse(msh("ADT^A04^ADT_A01"), PID)) == "ADT^A04"


def test_hl7_escape_sequences_are_unescaped_hl7_v2_2_7() -> None:
    obr = seg("OBR", f1="1", f4="X1^CT \\T\\ MR \\F\\ US \\S\\ NM \\R\\ PT^LOCAL", f24="CT", f27="^^^20261123100000")
    order = place(parse(msh("ORM^O01"), PID, ORC_NW, obr), SWF)
    assert order.procedures[0].description == "CT & MR | US ^ NM ~ PT"


def test_escaped_backslash_cannot_reach_a_dicom_lo_value_ps3_5_6_2() -> None:
    """`\\E\\` unescapes to a backslash, the DICOM value separator: refused, not split."""
    obr = seg("OBR", f1="1", f4="X1^PT \\E\\ XA^LOCAL", f24="CT", f27="^^^20261123100000")
    with pytest.raises(InvalidInput) as refused:
        place(parse(msh("ORM^O01"), PID, ORC_NW, obr), SWF)
    assert refused.value.location == "OBR-4"


def test_escaped_ampersand_in_name_stays_in_component_hl7_v2_2_7() -> None:
    pid = seg("PID", f1="1", f3="PAT\\T\\1", f5="SMITH\\T\\JONES^ANN")
    patient = patient_of(parse(msh("ADT^A04"), pid), SWF)
    assert patient.patient_id == "PAT&1"
    assert patient.name == PersonName("SMITH&JONES^ANN")


def test_each_order_reads_only_its_own_zds_rad_2() -> None:
    orc1 = seg("ORC", f1="NW", f2="PO1^RIS")
    obr1 = seg("OBR", f1="1", f4="CT1^CT^L", f18="ACC1", f24="CT", f27="^^^20261123100000")
    zds1 = seg("ZDS", f1="1.2.3.1^BROKER^Application^DICOM")
    orc2 = seg("ORC", f1="NW", f2="PO2^RIS")
    obr2 = seg("OBR", f1="2", f4="MR1^MR^L", f24="MR", f27="^^^20261123110000")
    first, second = orders(parse(msh("ORM^O01"), PID, orc1, obr1, zds1, orc2, obr2), SWF)
    assert first.procedures[0].study_instance_uid == "1.2.3.1"
    assert second.procedures[0].study_instance_uid == ""


def test_two_orders_in_one_message_rad_2() -> None:
    orc2 = seg("ORC", f1="NW", f2="PO2^RIS")
    obr2 = seg("OBR", f1="2", f2="PO2^RIS", f18="ACC2", f24="MR", f27="^^^20261123110000")
    placed = orders(parse(msh("ORM^O01"), PID, ORC_NW, OBR_NW, orc2, obr2), SWF)
    assert [o.placer_order_number for o in placed] == ["PO1001", "PO2"]
    assert [o.accession_number for o in placed] == ["ACC1001", "ACC2"]
    assert [o.procedures[0].steps[0].modality for o in placed] == ["CT", "MR"]


# --- #17: the feed's short path names the patient the whole message names -------------

_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
_VALUE = st.text(alphabet="AZaz09 -.\\|^&~", max_size=12)


def _escaped(value: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in value)


@given(
    patient_id=_VALUE,
    issuer=_VALUE,
    event=st.sampled_from(["A08", "A04", "A40"]),
    terminator=st.sampled_from(["\r", "\n", "\r\n"]),
    sex=st.sampled_from(["M", "X"]),
)
def test_the_short_path_names_the_patient_the_whole_message_names(
    patient_id: str, issuer: str, event: str, terminator: str, sex: str
) -> None:
    """`updated_patient` reads MSH and PID alone, and must name exactly the patient the
    whole message's UpdatePatient names (PID-3.1, PID-3.4.1), or None: never another."""
    pid = seg("PID", f1="1", f3=f"{_escaped(patient_id)}^^^{_escaped(issuer)}", f5="DOE^JOHN", f8=sex)
    raw = terminator.join([msh(f"ADT^{event}"), pid, seg("PV1", f1="1", f2="O")]).encode("ascii")
    key = updated_patient(raw, SWF)
    try:
        commands = read_commands(raw, SWF)
    except InvalidInput:
        commands = []
    if event != "A08":
        assert key is None
    for command in commands:
        assert isinstance(command, UpdatePatient) == (event == "A08")
        if isinstance(command, UpdatePatient):
            assert key == (command.patient.patient_id, command.patient.issuer)


def test_the_short_path_is_only_for_a_profile_that_refuses_unknown_patients() -> None:
    raw = "\r".join([msh("ADT^A08"), PID]).encode("ascii")
    assert updated_patient(raw, SWF) == ("PAT001", "HOSPITAL")
    hl7_in = SWF.hl7_in.model_copy(update={"unknown_patient_update": "register"})
    registering = SWF.model_copy(update={"hl7_in": hl7_in})
    assert updated_patient(raw, registering) is None
    assert updated_patient("\r".join([msh("ORM^O01"), PID, ORC_NW, OBR_NW]).encode("ascii"), SWF) is None
    assert updated_patient(b"MSH|^~\\&|no PID", SWF) is None


def test_the_short_path_reads_a_kanji_patient_id_in_its_declared_character_set() -> None:
    header = msh("ADT^A08", "2.5") + "||||||~ISO IR87||ISO 2022-1994"
    pid = seg("PID", f1="1", f3="\x1b$B;3ED\x1b(B01^^^\x1b$BIB1!\x1b(B", f5="YAMADA^TAROU")
    raw = "\r".join([header, pid]).encode("ascii")
    assert updated_patient(raw, JAHIS) == ("山田01", "病院")
    [command] = read_commands(raw, JAHIS)
    assert isinstance(command, UpdatePatient) and command.patient.patient_id == "山田01"
