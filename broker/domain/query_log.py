"""The last worklist queries of each calling AE, kept in memory and bounded: what an
operator needs to answer "what did CT01 ask, and what did it get?" without a packet
capture (the worklist lab shows it per station)."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class LoggedQuery:
    at: datetime
    calling_ae: str
    #: The matching keys with a value, by keyword (sequence items as `Sequence.Keyword`).
    keys: Mapping[str, str]
    matches: int
    seconds: float
    status: int


class QueryLog:
    """At most `per_caller` queries for each of at most `callers` calling AE titles; the
    caller heard from least recently is forgotten first, so a scan of random AE titles
    cannot grow it."""

    def __init__(self, per_caller: int = 20, callers: int = 200) -> None:
        self._per_caller, self._callers = per_caller, callers
        self._log: OrderedDict[str, deque[LoggedQuery]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, query: LoggedQuery) -> None:
        with self._lock:
            queries = self._log.pop(query.calling_ae, None) or deque(maxlen=self._per_caller)
            queries.append(query)
            self._log[query.calling_ae] = queries
            while len(self._log) > self._callers:
                self._log.popitem(last=False)

    def recent(self, calling_ae: str | None = None) -> list[LoggedQuery]:
        """Newest first: one caller's queries, or every caller's."""
        with self._lock:
            chosen = [self._log.get(calling_ae, deque())] if calling_ae is not None else list(self._log.values())
            found = [query for queries in chosen for query in queries]
        return sorted(found, key=lambda q: q.at, reverse=True)
