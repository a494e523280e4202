"""C-FIND pending responses as ready bytes, handed to the association's socket owner.

Stock pynetdicom spends 1 to 1.5 ms per answer: a response primitive, a command Dataset
encoded by pydicom, PDV fragments queued to the DUL thread and a thread hop per PDU.
For a worklist of thousands of items that dominates the query. The pending responses
of one C-FIND differ only in their identifier, so the command set (PS3.7 9.3.2.2,
always Implicit VR Little Endian) is encoded once per query and each answer is one
write of two P-DATA-TF PDUs (PS3.8 9.3.5): command, then data set.

The bytes are not written from the handler's thread: the association's DUL thread owns
its socket (broker/dicom/reactor.py; a TLS socket cannot be read on one thread while
another writes) and sends them in order with pynetdicom's own primitives, so the final
response follows them: Success or Cancel as bytes too (reactor.RawFinalStatus), a
failure with its Error Comment through pynetdicom.
"""

from __future__ import annotations

from pynetdicom.association import Association
from pynetdicom.events import Event

from broker.dicom.pdata import command_set, p_data
from broker.dicom.reactor import MAX_QUEUED_BYTES, EventDrivenDUL
from broker.dicom.status import PENDING
from broker.gate import FifoGate

#: Answers handed over together: one queue entry and one wake-up of the socket's owner
#: for a few dozen answers, not one each; small next to its queue-ahead.
BATCH_BYTES = MAX_QUEUED_BYTES // 4


class PendingResponses:
    """Writes the pending responses of one C-FIND request on its association."""

    def __init__(self, event: Event, gate: FifoGate | None = None) -> None:
        """`gate`: the place the query holds while it computes (given up while the
        socket is full, and after its quantum when others wait)."""
        self._assoc: Association = event.assoc
        assert isinstance(self._assoc.dul, EventDrivenDUL), "accepted through GuardedRequestHandler"
        self._dul = self._assoc.dul
        self._context_id = int(event.context.context_id or 0)
        self._max_pdu = int(self._assoc.requestor.maximum_length or 0)
        request = event.request
        command = command_set(str(request.AffectedSOPClassUID), int(request.MessageID or 0), PENDING)
        self._command = p_data(self._context_id, command, self._max_pdu, command=True)
        self._batch: list[bytes] = []
        self._batched = 0
        self._gate = gate

    def send(self, identifier: bytes) -> bool:
        """Add one answer; they are handed to the socket's owner a few KiB at a time
        (`flush` hands over the rest). False once the connection cannot take them (the
        caller aborts)."""
        self._batch.append(self._command + p_data(self._context_id, identifier, self._max_pdu, command=False))
        self._batched += len(self._batch[-1])
        return self._batched < BATCH_BYTES or self.flush()

    def flush(self) -> bool:
        """Hand the answers added so far to the socket's owner, before the final status."""
        batch, self._batch, self._batched = self._batch, [], 0
        if not batch:
            return True
        if self._gate is None:
            return self._dul.write(batch)
        written = self._dul.write(batch, self._gate.stepped_out)
        self._gate.turn_point()
        return written

    @property
    def write_failed(self) -> bool:
        """Whether a write on the socket failed (rather than the peer leaving first)."""
        return self._dul.write_failed
