"""The audit log for events that change no record: worklist queries, security alerts,
application start and stop. Each is written to the outbox in a short transaction of its
own, so it survives a collector outage like the record events do. When the store itself
cannot take it (the alert that says so, among others) it goes straight to the collector
instead, best effort: an outbox in a deleted database is no trail."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from broker.domain.audit import Action, Audited, AuditEvent, Outcome, Requestor
from broker.domain.ports import AuditTrail, OutboundMessage, UnitOfWorkFactory
from broker.jobs.outbox_sender import Transport

log = logging.getLogger(__name__)


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

    def record(self, event: AuditEvent) -> None:
        messages = self._trail.messages_for(event)
        try:
            with self._uow() as uow:
                uow.outbox.add(messages)
                uow.commit()
        except Exception:  # the service goes on; the gap is reported (no PHI: kind only)
            log.exception("audit event %s %s not stored", event.what, event.action)
            self._send_now(messages)

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
