"""Outbound HL7: drains the outbox to each destination over MLLP.

A message is marked sent only on AA/CA. AE/AR (and CE/CR) mean the peer will never
take it as it is: it goes to the dead letters for an operator, and the messages behind
it move on. A connection failure or a timeout defers the message with exponential
backoff and pauses that destination until then, so an outage costs one attempt per
backoff period, not one per queued message.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from broker.hl7.mllp import exchange
from broker.store.outbox import PendingMessage, SqlOutboxQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destination:
    host: str
    port: int
    timeout: float = 10.0


@dataclass(frozen=True)
class Backoff:
    initial: float
    maximum: float

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.maximum, self.initial * 2 ** min(attempts, 30)))


def acknowledgement_code(reply: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-3) of an ACK; ("", "") when there is no MSA."""
    separator = reply[3:4].decode("ascii", errors="replace") if reply.startswith(b"MSH") else "|"
    for line in reply.decode("latin-1").split("\r"):
        if line.startswith("MSA"):
            fields = [*line.split(separator), "", "", ""]
            return fields[1].strip(), fields[3].strip()
    return "", ""


class _Connection:
    """One kept-open MLLP connection to a destination, reopened after any failure."""

    def __init__(self, destination: Destination) -> None:
        self._destination = destination
        self._sock: socket.socket | None = None

    def send(self, payload: bytes) -> bytes:
        if self._sock is None:
            d = self._destination
            self._sock = socket.create_connection((d.host, d.port), timeout=d.timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            return exchange(self._sock, payload)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class OutboxSender:
    def __init__(
        self,
        queue: SqlOutboxQueue,
        destinations: dict[str, Destination],
        backoff: Backoff,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._queue = queue
        self._destinations = destinations
        self._connections = {name: _Connection(d) for name, d in destinations.items()}
        self._backoff = backoff
        self._clock = clock
        self._paused_until: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def drain(self) -> int:
        """Send what is due; return how many were delivered. One drain at a time, in
        this process and across brokers sharing the database."""
        with self._lock, self._queue.lease() as mine:
            if not mine:
                return 0
            delivered = 0
            for message in self._queue.due(self._clock()):
                if self._paused(message.destination):
                    continue
                delivered += self._deliver(message)
            return delivered

    def _paused(self, destination: str) -> bool:
        until = self._paused_until.get(destination)
        return until is not None and self._clock() < until

    def _deliver(self, message: PendingMessage) -> int:
        connection = self._connections.get(message.destination)
        if connection is None:
            self._queue.mark_dead(message.id, f"no destination named {message.destination!r}")
            return 0
        try:
            reply = connection.send(message.payload)
        except OSError as exc:
            retry_at = self._clock() + self._backoff.delay(message.attempts)
            self._paused_until[message.destination] = retry_at
            self._queue.defer(message.id, retry_at, f"{type(exc).__name__}: {exc}")
            log.warning("destination %s unreachable; retry at %s", message.destination, retry_at)
            return 0
        self._paused_until.pop(message.destination, None)
        code, text = acknowledgement_code(reply)
        if code in ("AA", "CA"):
            self._queue.mark_sent(message.id, self._clock())
            return 1
        self._queue.mark_dead(message.id, f"{code or 'no MSA'}: {text}"[:500])
        log.warning("destination %s refused message %d: %s", message.destination, message.id, code)
        return 0

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
