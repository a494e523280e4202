"""Domain → HL7 v2 text: the segment writer and the RAD-3 status message."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from broker.domain.model import Order, Patient, PersonName, RequestedProcedure, StatusChange
from broker.domain.ports import OutboundMessage
from broker.mapping.charsets import codec_for
from broker.mapping.profile import Profile

Field = str | Sequence[str] | Sequence[Sequence[str]]

_ESCAPES = str.maketrans({"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"})


def escape(text: str) -> str:
    return text.translate(_ESCAPES)


def _field(value: Field) -> str:
    """A string, a list of components, or a list of repetitions of component lists."""
    if isinstance(value, str):
        return escape(value)
    if value and not isinstance(value[0], str):
        return "~".join("^".join(escape(c) for c in rep).rstrip("^") for rep in value)
    return "^".join(escape(c) for c in value).rstrip("^")  # type: ignore[arg-type]


def segment(name: str, *fields: Field) -> str:
    return "|".join([name, *(_field(f) for f in fields)]).rstrip("|")


def msh(
    *,
    sending: tuple[str, str],
    receiving: tuple[str, str],
    message_type: str,
    control_id: str,
    version: str,
    charset: str = "",
    charset_handling: str = "",
    now: datetime,
) -> str:
    """MSH written directly: MSH-2 and a repeated MSH-18 must not be escaped."""
    fields = [
        "MSH",
        "^~\\&",
        escape(sending[0]),
        escape(sending[1]),
        escape(receiving[0]),
        escape(receiving[1]),
        now.strftime("%Y%m%d%H%M%S"),
        "",
        message_structure(message_type, version),
        control_id,
        "P",
        version,
        "",
        "",
        "",
        "",
        "",
        charset,
        "",
        charset_handling,
    ]
    return "|".join(fields).rstrip("|")


def _performed(change: StatusChange) -> tuple[str, str, str]:
    """PPS start, end (HL7 DTM) and performed station AE from the MPPS record."""
    if change.performed is None:
        return "", "", ""
    record = json.loads(change.performed.attributes)

    def value(tag: str) -> str:
        return str(record.get(tag, {}).get("Value", [""])[0]).split(".")[0]

    started = value("00400244") + value("00400245")  # PPS Start Date + Time
    ended = value("00400250") + value("00400251")  # PPS End Date + Time
    return started, ended, change.performed.performed_station_ae


def message_structure(message_type: str, version: str) -> str:
    """MSH-9 with its third component (message structure, e.g. `OMI_O23`) from v2.4 on."""
    parts = message_type.split("^")
    if len(parts) == 2 and not version.startswith(("2.1", "2.2", "2.3")):
        parts.append("_".join(parts))
    return "^".join(parts)


def name_repetitions(name: PersonName, codes: dict[str, str]) -> list[list[str]]:
    """PN component groups → XPN repetitions with XPN-8 (A/I/P)."""
    reps: list[list[str]] = []
    for group, value in zip(("alphabetic", "ideographic", "phonetic"), name.groups(), strict=True):
        if not value:
            continue
        family, given, middle, prefix, suffix = (value.split("^") + [""] * 5)[:5]
        reps.append([family, given, middle, suffix, prefix, "", "L", codes[group]])
    return reps


def new_control_id() -> str:
    return uuid.uuid4().hex[:20]


def ordering_key(order: Order) -> str:
    """One order's messages leave in the order they were written."""
    return f"{order.placer_application}|{order.placer_order_number}"


def universal_service(procedure: RequestedProcedure) -> list[str]:
    code = procedure.code
    return [code.value, code.meaning, code.scheme] if code else [procedure.description]


def pid_segment(patient: Patient, name_codes: dict[str, str]) -> str:
    return segment(
        "PID",
        "1",
        "",
        [patient.patient_id, "", "", patient.issuer],
        "",
        name_repetitions(patient.name, name_codes),
        "",
        patient.birth_date,
        patient.sex,
    )


def name_codes(profile: Profile) -> dict[str, str]:
    """PN component group → XPN-8 code (A/I/P), the reverse of the profile's reading."""
    return {group: code for code, group in profile.hl7_in.name_groups.items() if code}


class Hl7StatusNotifier:
    """RAD-3 Filler Order Management: the order's new status for the Order Placer."""

    def __init__(self, profile: Profile, destination: str) -> None:
        self._profile = profile
        self._destination = destination
        out = profile.status_out
        self._codec = codec_for(out.charset, profile.hl7_in.charsets)
        self._name_codes = name_codes(profile)

    def messages_for(self, change: StatusChange) -> list[OutboundMessage]:
        order_status = self._profile.status_out.order_status.get(change.status.value)
        if order_status is None:
            return []
        text = "\r".join(self._segments(change, order_status)) + "\r"
        return [OutboundMessage(self._destination, ordering_key(change.order), text.encode(self._codec))]

    def _segments(self, change: StatusChange, order_status: str) -> list[str]:
        out, order, step = self._profile.status_out, change.order, change.step
        procedure = next(rp for rp in order.procedures if step in rp.steps)
        return [
            msh(
                sending=(self._profile.sending_application, self._profile.sending_facility),
                receiving=(order.placer_application, ""),
                message_type=out.message_type,
                control_id=new_control_id(),
                version=out.version,
                charset=out.charset,
                charset_handling=out.charset_handling,
                now=change.at,
            ),
            pid_segment(order.patient, self._name_codes),
            segment(
                "ORC",
                out.order_control,
                [order.placer_order_number, order.placer_application],
                order.filler_order_number,
                "",
                order_status,
            ),
            self._obr(change, procedure),
            *(self._series(change) if self._profile.status_out.performed_series else []),
        ]

    @staticmethod
    def _series(change: StatusChange) -> list[str]:
        """The performed series the MPPS reports (PPS Performed Series Sequence)."""
        if change.performed is None:
            return []
        record = json.loads(change.performed.attributes)
        items = record.get("00400340", {}).get("Value", [])
        uids = [uid for item in items for uid in item.get("0020000E", {}).get("Value", [])]
        return [
            segment("OBX", str(n), "ST", ["113014", "DICOM Series", "DCM"], "", uid, *[""] * 5, "F")
            for n, uid in enumerate(uids, start=1)
        ]

    def _obr(self, change: StatusChange, procedure: RequestedProcedure) -> str:
        order, step = change.order, change.step
        started, ended, station = _performed(change) if self._profile.status_out.performed_details else ("", "", "")
        placer = [order.placer_order_number, order.placer_application]
        return segment(
            "OBR", "1", placer, order.filler_order_number, universal_service(procedure), "", "", started, ended,
            *[""] * 9, order.accession_number, procedure.requested_procedure_id, step.sps_id, station, "", "",
            step.modality,
        )  # fmt: skip
