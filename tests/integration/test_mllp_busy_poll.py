"""A lone sender's next message is watched for, not slept for (broker/hl7/listener.py,
issue #17): after each ACK the connection's thread polls its socket for `busy_poll`
seconds, so a sender streaming at full speed never finds it asleep; once the sender
pauses the thread sleeps in the kernel again; while other connections are sending,
none of them polls (their threads need the cores).

Sleeps are counted by the kernel: the thread's voluntary context switches
(/proc/thread-self/status), one per sleep. Counting events, not timing them. The
sender is another process, so that no thread of this one wants the interpreter lock
while the connection's thread polls (waiting for the lock is a sleep too)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from broker.config import TlsConfig
from broker.hl7 import listener as listener_module
from broker.hl7.listener import MllpListener
from broker.hl7.mllp import FrameReader, exchange, wrap
from support.certs import make_pki

MESSAGES = 200
IDLE_SECONDS = 1.0
#: Sleeps allowed over a lone sender's stream with busy poll: a tenth of its messages.
MOST_SLEEPS = MESSAGES // 10
#: Messages from each of two senders at once: enough that their streams overlap for
#: most of their length whatever the skew of their starts.
OVERLAPPING = 2000
#: The lone sender's pause before each message: long enough that a connection without
#: busy poll is asleep when the message comes, even on a loaded machine...
PAUSE = 0.005
#: ... and ten times shorter than the busy poll here.
BUSY_POLL = 0.05

#: A sender streaming frames on one connection (argv: port, how many, the pause in
#: seconds between an ACK and the next frame), once connected ("ready") and given a
#: line on stdin; it says "sent" and holds the connection open until its stdin closes.
SENDER = """
import socket, sys, time
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
print("ready", flush=True)
sys.stdin.readline()
for n in range(int(sys.argv[2])):
    time.sleep(float(sys.argv[3]))
    sock.sendall(b"\\x0bMSG%d\\x1c\\r" % n)
    answer = b""
    while not answer.endswith(b"\\x1c\\r"):
        answer += sock.recv(4096)
print("sent", flush=True)
sys.stdin.read()
"""


def _sleeps(status: Path) -> int:
    fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
    return int(fields["voluntary_ctxt_switches"])


@contextmanager
def _listening(
    busy_poll: float, handler: Callable[[bytes], bytes], tls: TlsConfig | None = None
) -> Iterator[MllpListener]:
    listener = MllpListener(
        "127.0.0.1", 0, handler, max_frame_bytes=4096, idle_timeout=30, busy_poll=busy_poll, tls=tls
    )
    listener.start()
    try:
        yield listener
    finally:
        listener.stop()


@contextmanager
def _senders(port: int, count: int, messages: int, pause: float) -> Iterator[list[subprocess.Popen[str]]]:
    """`count` SENDER processes, all connected before any starts."""
    command = [sys.executable, "-c", SENDER, str(port), str(messages), str(pause)]
    senders = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(count)
    ]
    try:
        assert [sender.stdout.readline() for sender in senders if sender.stdout] == ["ready\n"] * count
        for sender in senders:
            assert sender.stdin is not None
            sender.stdin.write("go\n")
            sender.stdin.flush()
        yield senders
    finally:
        for sender in senders:
            sender.communicate("", timeout=30)


def _stream(busy_poll: float) -> tuple[list[int], int]:
    """The connection thread's sleep count at each message, and its sleeps while the
    sender then holds the connection idle for IDLE_SECONDS."""
    counts: list[int] = []
    threads: list[int] = []

    def handler(frame: bytes) -> bytes:
        counts.append(_sleeps(Path("/proc/thread-self/status")))
        threads.append(threading.get_native_id())
        return b"ACK"

    with _listening(busy_poll, handler) as listener, _senders(listener.port, 1, MESSAGES, PAUSE) as [sender]:
        assert sender.stdout is not None and sender.stdout.readline() == "sent\n"
        status = Path(f"/proc/self/task/{threads[-1]}/status")
        threading.Event().wait(2 * busy_poll)  # past the last poll: this thread and it take turns on the GIL there
        before = _sleeps(status)
        threading.Event().wait(IDLE_SECONDS)
        idle = _sleeps(status) - before
    assert len(counts) == MESSAGES and len(set(threads)) == 1
    return counts, idle


def test_a_lone_sender_finds_its_connection_awake() -> None:
    counts, _ = _stream(BUSY_POLL)
    assert counts[-1] - counts[0] <= MOST_SLEEPS


def test_without_busy_poll_the_connection_sleeps_between_messages() -> None:
    """What the count above measures: without busy poll the bound fails. (Not once a
    message: on a loaded machine the next message is at times there before the thread
    looks.)"""
    counts, _ = _stream(0.0)
    assert counts[-1] - counts[0] > MOST_SLEEPS


def test_once_the_sender_pauses_its_connection_sleeps() -> None:
    _, idle = _stream(BUSY_POLL)
    assert idle <= 3


def test_while_other_connections_send_none_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two senders streaming at once: each connection sleeps between its messages.
    The polls counted are those of a connection alone: before the other sender's first
    message, after its last."""
    polls: list[int] = []
    polled = listener_module._polled

    def counted(link: socket.socket, size: int, seconds: float) -> bytes | None:
        polls.append(1)
        return polled(link, size, seconds)

    monkeypatch.setattr(listener_module, "_polled", counted)
    answered: list[bytes] = []

    def handler(frame: bytes) -> bytes:
        answered.append(frame)
        return b"ACK"

    with _listening(BUSY_POLL, handler) as listener, _senders(listener.port, 2, OVERLAPPING, 0) as senders:
        assert [sender.stdout.readline() for sender in senders if sender.stdout] == ["sent\n"] * 2
    assert len(answered) == 2 * OVERLAPPING
    assert 0 < len(polls) <= OVERLAPPING // 10


def test_a_frame_slower_than_the_poll_is_read_whole() -> None:
    """The poll gives up on a frame's second half; the thread then waits for it asleep."""
    with (
        _listening(BUSY_POLL, lambda frame: b"ACK " + frame) as listener,
        socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock,
    ):
        framed = wrap(b"MSH|ONE")
        sock.sendall(framed[:4])
        threading.Event().wait(3 * BUSY_POLL)
        sock.sendall(framed[4:])
        assert FrameReader(sock.recv, 4096).next() == b"ACK MSH|ONE"


def test_a_lone_tls_sender_is_answered_through_the_polls(tmp_path: Path) -> None:
    """Over TLS a poll that finds no whole record raises SSLWantReadError: it is
    waited out like an empty socket, not taken for a broken connection."""
    pki = make_pki(tmp_path)
    tls = TlsConfig(cert=pki.server.cert, key=pki.server.key, ca=pki.ca, require_client_cert=True)
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(pki.client.cert, pki.client.key)
    with _listening(BUSY_POLL, lambda frame: b"ACK", tls) as listener:
        plain = socket.create_connection(("127.0.0.1", listener.port), timeout=10)
        with context.wrap_socket(plain, server_hostname="localhost") as sock:
            assert [exchange(sock, b"MSG%d" % n) for n in range(50)] == [b"ACK"] * 50
