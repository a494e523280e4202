"""The emitted half of the `hl7/` catalog is what the broker really sends: each sample
is re-rendered here from the accepted sample it answers and compared byte for byte
(MSH-10, a fresh control ID per message, is normalised to CONTROLID).

Run with UPDATE_SAMPLES=1 to rewrite the samples after an intended change."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import hl7
import pytest

from broker.domain.commands import OrderOutcome, PlaceOrder
from broker.domain.model import Order, StatusChange, StepStatus
from broker.domain.ports import FillerEvent, InboundRecord
from broker.hl7.ack import render_ack
from broker.hl7.header import MessageHeader
from broker.mapping.hl7_in import interpret
from broker.mapping.hl7_out import Addressee, Hl7StatusNotifier, message_structure, writer_for
from broker.mapping.hl7_procedure import Hl7FillerOrderNotifier, Hl7ProcedureNotifier
from broker.mapping.profile import load_profile

CATALOG = Path(__file__).resolve().parents[2] / "hl7"
AT = datetime(2026, 11, 23, 10, 15, 0)


def _order(sample: str, profile: str) -> Order:
    raw = (CATALOG / sample).read_bytes().replace(b"\n", b"\r")
    codec = "iso2022_jp" if b"ISO IR87" in raw else "utf-8"
    [command] = interpret(hl7.parse(raw.decode(codec)), load_profile(profile))
    assert isinstance(command, PlaceOrder)
    order = command.order
    for procedure in order.procedures:  # what the Order Filler assigns on NW
        procedure.study_instance_uid = procedure.study_instance_uid or "1.2.392.200036.9999.7.1"
        for step in procedure.steps:
            step.station_ae = step.station_ae or load_profile(profile).assign.station_by_modality[step.modality]
    return order


def _raw(sample: str) -> bytes:
    return (CATALOG / sample).read_bytes().replace(b"\n", b"\r")


def _normalised(payload: bytes) -> bytes:
    return re.sub(rb"^(MSH(\|[^|\r]*){8})\|[^|\r]*", rb"\1|CONTROLID", payload)


def _check(path: str, payload: bytes) -> None:
    file = CATALOG / path
    text = _normalised(payload).replace(b"\r", b"\n")
    if os.environ.get("UPDATE_SAMPLES"):
        file.write_bytes(text)
    assert file.read_bytes() == text


@pytest.mark.parametrize(("status", "name"), [
    (StepStatus.STARTED, "orm_o01_sc_ip.hl7"),
    (StepStatus.COMPLETED, "orm_o01_sc_cm.hl7"),
    (StepStatus.DISCONTINUED, "orm_o01_sc_dc.hl7"),
])  # fmt: skip
def test_rad3_status_samples_are_what_the_broker_sends(status: StepStatus, name: str) -> None:
    order = _order("rad-2-placer-order/orm_o01_nw.hl7", "ihe-swf")
    [message] = Hl7StatusNotifier(load_profile("ihe-swf"), Addressee("ris")).messages_for(
        StatusChange(order, order.steps()[0], status, AT)
    )
    _check(f"rad-3-filler-order-status/{name}", message.payload)


@pytest.mark.parametrize(("event", "own", "name"), [
    ("new", True, "orm_o01_sn.hl7"),
    ("change", False, "orm_o01_xo.hl7"),
    ("cancel", False, "orm_o01_oc.hl7"),
])  # fmt: skip
def test_rad3_filler_order_samples_are_what_the_broker_sends(event: FillerEvent, own: bool, name: str) -> None:
    """An order made at the broker (SN: ORC-2 empty, the RIS numbers it), and a RIS's
    order changed and cancelled at the broker's console (XO, OC: ORC-2 its number)."""
    order = _order("rad-2-placer-order/orm_o01_nw.hl7", "ihe-swf")
    if own:
        order.placer_application, order.placer_order_number = "BROKER", order.filler_order_number
    [message] = Hl7FillerOrderNotifier(load_profile("ihe-swf"), [Addressee("ris", "RIS", "HOSPITAL")]).messages_for(
        order, event, AT
    )
    _check(f"rad-3-filler-order-status/{name}", message.payload)


@pytest.mark.parametrize(("profile", "sample", "name"), [
    ("ihe-swf", "rad-2-placer-order/orm_o01_nw.hl7", "orm_o01_nw_zds.hl7"),
    ("jahis", "rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7", "omi_o23_nw_iso2022jp.hl7"),
])  # fmt: skip
def test_rad4_procedure_scheduled_samples_are_what_the_broker_sends(profile: str, sample: str, name: str) -> None:
    notifier = Hl7ProcedureNotifier(load_profile(profile), [Addressee("pacs")])
    [message] = notifier.messages_for(_order(sample, profile), "NW", AT)
    _check(f"rad-4-procedure-scheduled/emitted/{name}", message.payload)


@pytest.mark.parametrize(("profile", "sample", "name"), [
    ("ihe-swf", "rad-2-placer-order/orm_o01_nw.hl7", "rad-2-placer-order/emitted/orr_o02_ok.hl7"),
    ("ihe-swf", "rad-2-placer-order/omg_o19_nw.hl7", "rad-2-placer-order/emitted/org_o20_ok.hl7"),
    ("ihe-swf", "rad-4-procedure-scheduled/omi_o23_two_ipc.hl7", "rad-4-procedure-scheduled/emitted/ori_o24_ok.hl7"),
])  # fmt: skip
def test_application_responses_are_what_the_broker_sends(profile: str, sample: str, name: str) -> None:
    """ORR^O02 / ORG^O20 / ORI^O24 to an accepted new order: ORC OK with the filler
    number, the OBR each ORC needs, and for ORI one IPC per scheduled step."""
    rules, raw = load_profile(profile), _raw(sample)
    order, header = _order(sample, profile), MessageHeader.read(raw)
    order.filler_order_number = order.filler_order_number or order.accession_number or "A00000001"
    outcome = OrderOutcome(
        "NW", order.placer_order_number, order.placer_application, order.filler_order_number,
        tuple(order.procedures), order.accession_number,
    )  # fmt: skip
    response = message_structure(rules.hl7_in.answers[f"{header.message_type}^{header.trigger_event}"], header.version)
    record = InboundRecord(header.sender, header.control_id, header.message_type, raw)
    identity = (rules.sending_application, rules.sending_facility)
    answer = render_ack(header, record, AT, identity, writer_for(rules), response, [outcome])
    _check(name, answer.encode())


def test_refusal_ack_is_what_the_broker_sends() -> None:
    """An A08 for a patient the broker does not hold: AE, ERR 204 at PID-3 (v2.3.1 ERR-1)."""
    raw = _raw("rad-12-patient-update/adt_a08.hl7")
    header = MessageHeader.read(raw)
    record = InboundRecord(header.sender, header.control_id, "ADT^A08", raw, "AE", "204", "PID-3", "patient unknown")
    answer = render_ack(header, record, AT, ("BROKER", "RADIOLOGY"), writer_for(load_profile("ihe-swf")))
    _check("rad-12-patient-update/emitted/ack_a08_ae_204.hl7", answer.encode())
