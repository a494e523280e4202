"""Orders entered by hand (small sites, research scanners, an outage of the RIS): the
console's JSON and form input translated into the Order Filler's commands, which then
go through the very handlers an HL7 order goes through (`OrderFiller.enter`): same
rules, identifiers, audit, RAD-4/13 to the Image Managers, and later status to the RIS.

This is the adapter's part, as `mapping.hl7_in` is for HL7: every value is checked
against the DICOM VR it will be answered in (`mapping.vr`), procedure codes go through
the profile's code map (and are refused when the profile requires a mapped code), and
the priority is one of the profile's HL7 priorities. A refusal names the field by its
JSON name. An order entered here has no placer: the broker is its own placer (its
sending application and facility), and its placer order number is its filler number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from broker.domain.commands import CancelOrder, ChangeOrder, PlaceOrder
from broker.domain.errors import InvalidInput, Problem
from broker.domain.model import Code, Order, Patient, PersonName, RequestedProcedure, ScheduledStep
from broker.mapping.hl7_in import mapped_code
from broker.mapping.profile import Profile
from broker.mapping.vr import check

Text = Annotated[str, Field(max_length=200)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PatientIn(_Input):
    """A known patient by ID (the rest may stay empty: no change), or a new one."""

    patient_id: Annotated[str, Field(min_length=1, max_length=64)]
    issuer: Text = ""
    #: DICOM PN, `family^given` with `=ideographic=phonetic` groups (e.g. `YAMADA^TARO=山田^太郎=やまだ^たろう`).
    name: Text = ""
    birth_date: Annotated[str, Field(max_length=8, description="YYYYMMDD")] = ""
    sex: Annotated[str, Field(pattern="^[MFO]?$")] = ""


class CodeIn(_Input):
    """A procedure code as the site's systems send it; the profile's map gives the code the worklist shows."""

    value: Annotated[str, Field(min_length=1, max_length=64)]
    scheme: Text = ""
    meaning: Text = ""


class OrderIn(_Input):
    """A new order: one requested procedure with one scheduled step."""

    patient: PatientIn
    modality: Annotated[str, Field(min_length=1, max_length=16)]
    scheduled_start: datetime
    procedure_code: CodeIn | None = None
    description: Text = ""
    station_ae: Text = ""
    #: HL7 table 0027 code, one the profile answers (`dicom.priorities`): S, A, R...
    priority: Text = ""
    #: Empty: the broker assigns one (the profile's accession prefix and a sequence).
    accession_number: Text = ""
    referring_physician: Text = ""


class OrderChangeIn(_Input):
    """What changes in an order not yet started; what is left empty stays as it is."""

    modality: Text = ""
    scheduled_start: datetime | None = None
    procedure_code: CodeIn | None = None
    description: Text = ""
    station_ae: Text = ""
    priority: Text = ""
    referring_physician: Text = ""


@dataclass(frozen=True)
class Held:
    """The identifiers of an order the broker holds, which a change or cancel names."""

    placer_order_number: str
    placer_application: str
    patient_id: str
    issuer: str
    requested_procedure_id: str
    sps_id: str


def place(body: OrderIn, profile: Profile) -> PlaceOrder:
    p = body.patient
    patient = Patient(p.patient_id, p.issuer, PersonName.parse(p.name), p.birth_date, p.sex)
    for value, vr, where in [
        (patient.patient_id, "LO", "patient.patient_id"),
        (patient.issuer, "LO", "patient.issuer"),
        (p.name, "PN", "patient.name"),
        (patient.birth_date, "DA", "patient.birth_date"),
        (body.accession_number, "SH", "accession_number"),
        (body.referring_physician, "PN", "referring_physician"),
    ]:
        check(value, vr, where)
    order = Order(
        placer_order_number="",  # the filler order number, once assigned
        filler_order_number="",
        accession_number=body.accession_number,
        patient=patient,
        placer_application=profile.sending_application,
        placer_facility=profile.sending_facility,
        referring_physician=body.referring_physician,
        procedures=[_procedure(body, profile, "", "")],
    )
    return PlaceOrder(order)


def change(held: Held, body: OrderChangeIn, profile: Profile) -> ChangeOrder:
    check(body.referring_physician, "PN", "referring_physician")
    order = Order(
        placer_order_number=held.placer_order_number,
        filler_order_number="",
        accession_number="",
        patient=Patient(held.patient_id, held.issuer),
        placer_application=held.placer_application,
        referring_physician=body.referring_physician,
        procedures=[_procedure(body, profile, held.requested_procedure_id, held.sps_id)],
    )
    return ChangeOrder(order)


def cancel(held: Held) -> CancelOrder:
    return CancelOrder(held.placer_order_number, held.placer_application)


def _procedure(body: OrderIn | OrderChangeIn, profile: Profile, rp_id: str, sps_id: str) -> RequestedProcedure:
    code = _code(body.procedure_code, profile)
    description = body.description or (code.meaning if code else "")
    priority = body.priority.upper()
    if priority and priority not in profile.dicom.priorities:
        known = ", ".join(profile.dicom.priorities)
        reason = f"{priority!r} is not one of the profile's priorities ({known})"
        raise InvalidInput("priority", reason, Problem.NOT_IN_TABLE)
    modality = body.modality.upper()
    for value, vr, where in [
        (modality, "CS", "modality"),
        (body.station_ae, "AE", "station_ae"),
        (description, "LO", "description"),
    ]:
        check(value, vr, where)
    step = ScheduledStep(
        sps_id=sps_id,
        modality=modality,
        station_ae=body.station_ae,
        start=body.scheduled_start,
        description=description,
        protocol_codes=[code] if code else [],
    )
    return RequestedProcedure(rp_id, "", description, code, priority, [step])


def _code(sent: CodeIn | None, profile: Profile) -> Code | None:
    if sent is None:
        return None
    code = mapped_code(Code(sent.value, sent.scheme, sent.meaning), profile, "procedure_code")
    for value, vr in ((code.value, "SH"), (code.scheme, "SH"), (code.meaning, "LO")):
        check(value, vr, "procedure_code")
    return code


@dataclass(frozen=True)
class CodeChoice:
    """A procedure code the profile knows: as sent (scheme, value) and as the worklist shows it."""

    scheme: str
    value: str
    shown_value: str
    shown_scheme: str
    meaning: str


@dataclass(frozen=True)
class Choices:
    """What the order form offers, all from the profile: modalities (with the station
    each is scheduled on), procedure codes, priorities; and whether a code outside the
    map is refused."""

    modalities: dict[str, str]
    procedure_codes: list[CodeChoice]
    priorities: dict[str, str]
    require_mapped_code: bool


def choices(profile: Profile) -> Choices:
    codes = [
        CodeChoice(scheme, value, target.value, target.scheme, target.meaning)
        for scheme, table in profile.codes.map.items()
        for value, target in table.items()
    ]
    return Choices(
        dict(profile.assign.station_by_modality), codes, dict(profile.dicom.priorities), profile.codes.require_mapped
    )
