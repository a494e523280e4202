"""Limits on accepted DICOM sockets that stock pynetdicom does not enforce
(RELIABILITY.md D2 and D3).

pynetdicom reads a PDU with blocking `recv` calls and checks its ARTIM and idle timers
only between PDUs: a peer that sends a PDU header and then one byte every few seconds
holds an association thread for ever, and a PDU length of 0xFFFFFFFF is read for as
long as bytes come. P-DATA fragments are gathered until the last-fragment bit, with no
bound either. `PduGuard` reads each PDU against a deadline and a length cap, and counts
the fragments of each DIMSE message; past a limit the peer gets an A-ABORT and the
connection is closed. The checks run on the PDU header, before anything large is
allocated. `GuardedRequestHandler` also keeps silent connections from taking
association slots, and serves every association with the event-driven reactors of
broker/dicom/reactor.py (no polling; one thread reads and writes the socket).
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from socketserver import BaseServer
from typing import cast

from pynetdicom.association import Association
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.transport import AssociationSocket, RequestHandler

from broker.dicom.reactor import EventDrivenAssociation

log = logging.getLogger(__name__)

P_DATA_TF = 0x04
PDU_TYPES = range(0x01, 0x08)
#: A-ASSOCIATE-RQ/AC and the other non-data PDUs. Most are a few KiB, but a peer may
#: propose 128 presentation contexts (odd IDs 1-255) each with every transfer syntax it
#: knows: ~220 KiB for all of pydicom's (the conformance negotiation test does that).
MAX_CONTROL_PDU_BYTES = 256 * 1024
#: PS3.8 9.3.1: source 2 = DICOM UL service-provider; reason 6 = invalid PDU parameter value.
ABORT_INVALID_PARAMETER = (0x02, 0x06)


@dataclass(frozen=True)
class PduLimits:
    #: A PDU must arrive whole within this while the association is being negotiated (ARTIM)...
    association_seconds: float
    #: ... and within this once it is established (the network timeout).
    established_seconds: float
    #: The maximum P-DATA-TF length the broker offers (0: no limit, as PS3.8 allows).
    max_pdata_bytes: int
    #: Command or data set of one DIMSE message, all fragments together.
    max_message_bytes: int

    def pdu_cap(self, pdu_type: int) -> int:
        if pdu_type != P_DATA_TF:
            return MAX_CONTROL_PDU_BYTES
        return self.max_pdata_bytes or (1 << 32)


class PduGuard(AssociationSocket):
    """An AssociationSocket that enforces `PduLimits`. pynetdicom reads each PDU as
    `recv(6)` (type, reserved, length) then `recv(length)`; this class follows that."""

    limits: PduLimits
    _body_type: int | None
    _deadline: float
    _fragments: dict[bool, int]

    @classmethod
    def install(cls, assoc: Association, limits: PduLimits) -> None:
        """Turn the acceptor's socket into a guarded one. pynetdicom builds the socket
        inside `RequestHandler._create_association` (and queues its connection event
        there), so the instance is re-classed rather than replaced."""
        sock = cast(AssociationSocket, assoc.dul.socket)
        sock.__class__ = cls
        guard = cast(PduGuard, sock)
        guard.limits, guard._body_type, guard._deadline = limits, None, 0.0
        guard._fragments = {True: 0, False: 0}

    def recv(self, nr_bytes: int) -> bytearray:
        """The header or body pynetdicom asks for; fewer bytes when a limit is hit,
        which pynetdicom treats as a closed connection."""
        if self._body_type is None:
            return self._header(nr_bytes)
        pdu_type, self._body_type = self._body_type, None
        body = self._read(nr_bytes)
        if pdu_type == P_DATA_TF and self._message_too_large(body):
            return self._abort(f"DIMSE message over {self.limits.max_message_bytes} bytes")
        return body

    def _header(self, nr_bytes: int) -> bytearray:
        seconds = self.limits.established_seconds if self.assoc.is_established else self.limits.association_seconds
        self._deadline = time.monotonic() + seconds
        header = self._read(nr_bytes)
        if len(header) != 6:
            return header
        pdu_type, _, length = struct.unpack(">BBL", header)
        if pdu_type in PDU_TYPES:
            self._body_type = pdu_type
        if length > self.limits.pdu_cap(pdu_type):
            self._body_type = None
            return self._abort(f"PDU type 0x{pdu_type:02X} of {length} bytes")
        return header

    def _read(self, nr_bytes: int) -> bytearray:
        """Up to `nr_bytes`, stopping at the PDU deadline (a slow-loris peer) or EOF."""
        sock = cast(socket.socket, self.socket)
        data = bytearray()
        try:
            while len(data) < nr_bytes:
                sock.settimeout(max(self._deadline - time.monotonic(), 0.001))
                chunk = sock.recv(min(nr_bytes - len(data), 65536))
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            log.warning("closing DICOM connection from %s: PDU not received in time", self.assoc.requestor.address)
        except OSError:
            pass  # reset by the peer: pynetdicom sees the short read as a closed connection
        else:
            sock.settimeout(self.limits.established_seconds)  # a peer that stops reading our answers
        return data

    def _message_too_large(self, body: bytearray) -> bool:
        """Add this P-DATA-TF's presentation data values to their message's count
        (command and data set apart); a last fragment ends its count."""
        offset = 0
        while offset + 6 <= len(body):
            item_length = int.from_bytes(body[offset : offset + 4], "big")
            is_command, is_last = bool(body[offset + 5] & 0x01), bool(body[offset + 5] & 0x02)
            present = min(item_length, len(body) - offset - 4)  # a lying item length is pynetdicom's to refuse
            self._fragments[is_command] += max(present - 2, 0)
            if self._fragments[is_command] > self.limits.max_message_bytes:
                return True
            if is_last:
                self._fragments[is_command] = 0
            offset += 4 + item_length
        return False

    def _abort(self, reason: str) -> bytearray:
        log.warning("aborting DICOM association from %s: %s", self.assoc.requestor.address, reason)
        abort = A_ABORT_RQ()
        abort.source, abort.reason_diagnostic = ABORT_INVALID_PARAMETER
        self.send(abort.encode())
        return bytearray()


class GuardedRequestHandler(RequestHandler):
    """pynetdicom's request handler with `PduGuard` on every accepted socket. The
    server calls it as `handler(request, address, server)`: bind `limits` with
    `functools.partial`."""

    def __init__(self, request: socket.socket, client_address: object, server: BaseServer, *, limits: PduLimits):
        self.limits = limits  # before super().__init__, which handles the request
        super().__init__(request, client_address, server)

    def handle(self) -> None:
        """Start an association only for a connection that sends something. pynetdicom
        counts every association thread, negotiated or not, against the AE's maximum:
        a few dozen silent connections would otherwise lock modalities out (A-ASSOCIATE-RJ
        "local limit exceeded") until ARTIM expires. A silent one is closed after ARTIM."""
        if self._speaks_within(self.limits.association_seconds):
            super().handle()
            return
        log.info("closing DICOM connection from %s: nothing received", self.client_address[0])
        self.request.close()

    def _speaks_within(self, seconds: float) -> bool:
        """Whether bytes arrive within `seconds`; a connection closed unused (a port
        probe) does not count."""
        sock = self.request
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        if not select.select([sock], [], [], seconds)[0]:
            return False
        if isinstance(sock, ssl.SSLSocket):  # no MSG_PEEK on TLS: pynetdicom reads what came
            return True
        try:
            return bool(sock.recv(1, socket.MSG_PEEK))
        except OSError:
            return False

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        EventDrivenAssociation.install(assoc)
        PduGuard.install(assoc, self.limits)
        return assoc
