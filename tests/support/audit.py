"""Checking audit messages: the PS3.15 A.5.1 schema (RELAX NG, tests/support/
audit_message.rng) and the key that says which event a message reports."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

_SCHEMA = etree.RelaxNG(etree.parse(str(Path(__file__).with_name("audit_message.rng"))))


def valid_message(xml: bytes) -> etree._Element:
    """The parsed AuditMessage, or AssertionError with the schema's complaint."""
    root = etree.fromstring(xml)
    assert _SCHEMA.validate(root), str(_SCHEMA.error_log)
    return root


def event_key(root: etree._Element) -> tuple[str, str, str]:
    """(EventID code, EventActionCode, EventTypeCode code or '')."""
    ident = root.find("EventIdentification")
    assert ident is not None
    event_type = ident.find("EventTypeCode")
    return (
        str(ident.find("EventID").get("csd-code")),  # type: ignore[union-attr]
        str(ident.get("EventActionCode")),
        str(event_type.get("csd-code")) if event_type is not None else "",
    )


def patient_ids(root: etree._Element) -> list[str]:
    return [
        str(o.get("ParticipantObjectID"))
        for o in root.iter("ParticipantObjectIdentification")
        if o.get("ParticipantObjectTypeCodeRole") == "1"
    ]
