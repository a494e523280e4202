"""The worklist's turn gate (broker/gate.py): at most `width` queries compute at
once, the others enter strictly in the order they came (a holder that leaves and comes
straight back queues behind them), a holder gives its place up while it waits on
something else, and after its quantum when others wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from broker.gate import FifoGate


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _queue_up(
    gate: FifoGate, entered: list[str], name: str, then: Callable[[], None] = lambda: None
) -> threading.Thread:
    """A thread that waits for its place, notes its entry, runs `then` and leaves; it is
    started and seen waiting before this returns, so threads queue in call order."""
    before = gate.waiting

    def run() -> None:
        with gate.held():
            entered.append(name)
            then()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: gate.waiting == before + 1, timeout=5)
    return thread


def test_waiters_enter_in_the_order_they_came() -> None:
    gate, entered = FifoGate(1), []
    with gate.held():
        threads = [_queue_up(gate, entered, f"q{n}") for n in range(6)]
        assert entered == []
    for thread in threads:
        thread.join(5)
    assert entered == [f"q{n}" for n in range(6)]


def test_a_holder_coming_straight_back_queues_behind_those_waiting() -> None:
    gate, entered = FifoGate(1), []
    with gate.held():
        waiter = _queue_up(gate, entered, "waiter")
    with gate.held():  # the place was handed to the waiter: no way in before it has been
        entered.append("back")
    waiter.join(5)
    assert entered == ["waiter", "back"]


def test_stepping_out_lets_the_next_in_and_lines_up_again() -> None:
    gate, entered = FifoGate(1), []
    with gate.held():
        waiter = _queue_up(gate, entered, "waiter")
        with gate.stepped_out():
            waiter.join(5)
            assert entered == ["waiter"]
        entered.append("holder again")
    assert entered == ["waiter", "holder again"]


def test_width_two_holds_two_and_queues_the_third() -> None:
    gate, entered = FifoGate(2), []
    release = threading.Event()
    first = _started(gate, entered, "a", release)
    second = _started(gate, entered, "b", release)
    wait_until(lambda: len(entered) == 2, timeout=5)
    third = _queue_up(gate, entered, "c")
    assert entered == ["a", "b"] and gate.waiting == 1
    release.set()
    for thread in (first, second, third):
        thread.join(5)
    assert entered[2] == "c"


def _started(gate: FifoGate, entered: list[str], name: str, release: threading.Event) -> threading.Thread:
    def run() -> None:
        with gate.held():
            entered.append(name)
            release.wait(5)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_turn_point_lets_the_waiting_in_only_after_the_quantum() -> None:
    now = [0.0]
    gate, entered = FifoGate(1, quantum=0.02, clock=lambda: now[0]), []
    with gate.held():
        gate.turn_point()  # nobody waits: nothing to give
        waiter = _queue_up(gate, entered, "waiter")
        now[0] = 0.019
        gate.turn_point()
        assert entered == []  # the quantum is not used up
        now[0] = 0.02
        gate.turn_point()  # the waiter goes first; this holder is back in after it
        waiter.join(5)
        assert entered == ["waiter"] and gate.waiting == 0
        entered.append("holder again")
    assert entered == ["waiter", "holder again"]


def test_a_gate_lets_at_least_one_in() -> None:
    with pytest.raises(ValueError):
        FifoGate(0)
