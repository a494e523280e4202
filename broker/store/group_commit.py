"""Group commit: the HL7 messages of several connections applied in one transaction,
each still answered only after that transaction has committed.

A commit is the fixed cost of a message (on SQLite the WAL write and the writer lock
handed on; on PostgreSQL a round trip and the writer's advisory lock): shared by the
messages that arrived while the previous transaction was being written, it is paid
once per batch. No thread of its own and no timer: the caller that finds the writer
free becomes its leader and opens a transaction, whose BEGIN waits for the writers'
turn (SQLite: store/writers.py; PostgreSQL: the writers' advisory lock, store/db.py);
then it takes every piece of work waiting (its own among them, at most `max_batch`),
runs them and commits; the others find their work done when the leader lets go. A
lone sender therefore never waits for company, and the work that arrives while
another process or broker writes joins the batch instead of waiting for the next one.

Each piece of a group runs in a savepoint, so its own `rollback` (a refused message)
undoes only its changes. If a piece raises, or the commit fails, no result of the batch
is delivered: every piece is run again in a transaction of its own, so one bad message
costs the others nothing but time and its caller alone gets the error (AR 207).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

from broker.domain.ports import OwnTransactions, UnitOfWork
from broker.store.uow import SqlUnitOfWork, SqlUnitOfWorkFactory

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Work(Generic[T]):
    """One caller's work and, once its transaction committed (or failed), the outcome."""

    def __init__(self, work: Callable[[UnitOfWork], T]) -> None:
        self.work = work
        self.done = False
        self._result: T | None = None
        self._error: BaseException | None = None

    def finish(self, result: T) -> None:
        self._result, self.done = result, True

    def fail(self, error: BaseException) -> None:
        self._error, self.done = error, True

    def outcome(self) -> T:
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # T may itself be None


class _Savepoint:
    """A piece of work's view of the shared unit of work: `rollback` returns to the
    savepoint it started from, `commit` is the batch's to make."""

    def __init__(self, uow: SqlUnitOfWork) -> None:
        self.patients, self.orders, self.performed = uow.patients, uow.orders, uow.performed
        self.inbound, self.outbox, self.sequences = uow.inbound, uow.outbox, uow.sequences
        self._savepoint = uow.link.savepoint()

    def __enter__(self) -> _Savepoint:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def commit(self) -> None:
        """Nothing yet: the batch commits once every piece has run."""

    def rollback(self) -> None:
        self._savepoint.rollback()

    def release(self) -> None:
        self._savepoint.release()


class GroupCommit:
    """`Transactions` (domain.ports) that groups concurrent work into one transaction."""

    def __init__(
        self, uow: SqlUnitOfWorkFactory, max_batch: int = 64, committed: Callable[[int], None] = lambda _n: None
    ) -> None:
        """`committed` is told how many pieces each successful transaction held."""
        self._uow = uow
        self._committed = committed
        self._alone = OwnTransactions(uow)
        self._max_batch = max_batch
        self._waiting: deque[_Work[object]] = deque()
        self._waiting_lock = threading.Lock()
        self._writer = threading.Lock()

    @property
    def waiting(self) -> int:
        """Pieces of work queued for the writer (not yet taken into a transaction)."""
        with self._waiting_lock:
            return len(self._waiting)

    def __call__(self, work: Callable[[UnitOfWork], T]) -> T:
        item = _Work(work)
        with self._waiting_lock:
            self._waiting.append(item)  # type: ignore[arg-type]  # results go back to their own caller
        with self._writer:
            while not item.done:
                self._lead()
        return item.outcome()

    def _lead(self) -> None:
        """One transaction, opened before its work is taken: its BEGIN waits for the
        writers' turn (SQLite: this process's other writers and the other processes';
        PostgreSQL: the writers' advisory lock, other brokers' too), and the work that
        arrives meanwhile joins it. Over four connections in two intake processes that
        is a pair of messages a transaction instead of one: the second reads its pages
        from the first's cache, which the other process's commit had emptied, and shares
        its commit."""
        batch: list[_Work[object]] = []
        try:
            try:
                with self._uow() as uow:
                    batch = self._take()
                    results = self._within(uow, batch)
            except Exception as exc:
                self._failed(batch, exc)
                return
            self._committed(len(batch))
            for item, result in zip(batch, results, strict=True):
                item.finish(result)
        finally:  # the leader was interrupted (BaseException): its followers must not wait for ever
            for item in batch:
                if not item.done:
                    item.fail(RuntimeError("not applied: the writer stopped"))

    def _take(self) -> list[_Work[object]]:
        with self._waiting_lock:
            return [self._waiting.popleft() for _ in range(min(len(self._waiting), self._max_batch))]

    def _within(self, uow: SqlUnitOfWork, batch: list[_Work[object]]) -> list[object]:
        """The batch's results, committed; a piece alone needs no savepoint."""
        if len(batch) == 1:
            results = [batch[0].work(uow)]
        else:
            results = []
            for item in batch:
                scope = _Savepoint(uow)
                results.append(item.work(scope))
                scope.release()
        uow.commit()
        return results

    def _failed(self, batch: list[_Work[object]], exc: Exception) -> None:
        """After the transaction failed. None was opened (the store was pulled away, the
        turn could not be taken): no piece waiting can be applied, and none is left
        queued for a later leader to apply unanswered. A piece alone: its caller answers
        it (AR 207). A group: each piece again in a transaction of its own, so one bad
        message costs the others nothing but time."""
        if not batch:
            for item in self._take():
                item.fail(exc)
        elif len(batch) == 1:
            batch[0].fail(exc)
        else:
            log.info("group of %d messages not committed (%s); applying each alone", len(batch), type(exc).__name__)
            log.debug("group commit failed", exc_info=exc)
            for item in batch:
                self._each(item)

    def _each(self, item: _Work[object]) -> None:
        try:
            item.finish(self._alone(item.work))
            self._committed(1)
        except Exception as exc:  # the caller answers it (AR 207); the others go on
            item.fail(exc)
