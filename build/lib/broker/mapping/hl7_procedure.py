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
    msh,
    name_codes,
    new_control_id,
    ordering_key,
    pid_segment,
    segment,
    universal_service,
)
from broker.mapping.profile import Profile

#: ORC-5 order status written with each order control code.
ORDER_STATUS = {"NW": "SC", "XO": "SC", "CA": "CA", "DC": "DC"}


def _when(step: ScheduledStep) -> str:
    return step.start.strftime("%Y%m%d%H%M%S") if step.start else ""


class Hl7ProcedureNotifier:
    def __init__(self, profile: Profile, destinations: list[str]) -> None:
        self._profile = profile
        self._destinations = destinations
        self._codec = codec_for(profile.procedure_out.charset, profile.hl7_in.charsets)
        self._name_codes = name_codes(profile)

    def messages_for(self, order: Order, control: str, at: datetime) -> list[OutboundMessage]:
        """The message for each Image Manager; none when none is configured."""
        if not self._destinations:
            return []
        out = self._profile.procedure_out
        body = self._omi(order, control) if out.message_type == "OMI^O23" else self._orm(order, control)
        header = msh(
            sending=(self._profile.sending_application, self._profile.sending_facility),
            receiving=("", ""),
            message_type=out.message_type,
            control_id=new_control_id(),
            version=out.version,
            charset=out.charset,
            charset_handling=out.charset_handling,
            now=at,
        )
        payload = ("\r".join([header, pid_segment(order.patient, self._name_codes), *body]) + "\r").encode(self._codec)
        return [OutboundMessage(name, ordering_key(order), payload) for name in self._destinations]

    @staticmethod
    def _orc(order: Order, control: str) -> str:
        placer = [order.placer_order_number, order.placer_application]
        return segment("ORC", control, placer, order.filler_order_number, "", ORDER_STATUS[control])

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
        return segment("ZDS", uid)

    @staticmethod
    def _obr(order: Order, procedure: RequestedProcedure, step: ScheduledStep) -> str:
        placer = [order.placer_order_number, order.placer_application]
        return segment(
            "OBR", "1", placer, order.filler_order_number, universal_service(procedure), *[""] * 13,
            order.accession_number, procedure.requested_procedure_id, step.sps_id, "", "", "",
            step.modality, "", "", ["", "", "", _when(step), "", procedure.priority],
        )  # fmt: skip

    def _omi(self, order: Order, control: str) -> list[str]:
        lines: list[str] = []
        placer = [order.placer_order_number, order.placer_application]
        for procedure in order.procedures:
            first = procedure.steps[0] if procedure.steps else None
            lines += [
                self._orc(order, control),
                segment("TQ1", "1", "", "", "", "", "", _when(first) if first else "", "", procedure.priority),
                segment("OBR", "1", placer, order.filler_order_number, universal_service(procedure)),
            ]
            lines += [self._ipc(order, procedure, step) for step in procedure.steps]
        return lines

    @staticmethod
    def _ipc(order: Order, procedure: RequestedProcedure, step: ScheduledStep) -> str:
        protocols = [[c.value, c.meaning, c.scheme] for c in step.protocol_codes]
        return segment(
            "IPC", order.accession_number, procedure.requested_procedure_id, procedure.study_instance_uid,
            step.sps_id, step.modality, protocols, step.station_name, step.location, step.station_ae,
        )  # fmt: skip
