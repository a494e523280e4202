"""MPPS datasets ↔ the domain's PerformedStep.

The full dataset is kept as DICOM JSON, re-encoded as UTF-8 (ISO_IR 192) so that an
N-SET sent in another character set than its N-CREATE merges into one consistent
record.
"""

from __future__ import annotations

import json

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from broker.domain.errors import InvalidInput, Problem
from broker.domain.model import PerformedStep, PpsStatus, StepReference
from broker.domain.ports import OutboundMessage
from broker.mapping.profile import MppsRules


def _status(ds: Dataset) -> PpsStatus:
    value = str(ds.get("PerformedProcedureStepStatus", "")).strip()
    if not value:
        raise InvalidInput("PerformedProcedureStepStatus", "is required", Problem.MISSING)
    try:
        return PpsStatus(value)
    except ValueError:
        raise InvalidInput(
            "PerformedProcedureStepStatus", f"{value!r} is not a defined term", Problem.NOT_IN_TABLE
        ) from None


def _references(ds: Dataset) -> list[StepReference]:
    return [
        StepReference(
            sps_id=str(item.get("ScheduledProcedureStepID", "") or ""),
            requested_procedure_id=str(item.get("RequestedProcedureID", "") or ""),
            accession_number=str(item.get("AccessionNumber", "") or ""),
            study_instance_uid=str(item.get("StudyInstanceUID", "") or ""),
        )
        for item in ds.get("ScheduledStepAttributesSequence", [])
    ]


def _as_sent(ds: Dataset, keyword: str) -> str:
    """A value as the modality wrote it: a backslash-separated multi-value stays one
    string (str() of pydicom's MultiValue is a Python list's repr). NUL is DICOM padding,
    never text, and PostgreSQL text cannot hold it: it is left out."""
    value = ds.get(keyword, "")
    text = "\\".join(str(v) for v in value) if isinstance(value, MultiValue) else str(value or "")
    return text.replace("\x00", "")


def _to_json(record: Dataset) -> str:
    return json.dumps(record.to_json_dict(), ensure_ascii=False, sort_keys=True)


def _as_utf8_json(ds: Dataset) -> str:
    """A received dataset as stored: text decoded with its own Specific Character Set,
    then labelled UTF-8 (the JSON holds Unicode)."""
    ds.decode()
    record = Dataset()
    record.update(ds)
    record.SpecificCharacterSet = "ISO_IR 192"
    return _to_json(record)


def _require(ds: Dataset, keywords: list[str], where: str = "") -> None:
    """Type 1: present (else 0x0120) and with a value (else 0x0121)."""
    for keyword in keywords:
        if keyword not in ds:
            raise InvalidInput(f"{where}{keyword}", "is required", Problem.MISSING)
        value = ds[keyword].value
        if value is None or value == "" or (isinstance(value, list) and not value):
            raise InvalidInput(f"{where}{keyword}", "must have a value", Problem.EMPTY)


def check_create(ds: Dataset, rules: MppsRules) -> None:
    """PS3.4 F.7.2.1: the attributes an N-CREATE must carry."""
    _require(ds, rules.create_required)
    for item in ds.ScheduledStepAttributesSequence:
        _require(item, rules.create_required_in_step, "ScheduledStepAttributesSequence>")


def check_set(modification: Dataset, rules: MppsRules) -> None:
    """PS3.4 F.7.2.2: an N-SET may not change what the table marks "Not allowed"."""
    for element in modification:
        if element.keyword in rules.set_not_allowed:
            raise InvalidInput(element.keyword, "may not be set by N-SET", Problem.NOT_ALLOWED)


def performed_step_from(ds: Dataset, sop_instance_uid: str, rules: MppsRules) -> PerformedStep:
    """An N-CREATE's attribute list as a PerformedStep, once it passes the F.7.2 rules."""
    check_create(ds, rules)
    return PerformedStep(
        sop_instance_uid=sop_instance_uid,
        status=_status(ds),
        references=_references(ds),
        attributes=_as_utf8_json(ds),
        performed_station_ae=_as_sent(ds, "PerformedStationAETitle"),
        patient_id=_lo(ds, "PatientID"),
        patient_issuer=_lo(ds, "IssuerOfPatientID"),
    )


def _lo(ds: Dataset, keyword: str) -> str:
    """A LO value (at most 64 characters, PS3.5 6.2), without its padding."""
    value = _as_sent(ds, keyword).strip()
    if len(value) > 64:
        raise InvalidInput(keyword, "longer than 64 characters")
    return value


def merge(stored: str, modification: Dataset, rules: MppsRules) -> tuple[PpsStatus, str, str]:
    """The stored record with an N-SET's modification list applied (PS3.4 F.7.2.2); a
    final status needs what `rules.final_required` names in the merged record."""
    check_set(modification, rules)
    record = Dataset.from_json(stored)  # already Unicode: must not be decoded again
    modification.decode()
    for element in modification:
        if element.keyword != "SpecificCharacterSet":
            record[element.tag] = element
    status = _status(record)
    if status is not PpsStatus.IN_PROGRESS:
        _require(record, rules.final_required)
    changes = Dataset()
    changes.update(modification)
    changes.SpecificCharacterSet = "ISO_IR 192"
    return status, _to_json(record), _to_json(changes)


class MppsForwarding:
    """Each N-CREATE / N-SET received, for every configured SCP, as outbox messages
    ordered per MPPS instance (the N-SETs of one MPPS must follow its N-CREATE)."""

    def __init__(self, destinations: list[str]) -> None:
        self._destinations = destinations

    def messages_for(self, operation: str, sop_instance_uid: str, dataset_json: str) -> list[OutboundMessage]:
        payload = json.dumps(
            {"op": operation, "uid": sop_instance_uid, "dataset": json.loads(dataset_json)}, ensure_ascii=False
        ).encode("utf-8")
        return [OutboundMessage(name, f"mpps|{sop_instance_uid}", payload) for name in self._destinations]
