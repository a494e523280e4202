"""MPPS attribute lists as a modality sends them (RAD-6 N-CREATE, RAD-7 N-SET), as the
keyword → value form both dcmjs-dimse (JSON) and pydicom accept."""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset


def n_create(sps_id: str, accession: str, rp_id: str, study_uid: str, **extra: Any) -> dict[str, Any]:
    """A complete IN PROGRESS N-CREATE for one scheduled step (PS3.4 F.7.2-1 type 1 and 2)."""
    return {
        "ScheduledStepAttributesSequence": [
            {
                "StudyInstanceUID": study_uid,
                "AccessionNumber": accession,
                "RequestedProcedureID": rp_id,
                "ScheduledProcedureStepID": sps_id,
            }
        ],
        "PatientName": "DOE^JOHN^Q",
        "PatientID": "PAT001",
        "PerformedProcedureStepID": f"PPS-{sps_id}",
        "PerformedStationAETitle": "CT01",
        "PerformedProcedureStepStartDate": "20261123",
        "PerformedProcedureStepStartTime": "100500",
        "PerformedProcedureStepStatus": "IN PROGRESS",
        "Modality": "CT",
        **extra,
    }


def n_set_final(status: str = "COMPLETED") -> dict[str, Any]:
    return {
        "PerformedProcedureStepStatus": status,
        "PerformedProcedureStepEndDate": "20261123",
        "PerformedProcedureStepEndTime": "101500",
    }


def as_dataset(attributes: dict[str, Any]) -> Dataset:
    """A list of dicts is a sequence (`[]`: zero items); any other list is a multi-value;
    "" is an empty value of any VR (a universal matching key)."""
    ds = Dataset()
    for keyword, value in attributes.items():
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            value = [as_dataset(item) for item in value]
        setattr(ds, keyword, None if value == "" else value)
    return ds
