"""Storage failures during HL7 intake (#15 defect 5): whatever the store raises, the
sender gets AR 207 with ERR on the same connection, never a closed socket; the raw
message is kept when the store takes it; the resend is applied once.

Faults are injected into the real engine with SQLAlchemy events (no mocks): a commit
that raises an error SQLAlchemy does not wrap (a full disk, a driver error), and a read
that fails while the answer is being built."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import repeat
from typing import Any

from sqlalchemy import event, func, select

from broker.app import Broker
from broker.hl7.mllp import exchange
from broker.store import tables as t
from support.hl7peer import ack_code, sample, segment

NW = "rad-2-placer-order/orm_o01_nw.hl7"


def _count(broker: Broker, table: object) -> int:
    with broker.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


@contextmanager
def _fault(broker: Broker, name: str, fault: Callable[..., None]) -> Iterator[None]:
    event.listen(broker.engine, name, fault)
    try:
        yield
    finally:
        event.remove(broker.engine, name, fault)


@contextmanager
def _failing_intake_commits(broker: Broker, failures: Iterable[Exception]) -> Iterator[None]:
    """Each commit of a transaction that wrote the inbound log raises the next of
    `failures` (none left: it commits). Only the intake's: the broker's background jobs
    commit too, and are not under test here."""

    def writes_inbound(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO INBOUND_MESSAGES"):
            conn.info["inbound"] = True

    pending = iter(failures)

    def commit(conn: Any) -> None:
        if conn.info.pop("inbound", False):
            for failure in pending:
                raise failure

    def forget(conn: Any) -> None:
        conn.info.pop("inbound", None)

    with (
        _fault(broker, "before_cursor_execute", writes_inbound),
        _fault(broker, "commit", commit),
        _fault(broker, "rollback", forget),
    ):
        yield


@contextmanager
def _connection(broker: Broker) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", broker.hl7.port), timeout=10) as sock:
        yield sock


def test_commit_failing_outside_sqlalchemy_is_AR_207_and_resend_applies(broker: Broker) -> None:
    """A full disk (OSError, which SQLAlchemy does not wrap) at every commit of the
    message, the one keeping it as refused included."""
    with _connection(broker) as sock:
        with _failing_intake_commits(broker, repeat(OSError(28, "No space left on device"))):
            refused = exchange(sock, sample(NW))
        assert ack_code(refused) == "AR"
        assert segment(refused, "MSA")[2] == "ORM0001"
        assert "207&Application internal error" in segment(refused, "ERR")[1]
        assert (_count(broker, t.orders), _count(broker, t.inbound_messages)) == (0, 0)
        accepted = exchange(sock, sample(NW))  # same connection: it was never closed
    assert ack_code(accepted) == "AA"
    assert segment(accepted, "ORC")[1] == "OK"
    assert _count(broker, t.orders) == 1


def test_raw_message_kept_as_AR_when_only_the_first_commit_fails(broker: Broker) -> None:
    """A driver error SQLAlchemy does not wrap, once: the message is kept as refused in a
    transaction of its own, and its resend is applied, not answered as a duplicate."""
    with _connection(broker) as sock:
        with _failing_intake_commits(broker, [sqlite3.OperationalError("disk I/O error")]):
            refused = exchange(sock, sample(NW))
        assert ack_code(refused) == "AR"
        with broker.engine.connect() as conn:
            kept = conn.execute(select(t.inbound_messages)).one()
        assert (kept.control_id, kept.answer, kept.error_code, kept.raw) == ("ORM0001", "AR", "207", sample(NW))
        accepted = exchange(sock, sample(NW))
    assert ack_code(accepted) == "AA"
    with broker.engine.connect() as conn:
        assert conn.execute(select(t.inbound_messages.c.answer)).scalars().all() == ["AA"]
    assert _count(broker, t.orders) == 1


def test_store_failing_while_the_answer_is_built_still_answers(broker: Broker) -> None:
    """A resent order is answered by reading its orders again; if that read fails, the
    stored answer still goes out (as a general ACK) and the connection stays open."""

    def orders_unreadable(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM orders" in statement:
            raise OSError(5, "Input/output error")

    with _connection(broker) as sock:
        assert ack_code(exchange(sock, sample(NW))) == "AA"
        with _fault(broker, "before_cursor_execute", orders_unreadable):
            resent = exchange(sock, sample(NW))
        assert ack_code(resent) == "AA"
        assert segment(resent, "MSA")[2] == "ORM0001"
        assert ack_code(exchange(sock, sample(NW))) == "AA"
    assert _count(broker, t.orders) == 1
