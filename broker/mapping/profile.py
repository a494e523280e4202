"""The schema of a mapping profile (`profiles/*.yaml`).

A site adapts a profile, not code: which HL7 field carries which value, how MSH-18
names character sets, which station serves which modality, what the status messages
look like. A bad profile stops start-up with the file, the key and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydicom.datadict import tag_for_keyword

from broker.mapping.dicom_charsets import SUPPORTED_TERMS, supported
from broker.resources import resource_dir
from broker.yaml_models import read_mapping, validate

PROFILES_DIR = resource_dir("profiles")


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


#: Where to read a value: HL7 paths like `OBR-18` or `PID-3.4.1`, first non-empty wins.
Paths = Annotated[list[str], BeforeValidator(_as_list)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatientFields(_Strict):
    patient_id: Paths
    issuer: Paths
    name: Paths
    birth_date: Paths
    sex: Paths
    #: A40: the prior (merged) patient's identifier.
    prior_patient_id: Paths
    prior_issuer: Paths


class OrderFields(_Strict):
    order_control: Paths
    placer_order_number: Paths
    placer_application: Paths
    filler_order_number: Paths
    accession_number: Paths
    requested_procedure_id: Paths
    sps_id: Paths
    modality: Paths
    study_instance_uid: Paths
    start: Paths
    procedure_code: Paths
    referring_physician: Paths
    priority: Paths
    station_ae: Paths = []
    #: Admission ID (0038,0010), e.g. PV1-19 Visit Number.
    admission_id: Paths = []
    #: Requesting Physician (0032,1032), e.g. ORC-12 / OBR-16 Ordering Provider (XCN).
    requesting_physician: Paths = []
    #: Requesting Service (0032,1033).
    requesting_service: Paths = []
    #: The placer's facility as received: MSH-6 of the status messages by default.
    placer_facility: Paths = ["MSH-4.1"]


class IpcFields(_Strict):
    """OMI^O23 (SWF.b): each IPC segment is one scheduled step of the order."""

    accession_number: Paths
    requested_procedure_id: Paths
    study_instance_uid: Paths
    sps_id: Paths
    modality: Paths
    protocol_code: Paths
    station_name: Paths
    location: Paths
    station_ae: Paths


class Hl7In(_Strict):
    #: MSH-18 value → Python codec; the empty key is for messages that name none.
    charsets: dict[str, str]
    #: XPN-8 name representation code → DICOM PN component group.
    name_groups: dict[str, Literal["alphabetic", "ideographic", "phonetic"]] = {
        "": "alphabetic",
        "A": "alphabetic",
        "I": "ideographic",
        "P": "phonetic",
    }
    #: PID-8 (HL7 table 0001) → DICOM Patient's Sex (0010,0040); other codes are refused.
    sex: dict[str, Literal["M", "F", "O"]] = {"M": "M", "F": "F", "O": "O", "U": "O", "A": "O", "N": "O"}
    patient: PatientFields
    order: OrderFields
    ipc: IpcFields
    #: Message type → its application response (e.g. ORM^O01 → ORR^O02). Types not
    #: listed get a general ACK.
    answers: dict[str, str] = {}
    #: A08 for a patient the broker does not hold (it arrived before its A04):
    #: `refuse` answers AE 204; `register` takes it as the registration.
    unknown_patient_update: Literal["refuse", "register"] = "refuse"


class StatusOut(_Strict):
    """The RAD-3 status message sent back to the RIS (ORM^O01, ORC-1 `SC` by default;
    OMG^O19 for SWF.b; OMI^O23 or ORU^R01 for RIS that expect those forms)."""

    message_type: Literal["ORM^O01", "OMG^O19", "OMI^O23", "ORU^R01"]
    #: OBR-7/OBR-8 = PPS start/end, OBR-21 = performed station AE (from the MPPS).
    performed_details: bool = True
    #: One OBX per performed series (OBX-3 `113014^DICOM Series^DCM`, OBX-5 its UID).
    performed_series: bool = False
    version: str
    order_control: str
    #: Scheduled step status → ORC-5 order status.
    order_status: dict[str, str]
    #: MSH-18 of the messages sent (e.g. `~ISO IR87`); its codec comes from `hl7_in.charsets`.
    charset: str
    #: MSH-20 alternate character set handling scheme (JAHIS: `ISO 2022-1994`).
    charset_handling: str = ""


class FillerOrderOut(_Strict):
    """RAD-3 Filler Order Management for what is done at the broker itself (its console
    and API): the RIS hears of an order the broker created (ORC-1 `SN`, ORC-2 empty for
    the RIS to number), changed (`XO`) or cancelled (`OC`), in the status message's
    version and character set, one ORC/OBR per scheduled step. An empty code: that
    event is not sent (a RIS that knows no filler-initiated changes)."""

    message_type: Literal["ORM^O01", "OMG^O19"] = "ORM^O01"
    new: Literal["SN", ""] = "SN"
    change: Literal["XO", ""] = "XO"
    cancel: Literal["OC", ""] = "OC"


class Hl7Out(_Strict):
    """How the broker writes every HL7 message and answer."""

    #: CR, LF and other control characters (C0, C1) in a value: `hex` writes them as
    #: `\Xhh\` hex data (HL7 v2.5 2.7.5), `drop` leaves them out. Never as is: a CR
    #: would start a segment at the receiver.
    control_characters: Literal["hex", "drop"] = "hex"


class ProcedureOut(_Strict):
    """RAD-4 Procedure Scheduled / RAD-13 Procedure Update to the Image Managers."""

    message_type: Literal["ORM^O01", "OMI^O23"]
    version: str
    charset: str
    charset_handling: str = ""


class Assignment(_Strict):
    """How the broker completes what an order leaves out."""

    #: Scheduled Station AE by procedure code value; wins over the modality's station.
    station_by_procedure: dict[str, str] = {}
    station_by_modality: dict[str, str] = {}
    accession_prefix: str
    requested_procedure_prefix: str
    sps_prefix: str


class CodeTarget(_Strict):
    value: str
    scheme: str
    meaning: str = ""


class MppsRules(_Strict):
    """PS3.4 Table F.7.2-1 as data (like dcm4che's mpps-*-iod.xml): what an N-CREATE
    must carry, what an N-SET may not touch, what a final N-SET requires."""

    #: Type 1 on N-CREATE: missing → 0x0120, empty → 0x0121.
    create_required: list[str]
    #: In each Scheduled Step Attributes Sequence item.
    create_required_in_step: list[str]
    #: "Not allowed" in N-SET → 0x0105 with the attribute named.
    set_not_allowed: list[str]
    #: Must hold values once the status is COMPLETED or DISCONTINUED.
    final_required: list[str]
    #: A modality that quotes no SPS ID is linked by its Accession Number (and the
    #: Requested Procedure ID, if given) to the order's steps still on the worklist.
    link_by_accession: bool = True


class Codes(_Strict):
    """Procedure codes as the site's systems send them → the codes the worklist shows
    (e.g. local codes → JJ1017)."""

    #: Coding scheme (as sent in CE-3) → code value → the code to use instead.
    map: dict[str, dict[str, CodeTarget]] = {}
    #: Refuse (AE 103) an order whose procedure code has no entry in `map`.
    require_mapped: bool = False


#: Requested Procedure Priority (0040,1003) defined terms (PS3.3 C.4.11).
Priority = Literal["STAT", "HIGH", "ROUTINE", "MEDIUM", "LOW"]


NameGroup = Literal["alphabetic", "ideographic", "phonetic"]


def _writable_set(candidate: str) -> str:
    if not supported(candidate.split("\\")):
        raise ValueError(f"character set {candidate!r} is not one the broker can write ({', '.join(SUPPORTED_TERMS)})")
    return candidate


def _known_path(path: str) -> str:
    """A keyword, or `Sequence.Keyword` one level down (a worklist answer's shape)."""
    if any(tag_for_keyword(part) is None for part in path.split(".")) or path.count(".") > 1:
        raise ValueError(f"{path!r} is not a DICOM keyword (or Sequence.Keyword)")
    return path


class StationQuirks(_Strict):
    """What one calling AE's worklist answers need beyond the standard: real devices
    that cannot show ideographic names, parse only one character set, cut long values
    badly, or need keys they forget to ask for."""

    #: PN component groups sent to this station; the others are left out of every name.
    name_groups: list[NameGroup] = ["alphabetic", "ideographic", "phonetic"]
    #: Answer in this set (when it holds the text), whatever the query names.
    character_set: Annotated[str, AfterValidator(_writable_set)] | None = None
    #: Longest value (characters) per keyword or `Sequence.Keyword`; longer is cut.
    max_lengths: dict[Annotated[str, AfterValidator(_known_path)], Annotated[int, Field(ge=1)]] = {}
    #: Keys answered even when the query does not ask for them.
    always_return: list[Annotated[str, AfterValidator(_known_path)]] = []


class DicomOut(_Strict):
    #: Specific Character Sets for answers whose text is not plain ASCII and that the
    #: query's own set cannot hold, in order of preference; each answer takes the first
    #: that holds its text. Values of one set are separated by backslash
    #: (`\ISO 2022 IR 87`: ASCII default, then kanji).
    character_sets: list[str] = Field(min_length=1)
    fold_case_names: bool = False
    #: HL7 priority (table 0027, as the order carries it) → Requested Procedure Priority.
    priorities: dict[str, Priority] = {}
    #: Per calling AE title: what that station's answers need (StationQuirks).
    stations: dict[str, StationQuirks] = {}

    @field_validator("character_sets")
    @classmethod
    def _writable(cls, value: list[str]) -> list[str]:
        return [_writable_set(candidate) for candidate in value]


class Profile(_Strict):
    name: str
    description: str = ""
    sending_application: str = "BROKER"
    sending_facility: str = "RADIOLOGY"
    hl7_in: Hl7In
    hl7_out: Hl7Out = Hl7Out()
    status_out: StatusOut
    filler_order_out: FillerOrderOut = FillerOrderOut()
    procedure_out: ProcedureOut
    assign: Assignment
    codes: Codes = Codes()
    mpps: MppsRules
    #: IANA time zone of the site (e.g. Asia/Tokyo): HL7 times carrying an offset are
    #: converted to it; the worklist shows local wall-clock time.
    time_zone: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    dicom: DicomOut
    extends: str | None = Field(default=None, exclude=True)


class ProfileError(Exception):
    """A profile that cannot be used; the message names file, key and reason."""


def _merge(base: dict[str, object], over: dict[str, object]) -> dict[str, object]:
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        merged[key] = _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return merged


def resolve(name_or_path: str) -> Path:
    """A profile is named (`ihe-swf` → `profiles/ihe-swf.yaml`) or given as a path."""
    path = Path(name_or_path)
    return path if path.suffix in {".yaml", ".yml"} else PROFILES_DIR / f"{name_or_path}.yaml"


def load_profile(name_or_path: str) -> Profile:
    """Load and validate a profile; `extends: other` layers it over another profile."""
    path = resolve(name_or_path)
    data = read_mapping(path, ProfileError)
    parent = data.pop("extends", None)
    if isinstance(parent, str):
        data = _merge(load_profile(parent).model_dump(), data)
    return validate(Profile, data, path, ProfileError)
