"""#17 SQLite WAL checkpoints on their own thread (store/checkpoints.py): a serving
broker's writers never checkpoint in their commit; the thread does, after writes only,
and the log still starts afresh under writers that never pause. And the file the log
belongs to: created in WAL mode with small pages (store/migrate.py)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from broker.app import Broker
from broker.store.checkpoints import Checkpointer
from broker.store.db import build_engine
from broker.store.migrate import SQLITE_PAGE_SIZE, upgrade
from broker.store.writers import writers_of
from support.brokers import make_config
from support.hl7peer import RisListener, ack_code, sample, send
from support.recorder import settled

ORDER = "rad-2-placer-order/orm_o01_nw.hl7"
#: A row of a few pages: each transaction below writes a few more.
ROW = b"x" * 3000


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'broker.db'}"
    upgrade(url, create=True)
    engine = build_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB)"))
    yield engine
    engine.dispose()


def _file_settings(path: Path) -> tuple[int, str]:
    with closing(sqlite3.connect(path)) as connection:
        (page_size,) = connection.execute("PRAGMA page_size").fetchone()
        (journal_mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    return page_size, journal_mode


def test_a_created_database_has_small_pages_and_one_made_before_keeps_its_own(tmp_path: Path) -> None:
    """`db upgrade --create` fixes the page size as it makes the file (SQLite's default
    is 4 KiB); upgrading a file made before leaves its page size alone, as SQLite must
    for a file in WAL mode."""
    created = tmp_path / "created.db"
    upgrade(f"sqlite:///{created}", create=True)
    assert SQLITE_PAGE_SIZE == 1024
    assert _file_settings(created) == (1024, "wal")
    older = tmp_path / "older.db"
    with closing(sqlite3.connect(older)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")  # SQLite's own page size
    upgrade(f"sqlite:///{older}", create=True)
    assert _file_settings(older) == (4096, "wal")
    with closing(sqlite3.connect(older)) as connection:
        assert connection.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


def _autocheckpoint(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() or 0)


def test_a_serving_brokers_writers_leave_checkpoints_to_the_thread(tmp_path: Path, ris: RisListener) -> None:
    """Its connections do not checkpoint; the thread does after the order, and then
    stays asleep while nothing is written. Stopped, the process checkpoints as SQLite
    does by itself again."""
    broker = Broker(make_config(ris.port, database_url=f"sqlite:///{tmp_path / 'broker.db'}"))
    checkpoints = broker.services.checkpoints
    assert checkpoints is not None
    assert _autocheckpoint(broker.engine) == 1000  # SQLite's default until the broker serves
    broker.start()
    try:
        assert _autocheckpoint(broker.engine) == 0
        [reply] = send(broker.hl7.port, sample(ORDER))
        assert ack_code(reply) == "AA"
        assert settled(lambda: checkpoints.checkpoints, lambda n: n >= 1) >= 1
        quiet = _steady(lambda: checkpoints.checkpoints)  # the order's RAD-3 delivered too
        time.sleep(1.0)  # ten settle times
        assert checkpoints.checkpoints == quiet
    finally:
        broker.stop()
    assert _autocheckpoint(broker.engine) == 1000


def _steady(read: Callable[[], int], every: float = 0.5, timeout: float = 15.0) -> int:
    """`read()` once two readings `every` seconds apart agree (writes that follow the
    order, such as its delivery to the RIS, are done)."""
    deadline, last = time.monotonic() + timeout, read()
    while time.monotonic() < deadline:
        time.sleep(every)
        now = read()
        if now == last:
            return now
        last = now
    return last


def _write_without_pause(engine: Engine, seconds: float) -> int:
    """Transactions one after the other, each in the writers' turn, for `seconds`."""
    written, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        with writers_of(engine), engine.begin() as conn:
            for _ in range(4):
                conn.execute(text("INSERT INTO filler (data) VALUES (:data)"), {"data": ROW})
        written += 4
    return written


def test_the_log_starts_again_under_writers_that_never_pause(sqlite_engine: Engine, tmp_path: Path) -> None:
    """Checkpoints that copy while the writers go on would never find the log fully
    copied; finished in the writers' turn, they let it start again, so it stays
    bounded. Every row is there."""
    checkpointer = Checkpointer(sqlite_engine, settle=0.005, restart_bytes=800 * 1024)
    checkpointer.start()
    sizes: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.01):
            sizes.append((tmp_path / "broker.db-wal").stat().st_size)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        written = _write_without_pause(sqlite_engine, 3.0)
    finally:
        stop.set()
        watcher.join()
        checkpointer.stop()
    assert checkpointer.restarts >= 1
    # 800 KiB, what the writers add while the last checkpoint copies, and slack.
    assert max(sizes) < 8 * 2**20, f"log grew to {max(sizes)} bytes"
    with sqlite_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM filler")).scalar() == written
