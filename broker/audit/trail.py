"""The audit log for events that change no record: worklist queries, security alerts,
application start and stop. Each is written to the outbox, so it survives a collector
outage like the record events do. When the store itself cannot take it (the alert that
says so, among others) it goes straight to the collector instead, best effort: an outbox
in a deleted database is no trail.

Queries (one per C-FIND or DICOMweb search: the volume) are queued and written by one
writer thread, as many per transaction as queued meanwhile: the query's own thread never
waits for the writers' lock, so a worklist answer never waits behind HL7 intake or a
prune, and a burst of queries costs one commit, not one each. `flush` (at stop) writes
what is queued. The rest (alerts, start, stop, operators' actions, rare and sometimes
recorded by a CLI process about to exit) are written before `record` returns.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime

from broker.domain.audit import Action, Audited, AuditEvent, Outcome, Requestor
from broker.domain.ports import AuditTrail, OutboundMessage, UnitOfWorkFactory
from broker.jobs.outbox_sender import Transport

log = logging.getLogger(__name__)

#: The most queued queries written in one transaction (a short hold of the writers' lock).
QUERY_BATCH = 200


class OutboxAuditLog:
    """AuditLog and SecurityAlerts over the outbox."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        trail: AuditTrail,
        clock: Callable[[], datetime] = datetime.now,
        direct: Transport | None = None,
    ) -> None:
        self._uow = uow
        self._trail = trail
        self._clock = clock
        self._direct = direct
        self._direct_lock = threading.Lock()  # one transport, many listener threads
        self._queued: queue.Queue[list[OutboundMessage] | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()

    def record(self, event: AuditEvent) -> None:
        messages = self._trail.messages_for(event)
        if event.what is Audited.QUERY:
            self._enqueue(messages)
        else:
            self._store([messages])

    def flush(self) -> None:
        """Return once every query recorded so far is in the outbox (or was sent
        straight to the collector, the store refusing it)."""
        self._queued.join()

    def close(self) -> None:
        """Flush, then end the writer thread."""
        with self._writer_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queued.put(None)
            writer.join()

    def _store(self, events: list[list[OutboundMessage]]) -> None:
        """The messages of `events` in one transaction."""
        try:
            with self._uow() as uow:
                for messages in events:
                    uow.outbox.add(messages)
                uow.commit()
        except Exception:  # the service goes on; the gap is reported (no PHI: count only)
            log.exception("%d audit event(s) not stored", len(events))
            for messages in events:
                self._send_now(messages)

    def _enqueue(self, messages: list[OutboundMessage]) -> None:
        with self._writer_lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_queued, name="audit-writer", daemon=True)
                self._writer.start()
        self._queued.put(messages)

    def _write_queued(self) -> None:
        """Each round writes what is queued (up to QUERY_BATCH events) in one
        transaction; the None that `close` queues ends the thread, after what came
        before it."""
        while True:
            events: list[list[OutboundMessage]] = []
            item = self._queued.get()
            while item is not None:
                events.append(item)
                if len(events) >= QUERY_BATCH or self._queued.empty():
                    break
                item = self._queued.get_nowait()
            try:
                if events:
                    self._store(events)
            finally:
                for _ in events:
                    self._queued.task_done()
            if item is None:
                self._queued.task_done()
                return

    def _send_now(self, messages: list[OutboundMessage]) -> None:
        if self._direct is None:
            return
        try:
            with self._direct_lock:
                for message in messages:
                    self._direct.send(message.payload)
        except Exception:
            log.exception("audit messages not sent either: the collector did not take them")

    def refused(self, kind: str, peer: str, detail: str) -> None:
        log.warning("security alert: %s refused for %s: %s", kind, peer, detail)
        self.record(
            AuditEvent(
                Audited.SECURITY_ALERT,
                Action.EXECUTE,
                self._clock(),
                Outcome.MINOR_FAILURE,
                requestor=Requestor(peer),
                alert=kind,
                detail=detail,
            )
        )

    def application(self, what: Audited, launcher: str) -> None:
        """Application Activity: start or stop, with who launched the process."""
        self.record(AuditEvent(what, Action.EXECUTE, self._clock(), requestor=Requestor(launcher)))
