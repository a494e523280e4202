"""The Acquisition Modality: queries a worklist (RAD-5), then reports the procedure
with MPPS N-CREATE IN PROGRESS (RAD-6) and N-SET COMPLETED or DISCONTINUED (RAD-7),
copying the worklist attributes as IHE RAD TF-2 and PS3.17 Annex J ask. Speaks to any
worklist / MPPS SCP."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
)

#: Worklist return keys the modality asks for (it copies them into the MPPS).
_TOP_KEYS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "RequestedProcedureID",
    "RequestedProcedureDescription",
    "StudyInstanceUID",
)
_STEP_KEYS = (
    "ScheduledStationAETitle",
    "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime",
    "Modality",
    "ScheduledProcedureStepID",
    "ScheduledProcedureStepDescription",
)
#: CID 9300 reason sent with DISCONTINUED.
_DISCONTINUED_REASON = ("110514", "DCM", "Incorrect worklist entry selected")


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    called_ae: str
    calling_ae: str = "MODALITY1"
    timeout: float = 10.0


def worklist_query(station_ae: str = "", **keys: str) -> Dataset:
    """A C-FIND identifier: the return keys above, matching on the station and on `keys`
    (top-level or Scheduled Procedure Step keywords)."""
    query, step = Dataset(), Dataset()
    for keyword in _TOP_KEYS:
        setattr(query, keyword, keys.get(keyword, ""))
    for keyword in _STEP_KEYS:
        setattr(step, keyword, keys.get(keyword, ""))
    step.ScheduledStationAETitle = station_ae
    step.ScheduledProtocolCodeSequence = []
    query.ScheduledProcedureStepSequence = [step]
    return query


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _step_reference(item: Dataset) -> Dataset:
    """One Scheduled Step Attributes Sequence item, copied from a worklist answer."""
    sps = item.ScheduledProcedureStepSequence[0] if item.get("ScheduledProcedureStepSequence") else Dataset()
    ref = Dataset()
    ref.StudyInstanceUID = item.get("StudyInstanceUID", "")
    ref.ReferencedStudySequence = []
    ref.AccessionNumber = item.get("AccessionNumber", "")
    ref.RequestedProcedureID = item.get("RequestedProcedureID", "")
    ref.RequestedProcedureDescription = item.get("RequestedProcedureDescription", "")
    ref.ScheduledProcedureStepID = sps.get("ScheduledProcedureStepID", "")
    ref.ScheduledProcedureStepDescription = sps.get("ScheduledProcedureStepDescription", "")
    ref.ScheduledProtocolCodeSequence = sps.get("ScheduledProtocolCodeSequence", [])
    return ref


def n_create_attributes(items: Sequence[Dataset], station_ae: str, modality: str = "") -> Dataset:
    """IN PROGRESS for the worklist items performed together (two or more: the group
    case), or, with no items, an unscheduled procedure with a Study UID of its own."""
    now = datetime.now()
    first = items[0] if items else Dataset()
    ds = Dataset()
    ds.ScheduledStepAttributesSequence = [_step_reference(i) for i in items] or [_unscheduled_reference()]
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        setattr(ds, keyword, first.get(keyword, ""))
    step = first.ScheduledProcedureStepSequence[0] if first.get("ScheduledProcedureStepSequence") else Dataset()
    ds.PerformedProcedureStepID = f"PPS{now:%H%M%S%f}"[:16]
    ds.PerformedStationAETitle = station_ae
    ds.PerformedStationName = station_ae
    ds.PerformedLocation = ""
    ds.PerformedProcedureStepStartDate = now.strftime("%Y%m%d")
    ds.PerformedProcedureStepStartTime = now.strftime("%H%M%S")
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = first.get("RequestedProcedureDescription", "")
    ds.PerformedProcedureTypeDescription = ""
    ds.ProcedureCodeSequence = []
    ds.Modality = modality or step.get("Modality", "") or "OT"
    ds.StudyID = ""
    ds.PerformedProtocolCodeSequence = step.get("ScheduledProtocolCodeSequence", [])
    ds.PerformedSeriesSequence = []
    return ds


def _unscheduled_reference() -> Dataset:
    ref = Dataset()
    ref.StudyInstanceUID = generate_uid()
    for keyword in ("AccessionNumber", "RequestedProcedureID", "ScheduledProcedureStepID"):
        setattr(ref, keyword, "")
    ref.ReferencedStudySequence = []
    return ref


def n_set_attributes(status: str) -> Dataset:
    """COMPLETED (with one performed series) or DISCONTINUED (with a CID 9300 reason)."""
    now = datetime.now()
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = now.strftime("%Y%m%d")
    ds.PerformedProcedureStepEndTime = now.strftime("%H%M%S")
    if status == "DISCONTINUED":
        ds.PerformedProcedureStepDiscontinuationReasonCodeSequence = [_code(*_DISCONTINUED_REASON)]
        return ds
    series = Dataset()
    series.SeriesInstanceUID = generate_uid()
    series.SeriesDescription = "simulated"
    series.RetrieveAETitle = ""
    series.PerformingPhysicianName = ""
    series.OperatorsName = ""
    series.ProtocolName = "simulated"
    series.ReferencedImageSequence = []
    series.ReferencedNonImageCompositeSOPInstanceSequence = []
    ds.PerformedSeriesSequence = [series]
    return ds


class ModalitySimulator:
    def __init__(self, target: Target) -> None:
        self.target = target

    @contextmanager
    def _association(self, sop_class: str) -> Iterator[Association]:
        t = self.target
        ae = AE(ae_title=t.calling_ae)
        ae.add_requested_context(sop_class)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = t.timeout
        assoc = ae.associate(t.host, t.port, ae_title=t.called_ae)
        if not assoc.is_established:
            raise ConnectionError(f"no association with {t.called_ae} at {t.host}:{t.port}")
        try:
            yield assoc
        finally:
            assoc.release()

    def query(self, identifier: Dataset) -> tuple[int, list[Dataset]]:
        """(final C-FIND status, the pending answers)."""
        answers: list[Dataset] = []
        final = -1
        with self._association(ModalityWorklistInformationFind) as assoc:
            for status, identifier_out in assoc.send_c_find(identifier, ModalityWorklistInformationFind):
                if not status:
                    raise ConnectionError("C-FIND got no answer")
                final = int(status.Status)
                if final in (0xFF00, 0xFF01) and identifier_out is not None:
                    answers.append(identifier_out)
        return final, answers

    def create(self, attributes: Dataset) -> tuple[int, str]:
        """(N-CREATE status, the instance UID): the modality makes the UID."""
        uid = generate_uid()
        with self._association(ModalityPerformedProcedureStep) as assoc:
            status, _ = assoc.send_n_create(attributes, ModalityPerformedProcedureStep, uid)
        return _status(status), uid

    def update(self, uid: str, attributes: Dataset) -> int:
        with self._association(ModalityPerformedProcedureStep) as assoc:
            status, _ = assoc.send_n_set(attributes, ModalityPerformedProcedureStep, uid)
        return _status(status)


def _status(status: Dataset | None) -> int:
    if not status:
        raise ConnectionError("no answer to the MPPS request")
    return int(status.Status)
