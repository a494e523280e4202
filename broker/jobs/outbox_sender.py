"""Drains the outbox: each destination's messages through its transport (MLLP for HL7
peers, DIMSE for MPPS forwarding), exactly as long as needed.

Delivered: marked sent. Refused by the peer (an HL7 AE/AR, a DIMSE failure status): it
will never be taken as it is, so it goes to the dead letters for an operator and the
messages behind it move on. Unreachable (OSError): deferred with exponential backoff,
and that destination pauses until then, so an outage costs one attempt per backoff
period, not one per queued message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from broker.store.outbox import PendingMessage, SqlOutboxQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    detail: str = ""


class Transport(Protocol):
    def send(self, payload: bytes) -> Outcome:
        """Deliver one message; raise OSError when the peer cannot be reached."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Backoff:
    initial: float
    maximum: float

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.maximum, self.initial * 2 ** min(attempts, 30)))


class OutboxSender:
    def __init__(
        self,
        queue: SqlOutboxQueue,
        transports: Mapping[str, Transport],
        backoff: Backoff,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._queue = queue
        self._transports = transports
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
            while True:  # again while it delivers: the next message of an order is due now
                progress = sum(
                    self._deliver(message)
                    for message in self._queue.due(self._clock())
                    if not self._paused(message.destination)
                )
                delivered += progress
                if not progress:
                    return delivered

    def _paused(self, destination: str) -> bool:
        until = self._paused_until.get(destination)
        return until is not None and self._clock() < until

    def _deliver(self, message: PendingMessage) -> int:
        transport = self._transports.get(message.destination)
        if transport is None:
            self._queue.mark_dead(message.id, f"no destination named {message.destination!r}")
            return 0
        try:
            outcome = transport.send(message.payload)
        except OSError as exc:
            retry_at = self._clock() + self._backoff.delay(message.attempts)
            self._paused_until[message.destination] = retry_at
            self._queue.defer(message.id, retry_at, f"{type(exc).__name__}: {exc}")
            log.warning("destination %s unreachable; retry at %s", message.destination, retry_at)
            return 0
        self._paused_until.pop(message.destination, None)
        if outcome.delivered:
            self._queue.mark_sent(message.id, self._clock())
            return 1
        self._queue.mark_dead(message.id, outcome.detail[:500])
        log.warning("destination %s refused message %d: %s", message.destination, message.id, outcome.detail[:40])
        return 0

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
