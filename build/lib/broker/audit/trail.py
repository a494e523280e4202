"""The audit log for events that change no record: worklist queries, security alerts,
application start and stop. Each is written to the outbox in a short transaction of its
own, so it survives a collector outage like the record events do."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from broker.domain.audit import Action, Audited, AuditEvent, Outcome, Requestor
from broker.domain.ports import AuditTrail, UnitOfWorkFactory

log = logging.getLogger(__name__)


class OutboxAuditLog:
    """AuditLog and SecurityAlerts over the outbox."""

    def __init__(self, uow: UnitOfWorkFactory, trail: AuditTrail, clock: Callable[[], datetime] = datetime.now) -> None:
        self._uow = uow
        self._trail = trail
        self._clock = clock

    def record(self, event: AuditEvent) -> None:
        try:
            with self._uow() as uow:
                uow.outbox.add(self._trail.messages_for(event))
                uow.commit()
        except Exception:  # the service goes on; the gap is reported (no PHI: kind only)
            log.exception("audit event %s %s not recorded", event.what, event.action)

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
