"""Audit messages as rendered for each audited event: valid against the PS3.15 A.5.1
schema, with the EventID, action, participants and objects A.5.3 asks for, inside one
RFC 5424 syslog message."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest

from broker.audit.messages import AUDIT, AuditSource, DicomAuditMessages
from broker.domain.audit import (
    Action,
    Audited,
    AuditEvent,
    Outcome,
    PatientRef,
    Query,
    Requestor,
    command_events,
)
from broker.domain.commands import MergePatient
from broker.domain.model import Patient, PersonName
from broker.security import DICOM_ASSOCIATION
from support.audit import event_key, patient_ids, valid_message
from support.syslog import parse_rfc5424

AT = datetime(2026, 11, 23, 10, 5, 0)
SOURCE = AuditSource("broker-host", "HOSPITAL", "BROKER", "swf-broker", host="broker.example")
MODALITY = Requestor("MODALITY1", "10.0.0.7")
PATIENT = PatientRef("PAT001", "HOSPITAL", "DOE^JOHN")
MWL_FIND = "1.2.840.10008.5.1.4.31"

EVENTS = {
    "start": AuditEvent(Audited.APPLICATION_START, Action.EXECUTE, AT, requestor=Requestor("broker")),
    "patient": AuditEvent(Audited.PATIENT_RECORD, Action.CREATE, AT, requestor=Requestor("HIS|HOSPITAL"),
                          patient=PATIENT),
    "order": AuditEvent(Audited.ORDER_RECORD, Action.DELETE, AT, requestor=Requestor("RIS|HOSPITAL"),
                        patient=PATIENT, accession_number="ACC1", study_uids=("1.2.3",)),
    "procedure": AuditEvent(Audited.PROCEDURE_RECORD, Action.UPDATE, AT, requestor=MODALITY, patient=PATIENT,
                            mpps_uid="1.2.3.4", study_uids=("1.2.3",)),
    "unscheduled": AuditEvent(Audited.PROCEDURE_RECORD, Action.CREATE, AT, requestor=MODALITY, mpps_uid="1.2.3.4"),
    "query": AuditEvent(Audited.QUERY, Action.EXECUTE, AT, Outcome.MINOR_FAILURE, MODALITY,
                        query=Query(MWL_FIND, b"\x08\x00\x50\x00\x00\x00\x00\x00", "1.2.840.10008.1.2.1")),
    "alert": AuditEvent(Audited.SECURITY_ALERT, Action.EXECUTE, AT, Outcome.MINOR_FAILURE,
                        Requestor("INTRUDER@10.0.0.9"), alert=DICOM_ASSOCIATION, detail="unknown calling AE"),
}  # fmt: skip


def _render(event: AuditEvent) -> bytes:
    (message,) = DicomAuditMessages(SOURCE).messages_for(event)
    assert message.destination == AUDIT
    return message.payload


@pytest.mark.parametrize("name", list(EVENTS))
def test_every_event_is_one_valid_rfc5424_audit_message(name: str) -> None:
    syslog = parse_rfc5424(_render(EVENTS[name]))
    assert (syslog.pri, syslog.host, syslog.app, syslog.msgid) == (85, "broker.example", "swf-broker", "IHE+RFC-3881")
    root = valid_message(syslog.xml)
    source = root.find("AuditSourceIdentification")
    assert source is not None
    assert (source.get("AuditSourceID"), source.get("AuditEnterpriseSiteID")) == ("broker-host", "HOSPITAL")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("start", ("110100", "E", "110120")),
        ("patient", ("110110", "C", "")),
        ("order", ("110109", "D", "")),
        ("procedure", ("110111", "U", "")),
        ("query", ("110112", "E", "")),
        ("alert", ("110113", "E", "110126")),
    ],
)
def test_event_identification(name: str, key: tuple[str, str, str]) -> None:
    assert event_key(valid_message(parse_rfc5424(_render(EVENTS[name])).xml)) == key


def test_query_carries_the_identifier_as_received_under_its_sop_class() -> None:
    root = valid_message(parse_rfc5424(_render(EVENTS["query"])).xml)
    (query,) = root.iter("ParticipantObjectIdentification")
    assert query.get("ParticipantObjectID") == MWL_FIND
    assert query.find("ParticipantObjectIDTypeCode").get("csd-code") == "110181"  # type: ignore[union-attr]
    assert base64.b64decode(query.findtext("ParticipantObjectQuery") or "") == b"\x08\x00\x50\x00\x00\x00\x00\x00"
    requestor = [p for p in root.iter("ActiveParticipant") if p.get("UserIsRequestor") == "true"]
    assert [(p.get("UserID"), p.get("NetworkAccessPointID")) for p in requestor] == [("MODALITY1", "10.0.0.7")]
    assert root.find("EventIdentification").get("EventOutcomeIndicator") == "4"  # type: ignore[union-attr]


def test_procedure_record_names_patient_mpps_and_study() -> None:
    root = valid_message(parse_rfc5424(_render(EVENTS["procedure"])).xml)
    assert patient_ids(root) == ["PAT001^^^HOSPITAL"]
    assert [e.get("UID") for e in root.iter("MPPS")] == ["1.2.3.4"]
    assert [e.get("UID") for e in root.iter("StudyIDs")] == ["1.2.3"]


def test_merge_deletes_the_prior_record_and_updates_the_survivor() -> None:
    survivor = Patient("PAT001", "HOSPITAL", PersonName("DOE^JOHN"))
    events = command_events(MergePatient(survivor, "PAT009", "HOSPITAL"), None, AT, Requestor("HIS|HOSPITAL"))
    roots = [valid_message(parse_rfc5424(_render(e)).xml) for e in events]
    assert [(event_key(r)[1], patient_ids(r)) for r in roots] == [
        ("D", ["PAT009^^^HOSPITAL"]),
        ("U", ["PAT001^^^HOSPITAL"]),
    ]
