"""Audited events → DICOM audit messages (PS3.15 A.5.1 schema, A.5.3 message types),
each wrapped as one RFC 5424 syslog message ready for the outbox.

Every coded value carries csd-code, codeSystemName and originalText, as the schema's
CodedValueType requires; every participant object has a name or a query (the schema
requires one of them).
"""

from __future__ import annotations

import base64
import os
import re
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element, SubElement, tostring

from broker.config import BrokerConfig
from broker.domain.audit import Audited, AuditEvent, PatientRef
from broker.domain.ports import OutboundMessage
from broker.security import DICOM_ASSOCIATION, HL7_SENDER, TLS_HANDSHAKE

#: Outbox destination of the audit messages (the syslog transport, or local only).
AUDIT = "audit"

#: EventID of each kind (DCM code, meaning).
_EVENT_ID = {
    Audited.APPLICATION_START: ("110100", "Application Activity"),
    Audited.APPLICATION_STOP: ("110100", "Application Activity"),
    Audited.PATIENT_RECORD: ("110110", "Patient Record"),
    Audited.ORDER_RECORD: ("110109", "Order Record"),
    Audited.PROCEDURE_RECORD: ("110111", "Procedure Record"),
    Audited.QUERY: ("110112", "Query"),
    Audited.SECURITY_ALERT: ("110113", "Security Alert"),
}
_EVENT_TYPE = {
    Audited.APPLICATION_START: ("110120", "Application Start"),
    Audited.APPLICATION_STOP: ("110121", "Application Stop"),
}
#: Security Alert EventTypeCode (CID 403) of each kind of refusal: a peer whose identity
#: (certificate, AE title and address, HL7 sender) is refused failed node authentication;
#: a known peer asking for a service it may not use, and any other kind: restricted function.
_NODE_AUTHENTICATION = ("110126", "Node Authentication")
_ALERT_TYPE = {
    TLS_HANDSHAKE: _NODE_AUTHENTICATION,
    DICOM_ASSOCIATION: _NODE_AUTHENTICATION,
    HL7_SENDER: _NODE_AUTHENTICATION,
}
_RESTRICTED_FUNCTION = ("110132", "Use of Restricted Function")
_APPLICATION = ("110150", "Application")
_LAUNCHER = ("110151", "Application Launcher")
_DESTINATION = ("110152", "Destination Role ID")
_SOURCE = ("110153", "Source Role ID")
_PATIENT_NUMBER = ("2", "Patient Number", "RFC-3881")
_STUDY_UID = ("110180", "Study Instance UID", "DCM")
_SOP_CLASS_UID = ("110181", "SOP Class UID", "DCM")
_NODE_ID = ("110182", "Node ID", "DCM")
#: RFC 5424 PRI: facility 10 (security/authorization), severity 5 (notice), as ITI-20 uses.
_PRI = 10 * 8 + 5
#: RFC 5424 MSGID for an audit message (IHE ITI TF-2 3.20.7.2).
MSGID = "IHE+RFC-3881"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class AuditSource:
    """Who reports: the broker as AuditSourceIdentification and as an active participant."""

    source_id: str
    site_id: str
    ae_title: str
    app_name: str
    host: str = socket.gethostname()

    @property
    def process(self) -> str:
        return str(os.getpid())

    @classmethod
    def configured(cls, config: BrokerConfig) -> AuditSource:
        audit = config.audit
        source_id = audit.audit_source_id or socket.gethostname()
        return cls(source_id, audit.enterprise_site_id, config.dicom.ae_title, audit.app_name)


class DicomAuditMessages:
    """The AuditTrail port: one syslog message per event, for the `audit` destination."""

    def __init__(self, source: AuditSource) -> None:
        self._source = source

    def messages_for(self, event: AuditEvent) -> list[OutboundMessage]:
        payload = syslog_message(event.at, self._source, audit_xml(event, self._source))
        return [OutboundMessage(AUDIT, uuid.uuid4().hex, payload)]  # no order among audit messages


def syslog_message(at: datetime, source: AuditSource, xml: bytes) -> bytes:
    """RFC 5424: HEADER (PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID), no
    structured data, and the XML as a UTF-8 MSG with its BOM."""
    stamp = at.astimezone().isoformat(timespec="milliseconds")
    host, app = _printable(source.host, 255), _printable(source.app_name, 48)
    header = f"<{_PRI}>1 {stamp} {host} {app} {source.process} {MSGID} -"
    return header.encode("ascii") + b" " + _BOM + xml


def _printable(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, or the nil value."""
    text = "".join(c for c in value if "!" <= c <= "~")[:limit]
    return text or "-"


def audit_xml(event: AuditEvent, source: AuditSource) -> bytes:
    root = Element("AuditMessage")
    _event_identification(root, event)
    _participants(root, event, source)
    audit_source = SubElement(root, "AuditSourceIdentification", AuditSourceID=source.source_id)
    if source.site_id:
        audit_source.set("AuditEnterpriseSiteID", source.site_id)
    SubElement(audit_source, "AuditSourceTypeCode", {"csd-code": "4"})  # application server process
    _objects(root, event)
    _xml_characters(root)
    xml: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


#: Characters XML 1.0 cannot carry at all, not even as references (2.2 Char): C0 other
#: than TAB, LF, CR; U+FFFE/U+FFFF; lone surrogates.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml_characters(root: Element) -> None:
    """Values come from the wire (AE titles, patient IDs, HL7 senders): ElementTree
    escapes `<&"` but writes a NUL or ESC as is, and the message would not parse. Each
    such character becomes U+FFFD."""
    for element in root.iter():
        if element.text:
            element.text = _NOT_XML.sub("\ufffd", element.text)
        for key, value in element.attrib.items():
            element.set(key, _NOT_XML.sub("\ufffd", value))


def _coded(parent: Element, tag: str, code: str, meaning: str, system: str = "DCM") -> None:
    SubElement(parent, tag, {"csd-code": code, "codeSystemName": system, "originalText": meaning})


def _event_identification(root: Element, event: AuditEvent) -> None:
    ident = SubElement(
        root,
        "EventIdentification",
        EventActionCode=event.action.value,
        EventDateTime=event.at.astimezone().isoformat(timespec="milliseconds"),
        EventOutcomeIndicator=str(event.outcome.value),
    )
    _coded(ident, "EventID", *_EVENT_ID[event.what])
    event_type = _EVENT_TYPE.get(event.what)
    if event.what is Audited.SECURITY_ALERT:
        event_type = _ALERT_TYPE.get(event.alert, _RESTRICTED_FUNCTION)
    if event_type:
        _coded(ident, "EventTypeCode", *event_type)
    if event.detail:
        SubElement(ident, "EventOutcomeDescription").text = event.detail


def _participants(root: Element, event: AuditEvent, source: AuditSource) -> None:
    """The broker itself, then whoever asked (the launcher of the application, the
    calling AE, the HL7 sending application)."""
    starting = event.what in (Audited.APPLICATION_START, Audited.APPLICATION_STOP)
    broker = SubElement(
        root,
        "ActiveParticipant",
        UserID=source.ae_title,
        AlternativeUserID=source.process,
        UserName=source.app_name,
        UserIsRequestor="false" if event.requestor else "true",
        NetworkAccessPointID=source.host,
        NetworkAccessPointTypeCode="1",
    )
    if event.what is not Audited.SECURITY_ALERT:
        _coded(broker, "RoleIDCode", *(_APPLICATION if starting else _DESTINATION))
    if event.requestor is None:
        return
    requestor = SubElement(root, "ActiveParticipant", UserID=event.requestor.user_id, UserIsRequestor="true")
    if event.what is not Audited.SECURITY_ALERT:
        _coded(requestor, "RoleIDCode", *(_LAUNCHER if starting else _SOURCE))
    if event.requestor.address:
        requestor.set("NetworkAccessPointID", event.requestor.address)
        requestor.set("NetworkAccessPointTypeCode", "2")


def _objects(root: Element, event: AuditEvent) -> None:
    if event.patient is not None:
        _patient(root, event, event.patient)
    elif event.what is Audited.PROCEDURE_RECORD:
        _procedure_step(root, event)
    if event.query is not None:
        query = _object(root, "2", "3", _SOP_CLASS_UID, event.query.sop_class_uid)
        SubElement(query, "ParticipantObjectQuery").text = _b64(event.query.identifier)
        syntax = _b64(event.query.transfer_syntax.encode())
        SubElement(query, "ParticipantObjectDetail", type="TransferSyntax", value=syntax)
    if event.what is Audited.SECURITY_ALERT and event.requestor is not None:
        subject = _object(root, "2", "13", _NODE_ID, event.requestor.user_id)
        SubElement(subject, "ParticipantObjectName").text = event.alert
        SubElement(subject, "ParticipantObjectDetail", type="Alert Description", value=_b64(event.detail.encode()))


def _object(root: Element, type_code: str, role: str, id_type: tuple[str, str, str], object_id: str) -> Element:
    element = SubElement(
        root,
        "ParticipantObjectIdentification",
        ParticipantObjectID=object_id,
        ParticipantObjectTypeCode=type_code,
        ParticipantObjectTypeCodeRole=role,
    )
    _coded(element, "ParticipantObjectIDTypeCode", id_type[0], id_type[1], id_type[2])
    return element


def _patient(root: Element, event: AuditEvent, patient: PatientRef) -> None:
    """The patient (ID in HL7 CX form, with its issuer), and the order's or procedure's
    accession, MPPS and studies in its description."""
    cx = f"{patient.patient_id}^^^{patient.issuer}" if patient.issuer else patient.patient_id
    element = _object(root, "1", "1", _PATIENT_NUMBER, cx)
    SubElement(element, "ParticipantObjectName").text = patient.name or patient.patient_id
    _description(element, event)


def _procedure_step(root: Element, event: AuditEvent) -> None:
    """An MPPS linked to no order (unscheduled): the step stands for its unknown patient."""
    study = event.study_uids[0] if event.study_uids else event.mpps_uid
    element = _object(root, "2", "3", _STUDY_UID, study)
    SubElement(element, "ParticipantObjectName").text = "unscheduled procedure step"
    _description(element, event)


def _description(element: Element, event: AuditEvent) -> None:
    if not (event.mpps_uid or event.accession_number or event.study_uids):
        return
    description = SubElement(element, "ParticipantObjectDescription")
    if event.mpps_uid:
        SubElement(description, "MPPS", UID=event.mpps_uid)
    if event.accession_number:
        SubElement(description, "Accession", Number=event.accession_number)
    if event.study_uids:
        contains = SubElement(description, "ParticipantObjectContainsStudy")
        for uid in event.study_uids:
            SubElement(contains, "StudyIDs", UID=uid)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")
