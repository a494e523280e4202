"""C-FIND identifier → WorklistQuery, and worklist entry → answer identifier (PS3.4 K).

The answer carries exactly the keys the query asked for: a key the broker holds gets
its value, any other comes back empty (type 2 semantics); a sequence asked for with an
item gets that item's keys, an empty sequence gets the whole item.
"""

from __future__ import annotations

from collections.abc import Sequence as Strings
from datetime import date, datetime, time

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from broker.domain.errors import InvalidInput
from broker.domain.model import Code
from broker.domain.worklist import Key, Pattern, Period, WorklistEntry, WorklistQuery
from broker.mapping.dicom_charsets import choose

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
    "Modality": Key.MODALITY,
    "ScheduledProcedureStepID": Key.SPS_ID,
    "ScheduledPerformingPhysicianName": Key.PERFORMING_PHYSICIAN,
}


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


#: Matched as a list of UIDs.
UID_LIST_KEYS = {"StudyInstanceUID": Key.STUDY_INSTANCE_UID}
#: Matched together as one date-time range (PS3.4 C.2.2.2.5.1).
RANGE_KEYS = ("ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime")


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


def query_from_identifier(identifier: Dataset, *, fold_case_names: bool) -> WorklistQuery:
    patterns = {key: Pattern(_text(identifier, kw)) for kw, key in TOP_KEYS.items() if kw in identifier}
    uid_lists = {
        key: frozenset(_text(identifier, kw).split("\\")) for kw, key in UID_LIST_KEYS.items() if _text(identifier, kw)
    }
    period = None
    steps = identifier.get("ScheduledProcedureStepSequence")
    if steps:
        step = steps[0]
        patterns |= {key: Pattern(_text(step, kw)) for kw, key in STEP_KEYS.items() if kw in step}
        period = _period(step)
    return WorklistQuery(patterns=patterns, uid_lists=uid_lists, period=period, fold_case_names=fold_case_names)


def _code_sequence(codes: list[Code]) -> Sequence:
    items = []
    for code in codes:
        item = Dataset()
        item.CodeValue = code.value
        item.CodingSchemeDesignator = code.scheme
        item.CodeMeaning = code.meaning
        items.append(item)
    return Sequence(items)


def full_item(entry: WorklistEntry) -> Dataset:
    """Every MWL attribute the broker holds for one scheduled step."""
    order, procedure, step = entry.order, entry.procedure, entry.step
    sps = Dataset()
    sps.ScheduledStationAETitle = step.station_ae
    sps.ScheduledProcedureStepStartDate = step.start.strftime("%Y%m%d") if step.start else ""
    sps.ScheduledProcedureStepStartTime = step.start.strftime("%H%M%S") if step.start else ""
    sps.Modality = step.modality
    sps.ScheduledPerformingPhysicianName = step.performing_physician
    sps.ScheduledProcedureStepDescription = step.description
    sps.ScheduledProtocolCodeSequence = _code_sequence(step.protocol_codes)
    sps.ScheduledProcedureStepID = step.sps_id
    sps.ScheduledStationName = step.station_name
    sps.ScheduledProcedureStepLocation = step.location
    sps.ScheduledProcedureStepStatus = step.status.value

    ds = Dataset()
    ds.AccessionNumber = order.accession_number
    ds.ReferringPhysicianName = order.referring_physician
    ds.ReferencedStudySequence = Sequence()
    ds.ReferencedPatientSequence = Sequence()
    ds.PatientName = str(order.patient.name)
    ds.PatientID = order.patient.patient_id
    ds.IssuerOfPatientID = order.patient.issuer
    ds.PatientBirthDate = order.patient.birth_date
    ds.PatientSex = order.patient.sex
    ds.StudyInstanceUID = procedure.study_instance_uid
    ds.RequestedProcedureDescription = procedure.description
    ds.RequestedProcedureCodeSequence = _code_sequence([procedure.code] if procedure.code else [])
    ds.RequestedProcedureID = procedure.requested_procedure_id
    ds.RequestedProcedurePriority = procedure.priority
    ds.ScheduledProcedureStepSequence = Sequence([sps])
    return ds


def select_keys(full: Dataset, request: Dataset) -> Dataset:
    """The part of `full` the request asked for, in the request's shape."""
    answer = Dataset()
    for element in request:
        if element.keyword == "SpecificCharacterSet":
            continue
        held = full.get(element.tag)
        if element.VR == "SQ":
            answer.add(_select_sequence(held, element))
        elif held is not None:
            answer.add(held)
        else:
            answer.add(DataElement(element.tag, element.VR, None))
    return answer


def _select_sequence(held: DataElement | None, asked: DataElement) -> DataElement:
    if held is None:
        return DataElement(asked.tag, "SQ", Sequence())
    if not asked.value:
        return held
    template = asked.value[0]
    return DataElement(asked.tag, "SQ", Sequence([select_keys(item, template) for item in held.value]))


_TEXT_VRS = ("PN", "LO", "SH", "ST", "LT", "UT", "UC")


def answer_for(entry: WorklistEntry, request: Dataset, character_sets: Strings[str]) -> Dataset:
    """The identifier to return for one entry, in the first of `character_sets` that
    holds its text (none for plain ASCII)."""
    answer = select_keys(full_item(entry), request)
    text = [str(e.value) for e in answer.iterall() if e.VR in _TEXT_VRS and e.value]
    chosen = choose(text, character_sets)
    if chosen is not None:
        answer.SpecificCharacterSet = chosen
    elif "SpecificCharacterSet" in request:
        answer.SpecificCharacterSet = ""
    return answer
