"""A Modality Worklist C-FIND SCU (`broker find`): asks any worklist SCP (this broker
or another one) what a modality would see, with the usual RAD-5 keys.

The query carries the return keys the answer table shows, so an SCP that returns only
what was asked for still fills every column. A failure status or a broken association
is an error for the caller to report, never an empty worklist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from broker import display
from broker.dicom.status import SUCCESS

#: A DICOM date (DA) or a range of them: 20261123, 20261123-20261124, -20261124, 20261123-.
DATE_OR_RANGE = re.compile(r"^(\d{8})?-?(\d{8})?$")
PENDING = (0xFF00, 0xFF01)


class WorklistQueryError(Exception):
    """The SCP answered with a failure status (the answers so far are incomplete)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class WorklistUnreachable(OSError):
    """No association (refused, rejected, aborted) or no answer in time."""


@dataclass(frozen=True)
class WorklistKeys:
    """Matching keys; empty means universal (return only). Names may hold * and ?."""

    station_ae: str = ""
    modality: str = ""
    date: str = ""
    patient_id: str = ""
    accession: str = ""
    patient_name: str = ""


@dataclass(frozen=True)
class Peer:
    host: str
    port: int
    calling_ae: str
    called_ae: str
    timeout: float = 30.0


def identifier(keys: WorklistKeys) -> Dataset:
    """The C-FIND identifier: matching keys where given, return keys everywhere else."""
    step = _dataset(
        ScheduledStationAETitle=keys.station_ae, Modality=keys.modality, ScheduledProcedureStepStartDate=keys.date,
        ScheduledProcedureStepStartTime="", ScheduledProcedureStepDescription="", ScheduledProcedureStepID="",
    )  # fmt: skip
    return _dataset(
        SpecificCharacterSet="", PatientName=keys.patient_name, PatientID=keys.patient_id,
        AccessionNumber=keys.accession, RequestedProcedureDescription="", RequestedProcedureID="",
        StudyInstanceUID="", ScheduledProcedureStepSequence=[step],
    )  # fmt: skip


def _dataset(**elements: object) -> Dataset:
    dataset = Dataset()
    for keyword, value in elements.items():
        setattr(dataset, keyword, value)
    return dataset


def date_key(text: str) -> str:
    """A date matching key: YYYYMMDD, a range (either end open), or 'today'."""
    if text == "today":
        return datetime.now().strftime("%Y%m%d")
    if not DATE_OR_RANGE.match(text):
        raise ValueError(f"date {text!r}: use YYYYMMDD, YYYYMMDD-YYYYMMDD or 'today'")
    return text


def find(peer: Peer, query: Dataset) -> list[Dataset]:
    """Every answer of one C-FIND; WorklistQueryError on a failure status,
    WorklistUnreachable when the association breaks or never starts."""
    ae = AE(ae_title=peer.calling_ae)
    ae.add_requested_context(ModalityWorklistInformationFind)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = peer.timeout
    try:
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.called_ae)
    except OSError as exc:  # pynetdicom logs and reports most failures via is_established
        raise WorklistUnreachable(f"{peer.host}:{peer.port}: {exc}") from exc
    if not assoc.is_established:
        raise WorklistUnreachable(f"no association with {peer.called_ae} at {peer.host}:{peer.port}")
    try:
        return _answers(assoc.send_c_find(query, ModalityWorklistInformationFind), peer)
    finally:
        if assoc.is_established:
            assoc.release()


def _answers(responses: Iterator[tuple[Dataset, Dataset | None]], peer: Peer) -> list[Dataset]:
    answers: list[Dataset] = []
    for status, found in responses:
        if not status:
            raise WorklistUnreachable(f"{peer.called_ae} sent no answer (association aborted or timed out)")
        code = int(status.Status)
        if code in PENDING and found is not None:
            answers.append(found)
        elif code != SUCCESS:
            comment = status.get("ErrorComment", "")
            raise WorklistQueryError(f"{peer.called_ae} answered 0x{code:04X} {comment}".rstrip(), code)
    return answers


COLUMNS = ("Patient name", "Patient ID", "Accession", "Modality", "Station", "Start", "Procedure", "SPS ID")


def row(answer: Dataset) -> tuple[str, ...]:
    """One table row: the fields a technologist checks before starting the exam."""
    step = answer.ScheduledProcedureStepSequence[0] if answer.get("ScheduledProcedureStepSequence") else Dataset()
    start = f"{step.get('ScheduledProcedureStepStartDate', '')} {step.get('ScheduledProcedureStepStartTime', '')}"
    procedure = answer.get("RequestedProcedureDescription", "") or step.get("ScheduledProcedureStepDescription", "")
    return (
        str(answer.get("PatientName", "")),
        str(answer.get("PatientID", "")),
        str(answer.get("AccessionNumber", "")),
        str(step.get("Modality", "")),
        str(step.get("ScheduledStationAETitle", "")),
        start.strip(),
        str(procedure),
        str(step.get("ScheduledProcedureStepID", "")),
    )


def table(rows: list[tuple[str, ...]]) -> str:
    """The answers as a terminal table (an SCP's control characters shown, not sent)."""
    return display.table(COLUMNS, rows)
