"""The SQL unit of work: one connection in one transaction (store/link.py), the domain's
repositories over it."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from types import TracebackType

from sqlalchemy import Engine

import broker.store.tables  # noqa: F401  (maps the stored records, store/records.py)
from broker.store.link import Link
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

    def __init__(self, engine: Engine, writers: AbstractContextManager[object], watch: StoreWatch) -> None:
        self._engine = engine
        self._writers = writers
        self._watch = watch

    def __enter__(self) -> SqlUnitOfWork:
        """Refused at once when the store was pulled away: even a resent message, whose
        stored answer would be repeated without a commit, must not be answered AA.

        The connection is taken from the pool before the writers' turn and given back
        after it (`__exit__`): the writers of every process take the turn one at a time,
        and with the pool's bookkeeping out of it an ORM^O01 spends 52 % of its time
        there instead of 56-57 % (issue #17). Only the transaction, BEGIN to COMMIT or
        ROLLBACK, is inside the turn."""
        self._watch.check()
        connection = self._engine.connect()
        try:
            self._writers.__enter__()
        except BaseException:
            connection.close()
            raise
        try:
            self.link = Link(connection)
        except BaseException:
            self._writers.__exit__(None, None, None)
            connection.close()
            raise
        self.patients = PatientRepository(self.link)
        self.orders = OrderRepository(self.link)
        self.performed = PerformedStepRepository(self.link)
        self.inbound = InboundRepository(self.link)
        self.outbox = OutboxRepository(self.link)
        self.sequences = SequenceRepository(self.link)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            try:
                self.link.end()
            finally:
                self._writers.__exit__(exc_type, exc, tb)
        finally:
            self.link.close()

    def commit(self) -> None:
        self._watch.check()
        self.link.commit()

    def rollback(self) -> None:
        self.link.rollback()


class SqlUnitOfWorkFactory:
    """On SQLite, the units of work of one process queue before they begin, first come
    first served (store/writers.py): SQLite takes one writer at a time anyway, and its
    busy handler makes a waiting writer sleep in steps of up to 100 ms (measured: p99
    ACK latency 640 ms over four HL7 connections). PostgreSQL queues its writers itself
    (see db.py)."""

    def __init__(self, engine: Engine, watch: StoreWatch | None = None) -> None:
        self._engine = engine
        self._watch = watch or StoreWatch.none()
        self._writers = writers_of(engine)
        self._readers = engine.execution_options(readonly=True)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, self._writers, self._watch)

    def reading(self) -> SqlUnitOfWork:
        """A unit of work that only reads: it takes no turn among the writers, and its
        transaction is read-only (SQLite: a plain BEGIN, which WAL never blocks;
        PostgreSQL: READ ONLY, without the writers' advisory lock)."""
        return SqlUnitOfWork(self._readers, nullcontext(), self._watch)
