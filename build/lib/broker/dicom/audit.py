"""What the DICOM listener tells the audit trail: who asked (calling AE and address)
and the query as received. (Refused associations reach it through the SecurityAlerts
hook, `broker.security`.)"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from pynetdicom import evt
from pynetdicom.dimse_primitives import C_FIND

from broker.domain.audit import Action, Audited, AuditEvent, Outcome, Query, Requestor
from broker.domain.ports import AuditLog


def requestor(event: evt.Event) -> Requestor:
    return Requestor(event.assoc.requestor.ae_title, event.assoc.requestor.address)


def record_query(audit: AuditLog | None, event: evt.Event, outcome: Outcome) -> None:
    """Query (DCM 110112) for one C-FIND: the identifier exactly as encoded on the
    wire, under the SOP class and transfer syntax it came in."""
    if audit is None:
        return
    identifier = cast(C_FIND, event.request).Identifier
    query = Query(
        str(event.context.abstract_syntax),
        identifier.getvalue() if identifier is not None else b"",
        str(event.context.transfer_syntax),
    )
    audit.record(AuditEvent(Audited.QUERY, Action.EXECUTE, datetime.now(), outcome, requestor(event), query=query))
