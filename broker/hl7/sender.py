"""The MLLP transport for outbound HL7: one kept-open connection per destination.

The answer decides (HL7 v2.5 2.9.2 and Table 0008, original and enhanced mode):
AA/CA delivered; AR/CR ("rejected for a reason unrelated to content", may be resent)
retried later, like no answer at all; AE/CE ("error", the content was refused) a dead
letter. A reply without MSA-1, or with a code outside Table 0008, is no answer.
"""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass

from broker.hl7.mllp import exchange
from broker.jobs.outbox_sender import Outcome, Verdict
from broker.store.outbox import Answer

#: Table 0008 acknowledgment codes and what each makes of the message.
VERDICTS = {
    "AA": Verdict.DELIVERED,
    "CA": Verdict.DELIVERED,
    "AR": Verdict.RETRY,
    "CR": Verdict.RETRY,
    "AE": Verdict.REFUSED,
    "CE": Verdict.REFUSED,
}
_SEGMENTS = re.compile(r"\r\n|\r|\n")


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
    answer = acknowledgement(reply)
    return answer.code, answer.text


def acknowledgement(reply: bytes) -> Answer:
    """MSA-1, MSA-3 and the ERR segments (as received, one per line) of an ACK."""
    separator = reply[3:4].decode("ascii", errors="replace") if reply.startswith(b"MSH") else "|"
    code, text, errors = "", "", []
    for line in _SEGMENTS.split(reply.decode("latin-1")):
        if line.startswith("MSA") and not code:
            fields = [*line.split(separator), "", "", ""]
            code, text = fields[1].strip(), fields[3].strip()
        elif line.startswith("ERR"):
            errors.append(line[4:])
    return Answer(code, text, "\n".join(errors))


def outcome_of(reply: bytes) -> Outcome:
    answer = acknowledgement(reply)
    return Outcome(VERDICTS.get(answer.code, Verdict.RETRY), answer, reply)


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
        return outcome_of(reply)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
