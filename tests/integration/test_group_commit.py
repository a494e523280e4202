"""Group commit (store/group_commit.py): messages of several connections share a
transaction, yet each is answered only after its own work committed, a refusal undoes
only its own work, and a piece that fails costs the others nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from broker.domain.ports import InboundRecord, UnitOfWork
from broker.store import tables as t
from broker.store.db import WRITER_LOCK_KEY, build_engine, sqlite_file
from broker.store.group_commit import GroupCommit
from broker.store.migrate import upgrade
from broker.store.uow import SqlUnitOfWorkFactory
from broker.store.writers import FileTurn

Work = Callable[[UnitOfWork], object]


def _record(control_id: str) -> InboundRecord:
    return InboundRecord("RIS|HOSPITAL", control_id, "ORM^O01", b"MSH|...")


def _keep(control_id: str) -> Work:
    def work(uow: UnitOfWork) -> object:
        uow.inbound.add(_record(control_id))
        return uow.inbound  # the same object for every piece in one transaction

    return work


def _stored(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(t.inbound_messages.c.control_id)).scalars())


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(8) as executor:
        yield executor


def _as_one_batch(group: GroupCommit, pool: ThreadPoolExecutor, works: list[Work]) -> list[Future[object]]:
    """Submit `works` while the writer is held by another piece, so that the next
    leader takes all of them into one transaction."""
    holding, release = threading.Event(), threading.Event()

    def hold(uow: UnitOfWork) -> object:
        holding.set()
        release.wait(10)
        return None

    holder = pool.submit(group, hold)
    assert holding.wait(10)  # the holder leads, and waits inside its transaction
    futures = [pool.submit(group, work) for work in works]
    deadline = time.monotonic() + 10
    while group.waiting < len(works) and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    holder.result(timeout=10)
    return futures


def test_concurrent_work_shares_one_transaction_and_all_of_it_commits(engine: Engine, pool: ThreadPoolExecutor) -> None:
    sizes: list[int] = []
    group = GroupCommit(SqlUnitOfWorkFactory(engine), committed=sizes.append)
    futures = _as_one_batch(group, pool, [_keep(f"M{n}") for n in range(5)])
    repositories = {id(f.result(timeout=10)) for f in futures}
    assert len(repositories) == 1, "the five pieces did not share a transaction"
    assert _stored(engine) == [f"M{n}" for n in range(5)]
    assert sorted(sizes) == [1, 5], "the holder alone, then the five together (as the metric counts them)"


def test_a_refusal_in_a_batch_undoes_only_its_own_work(engine: Engine, pool: ThreadPoolExecutor) -> None:
    def refused(uow: UnitOfWork) -> object:
        uow.inbound.add(_record("applied-then-undone"))
        uow.rollback()  # what the Order Filler does with a refused message
        uow.inbound.add(_record("kept-with-its-refusal"))
        return None

    group = GroupCommit(SqlUnitOfWorkFactory(engine))
    futures = _as_one_batch(group, pool, [_keep("before"), refused, _keep("after")])
    for future in futures:
        future.result(timeout=10)
    assert _stored(engine) == ["after", "before", "kept-with-its-refusal"]


def test_a_failing_piece_gets_its_error_and_the_others_commit_once(engine: Engine, pool: ThreadPoolExecutor) -> None:
    runs: list[str] = []

    def failing(uow: UnitOfWork) -> object:
        runs.append("failing")
        uow.inbound.add(_record("F"))
        raise RuntimeError("store failed")

    def counted(control_id: str) -> Work:
        def work(uow: UnitOfWork) -> object:
            runs.append(control_id)
            return _keep(control_id)(uow)

        return work

    group = GroupCommit(SqlUnitOfWorkFactory(engine))
    futures = _as_one_batch(group, pool, [counted("A"), failing, counted("B")])
    assert futures[0].result(timeout=10) is not None
    with pytest.raises(RuntimeError):
        futures[1].result(timeout=10)
    assert futures[2].result(timeout=10) is not None
    assert _stored(engine) == ["A", "B"], "nothing of the failed piece, the others once each"
    assert runs.count("A") == 2, "the batch was not run again piece by piece"


def test_a_lone_caller_does_not_wait_for_company(engine: Engine) -> None:
    group = GroupCommit(SqlUnitOfWorkFactory(engine))
    group(_keep("alone"))
    assert _stored(engine) == ["alone"]


@contextmanager
def _another_process_writing(engine: Engine) -> Iterator[None]:
    """The writers' turn held as another process (or broker) holds it: on SQLite the
    writers' file lock, opened apart (a lock of its own excludes ours); on PostgreSQL
    the writers' advisory lock, in a transaction of another connection."""
    if engine.dialect.name == "sqlite":
        database = sqlite_file(engine)
        assert database is not None
        turn = FileTurn(database.with_name(f"{database.name}-writer.lock"))
        turn.take()
        try:
            yield
        finally:
            turn.let_go()
        return
    with engine.connect() as other:
        other.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK_KEY})")
        try:
            yield
        finally:
            other.rollback()


def test_work_arriving_while_another_process_writes_joins_the_batch(engine: Engine, pool: ThreadPoolExecutor) -> None:
    """The leader takes its batch once its transaction has the writers' turn, not
    before waiting for it, so the messages of this process's other connections that
    arrive meanwhile share its transaction (issue #17: over four connections in two
    intake processes, one message a transaction before)."""
    sizes: list[int] = []
    group = GroupCommit(SqlUnitOfWorkFactory(engine), committed=sizes.append)
    with _another_process_writing(engine):
        futures = [pool.submit(group, _keep(f"M{n}")) for n in range(4)]
        deadline = time.monotonic() + 5
        while group.waiting < 4 and time.monotonic() < deadline:
            time.sleep(0.001)
    for future in futures:
        future.result(timeout=10)
    assert sizes == [4], "the four messages did not share one transaction"
    assert _stored(engine) == [f"M{n}" for n in range(4)]


def test_a_turn_that_cannot_be_taken_fails_the_waiting_work_and_leaves_none_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Left queued, a piece would be applied by a later leader with nobody to answer."""
    url = f"sqlite:///{tmp_path / 'broker.db'}"
    upgrade(url, create=True)
    engine = build_engine(url)

    def unopenable(_turn: FileTurn) -> None:
        raise PermissionError("writer lock file")

    monkeypatch.setattr(FileTurn, "take", unopenable)
    group = GroupCommit(SqlUnitOfWorkFactory(engine))
    with pytest.raises(PermissionError):
        group(_keep("never"))
    assert group.waiting == 0
    monkeypatch.undo()
    group(_keep("later"))
    engine.dispose()
    assert _stored(engine) == ["later"]
