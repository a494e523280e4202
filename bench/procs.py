"""Peer processes: started on free ports, waited for, and always stopped.

Every server under test runs in its own process, never in the benchmark's: the timing
client is Python too, and a server sharing its interpreter would share its GIL and
slow both. Each process gets its own session (process group), so stopping it also
stops what it forked (wlmscpfs forks one child per association); only the groups the
benchmark started are ever signalled.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec (Linux): the kernel sends it SIGTERM when the
    benchmark dies, even by SIGKILL, when no `finally` runs."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A port nothing listens on now (the OS picks it), as the tests' helper does."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PeerFailed(RuntimeError):
    """A peer exited or never listened; the message quotes the end of its log."""


@dataclass
class Peer:
    """One server process: its command, the ports it must open, and its log file."""

    name: str
    argv: Sequence[str]
    ports: Sequence[int]
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    startup_timeout: float = 60.0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Peer:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        deadline = time.monotonic() + self.startup_timeout
        for port in self.ports:
            self._wait_for(port, deadline)
        return self

    def _wait_for(self, port: int, deadline: float) -> None:
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PeerFailed(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise PeerFailed(f"{self.name} did not listen on port {port}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM to the peer's process group, SIGKILL if it is still there after 10 s."""
        process, self.process = self.process, None
        if process is None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Children (wlmscpfs' per-association forks) may outlive the leader briefly.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


class Peers:
    """The peers of one run; `close()` stops all of them, last started first."""

    def __init__(self) -> None:
        self._running: list[Peer] = []

    def start(self, peer: Peer) -> Peer:
        self._running.append(peer)
        return peer.start()

    def stop(self, peer: Peer) -> None:
        peer.stop()
        if peer in self._running:
            self._running.remove(peer)

    def close(self) -> None:
        while self._running:
            self._running.pop().stop()

    @contextlib.contextmanager
    def session(self) -> Iterator[Peers]:
        try:
            yield self
        finally:
            self.close()
