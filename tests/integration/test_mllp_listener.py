"""The MLLP listener's connections (broker/hl7/listener.py): a thread each, which reads
a frame, has it answered and writes the ACK; a cap on how many are open; `stop` closes
them. The handler here is a stand-in that echoes, so what is tested is the listener."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from broker.hl7.listener import MllpListener
from broker.hl7.mllp import FrameReader, exchange, wrap

CAP = 3


def _echo(frame: bytes) -> bytes:
    return b"ACK " + frame


@pytest.fixture
def listener() -> Iterator[MllpListener]:
    listener = MllpListener("127.0.0.1", 0, _echo, max_frame_bytes=4096, idle_timeout=30, max_connections=CAP)
    listener.start()
    yield listener
    listener.stop()


def _connect(listener: MllpListener) -> socket.socket:
    return socket.create_connection(("127.0.0.1", listener.port), timeout=5)


def _connection_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("hl7 "))


def test_back_to_back_frames_in_one_write_are_answered_in_order(listener: MllpListener) -> None:
    with _connect(listener) as sock:
        sock.sendall(wrap(b"ONE") + wrap(b"TWO") + wrap(b"THR"))
        replies = FrameReader(sock.recv, 4096)
        assert [replies.next() for _ in range(3)] == [b"ACK ONE", b"ACK TWO", b"ACK THR"]


def test_one_connection_over_the_cap_is_closed_and_the_others_served(listener: MllpListener) -> None:
    held = [_connect(listener) for _ in range(CAP)]
    try:
        assert [exchange(sock, b"HELLO") for sock in held] == [b"ACK HELLO"] * CAP  # all admitted
        with _connect(listener) as extra:
            assert extra.recv(100) == b""  # closed at once, unanswered
        assert exchange(held[0], b"STILL") == b"ACK STILL"
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while _connection_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    with _connect(listener) as again:  # room again once they closed
        assert exchange(again, b"AGAIN") == b"ACK AGAIN"


def test_connection_threads_end_with_their_connections(listener: MllpListener) -> None:
    for n in range(20):
        with _connect(listener) as sock:
            assert exchange(sock, b"%d" % n) == b"ACK %d" % n
    deadline = time.monotonic() + 5
    while _connection_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _connection_threads() == 0


def test_stop_closes_open_connections_and_ends_their_threads() -> None:
    listener = MllpListener("127.0.0.1", 0, _echo, max_frame_bytes=4096, idle_timeout=600)
    listener.start()
    idle = [_connect(listener) for _ in range(2)]
    # Both served once, so both are accepted (one still in the backlog would be reset).
    assert [exchange(sock, b"X") for sock in idle] == [b"ACK X"] * 2
    listener.stop()
    for sock in idle:
        assert sock.recv(100) == b""  # closed by the listener, not left to the idle timeout
        sock.close()
    assert _connection_threads() == 0
    with pytest.raises(OSError):
        _connect(listener)
