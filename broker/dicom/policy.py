"""Association policy: which calling AE titles may associate, from which addresses, for
which services — decided when the A-ASSOCIATE-RQ arrives (pynetdicom EVT_REQUESTED).

Refusals use the A-ASSOCIATE-RJ reasons of PS3.8 9.3.4 (rejected-permanent, source
service-user): 7 "called AE title not recognized", 3 "calling AE title not recognized"
— also for a known AE title calling from an address it is not bound to, since from
there it is not recognized. A known caller asking for a service it is not allowed is
not refused as a whole: PS3.8 9.3.3.2 lets the acceptor reject each presentation
context, and pynetdicom answers result 3 "abstract-syntax-not-supported" for a SOP
class the association does not offer; its other contexts are accepted.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pydicom.uid import UID
from pynetdicom import evt
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityPerformedProcedureStep,
    ModalityPerformedProcedureStepRetrieve,
    ModalityWorklistInformationFind,
    Verification,
)

from broker.config import SERVICES, CallerConfig, DicomConfig, Service
from broker.security import DICOM_ASSOCIATION, DICOM_SERVICE, SecurityAlerts

REJECTED_PERMANENT, SERVICE_USER = 0x01, 0x01
CALLING_AE_NOT_RECOGNIZED, CALLED_AE_NOT_RECOGNIZED = 0x03, 0x07

#: A service's SOP classes: `mpps` is reporting (N-CREATE/N-SET) and retrieving (N-GET).
SERVICE_SOP_CLASSES: dict[Service, tuple[UID, ...]] = {
    "verification": (Verification,),
    "worklist": (ModalityWorklistInformationFind,),
    "mpps": (ModalityPerformedProcedureStep, ModalityPerformedProcedureStepRetrieve),
}


@dataclass(frozen=True)
class Rejection:
    reason: int  # PS3.8 9.3.4 diagnostic, source service-user
    detail: str


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d; match it as IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


class AssociationPolicy:
    def __init__(self, config: DicomConfig) -> None:
        self._ae_title = config.ae_title.strip()
        self._callers = {ae.strip(): caller for ae, caller in config.callers.items()}
        self._accept_unknown = config.accept_unknown_callers

    def rejection(self, called: str, calling: str, address: str) -> Rejection | None:
        """Why this association request is refused; None when it may proceed."""
        if called.strip() != self._ae_title:
            return Rejection(CALLED_AE_NOT_RECOGNIZED, f"called AE title {called.strip()!r} is not ours")
        caller = self._callers.get(calling.strip())
        if caller is None:
            return None if self._accept_unknown else Rejection(CALLING_AE_NOT_RECOGNIZED, "unknown calling AE title")
        if caller.addresses and not any(_ip(address) in net for net in caller.addresses):
            return Rejection(CALLING_AE_NOT_RECOGNIZED, "calling AE title not allowed from this address")
        return None

    def services(self, calling: str) -> frozenset[Service]:
        caller: CallerConfig | None = self._callers.get(calling.strip())
        return frozenset(caller.services if caller else SERVICES)


def admit(event: evt.Event, policy: AssociationPolicy, alerts: SecurityAlerts) -> None:
    """EVT_REQUESTED handler: refuse the association, or narrow what it may offer to
    the caller's services. Each refusal is reported once to `alerts`."""
    assoc = event.assoc
    request = assoc.requestor.primitive
    assert isinstance(request, A_ASSOCIATE)
    calling, address = str(request.calling_ae_title).strip(), assoc.requestor.address
    peer = f"{calling}@{address}"
    rejection = policy.rejection(str(request.called_ae_title), calling, address)
    if rejection is not None:
        alerts.refused(DICOM_ASSOCIATION, peer, f"A-ASSOCIATE-RJ 1/1/{rejection.reason}: {rejection.detail}")
        assoc.acse.send_reject(REJECTED_PERMANENT, SERVICE_USER, rejection.reason)
        assoc.kill()
        return
    allowed = {uid for s in policy.services(calling) for uid in SERVICE_SOP_CLASSES[s]}
    contexts = assoc.acceptor.supported_contexts
    assoc.acceptor.supported_contexts = [cx for cx in contexts if cx.abstract_syntax in allowed]
    requested = {cx.abstract_syntax for cx in request.presentation_context_definition_list}
    refused = sorted(
        name for name, uids in SERVICE_SOP_CLASSES.items() for uid in uids if uid in requested and uid not in allowed
    )
    if refused:
        alerts.refused(DICOM_SERVICE, peer, f"presentation contexts rejected for {', '.join(refused)}")
