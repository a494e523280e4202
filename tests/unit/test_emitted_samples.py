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

from broker.domain.commands import PlaceOrder
from broker.domain.model import Order, StatusChange, StepStatus
from broker.mapping.hl7_in import interpret
from broker.mapping.hl7_out import Addressee, Hl7StatusNotifier
from broker.mapping.hl7_procedure import Hl7ProcedureNotifier
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


@pytest.mark.parametrize(("profile", "sample", "name"), [
    ("ihe-swf", "rad-2-placer-order/orm_o01_nw.hl7", "orm_o01_nw_zds.hl7"),
    ("jahis", "rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7", "omi_o23_nw_iso2022jp.hl7"),
])  # fmt: skip
def test_rad4_procedure_scheduled_samples_are_what_the_broker_sends(profile: str, sample: str, name: str) -> None:
    notifier = Hl7ProcedureNotifier(load_profile(profile), [Addressee("pacs")])
    [message] = notifier.messages_for(_order(sample, profile), "NW", AT)
    _check(f"rad-4-procedure-scheduled/emitted/{name}", message.payload)
