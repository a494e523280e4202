"""HL7 v2 message → domain commands, reading fields where the profile says.

Routing by MSH-9 is data too: `_ROUTES` names, per message type, the function that
reads it. Segment groups start at each ORC, so ZDS/TQ1 belong to the order they follow.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import hl7

from broker.domain.commands import (
    CancelOrder,
    CancelRegistration,
    ChangeOrder,
    Command,
    DiscontinueOrder,
    MergePatient,
    PlaceOrder,
    RegisterPatient,
    UpdatePatient,
)
from broker.domain.errors import InvalidInput, Problem
from broker.domain.model import Code, Order, Patient, PersonName, RequestedProcedure, ScheduledStep
from broker.errors import UnsupportedMessage
from broker.mapping.charsets import decode
from broker.mapping.hl7_fields import Message, Segment, as_message
from broker.mapping.hl7_text import check_text, segments, with_cr
from broker.mapping.profile import OrderFields, Profile
from broker.mapping.vr import check


@dataclass(frozen=True)
class FieldPath:
    """`SEG-f[.c[.s]]`, 1-based as HL7 numbers them."""

    segment: str
    field: int
    component: int = 0
    subcomponent: int = 0

    @classmethod
    def parse(cls, text: str) -> FieldPath:
        return _field_path(text)

    def __str__(self) -> str:
        parts = [str(n) for n in (self.field, self.component, self.subcomponent) if n]
        return f"{self.segment}-{'.'.join(parts)}"


@functools.lru_cache(maxsize=1024)
def _field_path(text: str) -> FieldPath:
    """Profiles name a few dozen paths, read for every message: each is split once."""
    segment, _, rest = text.partition("-")
    numbers = [int(n) for n in rest.split(".")]
    return FieldPath(segment, *numbers)


class SegmentGroup:
    """Segments an order reads: its own (ORC and what follows), then the message's
    header segments (MSH, PID, PV1, ... before the first ORC) — never another order's.
    The first segment of each name is indexed once: a message is read field by field."""

    def __init__(self, message: Message | hl7.Message, own: Sequence[Segment]) -> None:
        header = []
        for segment in as_message(message):
            if segment.name == "ORC":
                break
            header.append(segment)
        self._own = list(own)
        self._first: dict[str, Segment] = {}
        for segment in [*own, *header]:
            self._first.setdefault(segment.name, segment)

    def own(self, name: str) -> list[Segment]:
        """This order's segments called `name` (e.g. every IPC)."""
        return [s for s in self._own if s.name == name]

    def focused(self, segment: Segment) -> SegmentGroup:
        """The same group, with `segment` found first among its namesakes."""
        group = SegmentGroup.__new__(SegmentGroup)
        group._own = self._own
        group._first = {**self._first, segment.name: segment}
        return group

    def _segment(self, name: str) -> Segment | None:
        return self._first.get(name)

    def value(self, path: FieldPath, repetition: int = 1) -> str:
        return self.part(path.segment, path.field, repetition, path.component or 1, path.subcomponent or 1)

    def part(self, segment_name: str, field: int, repetition: int, component: int, subcomponent: int = 1) -> str:
        """`value` by numbers: a name's components are read a dozen at a time."""
        segment = self._segment(segment_name)
        return "" if segment is None else segment.value(field, repetition, component, subcomponent).strip()

    def first(self, paths: Sequence[str]) -> str:
        return self.located(paths)[0]

    def located(self, paths: Sequence[str]) -> tuple[str, str]:
        """The first non-empty value and the path it was read from; HL7's null `""`
        is an explicit "no value" (see `deleted`), so it ends the search empty."""
        for text in paths:
            value = self.value(FieldPath.parse(text))
            if value:
                return ("" if value == NULL else value), text
        return "", paths[0] if paths else ""

    def deleted(self, paths: Sequence[str]) -> bool:
        """Whether the first of `paths` that holds anything holds HL7's null `""`:
        the sender deletes the value (an empty field means "no change")."""
        for text in paths:
            value = self.value(FieldPath.parse(text))
            if value:
                return value == NULL
        return False

    def repetitions(self, path_text: str) -> int:
        path = FieldPath.parse(path_text)
        segment = self._segment(path.segment)
        return 0 if segment is None else segment.repetitions(path.field)

    def filled(self, path_text: str) -> list[int]:
        """The repetitions (1-based) of a field that hold anything: a field of 70,000
        empty repetitions is read in one pass, not component by component."""
        path = FieldPath.parse(path_text)
        segment = self._segment(path.segment)
        return [] if segment is None else segment.filled(path.field)

    def required(self, paths: Sequence[str], what: str) -> str:
        return self.required_located(paths, what)[0]

    def required_located(self, paths: Sequence[str], what: str) -> tuple[str, str]:
        value, path = self.located(paths)
        if not value:
            raise InvalidInput(path or what, f"{what} is required", Problem.MISSING)
        return value, path


@dataclass(frozen=True)
class NameLayout:
    """Component numbers of a name in an HL7 data type."""

    family: int
    given: int
    middle: int
    suffix: int
    prefix: int
    representation: int


#: XPN: family^given^middle^suffix^prefix^degree^type^representation (XPN-8).
XPN = NameLayout(1, 2, 3, 4, 5, 8)
#: XCN: ID^family^given^middle^suffix^prefix^... name representation code is XCN-15.
XCN = NameLayout(2, 3, 4, 5, 6, 15)


#: HL7's null value: the field is deleted, as opposed to empty (not sent, no change).
NULL = '""'


@dataclass(frozen=True)
class ReadName:
    name: PersonName
    #: `name` when the whole field is `""`, else `name.<group>` for each repetition
    #: whose name is `""` (the sender deletes that group).
    deleted: frozenset[str] = frozenset()


def _person_name(group: SegmentGroup, path_text: str, layout: NameLayout, profile: Profile) -> ReadName:
    """Name repetitions → PN component groups chosen by the name representation code;
    DICOM PN orders the components family^given^middle^prefix^suffix."""
    path = FieldPath.parse(path_text)
    groups: dict[str, str] = {}
    deleted: set[str] = set()
    repetitions = max(group.repetitions(path_text), 1)
    for rep in group.filled(path_text):

        def part(component: int, rep: int = rep) -> str:
            value = group.part(path.segment, path.field, rep, component)
            return "" if value == NULL else value

        code = part(layout.representation)
        target = profile.hl7_in.name_groups.get(code, "alphabetic")
        parts = (layout.family, layout.given, layout.middle, layout.prefix, layout.suffix)
        value = "^".join(part(n) for n in parts).rstrip("^")
        if group.part(path.segment, path.field, rep, layout.family) == NULL and not value:
            deleted.add("name" if repetitions == 1 and not code else f"name.{target}")
        elif target not in groups:
            groups[target] = value
    return ReadName(PersonName(**groups), frozenset(deleted))


def _first_name(group: SegmentGroup, paths: Sequence[str], layout: NameLayout, profile: Profile) -> ReadName:
    for text in paths:
        read = _person_name(group, text, layout, profile)
        if str(read.name) or read.deleted:
            return read
    return ReadName(PersonName())


_DTM = re.compile(r"(\d{4}|\d{6}|\d{8}|\d{10}|\d{12}|\d{14})(\.\d{1,4})?([+-]\d{4})?")


def _moment(digits: str) -> datetime:
    """YYYY[MM[DD[HH[MM[SS]]]]] as `datetime.strptime` reads it with the matching format
    (what is left out is the first month, day, hour...), a fifth of its cost: three
    times a message. A value out of range raises ValueError, as strptime does."""
    parts = [int(digits[i : i + 2]) for i in range(4, len(digits), 2)]
    month, day, hour, minute, second = parts + [1, 1, 0, 0, 0][len(parts) :]
    return datetime(int(digits[:4]), month, day, hour, minute, second)


def _zone(offset: str) -> timezone:
    """+/-HHMM as `strptime`'s %z reads it (minutes 00-59, under 24 hours; ValueError
    otherwise), without its cost: an order's start time carries one."""
    hours, minutes = int(offset[1:3]), int(offset[3:5])
    if minutes > 59:
        raise ValueError(offset)
    return timezone((-1 if offset[0] == "-" else 1) * timedelta(hours=hours, minutes=minutes))


def parse_dtm(text: str, location: str, site: ZoneInfo | None = None) -> datetime:
    """HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]) → the site's wall-clock
    time, which is what DICOM DA/TM carry. A time with an offset is converted to the
    site's zone when the profile names one; a time without an offset is local already."""
    match = _DTM.fullmatch(text.strip())
    try:
        if match is None:
            raise ValueError(text)
        digits, offset = match.group(1), match.group(3)
        moment = _moment(digits)
        if offset and site is not None:
            moment = moment.replace(tzinfo=_zone(offset)).astimezone(site).replace(tzinfo=None)
        return moment
    except ValueError:
        raise InvalidInput(location, f"not an HL7 date/time: {text!r}") from None


def read_patient(group: SegmentGroup, profile: Profile) -> Patient:
    """The patient a message describes; what it deletes (`""`) is in `deleted`, what it
    leaves empty is no change (domain.demographics applies the two)."""
    fields = profile.hl7_in.patient
    name = _first_name(group, fields.name, XPN, profile)
    deleted = {key for key, paths in (("birth_date", fields.birth_date), ("sex", fields.sex)) if group.deleted(paths)}
    patient = Patient(
        patient_id=group.required(fields.patient_id, "patient ID"),
        issuer=group.first(fields.issuer),
        name=name.name,
        birth_date=_birth_date(*group.located(fields.birth_date)),
        sex=_sex(*group.located(fields.sex), profile),
        deleted=name.deleted | deleted,
    )
    for value, vr, paths in [
        (patient.patient_id, "LO", fields.patient_id),
        (patient.issuer, "LO", fields.issuer),
        (str(patient.name), "PN", fields.name),
        (patient.birth_date, "DA", fields.birth_date),
    ]:
        check(value, vr, paths[0])
    return patient


def _birth_date(text: str, location: str) -> str:
    """PID-7 (DTM) → DICOM DA: the date as written (no time zone shift), which must be
    a real day; a date less precise than a day has no DA form and is refused."""
    if not text:
        return ""
    moment = parse_dtm(text, location)
    if len(re.split(r"[.+-]", text.strip())[0]) < 8:
        raise InvalidInput(location, "a birth date needs year, month and day (DICOM DA)")
    return moment.strftime("%Y%m%d")


def _sex(code: str, location: str, profile: Profile) -> str:
    """PID-8 (HL7 table 0001) → DICOM Patient's Sex (M, F, O) through the profile."""
    if not code:
        return ""
    sex = profile.hl7_in.sex.get(code)
    if sex is None:
        raise InvalidInput(location, f"sex {code!r} is not in the profile's table", Problem.NOT_IN_TABLE)
    return sex


def _code(group: SegmentGroup, paths: Sequence[str], profile: Profile) -> Code | None:
    """The first coded entry found, translated by the profile's code map."""
    for text in paths:
        path = FieldPath.parse(text)
        value, meaning, scheme = (group.value(FieldPath(path.segment, path.field, c)) for c in (1, 2, 3))
        if value:
            return mapped_code(Code(value=value, scheme=scheme, meaning=meaning), profile, text)
    return None


def mapped_code(code: Code, profile: Profile, location: str) -> Code:
    """A procedure code as sent → the code the worklist shows (the profile's `codes`
    map); an unmapped one is refused at `location` when the profile requires a mapping.
    Orders entered at the console (broker.web.order_entry) go through it too."""
    target = profile.codes.map.get(code.scheme, {}).get(code.value)
    if target is not None:
        return Code(target.value, target.scheme, target.meaning or code.meaning)
    if profile.codes.require_mapped:
        raise InvalidInput(location, f"procedure code {code.value!r} is not known", Problem.NOT_IN_TABLE)
    return code


def _obr_procedure(group: SegmentGroup, profile: Profile, start: datetime) -> RequestedProcedure:
    """RAD-2/RAD-4 v2.3.1: one requested procedure with one step, from OBR (and ZDS)."""
    f: OrderFields = profile.hl7_in.order
    code = _code(group, f.procedure_code, profile)
    description = code.meaning if code else ""
    step = ScheduledStep(
        sps_id=group.first(f.sps_id),
        modality=group.required(f.modality, "modality"),
        station_ae=group.first(f.station_ae),
        start=start,
        description=description,
        protocol_codes=[code] if code else [],
    )
    return RequestedProcedure(
        requested_procedure_id=group.first(f.requested_procedure_id),
        study_instance_uid=group.first(f.study_instance_uid),
        description=description,
        code=code,
        priority=group.first(f.priority),
        steps=[step],
    )


def _ipc_procedures(group: SegmentGroup, profile: Profile, start: datetime) -> list[RequestedProcedure]:
    """OMI^O23: one step per IPC; IPCs sharing a Requested Procedure ID share a procedure."""
    f, ipc = profile.hl7_in.order, profile.hl7_in.ipc
    code = _code(group, f.procedure_code, profile)
    procedures: dict[str, RequestedProcedure] = {}
    for segment in group.own("IPC"):
        view = group.focused(segment)
        protocol = _code(view, ipc.protocol_code, profile)
        rp_id = view.required(ipc.requested_procedure_id, "requested procedure ID")
        procedure = procedures.setdefault(
            rp_id,
            RequestedProcedure(
                requested_procedure_id=rp_id,
                study_instance_uid=view.required(ipc.study_instance_uid, "Study Instance UID"),
                description=code.meaning if code else "",
                code=code,
                priority=group.first(f.priority),
            ),
        )
        procedure.steps.append(
            ScheduledStep(
                sps_id=view.required(ipc.sps_id, "scheduled procedure step ID"),
                modality=view.required(ipc.modality, "modality"),
                station_ae=view.first(ipc.station_ae),
                station_name=view.first(ipc.station_name),
                location=view.first(ipc.location),
                start=start,
                description=protocol.meaning if protocol else (code.meaning if code else ""),
                protocol_codes=[protocol] if protocol else [],
            )
        )
    return list(procedures.values())


def _check_code(code: Code | None, location: str) -> None:
    if code is not None:
        for value, vr in ((code.value, "SH"), (code.scheme, "SH"), (code.meaning, "LO")):
            check(value, vr, location)


def _check_values(order: Order, profile: Profile, from_ipc: bool) -> None:
    """The order's own values as DICOM holds them (PS3.5 Table 6.2-1; the patient's
    are checked by read_patient)."""
    f, ipc = profile.hl7_in.order, profile.hl7_in.ipc
    where = ipc if from_ipc else f
    accession_paths = f.accession_number or ipc.accession_number
    for value, vr, paths in [
        (order.placer_order_number, "LO", f.placer_order_number),
        (order.placer_application, "LO", f.placer_application),
        (order.placer_facility, "LO", f.placer_facility),
        (order.filler_order_number, "LO", f.filler_order_number),
        (order.accession_number, "SH", accession_paths),
        (order.admission_id, "LO", f.admission_id),
        (order.requesting_service, "LO", f.requesting_service),
        (order.referring_physician, "PN", f.referring_physician),
        (order.requesting_physician, "PN", f.requesting_physician),
    ]:
        check(value, vr, (paths or ["ORC"])[0])
    for procedure in order.procedures:
        check(procedure.requested_procedure_id, "SH", where.requested_procedure_id[0])
        check(procedure.study_instance_uid, "UI", where.study_instance_uid[0])
        check(procedure.description, "LO", f.procedure_code[0])
        check(procedure.priority, "CS", f.priority[0])
        _check_code(procedure.code, f.procedure_code[0])
        for step in procedure.steps:
            check(step.sps_id, "SH", where.sps_id[0])
            check(step.modality, "CS", where.modality[0])
            check(step.station_ae, "AE", (where.station_ae or ["OBR"])[0])
            check(step.station_name, "SH", ipc.station_name[0])
            check(step.location, "SH", ipc.location[0])
            check(step.description, "LO", (ipc.protocol_code if from_ipc else f.procedure_code)[0])
            for code in step.protocol_codes:
                _check_code(code, (ipc.protocol_code if from_ipc else f.procedure_code)[0])


def read_order(group: SegmentGroup, profile: Profile) -> Order:
    order = _read_order(group, profile)
    _check_values(order, profile, from_ipc=bool(group.own("IPC")))
    return order


def _read_order(group: SegmentGroup, profile: Profile) -> Order:
    f: OrderFields = profile.hl7_in.order
    start_text, start_path = group.required_located(f.start, "scheduled start")
    start = parse_dtm(start_text, start_path, ZoneInfo(profile.time_zone) if profile.time_zone else None)
    ipcs = group.own("IPC")
    accession = group.first(f.accession_number)
    if ipcs:
        accession = accession or group.focused(ipcs[0]).first(profile.hl7_in.ipc.accession_number)
    return Order(
        placer_order_number=group.required(f.placer_order_number, "placer order number"),
        placer_application=group.first(f.placer_application),
        placer_facility=group.first(f.placer_facility),
        filler_order_number=group.first(f.filler_order_number),
        accession_number=accession,
        patient=read_patient(group, profile),
        referring_physician=str(_first_name(group, f.referring_physician, XCN, profile).name),
        admission_id=group.first(f.admission_id),
        requesting_physician=str(_first_name(group, f.requesting_physician, XCN, profile).name),
        requesting_service=group.first(f.requesting_service),
        procedures=_ipc_procedures(group, profile, start) if ipcs else [_obr_procedure(group, profile, start)],
    )


def _order_groups(message: Message) -> list[SegmentGroup]:
    groups: list[list[Segment]] = []
    for segment in message:
        if segment.name == "ORC":
            groups.append([])
        if groups:
            groups[-1].append(segment)
    if not groups:
        raise InvalidInput("ORC", "an order message needs an ORC segment", Problem.MISSING)
    return [SegmentGroup(message, own) for own in groups]


def _orders(message: Message, profile: Profile) -> list[Command]:
    commands: list[Command] = []
    for group in _order_groups(message):
        f = profile.hl7_in.order
        control, control_path = group.required_located(f.order_control, "order control")
        if control == "NW":
            commands.append(PlaceOrder(read_order(group, profile)))
        elif control == "XO":
            commands.append(ChangeOrder(read_order(group, profile)))
        elif control in ("CA", "DC"):
            kind = CancelOrder if control == "CA" else DiscontinueOrder
            placer = group.required(f.placer_order_number, "placer order number")
            commands.append(kind(placer, group.first(f.placer_application), group.first(f.filler_order_number)))
        else:
            raise InvalidInput(control_path, f"order control {control!r} is not supported", Problem.NOT_IN_TABLE)
    return commands


@dataclass(frozen=True)
class OrderReference:
    control: str
    placer_order_number: str
    placer_application: str
    procedures: tuple[RequestedProcedure, ...] = ()
    accession_number: str = ""


def _as_sent(group: SegmentGroup, profile: Profile) -> tuple[RequestedProcedure, ...]:
    """The order's procedure code and step identifiers as the message gives them, read
    without any check (the message may have been refused for them), for the answer's
    order detail: OBR-4, and one IPC per IPC received."""
    f, ipc = profile.hl7_in.order, profile.hl7_in.ipc
    path = FieldPath.parse(f.procedure_code[0])
    value, meaning, scheme = (group.value(FieldPath(path.segment, path.field, c)) for c in (1, 2, 3))
    code = Code(value, scheme, meaning) if value else None
    views = [group.focused(s) for s in group.own("IPC")]
    if not views:
        step = ScheduledStep(group.first(f.sps_id), group.first(f.modality))
        return (RequestedProcedure(group.first(f.requested_procedure_id), "", meaning, code, steps=[step]),)
    return tuple(
        RequestedProcedure(
            v.first(ipc.requested_procedure_id),
            v.first(ipc.study_instance_uid),
            meaning,
            code,
            steps=[ScheduledStep(v.first(ipc.sps_id), v.first(ipc.modality))],
        )
        for v in views
    )


def order_references(message: Message | hl7.Message, profile: Profile) -> list[OrderReference]:
    """Each order's control code, placer number and detail, for the application response."""
    f = profile.hl7_in.order
    references = []
    for g in _order_groups(as_message(message)):
        ipcs = g.own("IPC")
        accession = g.first(f.accession_number)
        if not accession and ipcs:
            accession = g.focused(ipcs[0]).first(profile.hl7_in.ipc.accession_number)
        references.append(
            OrderReference(
                g.first(f.order_control),
                g.first(f.placer_order_number),
                g.first(f.placer_application),
                _as_sent(g, profile),
                accession,
            )
        )
    return references


def assigned_placer_number(message: Message, profile: Profile) -> tuple[str, str, str] | None:
    """The Order Placer's number for an order made at the broker, from its answer to the
    SN (RAD-3: an order whose control is NA), read by the profile's order fields as the
    placer's own orders are, so that its later messages name the order alike:
    (filler order number, placer order number, placer application), or None when the
    answer numbers no order. A number the broker could not send back as a placer order
    number (LO) raises InvalidInput, as it would in an order."""
    if not any(segment.name == "ORC" for segment in message):
        return None
    f = profile.hl7_in.order
    for group in _order_groups(message):
        placer, filler = group.first(f.placer_order_number), group.first(f.filler_order_number)
        if group.first(f.order_control) == "NA" and placer and filler:
            application = group.first(f.placer_application)
            check(placer, "LO", f.placer_order_number[0])
            check(application, "LO", f.placer_application[0])
            return filler, placer, application
    return None


def _register(message: Message, profile: Profile) -> list[Command]:
    return [RegisterPatient(read_patient(SegmentGroup(message, []), profile))]


def _update(message: Message, profile: Profile) -> list[Command]:
    patient = read_patient(SegmentGroup(message, []), profile)
    if profile.hl7_in.unknown_patient_update == "register":
        return [RegisterPatient(patient)]
    return [UpdatePatient(patient)]


def _cancel_registration(message: Message, profile: Profile) -> list[Command]:
    patient = read_patient(SegmentGroup(message, []), profile)
    return [CancelRegistration(patient.patient_id, patient.issuer)]


def _merge(message: Message, profile: Profile) -> list[Command]:
    group, fields = SegmentGroup(message, []), profile.hl7_in.patient
    prior = group.required(fields.prior_patient_id, "prior patient ID")
    return [MergePatient(read_patient(group, profile), prior, group.first(fields.prior_issuer))]


_ROUTES: dict[str, Callable[[Message, Profile], list[Command]]] = {
    "ADT^A01": _register,
    "ADT^A04": _register,
    "ADT^A05": _register,
    "ADT^A08": _update,
    "ADT^A40": _merge,
    "ADT^A11": _cancel_registration,
    "ADT^A23": _cancel_registration,
    "ORM^O01": _orders,
    "OMG^O19": _orders,
    "OMI^O23": _orders,
}


def message_type(message: Message | hl7.Message) -> str:
    """MSH-9 as `TYPE^EVENT` (the structure component, if any, is left out)."""
    msh = SegmentGroup(message, [])
    return f"{msh.value(FieldPath('MSH', 9, 1))}^{msh.value(FieldPath('MSH', 9, 2))}"


def interpret(message: Message | hl7.Message, profile: Profile) -> list[Command]:
    """The commands a message carries, or InvalidInput/UnsupportedMessage."""
    route = _ROUTES.get(message_type(message))
    if route is None:
        raise UnsupportedMessage(message_type(message))
    return route(as_message(message), profile)


def accepted_message_types() -> list[str]:
    """Every `TYPE^EVENT` the broker applies (others are answered AR 200)."""
    return list(_ROUTES)


def read_message(raw: bytes, profile: Profile) -> Message:
    """A message's bytes → the parsed message, as the intake reads them: decoded as
    MSH-18 declares, its text checked (hl7_text.check_text), its segments CR-ended,
    parsed; or InvalidInput."""
    text = decode(raw, profile.hl7_in.charsets)
    check_text(text)
    try:
        return Message.read(with_cr(text))
    except Exception as exc:  # python-hl7 raises several types for malformed text
        raise InvalidInput("MSH", f"not an HL7 v2 message ({type(exc).__name__})") from None


def is_patient_update(message_type: str) -> bool:
    """Whether `TYPE^EVENT` is read as a patient update (RAD-12, ADT^A08): the only
    messages `updated_patient` can name a patient of."""
    return _ROUTES.get(message_type) is _update


def updated_patient(raw: bytes, profile: Profile) -> tuple[str, str] | None:
    """(patient ID, issuer) of a patient update the profile refuses when the patient is
    not held (ADT^A08 under `unknown_patient_update: refuse`), read from MSH and the
    first PID alone: most of a hospital's ADT feed is about patients the broker does
    not hold, and such a message is refused on that probe without the rest being
    read. None for any other message, for a profile that reads the patient elsewhere,
    or when the key cannot be read: then the whole message is read and its fault named."""
    fields = profile.hl7_in.patient
    paths = [FieldPath.parse(p) for p in (*fields.patient_id, *fields.issuer)]
    if profile.hl7_in.unknown_patient_update != "refuse" or any(p.segment != "PID" for p in paths):
        return None
    try:
        text = decode(raw, profile.hl7_in.charsets)
        check_text(text)
        lines = segments(text)
        pid = next((line for line in lines if line.startswith("PID") and line[3:4] == lines[0][3:4]), None)
        if pid is None or not lines[0].startswith("MSH"):
            return None
        message = Message.read(f"{lines[0]}\r{pid}\r")  # the other segments are not read
        if not is_patient_update(message_type(message)):
            return None
        group = SegmentGroup(message, [])
        patient_id = group.first(fields.patient_id)
    except Exception:  # unreadable: the whole message is read, and answered for what it is
        return None
    return (patient_id, group.first(fields.issuer)) if patient_id else None


def read_commands(raw: bytes, profile: Profile) -> list[Command]:
    """A message's bytes → its commands (read_message, then interpret)."""
    return interpret(read_message(raw, profile), profile)
