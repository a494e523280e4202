"""#17 The SQLite writers' turn across processes (store/writers.py): while a writer of
this process holds it, a writer of another process waits for it in the kernel (seen in
/proc/locks as a blocked flock, not polling in SQLite's busy handler) and gets it as soon
as it is let go; a holder that is killed lets it go with its life."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import Engine

from broker.store.db import build_engine
from broker.store.migrate import upgrade
from broker.store.writers import writers_of
from support.recorder import settled

#: A writer in another process: says when it asks for the turn and when it has it, then
#: holds it until its standard input closes.
WRITER = """
import sys
from broker.store.db import build_engine
from broker.store.writers import writers_of
engine = build_engine(sys.argv[1])
print("asking", flush=True)
with writers_of(engine):
    print("in", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def url(tmp_path: Path) -> str:
    database = f"sqlite:///{tmp_path / 'broker.db'}"
    upgrade(database, create=True)
    return database


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = build_engine(url)
    yield engine
    engine.dispose()


def _writer(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def _blocked_flocks(pid: int) -> list[str]:
    """The process's flock requests the kernel holds back ('->' lines of /proc/locks)."""
    lines = Path("/proc/locks").read_text().splitlines()
    return [line for line in lines if "->" in line and "FLOCK" in line and f" {pid} " in line]


def _said_anything(process: subprocess.Popen[str]) -> bool:
    assert process.stdout is not None
    return bool(select.select([process.stdout], [], [], 0)[0])


def test_a_writer_of_another_process_waits_in_the_kernel_for_the_turn(url: str, engine: Engine) -> None:
    with _writer(url) as writer:
        assert writer.stdout is not None and writer.stdin is not None
        with writers_of(engine):
            assert writer.stdout.readline() == "asking\n"
            assert settled(lambda: _blocked_flocks(writer.pid), bool), "not waiting for the file lock"
            assert not _said_anything(writer)
        assert writer.stdout.readline() == "in\n"
        writer.stdin.close()
        assert writer.wait(timeout=10) == 0


def test_the_turn_goes_with_a_holder_that_is_killed(url: str, engine: Engine) -> None:
    with _writer(url) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "asking\n"
        assert holder.stdout.readline() == "in\n"
        _wait_behind(engine, holder)


def _wait_behind(engine: Engine, holder: subprocess.Popen[str]) -> None:
    """A writer of this process waits while `holder` lives, and enters once it is killed."""
    entered = threading.Event()

    def write() -> None:
        with writers_of(engine):
            entered.set()

    waiting = threading.Thread(target=write, daemon=True)
    waiting.start()
    assert settled(lambda: _blocked_flocks(os.getpid()), bool), "not waiting for the holder"
    assert not entered.is_set()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    assert entered.wait(timeout=10)


def test_the_turns_file_lies_beside_the_database_whatever_its_path(tmp_path: Path) -> None:
    """A path with characters a URL must escape ('?', '#', '%'): the lock file is next
    to the database, as SQLite's own -wal and -shm are."""
    folder = tmp_path / "a?b#c%d"
    folder.mkdir()
    url = f"sqlite:///{quote(str(folder / 'broker.db'), safe='/')}"
    upgrade(url, create=True)
    engine = build_engine(url)
    try:
        with writers_of(engine):
            pass
    finally:
        engine.dispose()
    assert (folder / "broker.db-writer.lock").is_file()
