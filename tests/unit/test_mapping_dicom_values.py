"""Every value an HL7 message puts on the worklist is valid DICOM for its VR, or the
message is refused naming the field (#14 Deliver 5; PS3.5 Table 6.2-1).

Before, PID-8 `U`/`A`/`N`, PID-7 `19701340`, and NUL, BOM and bidi overrides in names
reached the worklist. The property test puts arbitrary text (HL7-escaped, so `\\X00\\`
can produce any control character) in each field the default profile maps, runs the
intake's reading (hl7_in.read_commands), and checks every string the
resulting order holds against an oracle built on pydicom's VR validation."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import config as dicom_config
from pydicom.valuerep import validate_value

from broker.domain.commands import Command, PlaceOrder
from broker.domain.errors import InvalidInput
from broker.domain.model import Code, Order, Patient, PersonName, RequestedProcedure, ScheduledStep
from broker.mapping.hl7_in import read_commands
from broker.mapping.profile import load_profile
from broker.mapping.vr import check

PROFILE = load_profile("ihe-swf")
BASE = (
    "MSH|^~\\&|RIS|HOSPITAL|BROKER|RADIOLOGY|20261123081000||ORM^O01|ORM0001|P|2.3.1||||||UNICODE UTF-8\r"
    "PID|1||PAT001^^^HOSPITAL||DOE^JOHN^Q||19700101|M\r"
    "PV1|1|O||||||REF01^WELBY^MARCUS\r"
    "ORC|NW|PO1001^RIS|FO1001||SC||^^^20261123100000^^R\r"
    "OBR|1|PO1001^RIS|FO1001|CTCHEST^CT Chest^LOCAL||||||||||||||ACC1001|RP1001|SPS1001||||CT|||^^^20261123100000^^R\r"
    "ZDS|1.2.392.200036.9999.1.1001^BROKER^Application^DICOM\r"
)

#: The VR of every string attribute the domain objects of an order hold. A new
#: attribute without an entry fails the property: it would reach DICOM unchecked.
VRS: dict[tuple[type, str], str] = {
    (Order, "placer_order_number"): "LO",
    (Order, "filler_order_number"): "LO",
    (Order, "accession_number"): "SH",
    (Order, "placer_application"): "LO",
    (Order, "referring_physician"): "PN",
    (Order, "admission_id"): "LO",
    (Order, "requesting_physician"): "PN",
    (Order, "requesting_service"): "LO",
    (Order, "placer_facility"): "LO",
    (Order, "assigned_placer_number"): "LO",
    (Order, "assigned_placer_application"): "LO",
    (Patient, "patient_id"): "LO",
    (Patient, "issuer"): "LO",
    (Patient, "birth_date"): "DA",
    (Patient, "sex"): "CS",
    (PersonName, "alphabetic"): "PN",
    (PersonName, "ideographic"): "PN",
    (PersonName, "phonetic"): "PN",
    (RequestedProcedure, "requested_procedure_id"): "SH",
    (RequestedProcedure, "study_instance_uid"): "UI",
    (RequestedProcedure, "description"): "LO",
    (RequestedProcedure, "priority"): "CS",
    (ScheduledStep, "sps_id"): "SH",
    (ScheduledStep, "modality"): "CS",
    (ScheduledStep, "station_ae"): "AE",
    (ScheduledStep, "station_name"): "SH",
    (ScheduledStep, "description"): "LO",
    (ScheduledStep, "performing_physician"): "PN",
    (ScheduledStep, "location"): "SH",
    (ScheduledStep, "status"): "CS",
    (Code, "value"): "SH",
    (Code, "scheme"): "SH",
    (Code, "meaning"): "LO",
}
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\\\\\ufeff\u202a-\u202e\u2066-\u2069]")


def _valid(vr: str, value: str) -> bool:
    if _FORBIDDEN.search(value):
        return False
    if vr == "PN":
        groups = value.split("=")
        return len(groups) <= 3 and all(len(g) <= 64 and g.count("^") <= 4 for g in groups)
    if vr == "CS" and value and value not in {"M", "F", "O"} and not re.fullmatch("[A-Z0-9 _]{1,16}", value):
        return False
    try:
        validate_value(vr, value, dicom_config.RAISE)
    except ValueError:
        return False
    return True


def _strings(obj: object) -> list[tuple[type, str, str]]:
    """(class, attribute, value) of every string an order holds, nested objects included."""
    found: list[tuple[type, str, str]] = []
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str):
                found.append((type(obj), f.name, item))
            elif dataclasses.is_dataclass(item):
                found += _strings(item)
    return found


def _escape(text: str) -> str:
    """HL7 escapes (v2.5 2.7): delimiters by name, CR/LF and other controls in hex."""
    out = []
    for char in text:
        named = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}.get(char)
        out.append(named or (f"\\X{ord(char):02X}\\" if char in "\r\n" else char))
    return "".join(out)


def _placed(message: str, path: str, value: str) -> str:
    """`message` with `value` at `path` (SEG-f[.c]), the segment added if it lacks it."""
    segment, _, rest = path.partition("-")
    field, _, component = rest.partition(".")
    lines = message.rstrip("\r").split("\r")
    index = next((i for i, line in enumerate(lines) if line.startswith(segment + "|")), None)
    if index is None:
        lines.append(segment)
        index = len(lines) - 1
    fields = lines[index].split("|")
    number = int(field) - (1 if segment == "MSH" else 0)
    fields += [""] * (number + 1 - len(fields))
    components = fields[number].split("^")
    position = int(component.split(".")[0] or "1") - 1  # subcomponent 1: the whole component
    components += [""] * (position + 1 - len(components))
    components[position] = value
    fields[number] = "^".join(components)
    lines[index] = "|".join(fields)
    return "\r".join(lines) + "\r"


def _commands(text: str) -> list[Command]:
    return read_commands(text.encode("utf-8"), PROFILE)


def _mapped_paths() -> list[tuple[str, list[str]]]:
    f, p = PROFILE.hl7_in.order, PROFILE.hl7_in.patient
    names = ["patient_id", "issuer", "name", "birth_date", "sex"]
    order_names = [n for n in type(f).model_fields if n != "order_control"]
    return [(n, getattr(p, n)) for n in names] + [(n, getattr(f, n)) for n in order_names if getattr(f, n)]


FIELDS = _mapped_paths()
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=80) | st.text(
    st.sampled_from("AZaz09 ._-^=\\&|~\x00\x1b\ufeff\u202e山田ﾔ1."), max_size=80
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), text=TEXT)
def test_every_mapped_value_is_valid_dicom_or_refused_at_its_field_14_deliver_5(
    field: tuple[str, list[str]], text: str
) -> None:
    name, paths = field
    message = BASE
    for path in paths:  # every place the profile reads it from, so whichever wins holds it
        message = _placed(message, path, _escape(text))
    try:
        commands = _commands(message)
    except InvalidInput as refusal:
        fields = {p.split(".")[0] for p in paths}
        assert refusal.location.split(".")[0] in fields, (name, refusal.location)
        return
    [command] = commands
    assert isinstance(command, PlaceOrder)
    for cls, attribute, value in _strings(command.order):
        assert (cls, attribute) in VRS, f"{cls.__name__}.{attribute} has no VR"
        assert _valid(VRS[cls, attribute], value), (name, cls.__name__, attribute, value)


@pytest.mark.parametrize(("code", "sex"), [("M", "M"), ("F", "F"), ("O", "O"), ("U", "O"), ("A", "O"), ("N", "O")])
def test_pid_8_mapped_through_the_profile_table_14_defect_5(code: str, sex: str) -> None:
    [command] = _commands(BASE.replace("|19700101|M\r", f"|19700101|{code}\r"))
    assert isinstance(command, PlaceOrder) and command.order.patient.sex == sex


def test_pid_8_not_in_the_table_is_refused_103() -> None:
    with pytest.raises(InvalidInput) as refused:
        _commands(BASE.replace("|19700101|M\r", "|19700101|X\r"))
    assert (refused.value.location, refused.value.problem.value) == ("PID-8", "unknown")


@pytest.mark.parametrize("birth", ["19701340", "19700230", "1970010", "1970", "197001", "19700101250000"])
def test_impossible_or_partial_birth_date_refused_at_pid_7_14_defect_5(birth: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _commands(BASE.replace("|19700101|M\r", f"|{birth}|M\r"))
    assert refused.value.location == "PID-7.1"


def test_birth_date_with_time_and_offset_is_its_day_as_written() -> None:
    [command] = _commands(BASE.replace("|19700101|M\r", "|197001012330+0900|M\r"))
    assert isinstance(command, PlaceOrder) and command.order.patient.birth_date == "19700101"


@pytest.mark.parametrize("start", ["20261340100000", "20261123250000", "20261123106000"])
def test_impossible_scheduled_time_refused_naming_the_field(start: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _commands(BASE.replace("20261123100000", start))
    assert refused.value.location in ("OBR-27.4", "ORC-7.4")


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_a_da_value_is_taken_as_strptime_takes_it(value: str) -> None:
    """A DA value is checked as `strptime` %Y%m%d checks it (month 13, 30 February,
    year 0000 refused), without its cost."""
    try:
        datetime.strptime(value, "%Y%m%d")
    except ValueError:
        with pytest.raises(InvalidInput):
            check(value, "DA", "PID-7")
        return
    check(value, "DA", "PID-7")
