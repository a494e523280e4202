"""The DIMSE transport for MPPS forwarding (PPS Manager → Image Manager, RAD-6/7):
each outbox message is one N-CREATE or N-SET on a short association.

What each answer makes of the message (`Verdict`; statuses from PS3.7 Annex C):

- Success, and Warning (0x0001, 0x0107, 0x0116, 0xBxxx: the SCP took the operation and
  only remarks on attributes): delivered. A repeated N-CREATE answered 0x0111
  (duplicate instance) was delivered by an earlier attempt whose answer was lost.
- A rejected, aborted or unanswered association, and the statuses that say "not now"
  (0xA7xx out of resources, 0x0213 resource limitation): retried with backoff.
- Every other failure (0x0110 processing failure, e.g. an N-SET after COMPLETED,
  0x0112 no such instance, 0x0106/0x0120/0x0121 attribute errors, 0x0122 SOP class
  not supported, 0x0124 not authorized, 0xCxxx, ...), and an SCP that accepts no MPPS
  presentation context: refused, a dead letter that holds the MPPS's later operations
  until an operator requeues or skips it.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]
from pynetdicom.status import code_to_category

from broker.dicom.status import DUPLICATE_SOP_INSTANCE, RESOURCE_LIMITATION, SUCCESS
from broker.jobs.outbox_sender import Outcome, Verdict
from broker.store.outbox import Answer


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
        if not assoc.accepted_contexts:
            assoc.release()
            return Outcome(Verdict.REFUSED, Answer(text=f"{d.called_ae} accepts no MPPS presentation context"))
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
        answer = Answer(f"0x{code:04X}", str(status.get("ErrorComment", "")))
        return Outcome(verdict_of(code, message["op"]), answer)

    def close(self) -> None:
        """Associations are per message: nothing is kept open."""


def verdict_of(status: int, operation: str) -> Verdict:
    """What an N-CREATE ("create") or N-SET ("set") status makes of the message."""
    if status == SUCCESS or code_to_category(status) == "Warning":
        return Verdict.DELIVERED
    if operation == "create" and status == DUPLICATE_SOP_INSTANCE:
        return Verdict.DELIVERED
    if status >> 8 == 0xA7 or status == RESOURCE_LIMITATION:
        return Verdict.RETRY
    return Verdict.REFUSED
