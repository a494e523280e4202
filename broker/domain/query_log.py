"""The last worklist queries of each calling AE, kept in memory and bounded: what an
operator needs to answer "what did CT01 ask, and what did it get?" without a packet
capture (the worklist lab shows it per station), and what a modality vendor needs to
reproduce it (the captured identifiers and answers, exported de-identified)."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

#: What one capture costs beyond its bytes (objects, list slots), for the byte bound.
_OVERHEAD = 256


@dataclass
class Captured:
    """One query as it came on the wire and (the first `limit` of) its answers, as the
    bytes the broker wrote: opaque here, decoded only when exported. `dropped`: the
    bytes were let go to keep the log within its bound."""

    request: bytes
    implicit: bool
    limit: int = 100
    answers: list[bytes] = field(default_factory=list)
    dropped: bool = False

    def keep(self, answer: bytes) -> None:
        if len(self.answers) < self.limit:
            self.answers.append(answer)

    @property
    def size(self) -> int:
        return len(self.request) + sum(len(a) for a in self.answers) + _OVERHEAD * (1 + len(self.answers))

    def drop(self) -> None:
        self.request, self.answers, self.dropped = b"", [], True


@dataclass(frozen=True)
class LoggedQuery:
    at: datetime
    calling_ae: str
    #: The matching keys with a value, by keyword (sequence items as `Sequence.Keyword`).
    keys: Mapping[str, str]
    matches: int
    seconds: float
    status: int
    captured: Captured | None = None


class QueryLog:
    """At most `per_caller` queries for each of at most `callers` calling AE titles; the
    caller heard from least recently is forgotten first, so a scan of random AE titles
    cannot grow it. Captured bytes are bounded apart (`captured_bytes` in all): the
    oldest captures are dropped first, their queries stay listed."""

    def __init__(self, per_caller: int = 20, callers: int = 200, captured_bytes: int = 16 << 20) -> None:
        self._per_caller, self._callers, self._captured_bytes = per_caller, callers, captured_bytes
        self._log: OrderedDict[str, deque[LoggedQuery]] = OrderedDict()
        self._captures: deque[Captured] = deque()
        self._held = 0
        self._lock = threading.Lock()

    def record(self, query: LoggedQuery) -> None:
        with self._lock:
            queries = self._log.pop(query.calling_ae, None) or deque(maxlen=self._per_caller)
            queries.append(query)
            self._log[query.calling_ae] = queries
            while len(self._log) > self._callers:
                self._log.popitem(last=False)
            if query.captured is not None:
                self._hold(query.captured)

    def _hold(self, captured: Captured) -> None:
        self._captures.append(captured)
        self._held += captured.size
        while self._held > self._captured_bytes and self._captures:
            oldest = self._captures.popleft()
            self._held -= oldest.size
            oldest.drop()

    @property
    def held_bytes(self) -> int:
        """Captured bytes held now (never above `captured_bytes` once a record returns)."""
        with self._lock:
            return self._held

    def recent(self, calling_ae: str | None = None) -> list[LoggedQuery]:
        """Newest first: one caller's queries, or every caller's."""
        with self._lock:
            chosen = [self._log.get(calling_ae, deque())] if calling_ae is not None else list(self._log.values())
            found = [query for queries in chosen for query in queries]
        return sorted(found, key=lambda q: q.at, reverse=True)

    def callers(self) -> list[str]:
        """The calling AE titles heard from, most recently heard first."""
        with self._lock:
            return list(reversed(self._log))
