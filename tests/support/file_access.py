"""Every file path this process touches while a recording is on, from Python's audit
hooks (PEP 578): `open` (builtins and os.open, so every thread's files), sqlite3.connect,
and the os/shutil calls that create, remove, rename or list paths. An audit hook cannot
be removed, so one is installed once and records only inside `recording()`."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote

EVENTS = {
    "open": 1, "sqlite3.connect": 1, "os.mkdir": 1, "os.remove": 1, "os.rmdir": 1, "os.listdir": 1,
    "os.scandir": 1, "os.chmod": 1, "os.chown": 1, "os.truncate": 1, "os.utime": 1, "os.rename": 2,
    "os.link": 2, "os.symlink": 2, "shutil.copyfile": 2, "shutil.move": 2, "shutil.rmtree": 1, "glob.glob": 1,
}  # event -> how many leading arguments are paths  # fmt: skip


_READING = {"open", "os.listdir", "os.scandir", "glob.glob"}


@dataclass
class Accesses:
    """(event, path, writing) for each access; `writing` for an open that may write."""

    seen: list[tuple[str, str, bool]] = field(default_factory=list)

    def paths_containing(self, marker: str) -> list[tuple[str, str, bool]]:
        return [access for access in self.seen if marker in access[1]]

    def written(self) -> set[str]:
        """Paths opened for writing, created, changed or removed (listing is reading)."""
        return {path for event, path, writing in self.seen if writing or event not in _READING}


_lock = threading.Lock()
_active: list[Accesses] = []


def _path(value: object) -> str | None:
    if isinstance(value, int):  # a file descriptor: its path was recorded when it was opened
        return None
    try:
        path = os.fsdecode(os.fspath(value))  # type: ignore[arg-type]
    except TypeError:
        return None
    return _file_of(path)


def _file_of(path: str) -> str:
    """The file an SQLite URI names (`file:/x/broker.db?mode=rw`, as the store opens
    its database so that connecting never creates one); any other path as it is."""
    if not path.startswith("file:"):
        return path
    return unquote(path.removeprefix("file:").split("?", 1)[0])


def _writing(event: str, args: tuple[object, ...]) -> bool:
    if event != "open":
        return False
    mode, flags = (args[1] if len(args) > 1 else None), (args[2] if len(args) > 2 else 0)
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND))


def _hook(event: str, args: tuple[object, ...]) -> None:
    if not _active or event not in EVENTS:
        return
    writing = _writing(event, args)
    found = [(event, p, writing) for p in map(_path, args[: EVENTS[event]]) if p is not None]
    with _lock:
        for accesses in _active:
            accesses.seen.extend(found)


sys.addaudithook(_hook)


@contextmanager
def recording() -> Iterator[Accesses]:
    accesses = Accesses()
    with _lock:
        _active.append(accesses)
    try:
        yield accesses
    finally:
        with _lock:
            _active.remove(accesses)
