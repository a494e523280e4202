"""The DIMSE transport for MPPS forwarding (PPS Manager → Image Manager, RAD-6/7):
each outbox message is one N-CREATE or N-SET on a short association.

A failure status means the peer will not take it (dead letter); a rejected, aborted or
unanswered association means try again later. A repeated N-CREATE answered 0x0111
(duplicate instance) was delivered by an earlier attempt whose answer was lost.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]

from broker.dicom.status import DUPLICATE_SOP_INSTANCE, SUCCESS
from broker.jobs.outbox_sender import Outcome


@dataclass(frozen=True)
class DicomDestination:
    calling_ae: str
    called_ae: str
    host: str
    port: int
    timeout: float = 10.0
    #: TLS towards this SCP (broker.tls.client_context); None: plain TCP.
    tls: ssl.SSLContext | None = None
    server_name: str | None = None


def forwarding_ae(calling_ae: str, timeout: float = 10.0) -> AE:
    """The AE the PPS Manager forwards MPPS with (as SCU); the Conformance Statement
    reads its proposed presentation contexts."""
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(ModalityPerformedProcedureStep)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    return ae


class MppsTransport:
    def __init__(self, destination: DicomDestination) -> None:
        self._destination = destination

    def send(self, payload: bytes) -> Outcome:
        message = json.loads(payload)
        d = self._destination
        tls_args = (d.tls, d.server_name or d.host) if d.tls else None
        ae = forwarding_ae(d.calling_ae, d.timeout)
        assoc = ae.associate(d.host, d.port, ae_title=d.called_ae, tls_args=tls_args)
        if not assoc.is_established:
            raise ConnectionError(f"no association with {d.called_ae}")
        try:
            dataset = Dataset.from_json(message["dataset"])
            if message["op"] == "create":
                status, _ = assoc.send_n_create(dataset, ModalityPerformedProcedureStep, message["uid"])
            else:
                status, _ = assoc.send_n_set(dataset, ModalityPerformedProcedureStep, message["uid"])
        finally:
            assoc.release()
        if not status:
            raise ConnectionError(f"no answer from {d.called_ae}")
        code = int(status.Status)
        delivered = code == SUCCESS or (message["op"] == "create" and code == DUPLICATE_SOP_INSTANCE)
        return Outcome(delivered, f"0x{code:04X} {status.get('ErrorComment', '')}".strip())

    def close(self) -> None:
        """Associations are per message: nothing is kept open."""
