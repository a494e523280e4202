"""The scheduler's thread count does not depend on timing (RELIABILITY.md D4: threads
back to baseline). With one shared pool, a drain submitted while a long housekeeping run
was still going started a second worker, minutes or hours into a run: the 100,000-echo
soak saw 5 → 6 threads and read it as a leak."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from broker.jobs.scheduler import Jobs


def _wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_each_job_has_its_own_thread_from_the_start_and_an_overlap_adds_none() -> None:
    drains: list[float] = []
    housekeeping_running, release = threading.Event(), threading.Event()
    at_first_run: list[int] = []

    def drain() -> int:
        drains.append(time.monotonic())
        return 0

    def housekeeping() -> int:
        _wait_for(lambda: bool(drains))  # both jobs have run: the threads they need exist
        at_first_run.append(threading.active_count())
        housekeeping_running.set()
        release.wait(10)
        return 0

    before = threading.active_count()
    jobs = Jobs({"ris": drain}, 0.02, housekeeping, every_minutes=5 / 60)
    jobs.start()
    try:
        # Housekeeping runs at start, not 5 s (in the broker: 10 minutes) later, so the
        # thread it runs on exists from the start; a lazily grown pool added it then.
        assert housekeeping_running.wait(2), "housekeeping did not run at start"
        overlapped = len(drains)
        assert _wait_for(lambda: len(drains) >= overlapped + 5), "drains stopped while housekeeping ran"
        assert threading.active_count() == at_first_run[0] == before + 3, threading.enumerate()
    finally:
        release.set()
        jobs.stop()
