"""Modality Worklist queries as the domain sees them, and the matching rules of
PS3.4 C.2.2.2 that decide whether a scheduled step answers a query.

The store may pre-filter in SQL for speed; `matches` is the authority, so a rule lives
in one place.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from broker.domain.model import Order, PersonName, RequestedProcedure, ScheduledStep


class Key(enum.StrEnum):
    """Worklist attributes the broker matches on."""

    STATION_AE = "station_ae"
    STATION_NAME = "station_name"
    MODALITY = "modality"
    PERFORMING_PHYSICIAN = "performing_physician"
    SPS_ID = "sps_id"
    PATIENT_ID = "patient_id"
    PATIENT_NAME = "patient_name"
    ACCESSION_NUMBER = "accession_number"
    REQUESTED_PROCEDURE_ID = "requested_procedure_id"
    STUDY_INSTANCE_UID = "study_instance_uid"


@dataclass(frozen=True)
class Pattern:
    """A single value, or a wildcard pattern with `*` and `?` (C.2.2.2.4)."""

    text: str

    @property
    def is_wildcard(self) -> bool:
        return "*" in self.text or "?" in self.text

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in self.text)
        return re.compile("".join(parts), re.DOTALL)

    def matches(self, value: str, *, fold_case: bool = False) -> bool:
        value = value.strip(" ")
        if fold_case:
            return Pattern(self.text.casefold())._regex.fullmatch(value.casefold()) is not None
        return self._regex.fullmatch(value) is not None


@dataclass(frozen=True)
class Period:
    """An inclusive date-time range; an open end is None (C.2.2.2.5)."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, moment: datetime | None) -> bool:
        if moment is None:
            return False
        return (self.start is None or moment >= self.start) and (self.end is None or moment <= self.end)


@dataclass(frozen=True)
class WorklistQuery:
    patterns: Mapping[Key, Pattern] = field(default_factory=dict)
    uid_lists: Mapping[Key, frozenset[str]] = field(default_factory=dict)
    period: Period | None = None
    fold_case_names: bool = False


@dataclass(frozen=True)
class WorklistEntry:
    """One worklist item: a scheduled step with the procedure and order it belongs to."""

    order: Order
    procedure: RequestedProcedure
    step: ScheduledStep

    def value(self, key: Key) -> str:
        match key:
            case Key.PATIENT_ID:
                return self.order.patient.patient_id
            case Key.PATIENT_NAME:
                return str(self.order.patient.name)
            case Key.ACCESSION_NUMBER:
                return self.order.accession_number
            case Key.REQUESTED_PROCEDURE_ID | Key.STUDY_INSTANCE_UID:
                return str(getattr(self.procedure, key.value))
            case _:
                return str(getattr(self.step, key.value))


def name_matches(pattern: Pattern, name: PersonName, *, fold_case: bool) -> bool:
    """PN matching: a query without `=` may match any one component group; a query with
    groups matches each non-empty query group against the same group of the name."""
    if "=" not in pattern.text:
        return any(pattern.matches(group, fold_case=fold_case) for group in name.groups() if group)
    query_groups = PersonName.parse(pattern.text).groups()
    return all(
        Pattern(q).matches(v, fold_case=fold_case) for q, v in zip(query_groups, name.groups(), strict=True) if q
    )


def matches(entry: WorklistEntry, query: WorklistQuery) -> bool:
    """Whether `entry` answers `query`; empty patterns (universal matching) match all."""
    for key, pattern in query.patterns.items():
        if not pattern.text or pattern.text == "*":
            continue
        if key is Key.PATIENT_NAME:
            if not name_matches(pattern, entry.order.patient.name, fold_case=query.fold_case_names):
                return False
        elif not pattern.matches(entry.value(key)):
            return False
    for key, uids in query.uid_lists.items():
        if uids and entry.value(key) not in uids:
            return False
    return query.period is None or query.period.contains(entry.step.start)
