"""Every message type the broker emits, checked by a real HL7 structure validator:
hl7apy in STRICT mode against the message's own version (MSH-12), and every MSH field
strict receivers require (MSH-3..7, MSH-9..12) non-empty (tests/support/hl7_structure.py,
where hl7apy's false positives are written down with their reasons).

Validator and version pairs that run here:
- RAD-3 status: ORM^O01 v2.3.1 (ihe-swf) and v2.5 (jahis, ISO-2022-JP), OMG^O19 v2.5.1,
  OMI^O23 v2.5.1, ORU^R01 v2.3.1 and v2.5.1; each with and without performed-series OBX.
- RAD-3 filler order (orders made at the broker): ORM^O01 v2.3.1 and v2.5 (jahis),
  OMG^O19 v2.5.1; SN, XO, OC; the broker's own order and a RIS-placed one.
- RAD-4/RAD-13: ORM^O01 + ZDS v2.3.1, OMI^O23 v2.5 (jahis) and v2.5.1; NW, XO, CA, DC.
- Answers: ACK (AA, AE, AR) v2.3.1 / v2.5 / v2.5.1, ORR^O02 v2.3.1 and v2.5, ORG^O20
  v2.5.1, ORI^O24 v2.5.1 and v2.5 (jahis); accepted and refused.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import hl7
import pytest

from broker.domain.commands import OrderOutcome
from broker.domain.model import (
    Code,
    Order,
    Patient,
    PerformedStep,
    PersonName,
    PpsStatus,
    RequestedProcedure,
    ScheduledStep,
    StatusChange,
    StepStatus,
)
from broker.domain.ports import FillerEvent, InboundRecord
from broker.hl7.ack import render_ack
from broker.hl7.header import MessageHeader
from broker.mapping.charsets import decode
from broker.mapping.hl7_in import order_references
from broker.mapping.hl7_out import Addressee, Hl7StatusNotifier, message_structure, writer_for
from broker.mapping.hl7_procedure import ORDER_STATUS, Hl7FillerOrderNotifier, Hl7ProcedureNotifier
from broker.mapping.profile import Profile, load_profile
from support.hl7_structure import missing_msh_fields, problems

CATALOG = Path(__file__).resolve().parents[2] / "hl7"
SWF, JAHIS = load_profile("ihe-swf"), load_profile("jahis")
AT = datetime(2026, 11, 23, 10, 30, 15)


def _variant(base: Profile, section: str, **changes: object) -> Profile:
    return Profile.model_validate({**base.model_dump(), section: {**getattr(base, section).model_dump(), **changes}})


def _text(payload: bytes, profile: Profile) -> str:
    return payload.decode("iso2022_jp" if "ISO IR87" in profile.status_out.charset else "utf-8")


def _change(status: StepStatus = StepStatus.COMPLETED) -> StatusChange:
    step = ScheduledStep(
        "SPS1001", "CT", station_ae="CT01", start=datetime(2026, 11, 23, 10), protocol_codes=[Code("P1", "99LOC", "A")]
    )
    procedure = RequestedProcedure(
        "RP1001", "1.2.392.1", "CT Chest", Code("CTCHEST", "99LOC", "CT Chest"), priority="R", steps=[step]
    )
    patient = Patient("PAT001", "HOSPITAL", PersonName("Yamada^Tarou", "山田^太郎", "やまだ^たろう"), "19700101", "M")
    order = Order("PO1001", "FO1001", "ACC1001", patient, "RIS", procedures=[procedure], placer_facility="HOSPITAL")
    series = [{"0020000E": {"vr": "UI", "Value": [uid]}} for uid in ("1.2.3.4", "1.2.3.5")]
    record = {
        "00400340": {"vr": "SQ", "Value": series},
        "00400244": {"vr": "DA", "Value": ["20261123"]},
        "00400245": {"vr": "TM", "Value": ["100500"]},
        "00400250": {"vr": "DA", "Value": ["20261123"]},
        "00400251": {"vr": "TM", "Value": ["101500.123"]},
    }
    performed = PerformedStep("1.2.9", PpsStatus.COMPLETED, [], json.dumps(record), "CT01")
    return StatusChange(order, step, status, AT, performed)


STATUS_FORMS = [
    (SWF, "ORM^O01", "2.3.1"),
    (JAHIS, "ORM^O01", "2.5"),
    (SWF, "OMG^O19", "2.5.1"),
    (SWF, "OMI^O23", "2.5.1"),
    (JAHIS, "OMI^O23", "2.5.1"),
    (SWF, "ORU^R01", "2.3.1"),
    (SWF, "ORU^R01", "2.5.1"),
]


@pytest.mark.parametrize("series", [False, True], ids=["no-series", "series-obx"])
@pytest.mark.parametrize("status", [StepStatus.STARTED, StepStatus.COMPLETED, StepStatus.DISCONTINUED])
@pytest.mark.parametrize(("base", "message_type", "version"), STATUS_FORMS, ids=lambda v: getattr(v, "name", v))
def test_rad3_status_in_each_form_validates_for_its_version(
    base: Profile, message_type: str, version: str, status: StepStatus, series: bool
) -> None:
    profile = _variant(base, "status_out", message_type=message_type, version=version, performed_series=series)
    [message] = Hl7StatusNotifier(profile, Addressee("ris")).messages_for(_change(status))
    assert problems(_text(message.payload, profile)) == []


PROCEDURE_FORMS = [(SWF, "ORM^O01", "2.3.1"), (JAHIS, "OMI^O23", "2.5"), (SWF, "OMI^O23", "2.5.1")]


@pytest.mark.parametrize("control", list(ORDER_STATUS))
@pytest.mark.parametrize(("base", "message_type", "version"), PROCEDURE_FORMS, ids=lambda v: getattr(v, "name", v))
def test_rad4_rad13_procedure_messages_validate_for_their_version(
    base: Profile, message_type: str, version: str, control: str
) -> None:
    profile = _variant(base, "procedure_out", message_type=message_type, version=version)
    notifier = Hl7ProcedureNotifier(profile, [Addressee("pacs"), Addressee("ris2", "PACS2", "RAD")])
    for message in notifier.messages_for(_change().order, control, AT):
        assert problems(_text(message.payload, profile)) == []


def own_order(order: Order) -> Order:
    """The order as the console makes it: the broker is its placer, its number the filler's."""
    return replace(order, placer_application=SWF.sending_application, placer_order_number=order.filler_order_number)


FILLER_FORMS = [(SWF, "ORM^O01", "2.3.1"), (JAHIS, "ORM^O01", "2.5"), (SWF, "OMG^O19", "2.5.1")]


@pytest.mark.parametrize("own", [True, False], ids=["made-at-broker", "placed-by-ris"])
@pytest.mark.parametrize("event", ["new", "change", "cancel"])
@pytest.mark.parametrize(("base", "message_type", "version"), FILLER_FORMS, ids=lambda v: getattr(v, "name", v))
def test_rad3_filler_order_messages_validate_for_their_version(
    base: Profile, message_type: str, version: str, event: FillerEvent, own: bool
) -> None:
    """SN/XO/OC validate, and ORC-2/OBR-2 carry a placer number only where the RIS gave one."""
    profile = _variant(_variant(base, "status_out", version=version), "filler_order_out", message_type=message_type)
    order = own_order(_change().order) if own else _change().order
    [message] = Hl7FillerOrderNotifier(profile, [Addressee("ris")]).messages_for(order, event, AT)
    text = _text(message.payload, profile)
    assert problems(text) == []
    parsed = hl7.parse(text)
    control = {"new": "SN", "change": "XO", "cancel": "OC"}[event]
    assert {str(orc(1)) for orc in parsed.segments("ORC")} == {control}
    numbered = not own and control != "SN"
    assert all(bool(str(orc(2))) == numbered for orc in parsed.segments("ORC"))
    assert all(bool(str(obr(2))) == numbered for obr in parsed.segments("OBR"))
    assert {str(orc(3)) for orc in parsed.segments("ORC")} == {order.filler_order_number}


def test_no_filler_order_message_for_an_event_the_profile_leaves_out() -> None:
    profile = _variant(SWF, "filler_order_out", change="")
    notifier = Hl7FillerOrderNotifier(profile, [Addressee("ris")])
    assert notifier.messages_for(_change().order, "change", AT) == []
    assert len(notifier.messages_for(_change().order, "cancel", AT)) == 1
    assert Hl7FillerOrderNotifier(profile, []).messages_for(_change().order, "new", AT) == []


def test_status_of_an_order_made_at_the_broker_names_it_by_its_filler_number_only() -> None:
    """The RIS numbered it in its NA (or not at all): ORC-2 is not the broker's own number."""
    change = _change()
    own = replace(change, order=own_order(change.order))
    [message] = Hl7StatusNotifier(SWF, Addressee("ris")).messages_for(own)
    parsed = hl7.parse(message.payload.decode())
    assert [str(parsed.segment(name)(2)) for name in ("ORC", "OBR")] == ["", ""]
    assert str(parsed.segment("ORC")(3)) == own.order.filler_order_number


def test_each_destination_gets_its_own_msh5_msh6_and_control_id_issue_13() -> None:
    """MSH-5/6 from the destination's configuration, else the order's placer as received."""
    notifier = Hl7ProcedureNotifier(SWF, [Addressee("pacs"), Addressee("pacs2", "PACS2", "RAD")])
    first, second = (hl7.parse(m.payload.decode()) for m in notifier.messages_for(_change().order, "NW", AT))
    assert [str(first.segment("MSH")(n)) for n in (5, 6)] == ["RIS", "HOSPITAL"]
    assert [str(second.segment("MSH")(n)) for n in (5, 6)] == ["PACS2", "RAD"]
    assert str(first.segment("MSH")(10)) != str(second.segment("MSH")(10))


# Answers: each inbound sample the broker answers with an application response or ACK.
ANSWERED = [
    ("rad-1-patient-registration/adt_a04.hl7", SWF),
    ("rad-2-placer-order/orm_o01_nw.hl7", SWF),
    ("rad-2-placer-order/orm_o01_ca.hl7", SWF),
    ("rad-2-placer-order/omg_o19_nw.hl7", SWF),
    ("rad-4-procedure-scheduled/omi_o23_two_ipc.hl7", SWF),
    ("rad-4-procedure-scheduled/omi_o23_one_procedure_two_steps.hl7", SWF),
    ("rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7", JAHIS),
]


def _answer(raw: bytes, profile: Profile, record: InboundRecord, *, version: str | None = None) -> str:
    header = MessageHeader.read(raw)
    if version:
        header = replace(header, version=version)
    response = profile.hl7_in.answers.get(f"{header.message_type}^{header.trigger_event}")
    orders: list[OrderOutcome] = []
    if response:
        message = hl7.parse(decode(raw, profile.hl7_in.charsets))
        orders = [
            OrderOutcome(
                r.control, r.placer_order_number, r.placer_application, "FO9", r.procedures, r.accession_number
            )
            for r in order_references(message, profile)
        ]
    response_type = message_structure(response, header.version) if response else None
    identity = (profile.sending_application, profile.sending_facility)
    return render_ack(header, record, AT, identity, writer_for(profile), response_type, orders)


def _versions(name: str) -> list[str | None]:
    """The sample's own version, and each other version its message type exists in
    (OMG^O19/OMI^O23 and their ORG/ORI answers came with v2.4; JAHIS is v2.5 and up)."""
    if "/om" in name:
        return [None, "2.5"]
    return [None, "2.5.1"] if "jahis" in name else [None, "2.3.1", "2.5", "2.5.1"]


@pytest.mark.parametrize("answer", ["AA", "AE", "AR"])
@pytest.mark.parametrize(
    ("name", "profile", "version"),
    [(name, profile, version) for name, profile in ANSWERED for version in _versions(name)],
    ids=lambda v: getattr(v, "name", v or "as-sent"),
)
def test_every_answer_validates_for_the_version_it_answers(
    name: str, profile: Profile, answer: str, version: str | None
) -> None:
    raw = (CATALOG / name).read_bytes().replace(b"\n", b"\r")
    refusal = {"AA": ("", "", ""), "AE": ("103", "OBR-4.1", "code 'X\rY|' unknown"), "AR": ("207", "", "busy")}[answer]
    record = InboundRecord("RIS|HOSPITAL", "MSG1", "ORM^O01", raw, answer, *refusal)
    text = _answer(raw, profile, record, version=version)
    assert problems(text) == []


def test_orr_o02_carries_obr_after_each_orc_hl7_v2_3_1_4_4_2() -> None:
    """Defect #13/5: ORR^O02 had an ORC without its order detail segment."""
    raw = (CATALOG / "rad-2-placer-order/orm_o01_nw.hl7").read_bytes().replace(b"\n", b"\r")
    text = _answer(raw, SWF, InboundRecord("RIS|HOSPITAL", "ORM0001", "ORM^O01", raw))
    assert [line[:3] for line in text.rstrip("\r").split("\r")] == ["MSH", "MSA", "ORC", "OBR"]
    assert text.split("\r")[3] == "OBR|1|PO1001^RIS|FO9|CTCHEST^CT Chest^LOCAL"


def test_ori_o24_carries_obr_and_one_ipc_per_step_hl7_v2_5_1_4_4_11() -> None:
    raw = (CATALOG / "rad-4-procedure-scheduled/omi_o23_two_ipc.hl7").read_bytes().replace(b"\n", b"\r")
    text = _answer(raw, SWF, InboundRecord("RIS|HOSPITAL", "OMI0001", "OMI^O23", raw))
    assert [line[:3] for line in text.rstrip("\r").split("\r")] == ["MSH", "MSA", "ORC", "OBR", "IPC", "IPC"]
    assert "IPC|ACC4001|RP4002|1.2.392.200036.9999.1.4002|SPS4002A|CT" in text


def test_ori_without_any_step_falls_back_to_a_general_ack() -> None:
    """An OMI that named no IPC cannot be answered by a well-formed ORI^O24."""
    raw = (CATALOG / "rad-4-procedure-scheduled/omi_o23_two_ipc.hl7").read_bytes().replace(b"\n", b"\r")
    raw = b"\r".join(line for line in raw.split(b"\r") if not line.startswith(b"IPC"))
    text = _answer(raw, SWF, InboundRecord("RIS|HOSPITAL", "OMI0001", "OMI^O23", raw, "AE", "101", "IPC", "no"))
    assert text.split("|")[8] == "ACK^O23^ACK"
    assert problems(text) == []


def test_jahis_ack_repeats_msh18_and_msh20_jahis() -> None:
    """Issue #13: the JAHIS ACK repeated MSH-18 but not MSH-20."""
    raw = (CATALOG / "rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7").read_bytes().replace(b"\n", b"\r")
    text = _answer(raw, JAHIS, InboundRecord("HIS|JPHOSP", "JPORM0001", "ORM^O01", raw))
    msh = text.split("\r")[0].split("|")
    assert (msh[17], msh[19]) == ("~ISO IR87", "ISO 2022-1994")
    assert missing_msh_fields(text) == []


EMITTED = sorted(
    path
    for path in CATALOG.rglob("*.hl7")
    if "emitted" in path.parts or path.parent.name == "rad-3-filler-order-status"
)


@pytest.mark.parametrize("path", EMITTED, ids=lambda p: str(p.relative_to(CATALOG)))
def test_catalog_samples_of_emitted_messages_validate(path: Path) -> None:
    """The catalog's emitted samples (re-rendered byte for byte by test_emitted_samples.py)."""
    raw = path.read_bytes().replace(b"\n", b"\r")
    assert problems(raw.decode("iso2022_jp" if b"ISO IR87" in raw else "utf-8")) == []
