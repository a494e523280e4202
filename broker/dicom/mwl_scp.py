"""Modality Worklist C-FIND SCP (RAD-5): a thin handler over the WorklistProvider.

An identifier is read once (`FindRequests`: its query, answer plan and logged keys,
kept by its bytes). Answers are written straight to bytes (`AnswerPlan`) and handed to
the socket's owner (`PendingResponses`); the final status is yielded to pynetdicom,
whose send of it the association's DIMSE provider turns into bytes too
(reactor.RawFinalStatus). An answer the connection can no longer take (write failed,
peer gone) aborts the association and is counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.dimse_primitives import C_FIND

from broker.actors.worklist_provider import TooManyMatches, WorklistProvider
from broker.dicom.audit import record_query
from broker.dicom.pending import PendingResponses
from broker.dicom.status import (
    CANCEL,
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
    OUT_OF_RESOURCES,
    SUCCESS,
    UNABLE_TO_PROCESS,
)
from broker.domain.audit import Outcome
from broker.domain.errors import InvalidInput
from broker.domain.ports import AuditLog
from broker.domain.query_log import Captured, LoggedQuery, QueryLog
from broker.domain.worklist import WorklistQuery
from broker.gate import FifoGate
from broker.mapping.mwl import AnswerPlan, asked_keys, query_from_identifier
from broker.mapping.profile import Profile
from broker.metrics import Metrics

log = logging.getLogger(__name__)


def _failure(status: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds


@dataclass(frozen=True)
class FindRequest:
    """A C-FIND identifier as read: its query, the plan its answers are written with,
    and the keys it matched on (for the query log)."""

    query: WorklistQuery
    plan: AnswerPlan
    keys: Mapping[str, str]


class FindRequests:
    """C-FIND identifiers read once and kept by their bytes. A modality polls with the
    same identifier each time (its station AE, today's date), and reading one through
    pydicom, each element converted on first access, cost more than finding and
    writing its answers (issue #17: 0.65 of 1.5 ms a query with ten answers). A reading
    depends on those bytes, their transfer syntax, the calling AE (its station quirks,
    `dicom.stations`) and the profile, fixed for the broker's life; it is kept for the
    `size` identifiers last used, each of at most `max_bytes` (a hostile peer's
    64 KiB values are read each time, never kept). A refused identifier is read, and
    refused, each time."""

    def __init__(self, profile: Profile, *, size: int = 256, max_bytes: int = 4096) -> None:
        self.profile = profile
        self._size = size
        self._max_bytes = max_bytes
        self._kept: OrderedDict[tuple[bytes, str, str], FindRequest] = OrderedDict()
        self._guard = threading.Lock()

    def read(self, event: evt.Event) -> FindRequest:
        raw = _identifier_bytes(event)
        key = (raw, str(event.context.transfer_syntax), event.assoc.requestor.ae_title)
        with self._guard:
            if (kept := self._kept.get(key)) is not None:
                self._kept.move_to_end(key)
                return kept
        request = self._read(event.identifier, key[2])
        if len(raw) <= self._max_bytes:
            with self._guard:
                self._kept[key] = request
                if len(self._kept) > self._size:
                    self._kept.popitem(last=False)
        return request

    def __len__(self) -> int:
        return len(self._kept)

    def _read(self, identifier: Dataset, calling_ae: str) -> FindRequest:
        query = query_from_identifier(identifier, fold_case_names=self.profile.dicom.fold_case_names)
        plan = AnswerPlan.for_caller(identifier, self.profile, calling_ae)
        return FindRequest(query, plan, _keys(identifier))


@dataclass
class _Tally:
    matches: int = 0
    captured: Captured | None = None
    keys: Mapping[str, str] | None = None


def handle_find(
    event: evt.Event,
    provider: WorklistProvider,
    requests: FindRequests,
    metrics: Metrics,
    audit: AuditLog | None = None,
    queries: QueryLog | None = None,
    gate: FifoGate | None = None,
) -> Iterator[tuple[object, Dataset | None]]:
    """The answers, counted and timed from request to final status (what the modality
    waits for, sending included); each query audited once, refused ones too, and kept
    in the bounded query log of its calling AE. The query is computed in its turn at
    `gate` (broker/gate.py); pynetdicom sends the final status after the gate is
    left, so a handler it abandons holds no place."""
    started, final, tally = time.monotonic(), UNABLE_TO_PROCESS, _Tally()
    if queries is not None:
        tally.captured = _captured(event)
    try:
        with gate.held() if gate is not None else nullcontext():
            answer = _answer(event, provider, requests, metrics, tally, gate)
        if answer is None:
            event.assoc.abort()  # outside the gate: it waits for the association's threads
        else:
            final = _code(answer[0])
            yield answer
    finally:
        seconds = time.monotonic() - started
        metrics.find_answered(final, seconds)
        record_query(audit, event, _outcome(final))
        if queries is not None:
            queries.record(_logged(event, tally, seconds, final))


def _identifier_bytes(event: evt.Event) -> bytes:
    request = event.request
    return request.Identifier.getvalue() if isinstance(request, C_FIND) and request.Identifier is not None else b""


def _captured(event: evt.Event) -> Captured:
    """The identifier's bytes as they came (a modality vendor wants what its device sent)."""
    return Captured(_identifier_bytes(event), implicit=event.context.transfer_syntax == ImplicitVRLittleEndian)


def _keys(identifier: Dataset) -> dict[str, str]:
    try:
        return asked_keys(identifier)
    except Exception:  # a value pydicom cannot convert: the query log shows no keys
        return {}


def _logged(event: evt.Event, tally: _Tally, seconds: float, status: int) -> LoggedQuery:
    keys = dict(tally.keys) if tally.keys is not None else _keys(event.identifier)
    calling = event.assoc.requestor.ae_title
    return LoggedQuery(datetime.now(UTC), calling, keys, tally.matches, seconds, status, tally.captured)


def _outcome(status: int) -> Outcome:
    """The audit outcome of a final status: refused queries (bad identifier, too many
    matches) are minor failures, an unprocessable one serious."""
    if status in (SUCCESS, CANCEL):
        return Outcome.SUCCESS
    return Outcome.SERIOUS_FAILURE if status == UNABLE_TO_PROCESS else Outcome.MINOR_FAILURE


def _code(status: object) -> int:
    value = status.Status if isinstance(status, Dataset) else status
    return value if isinstance(value, int) else UNABLE_TO_PROCESS


def _answer(
    event: evt.Event,
    provider: WorklistProvider,
    requests: FindRequests,
    metrics: Metrics,
    tally: _Tally,
    gate: FifoGate | None,
) -> tuple[object, Dataset | None] | None:
    """Send one pending answer per matching step; return the final status (every
    failure still answers), or None when the connection cannot take the answers (the
    caller aborts the association)."""
    try:
        request = requests.read(event)
        entries = provider.rad5_query_modality_worklist(request.query, event.assoc.requestor.ae_title)
    except InvalidInput as exc:
        return _failure(IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, f"{exc.location}: {exc.reason}"), None
    except TooManyMatches as exc:
        return _failure(OUT_OF_RESOURCES, str(exc)), None
    except Exception:
        log.exception("worklist query failed")
        return _failure(UNABLE_TO_PROCESS, "unable to process the query"), None
    tally.matches, tally.keys = len(entries), request.keys
    log.info("worklist query from %s: %d matches", event.assoc.requestor.ae_title, len(entries))
    plan = request.plan
    implicit = event.context.transfer_syntax == ImplicitVRLittleEndian
    pending = PendingResponses(event, gate)
    final: tuple[object, Dataset | None] | None = SUCCESS, None  # None: the connection failed
    for entry in entries:
        if event.is_cancelled:
            final = CANCEL, None
            break
        try:
            answer = plan.encode(entry, implicit=implicit)
        except Exception:
            log.exception("worklist answer could not be built")
            final = _failure(UNABLE_TO_PROCESS, "unable to build an answer"), None
            break
        if tally.captured is not None:
            tally.captured.keep(answer)
        if not pending.send(answer):
            final = None
            break
    if final is None or not pending.flush():
        metrics.find_aborted("write_failed" if pending.write_failed else "connection_lost")
        return None
    return final
