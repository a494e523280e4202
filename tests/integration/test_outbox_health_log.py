"""#14 Deliver 7: a destination that keeps failing is logged once when it goes down and
once when it is back (with how many attempts failed), never once per attempt. Real
store, real MLLP peers (refusing connections, or hung), a controlled clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from broker.hl7.sender import Destination, MllpTransport
from broker.jobs.outbox_sender import Backoff, OutboxSender
from broker.store import tables as t
from broker.store.outbox import SqlOutboxQueue
from support.hl7peer import NO_ANSWER, RisListener, scheduled_order
from support.net import free_port

START = datetime(2026, 11, 23, 12, 0)
ATTEMPTS = 6


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["refusing", "hung"])
def peer(request: pytest.FixtureRequest) -> Iterator[tuple[int, RisListener | None]]:
    """A port nobody listens on (its RIS is started when it comes back), or a RIS that
    takes each message and never answers (until it is told to)."""
    if request.param == "refusing":
        yield free_port(), None
        return
    ris = RisListener(free_port(), answer=NO_ANSWER).start()
    yield ris.port, ris
    ris.stop()


def _queue(engine: Engine) -> SqlOutboxQueue:
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(t.outbox.insert().values(
                destination="ris", ordering_key=f"order-{n}", payload=scheduled_order(f"L{n}", n), state="pending",
                attempts=0, created_at=START, next_attempt_at=START, last_error="",
            ))  # fmt: skip
    return SqlOutboxQueue(engine)


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_a_failing_destination_is_logged_per_change_of_state_with_a_count(
    engine: Engine, peer: tuple[int, RisListener | None], caplog: pytest.LogCaptureFixture
) -> None:
    port, hung = peer
    clock = Clock()
    transport = MllpTransport(Destination("127.0.0.1", port, timeout=0.3))
    sender = OutboxSender(_queue(engine), {"ris": transport}, Backoff(1, 4), clock)
    caplog.set_level(logging.DEBUG, logger="broker.jobs.outbox_sender")
    for _ in range(ATTEMPTS):
        assert sender.drain() == 0
        clock.now += timedelta(seconds=10)  # past the backoff: one attempt per drain
    [down] = _records(caplog, logging.WARNING)
    reason = "TimeoutError: timed out" if hung else "ConnectionRefusedError: [Errno 111] Connection refused"
    assert down == f"destination ris is not taking messages ({reason}); retrying with backoff"
    assert len(_records(caplog, logging.DEBUG)) == ATTEMPTS - 1  # the other attempts: counted, at DEBUG

    back = hung or RisListener(port)  # the RIS is back
    back.answer = "AA"
    if not hung:
        back.start()
    try:
        assert sender.drain() == 3
    finally:
        if not hung:
            back.stop()
    assert _records(caplog, logging.WARNING)[1:] == [
        f"destination ris is taking messages again after {ATTEMPTS} failed attempt(s)"
    ]
    sender.close()
