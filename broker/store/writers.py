"""The queue the SQLite writers wait in: first come first served within a process,
and one writer at a time across the processes on the same file.

SQLite takes one writer at a time, and its busy handler makes a writer that finds the
lock taken sleep in steps of up to 100 ms: a writer that commits and begins again at
once (a prune working through a backlog, batch after batch) would get the lock back
every time, and an HL7 message waiting behind it would time out. Here the lock is
handed to the writer that has waited longest when its holder leaves, so a writer that
comes back for another batch queues behind the HL7 message that arrived meanwhile.

Reentrant, because a writer may record an audit event while it holds the lock (the
store watch's alert, raised at commit). PostgreSQL queues its writers itself (the
advisory lock in store/db.py; its lock queue is fair too), so there is no queue there.

Across processes (HL7 intake processes, a CLI command beside the running broker) the
queue's holder also holds an exclusive `flock` on `<database>-writer.lock` for as long
as it holds the queue: a writer of another process waits for it in the kernel and is
woken when it is let go, instead of polling in SQLite's busy handler. The lock goes with
its holder: the kernel drops it when the process ends, however it ends. A holder is
inside its own transaction, whose waits SQLite bounds (busy_timeout), so the wait for
the file lock is bounded by the holder's work.

The queue belongs to the engine, one per database the process opened, so every writer
of the process finds the same one without being handed it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections import deque
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import TracebackType
from weakref import WeakKeyDictionary

from sqlalchemy import Engine

from broker.store.db import sqlite_file


class FileTurn:
    """The writers' turn among processes: an exclusive `flock` on one file, taken and
    let go by the holder of its process's `WriterQueue` only (a `flock` is held by the
    open file, so the threads of one process would not exclude each other with it)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def take(self) -> None:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def let_go(self) -> None:
        if self._fd is not None:  # None: `take` failed to open the file
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class WriterQueue:
    """A reentrant lock served in the order it was asked for; with a `FileTurn`, its
    holder also holds the turn among processes."""

    def __init__(self, turn: FileTurn | None = None) -> None:
        self._turn = turn
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
            if self._owner == me:
                self._depth += 1
                return self
            first = self._owner is None and not self._queue
            if first:
                self._owner, self._depth = me, 1
            else:
                turn = threading.Event()
                self._queue.append((me, turn))
        if not first:
            turn.wait()  # the leaving holder made this thread the owner
        self._take_turn()
        return self

    def _take_turn(self) -> None:
        """The other processes' writers wait from here; a failure lets the queue go."""
        if self._turn is None:
            return
        try:
            self._turn.take()
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._guard:
            self._depth -= 1
            if self._depth:
                return
            if self._turn is not None:
                self._turn.let_go()  # before the next in line: other processes get their turn
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
            queue = _QUEUES[engine] = (
                WriterQueue(_file_turn(engine)) if engine.dialect.name == "sqlite" else nullcontext()
            )
        return queue


def _file_turn(engine: Engine) -> FileTurn | None:
    """The turn among the processes on `engine`'s SQLite file; none in memory."""
    database = sqlite_file(engine)
    return None if database is None else FileTurn(database.with_name(f"{database.name}-writer.lock"))
