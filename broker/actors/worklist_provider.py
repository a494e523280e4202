"""Modality Worklist provider (RAD-5 Query Modality Worklist): who may ask, what they
see, and how much one answer may hold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

from broker.domain.errors import DomainError
from broker.domain.ports import WorklistReader
from broker.domain.states import ON_WORKLIST
from broker.domain.worklist import Exclusion, Key, Pattern, Period, WorklistEntry, WorklistQuery, exclusions

#: How far around the asked period an explanation looks for steps the date excluded.
NEIGHBOUR_DAYS = timedelta(days=1)


class TooManyMatches(DomainError):
    """More steps match than one answer may carry: the modality must narrow its query."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} matches; narrow the query")
        self.limit = limit


@dataclass(frozen=True)
class Explained:
    """One worklist item and what excludes it from a caller's answer (none: returned)."""

    entry: WorklistEntry
    excluded_by: list[Exclusion]


@dataclass(frozen=True)
class CallerPolicy:
    """What one calling AE sees. `station_only`: only the steps scheduled on its own
    station (its AE title, or `station_ae` when the station is known by another)."""

    station_only: bool = False
    station_ae: str = ""


class WorklistProvider:
    def __init__(self, reader: WorklistReader, max_matches: int, callers: Mapping[str, CallerPolicy]) -> None:
        self._reader = reader
        self._max_matches = max_matches
        self._callers = callers

    def rad5_query_modality_worklist(self, query: WorklistQuery, calling_ae: str) -> list[WorklistEntry]:
        """The scheduled steps answering `query` for `calling_ae`; refused with
        TooManyMatches rather than silently cut (a cut worklist hides patients)."""
        entries = self._reader.find(self._scoped(query, calling_ae), self._max_matches + 1)
        if len(entries) > self._max_matches:
            raise TooManyMatches(self._max_matches)
        return entries

    def rad5_worklist_page(
        self, query: WorklistQuery, calling_ae: str, offset: int, limit: int | None
    ) -> tuple[list[WorklistEntry], bool]:
        """One page of the same answer for a client that pages (DICOMweb offset/limit):
        at most `limit` (and never more than one C-FIND answer may carry), and whether
        more matches follow."""
        size = min(limit, self._max_matches) if limit is not None else self._max_matches
        entries = self._reader.find(self._scoped(query, calling_ae), size + 1, offset)
        return entries[:size], len(entries) > size

    def explain(self, query: WorklistQuery, calling_ae: str, limit: int = 200) -> list[Explained]:
        """Every step scheduled in the query's period and the day on either side of it
        (any status, at most `limit`), each with what keeps it from `calling_ae`'s
        answer: a status off the worklist, the caller's station-only rule, or a key of
        the query (the date for the neighbouring days: the step a modality misses is
        often scheduled a day off, or across midnight in another time zone). The same
        rules as `rad5_query_modality_worklist`, item by item."""
        scoped = self._scoped(query, calling_ae)
        station_rule = scoped.patterns.get(Key.STATION_AE) != query.patterns.get(Key.STATION_AE)
        explained = []
        for entry in self._reader.around(replace(query, period=_widened(query.period)), limit):
            off = entry.status not in ON_WORKLIST
            reasons = [Exclusion("status", "SCHEDULED or STARTED", entry.status.value)] if off else []
            for reason in exclusions(entry, scoped):
                station_only = station_rule and reason.key == Key.STATION_AE
                reasons.append(replace(reason, key="station_only rule") if station_only else reason)
            explained.append(Explained(entry, reasons))
        return explained

    def _scoped(self, query: WorklistQuery, calling_ae: str) -> WorklistQuery:
        policy = self._callers.get(calling_ae)
        if policy is None or not policy.station_only:
            return query
        station = Pattern(policy.station_ae or calling_ae)
        return replace(query, patterns={**query.patterns, Key.STATION_AE: station})


def _widened(period: Period | None) -> Period | None:
    if period is None:
        return None
    return Period(period.start - NEIGHBOUR_DAYS if period.start else None,
                  period.end + NEIGHBOUR_DAYS if period.end else None)  # fmt: skip
