"""Modality Worklist provider (RAD-5 Query Modality Worklist)."""

from __future__ import annotations

from broker.domain.ports import WorklistReader
from broker.domain.worklist import WorklistEntry, WorklistQuery


class WorklistProvider:
    def __init__(self, reader: WorklistReader, max_matches: int) -> None:
        self._reader = reader
        self._max_matches = max_matches

    def rad5_query_modality_worklist(self, query: WorklistQuery) -> list[WorklistEntry]:
        """The scheduled steps answering `query`, at most the configured number."""
        return self._reader.find(query, self._max_matches)
