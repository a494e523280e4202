"""RAD-4 Procedure Scheduled and RAD-13 Procedure Update, as the profile writes them.

HL7 v2.3.1 (SWF): ORM^O01, one ORC/OBR/ZDS group per scheduled step, OBR-18
accession, OBR-19 Requested Procedure ID, OBR-20 SPS ID, OBR-24 modality, ZDS-1 Study
Instance UID. HL7 v2.5.1 (SWF.b): OMI^O23, one ORC/TQ1/OBR per requested procedure and
one IPC per scheduled step (accession, RP ID, Study UID, SPS ID, modality, protocol,
station name, location, station AE).
"""

from __future__ import annotations

from datetime import datetime

from broker.domain.model import Order, RequestedProcedure, ScheduledStep
from broker.domain.ports import OutboundMessage
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
    universal_service,
    writer_for,
)
from broker.mapping.profile import Profile

#: ORC-5 order status written with each order control code.
ORDER_STATUS = {"NW": "SC", "XO": "SC", "CA": "CA", "DC": "DC"}


def _when(step: ScheduledStep) -> str:
    return step.start.strftime("%Y%m%d%H%M%S") if step.start else ""


class Hl7ProcedureNotifier:
    def __init__(self, profile: Profile, addressees: list[Addressee]) -> None:
        self._profile = profile
        self._addressees = addressees
        self._codec = codec_for(profile.procedure_out.charset, profile.hl7_in.charsets)
        self._name_codes = name_codes(profile)
        self._writer: Hl7Writer = writer_for(profile)

    def messages_for(self, order: Order, control: str, at: datetime) -> list[OutboundMessage]:
        """The message for each Image Manager (MSH-5/6 its own); none when none is configured."""
        out = self._profile.procedure_out
        body = [
            pid_segment(self._writer, order.patient, self._name_codes),
            *(self._omi(order, control) if out.message_type == "OMI^O23" else self._orm(order, control)),
        ]
        return [
            OutboundMessage(addressee.name, ordering_key(order), self._text(addressee, order, at, body))
            for addressee in self._addressees
        ]

    def _text(self, addressee: Addressee, order: Order, at: datetime, body: list[str]) -> bytes:
        out = self._profile.procedure_out
        header = Header(
            sending=(self._profile.sending_application, self._profile.sending_facility),
            receiving=addressee.receiving(order),
            message_type=out.message_type,
            version=out.version,
            at=at,
            charset=out.charset,
            charset_handling=out.charset_handling,
        )
        return encoded(self._writer.message(header, body), self._codec)

    def _orc(self, order: Order, control: str) -> str:
        placer = [order.placer_order_number, order.placer_application]
        return self._writer.segment("ORC", control, placer, order.filler_order_number, "", ORDER_STATUS[control])

    def _orm(self, order: Order, control: str) -> list[str]:
        lines: list[str] = []
        for procedure in order.procedures:
            for step in procedure.steps:
                lines += [
                    self._orc(order, control),
                    self._obr(order, procedure, step),
                    self._zds(procedure),
                ]
        return lines

    def _zds(self, procedure: RequestedProcedure) -> str:
        """ZDS-1: Study Instance UID ^ implementation ^ Application ^ DICOM (IHE RAD TF-2)."""
        uid = [procedure.study_instance_uid, self._profile.sending_application, "Application", "DICOM"]
        return self._writer.segment("ZDS", uid)

    def _obr(self, order: Order, procedure: RequestedProcedure, step: ScheduledStep) -> str:
        placer = [order.placer_order_number, order.placer_application]
        return self._writer.segment(
            "OBR", "1", placer, order.filler_order_number, universal_service(procedure), *[""] * 13,
            order.accession_number, procedure.requested_procedure_id, step.sps_id, "", "", "",
            step.modality, "", "", ["", "", "", _when(step), "", procedure.priority],
        )  # fmt: skip

    def _omi(self, order: Order, control: str) -> list[str]:
        lines: list[str] = []
        placer = [order.placer_order_number, order.placer_application]
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
