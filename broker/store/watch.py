"""The SQLite file the broker opened, watched: is it still the file at the configured
path, and may it still be written?

A running broker keeps its database file open. Deleted, the file lives on as an
orphan only this process can see; replaced (a restore, a copy over it), the broker's
open connections write to the old file while new ones would open the other; made
read-only, the next restart cannot write. In each case an ACK sent now would claim a
record that the next start will not find (issue #14, defect 6; RELIABILITY.md R9). So
before each commit that leads to an answer the units of work ask `check()`: same
device and inode as when opened, and writable; otherwise `StoreUnavailable`, which
HL7 answers AR (207) and DIMSE with a failure status, and `/ready` reports it.

The first time a problem is seen (and when it clears) the operator is told once: an
ERROR line and a security alert through the broker's alert hook (audited when auditing
is on). PostgreSQL has no file to watch: `StoreWatch.none()` never objects.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from broker.errors import StoreUnavailable
from broker.store.migrate import sqlite_path

log = logging.getLogger(__name__)

#: The alert kind (broker.security) of a store that was pulled away.
STORE: str = "store"

Alert = Callable[[str, str, str], None]  # SecurityAlerts.refused(kind, peer, detail)


class StoreWatch:
    def __init__(self, path: Path | None, alert: Alert | None = None) -> None:
        self._path = path
        self._alert = alert
        self._identity = _identity(path) if path is not None else None
        self._problem: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, url: str, alert: Alert | None = None) -> StoreWatch:
        """Watch the file behind `url` as it is now (call right after opening it)."""
        return cls(sqlite_path(url), alert)

    @classmethod
    def none(cls) -> StoreWatch:
        return cls(None)

    def problem(self) -> str | None:
        """What is wrong with the store now (None: nothing); tells the operator on change."""
        if self._path is None:
            return None
        found = self._look()
        with self._lock:
            changed, self._problem = found != self._problem, found
        if changed:
            self._report(found)
        return found

    def check(self) -> None:
        """Raise `StoreUnavailable` unless the store may take a commit now."""
        found = self.problem()
        if found is not None:
            raise StoreUnavailable(found)

    def same_file(self, path: Path) -> bool:
        """Whether `path` is the file opened at start (for new connections)."""
        return self._identity is None or _identity(path) == self._identity

    def _look(self) -> str | None:
        assert self._path is not None
        try:
            now = os.stat(self._path)
        except FileNotFoundError:
            return f"database file {self._path} was deleted"
        except OSError as exc:
            return f"database file {self._path} cannot be read ({exc.strerror})"
        if (now.st_dev, now.st_ino) != self._identity:
            return f"database file {self._path} was replaced by another file"
        # Any write bit: root passes os.access whatever the mode, yet an operator who
        # made the file read-only means it not to be written.
        if not (now.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) or not os.access(self._path, os.W_OK):
            return f"database file {self._path} is read-only"
        return None

    def _report(self, problem: str | None) -> None:
        if problem is None:
            log.warning("database file %s is usable again: taking work", self._path)
            return
        log.error("%s: answering AR / failure statuses until the broker is restarted on a good database", problem)
        if self._alert is not None:
            self._alert(STORE, str(self._path), problem)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        now = os.stat(path)
    except OSError:
        return None
    return now.st_dev, now.st_ino
