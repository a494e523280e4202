"""The broker's scheduler. The outbox is drained on a short interval rather than on
commit hooks: the outbox table is the only hand-off, so a message written by any
process (or before a crash) is found the same way.

Each job has a thread of its own, started with the scheduler: a shared pool would start
another worker the first time a long run overlaps another job (minutes or hours into a
run), which reads as a leaked thread in the D4 soak and is, in any case, a thread count
that depends on timing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)


class Jobs:
    """The broker's recurring work. Jobs are re-created at each start (they keep no
    state of their own: the database holds it), so they survive restarts."""

    def __init__(
        self,
        drains: Mapping[str, Callable[[], int]],
        poll_seconds: float,
        housekeeping: Callable[[], int],
        every_minutes: float,
    ) -> None:
        """`drains`: the outbox rounds, one per destination, each its own job (and
        thread), so a destination that hangs until its timeout delays no other."""
        jobs = [(drain, poll_seconds, f"outbox-drain:{name}") for name, drain in drains.items()]
        jobs.append((housekeeping, every_minutes * 60, "housekeeping"))
        self._scheduler = BackgroundScheduler(
            daemon=True, executors={name: ThreadPoolExecutor(max_workers=1) for _, _, name in jobs}
        )
        for job, seconds, name in jobs:
            self._scheduler.add_job(
                self._guarded(job, name),
                "interval",
                seconds=seconds,
                id=name,
                executor=name,
                max_instances=1,
                coalesce=True,
                next_run_time=datetime.now(UTC),  # a first run at start starts the job's thread
            )

    @staticmethod
    def _guarded(job: Callable[[], int], name: str) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except Exception:  # a failed run is retried at the next interval
                log.exception("%s failed", name)

        return run

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        self._scheduler.shutdown(wait=True)
