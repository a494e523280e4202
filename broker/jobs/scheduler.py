"""The broker's scheduler. The outbox is drained on a short interval rather than on
commit hooks: the outbox table is the only hand-off, so a message written by any
process (or before a crash) is found the same way."""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)


class Jobs:
    def __init__(self, drain: Callable[[], int], poll_seconds: float) -> None:
        self._scheduler = BackgroundScheduler(daemon=True)
        self._scheduler.add_job(
            self._guarded(drain),
            "interval",
            seconds=poll_seconds,
            id="outbox-drain",
            max_instances=1,
            coalesce=True,
        )

    @staticmethod
    def _guarded(job: Callable[[], int]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except Exception:  # a failed run is retried at the next interval
                log.exception("outbox drain failed")

        return run

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        self._scheduler.shutdown(wait=True)
