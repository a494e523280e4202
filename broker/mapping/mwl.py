"""C-FIND identifier → WorklistQuery, and worklist entry → answer identifier (PS3.4 K).

The answer carries exactly the keys the query asked for: a key the broker holds gets
its value, any other comes back empty (type 2 semantics); a sequence asked for with an
item naming keys gets those keys, one asked for with no item or with one zero-length
item gets the whole item (PS3.4 C.2.2.2.6).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Sequence as Strings
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, get_args

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from broker.domain.errors import InvalidInput
from broker.domain.worklist import Key, Pattern, Period, TimesOfDay, WorklistEntry, WorklistQuery
from broker.mapping.dicom_bytes import TEXT_VRS, ValueEncoder, element, sequence
from broker.mapping.dicom_charsets import CharsetChoice
from broker.mapping.profile import Priority, Profile, StationQuirks

#: Query keys matched by single value, wildcard (`*`, `?`) or universal matching, at the
#: top level and in the Scheduled Procedure Step Sequence item (the statement lists these).
TOP_KEYS = {
    "PatientID": Key.PATIENT_ID,
    "PatientName": Key.PATIENT_NAME,
    "AccessionNumber": Key.ACCESSION_NUMBER,
    "RequestedProcedureID": Key.REQUESTED_PROCEDURE_ID,
}
STEP_KEYS = {
    "ScheduledStationAETitle": Key.STATION_AE,
    "ScheduledStationName": Key.STATION_NAME,
    "ScheduledProcedureStepLocation": Key.LOCATION,
    "Modality": Key.MODALITY,
    "ScheduledProcedureStepID": Key.SPS_ID,
    "ScheduledPerformingPhysicianName": Key.PERFORMING_PHYSICIAN,
}


def _text(ds: Dataset, keyword: str) -> str:
    """The value as text. pydicom decodes raw values on first access and some bytes make
    it fail (e.g. IndexError in its ISO 2022 IR 87 encoder): that is the modality's bad
    value, answered as a refusal, not an SCP failure."""
    try:
        value = ds.get(keyword)
    except Exception as exc:
        raise InvalidInput(keyword, f"cannot be read ({type(exc).__name__})") from None
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


#: Matched as a list of UIDs.
UID_LIST_KEYS = {"StudyInstanceUID": Key.STUDY_INSTANCE_UID}
#: Matched together as one date-time range (PS3.4 C.2.2.2.5.1).
RANGE_KEYS = ("ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime")


#: PS3.5 Table 6.2-1 maximum lengths of the matching keys' VRs (PN: three component
#: groups of 64). A longer value matches nothing the broker stores, and would reach SQL
#: as a pattern too long for it (SQLite refuses LIKE patterns over 50,000 bytes). NUL,
#: in no VR's repertoire here, is refused too: PostgreSQL cannot take it as text.
_MAX_LENGTH = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 3 * 64 + 2, "UI": 64}


def _key(ds: Dataset, keyword: str) -> str:
    """A matching key's value; each of its values (`\\`-separated) within its VR's length."""
    text = _text(ds, keyword)
    if "\x00" in text:
        raise InvalidInput(keyword, "a NUL character")
    limit = _MAX_LENGTH.get(dictionary_VR(keyword))
    if limit is not None and any(len(value) > limit for value in text.split("\\")):
        raise InvalidInput(keyword, f"a value longer than {limit} characters")
    return text


def _range(text: str) -> tuple[str, str]:
    """`a-b`, `a-`, `-b` or a single value `a` (= `a-a`)."""
    lo, sep, hi = text.partition("-")
    if not sep:
        hi = lo
    return lo.strip(), hi.strip()


def _day(text: str, location: str) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise InvalidInput(location, f"not a DA value: {text!r}") from None


def _clock(text: str, location: str, *, end: bool) -> time:
    digits = text.split(".")[0].replace(":", "")
    if not digits:
        return time.max if end else time.min
    try:
        padded = digits + ("595959"[len(digits) :] if end else "000000"[len(digits) :])
        clock = datetime.strptime(padded[:6], "%H%M%S").time()
    except ValueError:
        raise InvalidInput(location, f"not a TM value: {text!r}") from None
    return clock.replace(microsecond=999999) if end else clock


def _period(step: Dataset) -> Period | None:
    """SPS Start Date and Time as one combined range (PS3.4 C.2.2.2.5.1)."""
    day_keyword, time_keyword = RANGE_KEYS
    day_text, time_text = _text(step, day_keyword), _text(step, time_keyword)
    if not day_text:
        return None
    day_lo, day_hi = _range(day_text)
    time_lo, time_hi = _range(time_text) if time_text else ("", "")
    start = (
        datetime.combine(
            _day(day_lo, "ScheduledProcedureStepStartDate"),
            _clock(time_lo, "ScheduledProcedureStepStartTime", end=False),
        )
        if day_lo
        else None
    )
    end = (
        datetime.combine(
            _day(day_hi, "ScheduledProcedureStepStartDate"),
            _clock(time_hi, "ScheduledProcedureStepStartTime", end=True),
        )
        if day_hi
        else None
    )
    return Period(start, end)


def _times(step: Dataset) -> TimesOfDay | None:
    """SPS Start Time asked without a date: a time-of-day range on any day (C.2.2.2.5)."""
    day_keyword, time_keyword = RANGE_KEYS
    time_text = _text(step, time_keyword)
    if _text(step, day_keyword) or not time_text:
        return None
    lo, hi = _range(time_text)
    return TimesOfDay(_clock(lo, time_keyword, end=False), _clock(hi, time_keyword, end=True))


def asked_keys(identifier: Dataset) -> dict[str, str]:
    """The keys a query matched on (with a value), for the query log: top level and
    the first Scheduled Procedure Step item, by keyword."""
    steps = identifier.get("ScheduledProcedureStepSequence")
    levels = [("", identifier), *([("ScheduledProcedureStepSequence.", steps[0])] if steps else [])]
    return {
        prefix + element.keyword: str(element.value)
        for prefix, level in levels
        for element in level
        if element.VR != "SQ" and element.keyword != "SpecificCharacterSet" and element.value not in (None, "")
    }


def query_from_identifier(identifier: Dataset, *, fold_case_names: bool) -> WorklistQuery:
    patterns = {key: Pattern(_key(identifier, kw)) for kw, key in TOP_KEYS.items() if kw in identifier}
    uid_lists = {
        key: frozenset(_key(identifier, kw).split("\\")) for kw, key in UID_LIST_KEYS.items() if _text(identifier, kw)
    }
    period = times = None
    steps = identifier.get("ScheduledProcedureStepSequence")
    if steps:
        step = steps[0]
        patterns |= {key: Pattern(_key(step, kw)) for kw, key in STEP_KEYS.items() if kw in step}
        period, times = _period(step), _times(step)
    return WorklistQuery(
        patterns=patterns, uid_lists=uid_lists, period=period, times=times, fold_case_names=fold_case_names
    )


# --- answers -----------------------------------------------------------------------

Getter = Callable[[Any], str]
Items = Callable[[Any], list[Any]]


@dataclass(frozen=True)
class _Held:
    """What the broker holds for one dataset level: values by keyword, and sequences
    by keyword with the level their items hold."""

    values: Mapping[str, Getter]
    sequences: Mapping[str, tuple[Items, _Held]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Field:
    """One requested element: a held value (or None: returned empty), or a sequence
    whose items come from `items` and carry `item_fields`."""

    tag: int
    vr: str
    value: Getter | None = None
    items: Items | None = None
    item_fields: tuple[_Field, ...] = ()


def _date(moment: datetime | None) -> str:
    return moment.strftime("%Y%m%d") if moment else ""


def _time(moment: datetime | None) -> str:
    return moment.strftime("%H%M%S") if moment else ""


_CODE = _Held(
    {"CodeValue": lambda c: c.value, "CodingSchemeDesignator": lambda c: c.scheme, "CodeMeaning": lambda c: c.meaning}
)
_NOTHING = _Held({})
_STEP = _Held(
    {
        "ScheduledStationAETitle": lambda e: e.station_ae,
        "ScheduledProcedureStepStartDate": lambda e: _date(e.start),
        "ScheduledProcedureStepStartTime": lambda e: _time(e.start),
        "Modality": lambda e: e.modality,
        "ScheduledPerformingPhysicianName": lambda e: e.performing_physician,
        "ScheduledProcedureStepDescription": lambda e: e.step_description,
        "ScheduledProcedureStepID": lambda e: e.sps_id,
        "ScheduledStationName": lambda e: e.station_name,
        "ScheduledProcedureStepLocation": lambda e: e.location,
        "ScheduledProcedureStepStatus": lambda e: e.status.value,
    },
    {"ScheduledProtocolCodeSequence": (lambda e: e.protocol_codes, _CODE)},
)
_ENTRY = _Held(
    {
        "AccessionNumber": lambda e: e.accession_number,
        "ReferringPhysicianName": lambda e: e.referring_physician,
        "RequestingPhysician": lambda e: e.requesting_physician,
        "RequestingService": lambda e: e.requesting_service,
        "AdmissionID": lambda e: e.admission_id,
        "PlacerOrderNumberImagingServiceRequest": lambda e: e.placer_order_number,
        "FillerOrderNumberImagingServiceRequest": lambda e: e.filler_order_number,
        "PatientName": lambda e: str(e.patient_name),
        "PatientID": lambda e: e.patient_id,
        "IssuerOfPatientID": lambda e: e.issuer,
        "PatientBirthDate": lambda e: e.birth_date,
        "PatientSex": lambda e: e.sex,
        "StudyInstanceUID": lambda e: e.study_instance_uid,
        "RequestedProcedureDescription": lambda e: e.procedure_description,
        "RequestedProcedureID": lambda e: e.requested_procedure_id,
        "RequestedProcedurePriority": lambda e: "",  # per profile: _with_priorities
    },
    {
        "ReferencedStudySequence": (lambda e: [], _NOTHING),
        "ReferencedPatientSequence": (lambda e: [], _NOTHING),
        "RequestedProcedureCodeSequence": (lambda e: [e.procedure_code] if e.procedure_code else [], _CODE),
        "ScheduledProcedureStepSequence": (lambda e: [e], _STEP),
    },
)


def _held_field(keyword: str, held: _Held, template: Dataset | None) -> _Field:
    """The field for a held keyword; `template` (a sequence's requested item, None for
    an empty sequence: the whole item) narrows what its items carry."""
    tag, vr = int(Tag(keyword)), dictionary_VR(keyword)
    if keyword in held.values:
        return _Field(tag, vr, value=held.values[keyword])
    items, level = held.sequences[keyword]
    fields = _fields(template, level) if template is not None else _whole(level)
    return _Field(tag, vr, items=items, item_fields=fields)


def _whole(held: _Held) -> tuple[_Field, ...]:
    """Every element `held` holds, in tag order (C.2.2.2.6: an empty sequence asks for
    the whole item)."""
    fields = [_held_field(kw, held, None) for kw in [*held.values, *held.sequences]]
    return tuple(sorted(fields, key=lambda f: f.tag))


def _names_keys(item: Dataset) -> bool:
    """Whether a requested sequence item names keys: a zero-length item (`[{}]`, as
    Orthanc and `findscu -k Seq[0]` send it) asks for the whole item, as a sequence
    with no item does (PS3.4 C.2.2.2.6)."""
    return any(element.keyword != "SpecificCharacterSet" for element in item)


def _fields(request: Dataset, held: _Held) -> tuple[_Field, ...]:
    """The requested elements in the request's shape (PS3.4 C.4.1.1.3.2: exactly the
    keys asked for; those the broker does not hold come back empty)."""
    fields = []
    for asked in request:
        if asked.keyword == "SpecificCharacterSet":
            continue
        if asked.keyword in held.values or asked.keyword in held.sequences:
            template = asked.value[0] if asked.VR == "SQ" and asked.value and _names_keys(asked.value[0]) else None
            fields.append(_held_field(asked.keyword, held, template))
        else:
            fields.append(_Field(asked.tag, asked.VR))
    return tuple(fields)


# One resolved element: (tag, VR, text) or (tag, "SQ", items of resolved elements).
Resolved = tuple[int, str, "str | list[list[Resolved]]"]
_CHARSET_TAG = 0x00080005


def _resolve(fields: tuple[_Field, ...], subject: Any) -> list[Resolved]:
    resolved: list[Resolved] = []
    for f in fields:
        if f.vr != "SQ":
            resolved.append((f.tag, f.vr, f.value(subject) if f.value else ""))
        else:
            items = f.items(subject) if f.items else []
            resolved.append((f.tag, "SQ", [_resolve(f.item_fields, item) for item in items]))
    return resolved


def _texts(resolved: list[Resolved]) -> Iterator[str]:
    for _, vr, value in resolved:
        if isinstance(value, list):
            for item in value:
                yield from _texts(item)
        elif value and vr in TEXT_VRS:
            yield value


def _write(resolved: list[Resolved], encoder: ValueEncoder, implicit: bool) -> bytes:
    parts = []
    for tag, vr, value in resolved:
        if isinstance(value, list):
            parts.append(sequence(tag, [_write(item, encoder, implicit) for item in value], implicit=implicit))
        else:
            parts.append(element(tag, vr, encoder.encode(vr, value), implicit=implicit))
    return b"".join(parts)


def _with_priorities(held: _Held, table: Mapping[str, str]) -> _Held:
    """`held` answering Requested Procedure Priority as a DICOM defined term: the
    profile's table translates the HL7 priority the broker keeps (table 0027: S, A,
    R, ...); a value that is neither in the table nor a defined term is unknown (empty)."""
    terms = {**{term: term for term in get_args(Priority)}, **table}
    return _Held({**held.values, "RequestedProcedurePriority": lambda e: terms.get(e.priority, "")}, held.sequences)


_GROUPS = ("alphabetic", "ideographic", "phonetic")


def _with_quirks(held: _Held, quirks: StationQuirks, prefix: str = "") -> _Held:
    """`held` as one station needs it (the profile's `dicom.stations`): names with only
    the groups it can show, values cut to its lengths. Wrapped once per query, so the
    answers cost what they cost without quirks."""
    values = {}
    for keyword, getter in held.values.items():
        if dictionary_VR(keyword) == "PN" and len(quirks.name_groups) < len(_GROUPS):
            getter = _name_groups(getter, [group in quirks.name_groups for group in _GROUPS])
        limit = quirks.max_lengths.get(prefix + keyword)
        values[keyword] = _cut(getter, limit) if limit else getter
    sequences = {
        keyword: (items, _with_quirks(level, quirks, f"{keyword}.") if level is _STEP else level)
        for keyword, (items, level) in held.sequences.items()
    }
    return _Held(values, sequences)


def _name_groups(getter: Getter, kept: list[bool]) -> Getter:
    def groups(subject: Any) -> str:
        parts = getter(subject).split("=")
        return "=".join(part if keep else "" for part, keep in zip(parts, kept, strict=False)).rstrip("=")

    return groups


def _cut(getter: Getter, limit: int) -> Getter:
    return lambda subject: getter(subject)[:limit]


def _always_asked(request: Dataset, paths: Strings[str]) -> Dataset:
    """A copy of `request` that also asks for `paths` (a station's `always_return`)."""
    asked = copy.deepcopy(request)
    for path in paths:
        keyword, _, inner = path.partition(".")
        if not inner:
            if keyword not in asked:
                asked.add_new(keyword, dictionary_VR(keyword), None)
            continue
        if keyword not in asked:  # a sequence not asked for: only that key in it
            asked.add_new(keyword, "SQ", [Dataset()])
            asked[keyword].value[0].add_new(inner, dictionary_VR(inner), None)
        items = asked[keyword].value
        if items and _names_keys(items[0]) and inner not in items[0]:  # else the whole item is asked already
            items[0].add_new(inner, dictionary_VR(inner), None)
    return asked


class AnswerPlan:
    """How every answer to one C-FIND request is written: compiled once per query from
    the request's keys, then applied to each matching entry straight to bytes."""

    def __init__(
        self,
        request: Dataset | None,
        character_sets: Strings[str],
        priorities: Mapping[str, str] | None = None,
        quirks: StationQuirks | None = None,
    ) -> None:
        """`request` None: every key the broker holds (the Conformance Statement's list
        of return keys). `priorities`: HL7 priority → DICOM defined term (the profile's
        `dicom.priorities`). `quirks`: what the calling station needs (`dicom.stations`)."""
        held = _with_priorities(_ENTRY, priorities or {})
        if quirks is not None:
            held = _with_quirks(held, quirks)
            request = _always_asked(request, quirks.always_return) if request is not None else None
        self._fields = _fields(request, held) if request is not None else _whole(held)
        asked = quirks.character_set.split("\\") if quirks and quirks.character_set else _asked_charset(request)
        self._charsets = CharsetChoice(asked, character_sets)
        self._encoders: dict[tuple[str, ...] | None, ValueEncoder] = {}

    @classmethod
    def for_caller(cls, request: Dataset | None, profile: Profile, calling_ae: str) -> AnswerPlan:
        """The plan a C-FIND from `calling_ae` is answered with: the profile's character
        sets and priorities, and that station's quirks (the worklist lab shows the same)."""
        quirks = profile.dicom.stations.get(calling_ae)
        return cls(request, profile.dicom.character_sets, profile.dicom.priorities, quirks)

    def encode(self, entry: WorklistEntry, *, implicit: bool) -> bytes:
        """The answer identifier for `entry`, in the character set the query named if
        it holds the text, else the first of the profile's that does; (0008,0005) only
        with a value (PS3.4 C.2.2.2)."""
        resolved = self.resolve(entry)
        texts = list(_texts(resolved))
        plain = all(text.isascii() for text in texts)
        chosen = self._charsets.asked if plain else self._charsets.choose(texts)
        if chosen is not None:
            resolved.append((_CHARSET_TAG, "CS", "\\".join(chosen)))
            resolved.sort(key=lambda r: r[0])
        return _write(resolved, self._encoder(None if plain else chosen), implicit)

    def resolve(self, entry: WorklistEntry) -> list[Resolved]:
        """The answer for `entry` as elements with Unicode values, before any character
        set or byte: what `encode` writes, for a face that carries text itself (the
        DICOMweb search writes DICOM JSON and XML from it, broker.mapping.dicomweb)."""
        return _resolve(self._fields, entry)

    def _encoder(self, chosen: list[str] | None) -> ValueEncoder:
        key = tuple(chosen) if chosen else None
        encoder = self._encoders.get(key)
        if encoder is None:
            encoder = self._encoders[key] = ValueEncoder(chosen)
        return encoder


def _asked_charset(request: Dataset | None) -> list[str]:
    """The query's Specific Character Set values (none: [])."""
    if request is None or "SpecificCharacterSet" not in request:
        return []
    value = request.SpecificCharacterSet
    if not value:
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]
