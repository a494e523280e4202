"""The queue the SQLite writers of one process wait in, first come first served.

SQLite takes one writer at a time, and its busy handler makes a writer that finds the
lock taken sleep in steps of up to 100 ms: a writer that commits and begins again at
once (a prune working through a backlog, batch after batch) would get the lock back
every time, and an HL7 message waiting behind it would time out. Here the lock is
handed to the writer that has waited longest when its holder leaves, so a writer that
comes back for another batch queues behind the HL7 message that arrived meanwhile.

Reentrant, because a writer may record an audit event while it holds the lock (the
store watch's alert, raised at commit). PostgreSQL queues its writers itself (the
advisory lock in store/db.py; its lock queue is fair too), so there is no queue there.

The queue belongs to the engine, one per database the process opened, so every writer
of the process finds the same one without being handed it.
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from weakref import WeakKeyDictionary

from sqlalchemy import Engine


class WriterQueue:
    """A reentrant lock served in the order it was asked for."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._queue: deque[tuple[int, threading.Event]] = deque()

    @property
    def waiting(self) -> int:
        """How many writers wait for their turn (what the tests watch)."""
        return len(self._queue)

    def __enter__(self) -> WriterQueue:
        me = threading.get_ident()
        with self._guard:
            if self._owner == me or (self._owner is None and not self._queue):
                self._owner, self._depth = me, self._depth + 1
                return self
            turn = threading.Event()
            self._queue.append((me, turn))
        turn.wait()  # the leaving holder made this thread the owner
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._guard:
            self._depth -= 1
            if self._depth:
                return
            self._owner = None
            if self._queue:
                self._owner, turn = self._queue.popleft()
                self._depth = 1
                turn.set()


_QUEUES: WeakKeyDictionary[Engine, AbstractContextManager[object]] = WeakKeyDictionary()
_QUEUES_GUARD = threading.Lock()


def writers_of(engine: Engine) -> AbstractContextManager[object]:
    """The writers' queue of `engine`'s database in this process (SQLite), or nothing
    to wait for here (PostgreSQL)."""
    with _QUEUES_GUARD:
        queue = _QUEUES.get(engine)
        if queue is None:
            queue = _QUEUES[engine] = WriterQueue() if engine.dialect.name == "sqlite" else nullcontext()
        return queue
