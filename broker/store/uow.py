"""The SQL unit of work: one session, one transaction, the domain's repositories."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
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
from broker.store.watch import StoreWatch
from broker.store.writers import writers_of


class SqlUnitOfWork:
    """Opened per request (per HL7 message, per DIMSE request): never shared by threads."""

    def __init__(
        self, sessions: sessionmaker[Session], writers: AbstractContextManager[object], watch: StoreWatch
    ) -> None:
        self._sessions = sessions
        self._writers = writers
        self._watch = watch

    def __enter__(self) -> SqlUnitOfWork:
        """Refused at once when the store was pulled away: even a resent message, whose
        stored answer would be repeated without a commit, must not be answered AA."""
        self._watch.check()
        self._writers.__enter__()
        try:
            self.session = self._sessions()
        except BaseException:
            self._writers.__exit__(None, None, None)
            raise
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
        try:
            self.session.rollback()
            self.session.close()
        finally:
            self._writers.__exit__(exc_type, exc, tb)

    def commit(self) -> None:
        self._watch.check()
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


class SqlUnitOfWorkFactory:
    """On SQLite, the units of work of one process queue before they begin, first come
    first served (store/writers.py): SQLite takes one writer at a time anyway, and its
    busy handler makes a waiting writer sleep in steps of up to 100 ms (measured: p99
    ACK latency 640 ms over four HL7 connections). PostgreSQL queues its writers itself
    (see db.py)."""

    def __init__(self, engine: Engine, watch: StoreWatch | None = None) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._watch = watch or StoreWatch.none()
        self._writers = writers_of(engine)
        self._readers = sessionmaker(engine.execution_options(readonly=True), expire_on_commit=False)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, self._writers, self._watch)

    def reading(self) -> SqlUnitOfWork:
        """A unit of work that only reads: it takes no turn among the writers, and its
        transaction is read-only (SQLite: a plain BEGIN, which WAL never blocks;
        PostgreSQL: READ ONLY, without the writers' advisory lock)."""
        return SqlUnitOfWork(self._readers, nullcontext(), self._watch)
