"""Domain → HL7 v2 text: the one writer every outbound message and answer goes
through, and the RAD-3 status message.

Every value is escaped on its way into a segment: the five delimiters as `\\F\\ \\S\\
\\T\\ \\R\\ \\E\\` (HL7 v2.5 §2.7.4) and control characters (CR, LF, NUL, ESC, every C0
and C1 code) as `\\Xhh\\` hex data (§2.7.5) or dropped, as the profile says. A CR or LF
written as is would end the segment at the receiver: a modality's Performed Station AE
Title must not be able to add a segment to the RIS feed (HL7 segment injection).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from broker.domain.model import (
    Order,
    Patient,
    PersonName,
    RequestedProcedure,
    ScheduledStep,
    StatusChange,
)
from broker.domain.ports import OutboundMessage
from broker.mapping.charsets import codec_for
from broker.mapping.profile import Profile

log = logging.getLogger(__name__)

#: A component is text, or a tuple of subcomponents.
Component = str | tuple[str, ...]
#: A field: text, a list of components, or a list of repetitions (component lists).
Field = str | Sequence[Component] | Sequence[Sequence[Component]]
#: What becomes of a control character in a value: `\Xhh\` hex data, or nothing.
ControlCharacters = Literal["hex", "drop"]

_DELIMITERS = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}
#: C0 (U+0000 to U+001F), DEL and C1 (U+0080 to U+009F): Unicode category Cc.
_CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]
_HEX: dict[str, str | None] = {c: f"\\X{ord(c):02X}\\" for c in _CONTROLS}
_TABLES: dict[ControlCharacters, dict[int, str | None]] = {
    "hex": str.maketrans({**_DELIMITERS, **_HEX}),
    "drop": str.maketrans({**_DELIMITERS, **dict.fromkeys(_CONTROLS)}),
}
#: Any character either table changes: most values (names, IDs, dates) hold none, and
#: one search finds that in a fifth of the time `translate` takes to copy them (an
#: answer or an order's messages write some thirty values).
_SPECIAL = re.compile("[" + re.escape("".join([*_DELIMITERS, *_CONTROLS])) + "]")


def escape(text: str, control: ControlCharacters = "hex") -> str:
    """`text` as one HL7 value: no delimiter, no segment terminator, no control byte."""
    return text if _SPECIAL.search(text) is None else text.translate(_TABLES[control])


def new_control_id() -> str:
    """MSH-10: unique per message (ST, 20 characters fit every version)."""
    return uuid.uuid4().hex[:20]


def has_structure(version: str) -> bool:
    """MSH-9.3, the message structure, exists from HL7 v2.3.1 on."""
    return version not in ("2.1", "2.2", "2.3")


def message_structure(message_type: str, version: str) -> str:
    """MSH-9 with its message structure (e.g. `ORM^O01^ORM_O01`) where the version has
    one; `ACK^O01^ACK` and other full forms are kept as given."""
    parts = message_type.split("^")
    if len(parts) == 2 and has_structure(version):
        parts.append("_".join(parts))
    return "^".join(parts)


@dataclass(frozen=True)
class Header:
    """MSH of a message the broker writes: every field HL7 v2.3.1/v2.5 requires
    (MSH-3..7, MSH-9..12) plus MSH-18/MSH-20 when the profile names a character set."""

    sending: tuple[str, str]  # MSH-3/MSH-4: the broker
    receiving: tuple[str, str]  # MSH-5/MSH-6: the destination
    message_type: str  # TYPE^EVENT (the structure is added per version) or the full MSH-9
    version: str  # MSH-12
    at: datetime  # MSH-7
    control_id: str = field(default_factory=new_control_id)  # MSH-10
    charset: str = ""  # MSH-18, repetitions separated by `~` (JAHIS: `~ISO IR87`)
    charset_handling: str = ""  # MSH-20 (JAHIS: `ISO 2022-1994`)
    processing_id: str = "P"  # MSH-11


@dataclass(frozen=True)
class Hl7Writer:
    """Segments from values; nothing reaches the text without `escape`."""

    control_characters: ControlCharacters = "hex"

    def escape(self, text: str) -> str:
        return escape(text, self.control_characters)

    def _component(self, value: Component) -> str:
        if isinstance(value, str):
            return self.escape(value)
        return "&".join(self.escape(s) for s in value).rstrip("&")

    def _components(self, value: Sequence[Component]) -> str:
        return "^".join(self._component(c) for c in value).rstrip("^")

    def field(self, value: Field) -> str:
        if isinstance(value, str):
            return self.escape(value)
        if value and not isinstance(value[0], str | tuple):
            return "~".join(self._components(rep) for rep in value)
        return self._components(value)  # type: ignore[arg-type]

    def segment(self, name: str, *fields: Field) -> str:
        return "|".join([name, *(self.field(f) for f in fields)]).rstrip("|")

    def msh(self, header: Header) -> str:
        """MSH-1 and MSH-2 are the delimiters themselves; MSH-18 repeats with `~`."""
        e = self.escape
        fields = [
            "MSH",
            "^~\\&",
            e(header.sending[0]),
            e(header.sending[1]),
            e(header.receiving[0]),
            e(header.receiving[1]),
            header.at.strftime("%Y%m%d%H%M%S"),
            "",
            self.field(message_structure(header.message_type, header.version).split("^")),
            e(header.control_id),
            e(header.processing_id),
            e(header.version),
            *[""] * 5,
            "~".join(e(r) for r in header.charset.split("~")),
            "",
            e(header.charset_handling),
        ]
        return "|".join(fields).rstrip("|")

    def message(self, header: Header, segments: Sequence[str]) -> str:
        """The whole message, each segment ended by CR."""
        return "\r".join([self.msh(header), *segments]) + "\r"


def encoded(text: str, codec: str) -> bytes:
    """The message in its character set. A character the set cannot carry (a Latin
    letter or a bidi override in an ISO-2022-JP message) becomes `?` instead of failing
    the MPPS or order that caused the message."""
    try:
        return text.encode(codec)
    except UnicodeEncodeError:
        log.warning("a value the %s message cannot carry was written as '?'", codec)
        return text.encode(codec, errors="replace")


def writer_for(profile: Profile) -> Hl7Writer:
    return Hl7Writer(profile.hl7_out.control_characters)


@dataclass(frozen=True)
class Addressee:
    """An HL7 destination: its outbox name and the MSH-5/MSH-6 it is sent; empty ones
    default to the order's placer application and facility as received."""

    name: str
    application: str = ""
    facility: str = ""

    def receiving(self, order: Order) -> tuple[str, str]:
        return (self.application or order.placer_application, self.facility or order.placer_facility)


_DA, _TM = re.compile(r"\d{8}"), re.compile(r"\d{2}(\d{2}(\d{2})?)?")


def _performed(change: StatusChange) -> tuple[str, str, str]:
    """PPS start, end (HL7 DTM) and performed station AE from the MPPS record. A date
    or time that is not a DICOM DA/TM is left out: OBR-7/8 are typed fields, and
    whatever else a modality wrote there is no time the RIS could use."""
    if change.performed is None:
        return "", "", ""
    record = json.loads(change.performed.attributes)

    def moment(date_tag: str, time_tag: str) -> str:
        date, time = (str(record.get(tag, {}).get("Value", [""])[0]) for tag in (date_tag, time_tag))
        time = time.split(".")[0]
        return date + time if _DA.fullmatch(date) and _TM.fullmatch(time) else ""

    started = moment("00400244", "00400245")  # PPS Start Date + Time
    ended = moment("00400250", "00400251")  # PPS End Date + Time
    return started, ended, change.performed.performed_station_ae


def name_repetitions(name: PersonName, codes: dict[str, str]) -> list[list[str]]:
    """PN component groups → XPN repetitions with XPN-8 (A/I/P)."""
    reps: list[list[str]] = []
    for group, value in zip(("alphabetic", "ideographic", "phonetic"), name.groups(), strict=True):
        if not value:
            continue
        family, given, middle, prefix, suffix = (value.split("^") + [""] * 5)[:5]
        reps.append([family, given, middle, suffix, prefix, "", "L", codes[group]])
    return reps


def own_order(order: Order, profile: Profile) -> bool:
    """An order made at the broker (console, API): it is its own placer, so the
    placer order number it carries is its filler number, not one the RIS gave."""
    return (order.placer_application, order.placer_order_number) == (
        profile.sending_application,
        order.filler_order_number,
    )


def placer_for_ris(order: Order, profile: Profile) -> list[str]:
    """ORC-2/OBR-2 of a message to the RIS: its own number. For the broker's own orders,
    the number the RIS gave in its NA answer to their SN (RAD-3 Filler Order
    Management), empty until then: the RIS knows them by ORC-3."""
    if own_order(order, profile):
        return [order.assigned_placer_number, order.assigned_placer_application] if order.assigned_placer_number else []
    return [order.placer_order_number, order.placer_application]


def ordering_key(order: Order) -> str:
    """One order's messages leave in the order they were written."""
    return f"{order.placer_application}|{order.placer_order_number}"


def universal_service(procedure: RequestedProcedure) -> list[str]:
    code = procedure.code
    return [code.value, code.meaning, code.scheme] if code else [procedure.description]


def pid_segment(writer: Hl7Writer, patient: Patient, name_codes: dict[str, str]) -> str:
    return writer.segment(
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


def ipc_segment(writer: Hl7Writer, accession: str, procedure: RequestedProcedure, step: ScheduledStep) -> str:
    """IPC (v2.5+): one scheduled step: accession, RP ID, Study UID, SPS ID, modality,
    protocol codes, station name, location, station AE."""
    protocols = [[c.value, c.meaning, c.scheme] for c in step.protocol_codes]
    return writer.segment(
        "IPC", accession, procedure.requested_procedure_id, procedure.study_instance_uid,
        step.sps_id, step.modality, protocols, step.station_name, step.location, step.station_ae,
    )  # fmt: skip


def name_codes(profile: Profile) -> dict[str, str]:
    """PN component group → XPN-8 code (A/I/P), the reverse of the profile's reading."""
    return {group: code for code, group in profile.hl7_in.name_groups.items() if code}


class Hl7StatusNotifier:
    """RAD-3 Filler Order Management: the order's new status for the Order Placer."""

    def __init__(self, profile: Profile, addressee: Addressee) -> None:
        self._profile = profile
        self._addressee = addressee
        out = profile.status_out
        self._codec = codec_for(out.charset, profile.hl7_in.charsets)
        self._name_codes = name_codes(profile)
        self._writer = writer_for(profile)

    def messages_for(self, change: StatusChange) -> list[OutboundMessage]:
        order_status = self._profile.status_out.order_status.get(change.status.value)
        if order_status is None:
            return []
        out, order = self._profile.status_out, change.order
        header = Header(
            sending=(self._profile.sending_application, self._profile.sending_facility),
            receiving=self._addressee.receiving(order),
            message_type=out.message_type,
            version=out.version,
            at=change.at,
            charset=out.charset,
            charset_handling=out.charset_handling,
        )
        text = self._writer.message(header, self._segments(change, order_status))
        return [OutboundMessage(self._addressee.name, ordering_key(order), encoded(text, self._codec))]

    def _segments(self, change: StatusChange, order_status: str) -> list[str]:
        out, order, step, w = self._profile.status_out, change.order, change.step, self._writer
        procedure = next(rp for rp in order.procedures if step in rp.steps)
        placer = placer_for_ris(order, self._profile)
        return [
            pid_segment(w, order.patient, self._name_codes),
            w.segment("ORC", out.order_control, placer, order.filler_order_number, "", order_status),
            self._obr(change, procedure),
            *(self._series(change) if out.performed_series else []),
            # OMI^O23 (v2.5+): each order group ends with its steps' IPC segments.
            *([ipc_segment(w, order.accession_number, procedure, step)] if out.message_type == "OMI^O23" else []),
        ]

    def _series(self, change: StatusChange) -> list[str]:
        """The performed series the MPPS reports (PPS Performed Series Sequence); OBX-4
        (sub-ID) tells apart the OBX that share OBX-3, as HL7 requires."""
        if change.performed is None:
            return []
        record = json.loads(change.performed.attributes)
        items = record.get("00400340", {}).get("Value", [])
        uids = [uid for item in items for uid in item.get("0020000E", {}).get("Value", [])]
        return [
            self._writer.segment("OBX", str(n), "ST", ["113014", "DICOM Series", "DCM"], str(n), uid, *[""] * 5, "F")
            for n, uid in enumerate(uids, start=1)
        ]

    def _obr(self, change: StatusChange, procedure: RequestedProcedure) -> str:
        order, step = change.order, change.step
        started, ended, station = _performed(change) if self._profile.status_out.performed_details else ("", "", "")
        placer = placer_for_ris(order, self._profile)
        return self._writer.segment(
            "OBR", "1", placer, order.filler_order_number, universal_service(procedure), "", "", started, ended,
            *[""] * 9, order.accession_number, procedure.requested_procedure_id, step.sps_id, station, "", "",
            step.modality,
        )  # fmt: skip
