"""What an operator does with a dead letter, once the cause is known: requeue it (the
destination will take it now: it goes out again, then the later messages of its order
follow) or skip it (the destination will never take it: the later messages go on
without it). Each action is audited (an ATNA Security Alert, "Use of Restricted
Function", with the operator as requestor) and logged, whether it came from the CLI or
the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from broker.domain.audit import AuditEvent, Requestor, restricted_function
from broker.domain.ports import AuditLog
from broker.store.outbox import OutboxEntry, SqlOutboxQueue

log = logging.getLogger(__name__)

#: The Security Alert kinds (ParticipantObjectName of the alert subject).
REQUEUE, SKIP = "outbox requeue", "outbox skip"


class DeadLetters:
    def __init__(
        self, queue: SqlOutboxQueue, audit: AuditLog | None, clock: Callable[[], datetime] = datetime.now
    ) -> None:
        self._queue = queue
        self._audit = audit
        self._clock = clock

    def requeue(self, message_ids: list[int], operator: Requestor) -> list[OutboxEntry]:
        """Dead letters among `message_ids` sent again, each before its order's later
        messages; returns those requeued (ids that are no dead letter are left alone)."""
        return self._acted(REQUEUE, self._queue.requeue(message_ids, self._clock()), operator)

    def skip(self, message_ids: list[int], operator: Requestor) -> list[OutboxEntry]:
        """Dead letters among `message_ids` dropped; their orders' later messages go on."""
        return self._acted(SKIP, self._queue.skip(message_ids), operator)

    def _acted(self, kind: str, entries: list[OutboxEntry], operator: Requestor) -> list[OutboxEntry]:
        for entry in entries:
            log.info(
                "%s: message %d to %s (answered %s) by %s",
                kind,
                entry.id,
                entry.destination,
                entry.answer_code or "nothing",
                operator.user_id,
            )
            if self._audit is not None:
                self._audit.record(_event(kind, entry, operator, self._clock()))
        return entries


def _event(kind: str, entry: OutboxEntry, operator: Requestor, at: datetime) -> AuditEvent:
    detail = (
        f"message {entry.id} to {entry.destination} for {entry.ordering_key}, "
        f"answered {entry.answer_code or 'nothing'} after {entry.attempts} attempt(s)"
    )
    return restricted_function(kind, detail, at, operator)
