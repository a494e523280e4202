"""The MLLP transport for outbound HL7: one kept-open connection per destination.

Delivered means the peer answered AA or CA (HL7 original or enhanced mode).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from broker.hl7.mllp import exchange
from broker.jobs.outbox_sender import Outcome


@dataclass(frozen=True)
class Destination:
    host: str
    port: int
    timeout: float = 10.0
    #: TLS towards this destination (broker.tls.client_context); None: plain TCP.
    tls: ssl.SSLContext | None = None
    server_name: str | None = None


def acknowledgement_code(reply: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-3) of an ACK; ("", "") when there is no MSA."""
    separator = reply[3:4].decode("ascii", errors="replace") if reply.startswith(b"MSH") else "|"
    for line in reply.decode("latin-1").split("\r"):
        if line.startswith("MSA"):
            fields = [*line.split(separator), "", "", ""]
            return fields[1].strip(), fields[3].strip()
    return "", ""


class MllpTransport:
    """Reopens its connection after any failure."""

    def __init__(self, destination: Destination) -> None:
        self._destination = destination
        self._sock: socket.socket | None = None

    def send(self, payload: bytes) -> Outcome:
        if self._sock is None:
            d = self._destination
            sock = socket.create_connection((d.host, d.port), timeout=d.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = d.tls.wrap_socket(sock, server_hostname=d.server_name or d.host) if d.tls else sock
        try:
            reply = exchange(self._sock, payload)
        except Exception:
            self.close()
            raise
        code, text = acknowledgement_code(reply)
        return Outcome(code in ("AA", "CA"), f"{code or 'no MSA'}: {text}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
