"""What a stand-in peer received, in arrival order, and a wait for the n-th arrival."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recorder(Generic[T]):
    def __init__(self, what: str) -> None:
        self.received: list[T] = []
        self._what = what
        self._lock = threading.Lock()

    def record(self, item: T) -> None:
        with self._lock:
            self.received.append(item)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[T]:
        """The first `count` arrivals (and any after them), or AssertionError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"received {len(self.received)} of {count} {self._what}")


class AlertRecorder(Recorder[tuple[str, str, str]]):
    """A SecurityAlerts implementation (broker.security) that keeps (kind, peer, detail)."""

    def __init__(self) -> None:
        super().__init__("security alerts")

    def refused(self, kind: str, peer: str, detail: str) -> None:
        self.record((kind, peer, detail))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.received]


def settled(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 15.0) -> T:
    """`read()` once `done` holds for it (the last reading on timeout, for the assert to
    show): for state the broker writes just after a peer saw its effect."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value
