"""Modality Performed Procedure Step SCP (RAD-6 N-CREATE, RAD-7 N-SET).

The handlers translate and delegate to the PPS Manager; every refusal is answered with
the status `broker.errors` assigns (e.g. 0x0110 + Error ID 0xA710 for an update of a
final MPPS), and even a defect answers 0x0110 rather than dropping the association.
"""

from __future__ import annotations

import logging
from typing import cast

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import evt
from pynetdicom.dimse_primitives import N_CREATE, N_GET, N_SET

from broker.actors.pps_manager import PpsManager
from broker.dicom.audit import requestor
from broker.dicom.refusals import dimse_refusal
from broker.dicom.status import SUCCESS
from broker.domain.errors import DomainError
from broker.mapping.mpps import merge, performed_step_from
from broker.mapping.profile import MppsRules
from broker.metrics import Metrics

log = logging.getLogger(__name__)


def _refusal(exc: Exception) -> Dataset:
    refusal = dimse_refusal(exc)
    status = Dataset()
    status.Status = refusal.status
    status.ErrorComment = refusal.comment[:64]
    if refusal.error_id is not None:
        status.ErrorID = refusal.error_id
    return status


def _refused(operation: str, uid: str, exc: Exception, metrics: Metrics) -> Dataset:
    """Logged, counted, and the answer the modality gets."""
    metrics.mpps_done(operation, "refused")
    if isinstance(exc, DomainError):
        log.info("MPPS %s %s refused: %s", operation, uid, exc)
    else:
        log.exception("MPPS %s %s failed", operation, uid)
    return _refusal(exc)


def handle_n_create(
    event: evt.Event, manager: PpsManager, rules: MppsRules, uid_prefix: str | None, metrics: Metrics
) -> tuple[object, Dataset | None]:
    """The modality may leave the SOP Instance UID to us (PS3.4 F.7.2.1.1): then we
    make one and return it, or the modality cannot send its N-SET."""
    request_uid = cast(N_CREATE, event.request).AffectedSOPInstanceUID
    uid = str(request_uid) if request_uid else generate_uid(prefix=f"{uid_prefix}." if uid_prefix else None)
    try:
        pps = performed_step_from(event.attribute_list, uid, rules)
        manager.rad6_modality_pps_in_progress(pps, requestor(event))
    except Exception as exc:
        return _refused("N-CREATE", uid, exc, metrics), None
    metrics.mpps_done("N-CREATE", pps.status.value)
    answer = Dataset()
    if not request_uid:
        answer.AffectedSOPInstanceUID = uid
    return SUCCESS, answer


def handle_n_get(event: evt.Event, manager: PpsManager) -> tuple[object, Dataset | None]:
    """MPPS Retrieve (PS3.4 F.8): the attributes the request lists, or all of them; an
    attribute the record lacks comes back empty (F.8.2.1.2: zero-length)."""
    uid = str(cast(N_GET, event.request).RequestedSOPInstanceUID)
    try:
        record = Dataset.from_json(manager.retrieve(uid))
    except Exception as exc:
        if not isinstance(exc, DomainError):
            log.exception("MPPS N-GET %s failed", uid)
        return _refusal(exc), None
    wanted = cast(N_GET, event.request).AttributeIdentifierList
    if not wanted:
        return SUCCESS, record
    answer = Dataset()
    for tag in wanted if isinstance(wanted, list) else [wanted]:
        answer[tag] = record[tag] if tag in record else DataElement(tag, dictionary_VR(tag), None)
    return SUCCESS, answer


def handle_n_set(
    event: evt.Event, manager: PpsManager, rules: MppsRules, metrics: Metrics
) -> tuple[object, Dataset | None]:
    uid = str(cast(N_SET, event.request).RequestedSOPInstanceUID)
    modification = event.modification_list
    try:
        pps = manager.rad7_modality_pps_update(uid, lambda stored: merge(stored, modification, rules), requestor(event))
    except Exception as exc:
        return _refused("N-SET", uid, exc, metrics), None
    metrics.mpps_done("N-SET", pps.status.value)
    return SUCCESS, Dataset()
