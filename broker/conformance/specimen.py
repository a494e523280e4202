"""A made-up order run through the broker's own mapping code, so the statement shows
what the broker really writes (segments, worklist return keys) instead of a second,
hand-kept list."""

from __future__ import annotations

from datetime import datetime
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset

from broker.domain.model import (
    Code,
    Order,
    Patient,
    PersonName,
    RequestedProcedure,
    ScheduledStep,
    StatusChange,
    StepStatus,
)
from broker.domain.ports import FillerEvent
from broker.domain.worklist import WorklistEntry
from broker.mapping.charsets import codec_for
from broker.mapping.hl7_out import Addressee, Hl7StatusNotifier
from broker.mapping.hl7_procedure import ORDER_STATUS, Hl7FillerOrderNotifier, Hl7ProcedureNotifier
from broker.mapping.mwl import AnswerPlan
from broker.mapping.profile import Profile

_AT = datetime(2000, 1, 1, 9, 0)


def _order() -> Order:
    code = Code("CODE", "LOCAL", "Procedure")
    step = ScheduledStep("SPS1", "CT", "CT01", "STATION", _AT, "Step", [code], "PHYSICIAN", "ROOM")
    procedure = RequestedProcedure("RP1", "1.2.3", "Procedure", code, "R", [step])
    patient = Patient("PID1", "ISSUER", PersonName("DOE^JANE"), "19700101", "F")
    return Order("PO1", "FO1", "ACC1", patient, "RIS", "REFERRER", [procedure])


def worklist_item() -> Dataset:
    """Every attribute a worklist answer can carry (the MWL return keys)."""
    order = _order()
    procedure = order.procedures[0]
    entry = WorklistEntry.of(order, procedure, procedure.steps[0])
    answer = AnswerPlan(None, ["ISO_IR 192"]).encode(entry, implicit=False)
    return read_dataset(BytesIO(answer), False, True)


def _segment_names(payload: bytes, charset: str, profile: Profile) -> list[str]:
    text = payload.decode(codec_for(charset, profile.hl7_in.charsets))
    names: list[str] = []
    for line in filter(None, text.split("\r")):
        if line[:3] not in names:
            names.append(line[:3])
    return names


def status_segments(profile: Profile) -> list[str]:
    """The segments of the RAD-3 status message the profile makes."""
    order = _order()
    change = StatusChange(order, order.steps()[0], StepStatus.COMPLETED, _AT)
    [message] = Hl7StatusNotifier(profile, Addressee("ris")).messages_for(change)
    return _segment_names(message.payload, profile.status_out.charset, profile)


def procedure_segments(profile: Profile) -> dict[str, list[str]]:
    """The segments of the RAD-4/RAD-13 message, per order control code it is sent with."""
    notifier = Hl7ProcedureNotifier(profile, [Addressee("image-manager")])
    return {
        control: _segment_names(
            notifier.messages_for(_order(), control, _AT)[0].payload, profile.procedure_out.charset, profile
        )
        for control in ORDER_STATUS
    }


def filler_order_segments(profile: Profile) -> list[tuple[str, str, list[str]]]:
    """(event, ORC-1, segments) of each RAD-3 message for an order the broker made,
    changed or cancelled, as the profile sends them (an event it leaves out: no row)."""
    notifier = Hl7FillerOrderNotifier(profile, [Addressee("ris")])
    events: tuple[FillerEvent, ...] = ("new", "change", "cancel")
    return [
        (event, notifier.control(event), _segment_names(message.payload, profile.status_out.charset, profile))
        for event in events
        for message in notifier.messages_for(_order(), event, _AT)
    ]
