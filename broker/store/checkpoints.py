"""SQLite WAL checkpoints on a thread of their own, out of the writers' way.

By default SQLite checkpoints inside the commit that takes the log past 1,000 pages:
the writer that happens to cross it copies the pages back into the database file and
syncs both files while the next HL7 message waits for its turn. An order writes about
29 pages, so with the default every 35th order paid for a checkpoint (issue #17:
0.11 ms an order on average, 11 % of its time on one connection, inside the section
that writers take in turn). Here the process's writers never checkpoint
(`wal_autocheckpoint=0` on its connections); a thread woken by their commits does it:

- It waits for a write, then lets the writes of the next moment (`settle`) join it:
  one checkpoint copies each page once however often it was written, and syncs once.
- Its checkpoint is PASSIVE: it takes no writer's turn, and the writers go on
  appending while it copies (the sqlite3 module lets go of the interpreter lock in
  SQLite's code, so on a second core it costs the writers nothing).
- A log is started afresh by a writer that begins after a checkpoint copied all of
  it. Writers that never pause always begin before the checkpoint that copies them
  ends, and the log would grow without end (measured: 324 MB in 3 s); so when the
  log has reached `restart_bytes`, the checkpoint is finished in the writers' turn
  (store/writers.py: this process's and the other processes'), which leaves it only
  the pages written during the PASSIVE one to copy. The writer after it starts the
  log from its beginning again.

Idle, the thread waits without a timeout: it wakes the broker only after writes. A
process that does not run one (a CLI command) keeps SQLite's own checkpoints, as does
a connection made before `start` or after `stop`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import Engine, event

from broker.store.db import sqlite_file
from broker.store.writers import writers_of

log = logging.getLogger(__name__)

#: Let the writes of this moment join the checkpoint a write asked for (seconds).
SETTLE_SECONDS = 0.1
#: The log's size at which a checkpoint is finished in the writers' turn, so that the
#: log starts again: 32 MiB, against SQLite's 1,000 pages (1 MiB at the broker's page size).
RESTART_BYTES = 32 * 2**20


class Checkpointer:
    """The checkpoints of one SQLite database for the writers of this process."""

    def __init__(self, engine: Engine, *, settle: float = SETTLE_SECONDS, restart_bytes: int = RESTART_BYTES) -> None:
        self._engine = engine
        self._settle = settle
        self._restart_bytes = restart_bytes
        self._writers = writers_of(engine)
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoints", daemon=True)
        #: Checkpoints made, and those of them finished in the writers' turn.
        self.checkpoints = 0
        self.restarts = 0

    @classmethod
    def of(cls, engine: Engine) -> Checkpointer | None:
        """One for a SQLite file; None for PostgreSQL (which checkpoints by itself) and
        for a database in memory (no log)."""
        if engine.dialect.name != "sqlite" or sqlite_file(engine) is None:
            return None
        return cls(engine)

    def start(self) -> None:
        """From now on the connections opened leave checkpoints to this thread; those
        already pooled are closed first (each would still checkpoint by itself)."""
        event.listen(self._engine, "connect", _no_autocheckpoint)
        event.listen(self._engine, "commit", self._committed)
        self._engine.dispose()
        self._thread.start()

    def stop(self) -> None:
        """The last writes checkpointed, and SQLite's own checkpoints back."""
        if not self._thread.is_alive():
            return
        self._stopping.set()
        self._due.set()
        self._thread.join()
        event.remove(self._engine, "commit", self._committed)
        event.remove(self._engine, "connect", _no_autocheckpoint)
        self._try()
        self._engine.dispose()

    def _committed(self, connection: Any) -> None:
        """A write was committed (or is being): a checkpoint is due. Read-only
        transactions end without a commit."""
        self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait()
            if self._stopping.wait(self._settle):
                return
            self._due.clear()
            self._try()

    def _try(self) -> None:
        """A checkpoint, or the reason it failed logged: the next write asks again (the
        log only grows meanwhile), and SQLite checkpoints at the last close anyway."""
        try:
            self._checkpoint()
        except Exception as exc:  # e.g. the store was pulled away (store/watch.py)
            log.warning("WAL checkpoint failed: %s", type(exc).__name__)
            log.debug("WAL checkpoint failed", exc_info=exc)

    def _checkpoint(self) -> None:
        with self._engine.connect() as connection:
            driver = connection.connection.dbapi_connection
            assert driver is not None
            _, pages, _ = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
            (page_size,) = driver.execute("PRAGMA page_size").fetchone()  # the file's own
            if pages * page_size >= self._restart_bytes:  # copied all, perhaps, but written to since
                with self._writers:
                    driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.restarts += 1


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
