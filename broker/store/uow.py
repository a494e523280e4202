"""The SQL unit of work: one session, one transaction, the domain's repositories."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import broker.store.tables  # noqa: F401  (instruments the domain classes)
from broker.store.repositories import (
    InboundRepository,
    OrderRepository,
    OutboxRepository,
    PatientRepository,
    PerformedStepRepository,
    SequenceRepository,
)


class SqlUnitOfWork:
    """Opened per request (per HL7 message, per DIMSE request): never shared by threads."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def __enter__(self) -> SqlUnitOfWork:
        self.session = self._sessions()
        self.patients = PatientRepository(self.session)
        self.orders = OrderRepository(self.session)
        self.performed = PerformedStepRepository(self.session)
        self.inbound = InboundRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        self.sequences = SequenceRepository(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions)
