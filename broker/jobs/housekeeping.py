"""The housekeeping job: what `broker.store.housekeeping` does, on the configured
schedule, once per interval per database (not once per broker)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine

from broker.config import HousekeepingConfig
from broker.store.housekeeping import archive_finished, claim_round, flag_stale, prune_logs

log = logging.getLogger(__name__)


class Housekeeper:
    def __init__(self, engine: Engine, config: HousekeepingConfig, clock: Callable[[], datetime] = datetime.now):
        self._engine = engine
        self._config = config
        self._clock = clock

    def run(self) -> int:
        """One round; returns how many records it touched (0 when another broker ran
        this interval's round)."""
        now = self._clock()
        if not claim_round(self._engine, "housekeeping", now, timedelta(minutes=self._config.interval_minutes)):
            return 0
        stale = flag_stale(self._engine, now - timedelta(hours=self._config.stale_after_hours), now)
        for uid in stale:
            log.warning("MPPS %s still IN PROGRESS after %s h", uid, self._config.stale_after_hours)
        retention = now - timedelta(days=self._config.retention_days)
        archived = archive_finished(self._engine, retention, now)
        refused = now - timedelta(days=self._config.refused_retention_days)
        pruned = prune_logs(self._engine, retention, refused, self._config.prune_batch)
        if archived or pruned:
            log.info("housekeeping: %d orders archived, %d log rows pruned", archived, pruned)
        return len(stale) + archived + pruned
