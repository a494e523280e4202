"""Drains the outbox: each destination's messages through its transport (MLLP for HL7
peers, DIMSE for MPPS forwarding), exactly as long as needed. Destinations drain apart,
each in its own round: an Image Manager that answers slowly, not at all, or with
refusals never delays the RIS, and back.

What becomes of a message depends on the answer (`Verdict`):

- delivered (HL7 AA/CA, DIMSE success or warning): marked sent; its order's next
  message is due.
- retry (HL7 AR/CR: "rejected for a reason unrelated to content, may be resent"; no
  answer, a timeout, unreachable, a busy SCP): deferred with exponential backoff, and
  its destination pauses until then (for every broker on the database: see
  `SqlOutboxQueue.lease_due`), so an outage costs one attempt per backoff period, not
  one per queued message.
- refused (HL7 AE/CE, a DIMSE failure that resending cannot cure): a dead letter. The
  later messages of its order wait behind it (never out of order at the destination)
  until an operator requeues or skips it; other orders keep flowing.

A destination's trouble is logged once per change of its state (up -> down, down ->
up, with how many attempts failed meanwhile), never once per attempt.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from broker.store.outbox import Answer, PendingMessage, SqlOutboxQueue

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "refused"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    answer: Answer = field(default_factory=Answer)
    #: The answer as received (an HL7 reply's bytes), for the destination's `replies`.
    reply: bytes = b""

    @property
    def summary(self) -> str:
        """The answer in a line, for the outbox row (no ERR text: it has a column)."""
        return f"{self.answer.code or 'no answer'}: {self.answer.text}".rstrip(": ")

    @property
    def brief(self) -> str:
        """For the log: the answer code alone (its text may quote patient data), or
        the connection error when there was no answer."""
        return self.answer.code or self.answer.text


DELIVERED = Outcome(Verdict.DELIVERED)


class Transport(Protocol):
    def send(self, payload: bytes) -> Outcome:
        """Deliver one message; raise OSError when the peer cannot be reached or does
        not answer."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Backoff:
    initial: float
    maximum: float

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.maximum, self.initial * 2 ** min(attempts, 30)))


class DestinationHealth:
    """Whether each destination takes messages, as this process last saw it; logs a
    change of state, and counts the failed attempts in between instead of logging them."""

    def __init__(self) -> None:
        self._failures: dict[str, int] = {}

    def failed(self, destination: str, reason: str) -> None:
        count = self._failures.get(destination, 0) + 1
        self._failures[destination] = count
        if count == 1:
            log.warning("destination %s is not taking messages (%s); retrying with backoff", destination, reason)
        else:
            log.debug("destination %s still not taking messages (%d attempts): %s", destination, count, reason)

    def answered(self, destination: str) -> None:
        """Any answer but a transient refusal: the destination is up."""
        count = self._failures.pop(destination, 0)
        if count:
            log.warning("destination %s is taking messages again after %d failed attempt(s)", destination, count)


class OutboxSender:
    """Each destination drains on its own (its own lease, its own thread, its own
    connection): a destination that is slow, down or holding dead letters delays no
    other; within a destination each order's messages still leave one at a time, in
    order (see `SqlOutboxQueue.lease_due`)."""

    def __init__(
        self,
        queue: SqlOutboxQueue,
        transports: Mapping[str, Transport],
        backoff: Backoff,
        clock: Callable[[], datetime] = datetime.now,
        lease: timedelta = timedelta(minutes=2),
        replies: Mapping[str, Callable[[bytes], None]] | None = None,
    ) -> None:
        """`lease` must be longer than two sends to the slowest destination: a batch
        stops at half its lease, so no message is sent after its lease ran out (and
        another broker could have taken it). `replies`: told the answer to each message
        a destination took, before it is marked sent (the RIS numbers the orders made
        at the broker in its answers: hl7/assigned.py)."""
        self._replies = replies or {}
        self._queue = queue
        self._transports = transports
        self._backoff = backoff
        self._clock = clock
        self._lease = lease
        #: One drain at a time per destination in this process (the scheduler's and the
        #: last one at stop may meet): a transport is one connection, never shared.
        self._draining = {name: threading.Lock() for name in transports}
        self._strays = threading.Lock()
        self.health = DestinationHealth()

    def rounds(self) -> dict[str, Callable[[], int]]:
        """One drain per destination, and one (named "") for messages to a destination
        this broker does not know: for the scheduler to run side by side."""
        rounds: dict[str, Callable[[], int]] = {
            name: partial(self.drain_destination, name) for name in self._transports
        }
        rounds[""] = self.refuse_strays
        return rounds

    def drain(self) -> int:
        """Send what is due to every destination, side by side; return how many were
        delivered. Brokers sharing the database drain side by side too, each leasing
        other messages."""
        rounds = list(self.rounds().values())
        with ThreadPoolExecutor(len(rounds), thread_name_prefix="outbox-drain") as pool:
            return sum(pool.map(lambda drain: drain(), rounds))

    def drain_destination(self, destination: str) -> int:
        """Send what is due to one destination; return how many were delivered."""
        with self._draining[destination]:
            delivered = 0
            while True:  # again while it delivers: the next message of an order is due now
                start = self._clock()
                batch = self._queue.lease_due(start, start + self._lease, destination=destination)
                progress = self._send(self._transports[destination], batch, start + self._lease / 2)
                delivered += progress
                if not progress:
                    return delivered

    def refuse_strays(self) -> int:
        """Messages for a destination not (or no longer) configured become dead letters:
        an operator requeues them once it is back, or skips them. None is delivered."""
        with self._strays:
            start = self._clock()
            for message in self._queue.lease_due(start, start + self._lease, excluding=list(self._transports)):
                self._queue.mark_dead(message.id, f"no destination named {message.destination!r}")
                log.warning("outbox message %d: no destination named %r", message.id, message.destination)
        return 0

    def _send(self, transport: Transport, batch: list[PendingMessage], stop_at: datetime) -> int:
        """Deliver a leased batch of one destination in order; what is left (the
        destination went down, or the lease is half gone) is released for the next round."""
        delivered = 0
        for index, message in enumerate(batch):
            if self._clock() >= stop_at:
                self._queue.release([m.id for m in batch[index:]], self._clock())
                break
            verdict = self._deliver(transport, message)
            if verdict is Verdict.RETRY:  # down: the rest waits for its backoff
                self._queue.release([m.id for m in batch[index + 1 :]], self._clock())
                break
            delivered += verdict is Verdict.DELIVERED
        return delivered

    def _deliver(self, transport: Transport, message: PendingMessage) -> Verdict:
        try:
            outcome = transport.send(message.payload)
        except OSError as exc:
            outcome = Outcome(Verdict.RETRY, Answer(text=f"{type(exc).__name__}: {exc}"))
        if outcome.verdict is Verdict.RETRY:
            retry_at = self._clock() + self._backoff.delay(message.attempts)
            self._queue.defer(message.id, retry_at, outcome.summary[:500], outcome.answer)
            self.health.failed(message.destination, outcome.brief[:80])
            return Verdict.RETRY
        self.health.answered(message.destination)
        if outcome.verdict is Verdict.DELIVERED:
            self._read_reply(message.destination, outcome.reply)
            self._queue.mark_sent(message.id, self._clock(), outcome.answer)
            return Verdict.DELIVERED
        self._queue.mark_dead(message.id, outcome.summary[:500], outcome.answer)
        log.warning(
            "destination %s refused outbox message %d (%s): a dead letter; its order's later messages wait",
            message.destination,
            message.id,
            outcome.answer.code,
        )
        return Verdict.REFUSED

    def _read_reply(self, destination: str, reply: bytes) -> None:
        """What the answer says besides its code is taken before the message is marked
        sent (a crash between the two sends it again, and the RIS numbers it again). If
        it cannot be taken, the message is delivered all the same: sending it again
        would make the RIS take it twice."""
        read = self._replies.get(destination)
        if read is None or not reply:
            return
        try:
            read(reply)
        except Exception as exc:  # e.g. the store failed: logged, the delivery stands
            log.warning("answer of %s to a delivered message not taken: %s", destination, type(exc).__name__)
            log.debug("answer not taken", exc_info=exc)

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
