"""RAD-4 Procedure Scheduled and RAD-13 Procedure Update, as the profile writes them.

HL7 v2.3.1 (SWF): ORM^O01, one ORC/OBR/ZDS group per scheduled step, OBR-18
accession, OBR-19 Requested Procedure ID, OBR-20 SPS ID, OBR-24 modality, ZDS-1 Study
Instance UID. HL7 v2.5.1 (SWF.b): OMI^O23, one ORC/TQ1/OBR per requested procedure and
one IPC per scheduled step (accession, RP ID, Study UID, SPS ID, modality, protocol,
station name, location, station AE).

RAD-3 Filler Order Management for orders made at the broker (its console and API) goes
to the RIS in the same ORC/OBR form: ORC-1 SN (new, ORC-2 empty: the RIS numbers it),
XO (changed), OC (cancelled).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from broker.domain.model import Order, RequestedProcedure, ScheduledStep
from broker.domain.ports import FillerEvent, OutboundMessage
from broker.mapping.charsets import codec_for
from broker.mapping.hl7_out import (
    Addressee,
    Header,
    Hl7Writer,
    encoded,
    ipc_segment,
    name_codes,
    ordering_key,
    pid_segment,
    placer_for_ris,
    universal_service,
    writer_for,
)
from broker.mapping.profile import Profile

#: ORC-5 order status written with each order control code (RAD-4/13).
ORDER_STATUS = {"NW": "SC", "XO": "SC", "CA": "CA", "DC": "DC"}
#: The same for the broker's own order events (RAD-3 to the RIS).
FILLER_ORDER_STATUS = {"SN": "SC", "XO": "SC", "OC": "CA"}


def _when(step: ScheduledStep) -> str:
    return step.start.strftime("%Y%m%d%H%M%S") if step.start else ""


@dataclass(frozen=True)
class Form:
    """How an order message is written: type, version, MSH-18 and MSH-20."""

    message_type: str
    version: str
    charset: str
    charset_handling: str = ""


class _OrderMessages:
    """An order as ORC/OBR groups (one per scheduled step) or, for OMI^O23, one
    ORC/TQ1/OBR per requested procedure with its IPC segments, to some addressees."""

    #: ORC-5 for each order control code the messages are sent with.
    _status: dict[str, str] = ORDER_STATUS

    def __init__(self, profile: Profile, addressees: list[Addressee], form: Form) -> None:
        self._profile = profile
        self._addressees = addressees
        self._form = form
        self._codec = codec_for(form.charset, profile.hl7_in.charsets)
        self._name_codes = name_codes(profile)
        self._writer: Hl7Writer = writer_for(profile)

    def _messages(self, order: Order, control: str, at: datetime) -> list[OutboundMessage]:
        """The message for each addressee (MSH-5/6 its own); none when none is configured,
        and then nothing is built either (a broker without Image Managers)."""
        if not self._addressees:
            return []
        body = [
            pid_segment(self._writer, order.patient, self._name_codes),
            *(self._omi(order, control) if self._form.message_type == "OMI^O23" else self._orm(order, control)),
        ]
        return [
            OutboundMessage(addressee.name, ordering_key(order), self._text(addressee, order, at, body))
            for addressee in self._addressees
        ]

    def _text(self, addressee: Addressee, order: Order, at: datetime, body: list[str]) -> bytes:
        form = self._form
        header = Header(
            sending=(self._profile.sending_application, self._profile.sending_facility),
            receiving=addressee.receiving(order),
            message_type=form.message_type,
            version=form.version,
            at=at,
            charset=form.charset,
            charset_handling=form.charset_handling,
        )
        return encoded(self._writer.message(header, body), self._codec)

    def _placer(self, order: Order, control: str) -> list[str]:
        """ORC-2/OBR-2 placer order number and application."""
        return [order.placer_order_number, order.placer_application]

    def _orc(self, order: Order, control: str) -> str:
        placer = self._placer(order, control)
        return self._writer.segment("ORC", control, placer, order.filler_order_number, "", self._status[control])

    def _orm(self, order: Order, control: str) -> list[str]:
        lines: list[str] = []
        for procedure in order.procedures:
            for step in procedure.steps:
                lines += [self._orc(order, control), self._obr(order, control, procedure, step)]
                lines += self._study(procedure)
        return lines

    def _study(self, procedure: RequestedProcedure) -> list[str]:
        """What follows each ORC/OBR group besides (RAD-4's ZDS)."""
        return []

    def _obr(self, order: Order, control: str, procedure: RequestedProcedure, step: ScheduledStep) -> str:
        placer = self._placer(order, control)
        return self._writer.segment(
            "OBR", "1", placer, order.filler_order_number, universal_service(procedure), *[""] * 13,
            order.accession_number, procedure.requested_procedure_id, step.sps_id, "", "", "",
            step.modality, "", "", ["", "", "", _when(step), "", procedure.priority],
        )  # fmt: skip

    def _omi(self, order: Order, control: str) -> list[str]:
        lines: list[str] = []
        placer = self._placer(order, control)
        w = self._writer
        for procedure in order.procedures:
            first = procedure.steps[0] if procedure.steps else None
            lines += [
                self._orc(order, control),
                w.segment("TQ1", "1", "", "", "", "", "", _when(first) if first else "", "", procedure.priority),
                w.segment("OBR", "1", placer, order.filler_order_number, universal_service(procedure)),
            ]
            lines += [ipc_segment(w, order.accession_number, procedure, step) for step in procedure.steps]
        return lines


class Hl7ProcedureNotifier(_OrderMessages):
    """RAD-4 Procedure Scheduled and RAD-13 Procedure Update to the Image Managers."""

    def __init__(self, profile: Profile, addressees: list[Addressee]) -> None:
        out = profile.procedure_out
        super().__init__(profile, addressees, Form(out.message_type, out.version, out.charset, out.charset_handling))

    def messages_for(self, order: Order, control: str, at: datetime) -> list[OutboundMessage]:
        return self._messages(order, control, at)

    def _study(self, procedure: RequestedProcedure) -> list[str]:
        """ZDS-1: Study Instance UID ^ implementation ^ Application ^ DICOM (IHE RAD TF-2)."""
        uid = [procedure.study_instance_uid, self._profile.sending_application, "Application", "DICOM"]
        return [self._writer.segment("ZDS", uid)]


class Hl7FillerOrderNotifier(_OrderMessages):
    """RAD-3 Filler Order Management: an order made, changed or cancelled at the broker,
    for the RIS, in the status message's version and character set."""

    _status = FILLER_ORDER_STATUS

    def __init__(self, profile: Profile, ris: list[Addressee]) -> None:
        status, out = profile.status_out, profile.filler_order_out
        super().__init__(profile, ris, Form(out.message_type, status.version, status.charset, status.charset_handling))
        self._controls: dict[FillerEvent, str] = {"new": out.new, "change": out.change, "cancel": out.cancel}

    def control(self, event: FillerEvent) -> str:
        """ORC-1 the event is sent with; empty: the profile leaves it out."""
        return self._controls[event]

    def messages_for(self, order: Order, event: FillerEvent, at: datetime) -> list[OutboundMessage]:
        control = self._controls[event]
        return self._messages(order, control, at) if control else []

    def _placer(self, order: Order, control: str) -> list[str]:
        """Empty for SN (the RIS assigns its number), else as every message to the RIS."""
        return [] if control == "SN" else placer_for_ris(order, self._profile)
