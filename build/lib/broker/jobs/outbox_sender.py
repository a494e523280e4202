"""Drains the outbox: each destination's messages through its transport (MLLP for HL7
peers, DIMSE for MPPS forwarding), exactly as long as needed.

Delivered: marked sent. Refused by the peer (an HL7 AE/AR, a DIMSE failure status): it
will never be taken as it is, so it goes to the dead letters for an operator and the
messages behind it move on. Unreachable (OSError): deferred with exponential backoff,
and that destination pauses until then (for every broker on the database: see
`SqlOutboxQueue.lease_due`), so an outage costs one attempt per backoff period, not one
per queued message.
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
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        """`lease` must be longer than two sends to the slowest destination: a batch
        stops at half its lease, so no message is sent after its lease ran out (and
        another broker could have taken it)."""
        self._queue = queue
        self._transports = transports
        self._backoff = backoff
        self._clock = clock
        self._lease = lease
        self._lock = threading.Lock()

    def drain(self) -> int:
        """Send what is due; return how many were delivered. One drain at a time in
        this process; brokers sharing the database drain side by side, each leasing
        other messages."""
        with self._lock:
            delivered = 0
            while True:  # again while it delivers: the next message of an order is due now
                start = self._clock()
                progress = self._send(self._queue.lease_due(start, start + self._lease), start + self._lease / 2)
                delivered += progress
                if not progress:
                    return delivered

    def _send(self, batch: list[PendingMessage], stop_at: datetime) -> int:
        """Deliver a leased batch in order; what is left (its destination went down in
        this batch, or the lease is half gone) is released for the next round."""
        delivered, down = 0, set[str]()
        for index, message in enumerate(batch):
            if self._clock() >= stop_at:
                self._queue.release([m.id for m in batch[index:]], self._clock())
                break
            if message.destination in down:
                self._queue.release([message.id], self._clock())
                continue
            sent = self._deliver(message)
            if sent is None:
                down.add(message.destination)
            delivered += bool(sent)
        return delivered

    def _deliver(self, message: PendingMessage) -> bool | None:
        """True: delivered; False: refused (dead letter); None: unreachable (deferred)."""
        transport = self._transports.get(message.destination)
        if transport is None:
            self._queue.mark_dead(message.id, f"no destination named {message.destination!r}")
            return False
        try:
            outcome = transport.send(message.payload)
        except OSError as exc:
            retry_at = self._clock() + self._backoff.delay(message.attempts)
            self._queue.defer(message.id, retry_at, f"{type(exc).__name__}: {exc}")
            log.warning("destination %s unreachable; retry at %s", message.destination, retry_at)
            return None
        if outcome.delivered:
            self._queue.mark_sent(message.id, self._clock())
            return True
        self._queue.mark_dead(message.id, outcome.detail[:500])
        log.warning("destination %s refused message %d: %s", message.destination, message.id, outcome.detail[:40])
        return False

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
