"""HL7 intake in several processes (`hl7.processes`): one process serves its connections
with one core at most (CPython's interpreter lock), and a whole-hospital feed over a
few connections wants more (issue #17, `make bench` on 2 cores, SQLite, four
connections: ADT^A08 about 2,900-3,100/s in one process at one full core,
3,500-4,000/s in two; ORM^O01 about 1,300-1,550/s and 2,100-2,500/s, and 1,621 in a
run where the do-nothing floor fell by half too).

The broker's own process keeps accepting; each accepted connection is handed, socket
and all (SCM_RIGHTS over a Unix socket pair), to the intake process serving the fewest,
and served there exactly as it would have been here (hl7/listener.py). Nothing else
is shared: each intake process opens the database itself, and the database orders them
(SQLite: the writers' file lock, store/writers.py; PostgreSQL: the writers' advisory
lock), so duplicate checks, group commit and ACK after commit hold across them as they
do across connections. The outbox is drained by the broker's process, which finds
their rows as it finds its own.

What an intake process tells the broker's process, one datagram each: it is ready; a
connection has ended (the count it is balanced by); and, each second, the HL7
counters it has moved (the broker's /metrics shows the sum). An intake process ends
when told to, or when the broker's process goes away (its end of the pair closes, even
on kill -9); one that ends unasked is started again, its open connections lost (their
senders reconnect and resend what was not ACKed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from broker.metrics import Metrics

log = logging.getLogger(__name__)

#: How often an intake process passes on its counters.
METRICS_SECONDS = 1.0
#: How long an intake process may take to start (imports, database opened).
START_SECONDS = 60.0
#: The wait before an intake process that ended unasked is started again; doubled each
#: time one ends before it served (a store that cannot be opened), up to the second.
RESTART_SECONDS, RESTART_SECONDS_MAX = 1.0, 30.0
_DATAGRAM = 65536

Peer = tuple[str, int]


class IntakeProcesses:
    """The broker process's side: starts the intake processes and hands them connections
    (the listener's `HandOff`)."""

    def __init__(self, count: int, command: Sequence[str], setup: bytes, metrics: Metrics) -> None:
        """`command` starts one intake process, which reads `setup` on its standard
        input; its counters are added to `metrics`."""
        self._metrics = metrics
        self._guard = threading.Lock()
        self._stopping = False
        self._workers = [_Worker(n, self, list(command), setup) for n in range(count)]
        metrics.watch_intake(self.serving)

    def start(self) -> None:
        """All started together; returns once each is serving. If one could not start,
        all are stopped and RuntimeError says so."""
        for worker in self._workers:
            worker.spawn()
        try:
            for worker in self._workers:
                worker.wait_ready()
        except RuntimeError:
            self.stop()
            raise

    def take(self, sock: socket.socket, peer: Peer) -> None:
        with self._guard:
            ready = [w for w in self._workers if w.serving]
            worker = min(ready, key=lambda w: w.open, default=None)
            if worker is not None:
                worker.open += 1
        try:
            if worker is None or not worker.hand(sock, peer):
                log.warning("closing HL7 connection from %s: no intake process is serving", peer)
        finally:
            sock.close()  # the intake process has its own copy now

    def open_connections(self) -> int:
        with self._guard:
            return sum(w.open for w in self._workers)

    def served_by_each(self) -> list[int]:
        """Open connections per intake process (the balance, for the tests)."""
        with self._guard:
            return [w.open for w in self._workers]

    def pids(self) -> list[int | None]:
        return [w.pid for w in self._workers]

    def serving(self) -> int:
        """How many intake processes are serving (one ended unasked is not, until its
        replacement is)."""
        return sum(w.serving for w in self._workers)

    def stop(self) -> None:
        with self._guard:
            self._stopping = True
        for worker in self._workers:
            worker.ask_to_stop()
        for worker in self._workers:
            worker.join()

    @property
    def stopping(self) -> bool:
        with self._guard:
            return self._stopping

    def restarting(self) -> None:
        self._metrics.hl7_intake_restarted()

    def closed_one(self, worker: _Worker) -> None:
        with self._guard:
            worker.open = max(worker.open - 1, 0)

    def lost(self, worker: _Worker) -> None:
        """Its process ended: the connections it served went with it."""
        with self._guard:
            worker.open = 0

    def absorb(self, counts: dict[str, int]) -> None:
        """An intake process's counters since its last report, into this broker's."""
        for key, times in counts.items():
            kind, *labels = key.split("|")
            if kind == "received":
                self._metrics.hl7_received(labels[0], times)
            elif kind == "answered":
                self._metrics.hl7_answered(labels[0], labels[1], times)
            elif kind == "together":
                self._metrics.hl7_committed_together(int(labels[0]), times)


class _Worker:
    """One intake process, seen from the broker's process."""

    def __init__(self, number: int, pool: IntakeProcesses, command: list[str], setup: bytes) -> None:
        self.number = number
        self._pool = pool
        self._command, self._setup = command, setup
        self.open = 0
        self.serving = False
        #: Whether the process last started has served (else its successor waits longer).
        self._served = False
        self._delay = RESTART_SECONDS
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    def spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            process = subprocess.Popen(
                [*self._command, str(theirs.fileno())], stdin=subprocess.PIPE, pass_fds=[theirs.fileno()]
            )
        assert process.stdin is not None
        process.stdin.write(self._setup)
        process.stdin.close()
        self._process, self._channel, self.pid = process, ours, process.pid
        self._served = False
        self._ready.clear()
        self._reader = threading.Thread(target=self._listen, name=f"hl7 intake {self.number}", daemon=True)
        self._reader.start()

    def wait_ready(self) -> None:
        if not self._ready.wait(START_SECONDS) or not self.serving:
            raise RuntimeError(f"HL7 intake process {self.number} did not start (see its log lines above)")

    def hand(self, sock: socket.socket, peer: Peer) -> bool:
        """Whether the connection reached the intake process."""
        assert self._channel is not None
        try:
            socket.send_fds(self._channel, [json.dumps({"peer": list(peer)}).encode()], [sock.fileno()])
        except OSError as exc:  # it has just ended: its reader starts another
            log.warning("HL7 intake process %d did not take a connection: %s", self.number, exc)
            self._pool.closed_one(self)
            return False
        return True

    def ask_to_stop(self) -> None:
        if self._channel is not None:
            with contextlib.suppress(OSError):  # already gone
                self._channel.send(b'{"stop": true}')

    def join(self) -> None:
        if self._process is not None:
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log.warning("HL7 intake process %d did not stop; killed", self.number)
                self._process.kill()
                self._process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def _listen(self) -> None:
        """Its reports until its end of the pair closes; then, unless the broker is
        stopping, another process in its place."""
        assert self._channel is not None and self._process is not None
        channel, process = self._channel, self._process
        while datagram := _receive(channel):
            self._report(json.loads(datagram))
        channel.close()
        code = process.wait()
        self.serving = False
        self._ready.set()
        self._pool.lost(self)
        if self._pool.stopping:
            return
        self._delay = RESTART_SECONDS if self._served else min(self._delay * 2, RESTART_SECONDS_MAX)
        log.error("HL7 intake process %d ended (exit code %s); another in %g s", self.number, code, self._delay)
        self._pool.restarting()
        time.sleep(self._delay)
        if not self._pool.stopping:
            self.spawn()

    def _report(self, report: dict[str, object]) -> None:
        if report.get("ready"):
            self.serving = self._served = True
            self._ready.set()
            log.info("HL7 intake process %d serving (pid %s)", self.number, self.pid)
        if report.get("closed"):
            self._pool.closed_one(self)
        counts = report.get("metrics")
        if isinstance(counts, dict):
            self._pool.absorb(counts)


def _receive(channel: socket.socket) -> bytes:
    """The next datagram; empty when the other end has closed (or the pair failed)."""
    try:
        return channel.recv(_DATAGRAM)
    except OSError:
        return b""


class RelayedMetrics(Metrics):
    """An intake process's HL7 counters, kept to be passed on (`absorb`) rather than
    exposed: the broker's process alone answers /metrics."""

    def __init__(self) -> None:
        super().__init__()
        self._counts: Counter[str] = Counter()
        self._counts_guard = threading.Lock()

    def hl7_received(self, message_type: str, times: int = 1) -> None:
        self._count(f"received|{message_type}", times)

    def hl7_answered(self, message_type: str, code: str, times: int = 1) -> None:
        self._count(f"answered|{message_type}|{code}", times)

    def hl7_committed_together(self, messages: int, times: int = 1) -> None:
        self._count(f"together|{messages}", times)

    def _count(self, key: str, times: int) -> None:
        with self._counts_guard:
            self._counts[key] += times

    def take(self) -> dict[str, int]:
        """The counts since the last `take`."""
        with self._counts_guard:
            counts, self._counts = dict(self._counts), Counter()
        return counts


class HandedConnections:
    """An intake process's side: the connections its listener (`admit`) is handed, until
    told to stop or the broker's process goes away."""

    def __init__(self, channel: socket.socket, metrics: RelayedMetrics) -> None:
        self._channel = channel
        self._metrics = metrics
        self._done = threading.Event()

    def closed(self) -> None:
        """One connection ended (the listener's `closed`)."""
        self._tell({"closed": 1})

    def serve(self, admit: Callable[[socket.socket, Peer], None]) -> None:
        """Returns when the intake should stop; the caller stops its listener."""
        relay = threading.Thread(target=self._relay_metrics, name="metrics relay", daemon=True)
        relay.start()
        self._tell({"ready": True})
        try:
            while True:
                try:
                    datagram, fds, _flags, _address = socket.recv_fds(self._channel, _DATAGRAM, 1)
                except OSError:
                    return
                if not datagram:  # the broker's process is gone
                    return
                order = json.loads(datagram)
                if order.get("stop"):
                    return
                host, port = order["peer"]
                admit(socket.socket(fileno=fds[0]), (host, port))
        finally:
            self._done.set()
            relay.join(timeout=5)

    def last_report(self) -> None:
        """What is counted since the last report (after the listener stopped)."""
        self._flush()

    def _relay_metrics(self) -> None:
        while not self._done.wait(METRICS_SECONDS):
            self._flush()

    def _flush(self) -> None:
        counts = self._metrics.take()
        if counts:
            self._tell({"metrics": counts})

    def _tell(self, report: dict[str, object]) -> None:
        try:
            self._channel.send(json.dumps(report).encode())
        except OSError:  # the broker's process is gone: nobody to tell
            log.debug("report to the broker's process not sent", exc_info=True)


def intake_command() -> list[str]:
    """How the broker's process starts an intake process (this interpreter)."""
    return [sys.executable, "-m", "broker.intake_process"]


def received_setup() -> tuple[bytes, socket.socket]:
    """In an intake process: what the broker's process sent on standard input, and the
    channel whose descriptor it named on the command line."""
    return sys.stdin.buffer.read(), socket.socket(fileno=int(sys.argv[1]))
