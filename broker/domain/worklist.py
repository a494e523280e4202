"""Modality Worklist queries as the domain sees them, and the matching rules of
PS3.4 C.2.2.2 that decide whether a scheduled step answers a query.

The store may pre-filter in SQL for speed; `matches` is the authority, so a rule lives
in one place.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from functools import cached_property

from broker.domain.model import Code, Order, PersonName, RequestedProcedure, ScheduledStep, StepStatus


class Key(enum.StrEnum):
    """Worklist attributes the broker matches on."""

    STATION_AE = "station_ae"
    STATION_NAME = "station_name"
    LOCATION = "location"
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
class TimesOfDay:
    """An inclusive time-of-day range on any day: a TM range asked without a date
    (C.2.2.2.5; with a date, both make one Period, C.2.2.2.5.1)."""

    start: time = time.min
    end: time = time.max

    def contains(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment.time() <= self.end


@dataclass(frozen=True)
class WorklistQuery:
    patterns: Mapping[Key, Pattern] = field(default_factory=dict)
    uid_lists: Mapping[Key, frozenset[str]] = field(default_factory=dict)
    period: Period | None = None
    times: TimesOfDay | None = None
    fold_case_names: bool = False


@dataclass(frozen=True, slots=True)
class WorklistEntry:
    """One worklist item, flat: a scheduled step with what its requested procedure,
    order and patient say about it. A read model: the worklist answers thousands of
    these per query, so it is built straight from one row, not from the aggregate."""

    patient_id: str
    issuer: str
    patient_name: PersonName
    birth_date: str
    sex: str
    accession_number: str
    referring_physician: str
    placer_order_number: str
    filler_order_number: str
    admission_id: str
    requesting_physician: str
    requesting_service: str
    study_instance_uid: str
    requested_procedure_id: str
    procedure_description: str
    procedure_code: Code | None
    priority: str
    sps_id: str
    modality: str
    station_ae: str
    station_name: str
    start: datetime | None
    step_description: str
    protocol_codes: list[Code]
    performing_physician: str
    location: str
    status: StepStatus

    @classmethod
    def of(cls, order: Order, procedure: RequestedProcedure, step: ScheduledStep) -> WorklistEntry:
        patient = order.patient
        return cls(
            patient.patient_id, patient.issuer, patient.name, patient.birth_date, patient.sex,
            order.accession_number, order.referring_physician, order.placer_order_number, order.filler_order_number,
            order.admission_id, order.requesting_physician, order.requesting_service,
            procedure.study_instance_uid, procedure.requested_procedure_id, procedure.description,
            procedure.code, procedure.priority,
            step.sps_id, step.modality, step.station_ae, step.station_name, step.start, step.description,
            step.protocol_codes, step.performing_physician, step.location, step.status,
        )  # fmt: skip

    def value(self, key: Key) -> str:
        return str(getattr(self, key.value))


#: Person Name keys other than the patient's (held as one string, not per component group).
PN_KEYS = frozenset({Key.PERFORMING_PHYSICIAN})


def name_matches(pattern: Pattern, name: PersonName, *, fold_case: bool) -> bool:
    """PN matching: a query without `=` may match any one component group; a query with
    groups matches each non-empty query group against the same group of the name."""
    if "=" not in pattern.text:
        return any(pattern.matches(group, fold_case=fold_case) for group in name.groups() if group)
    query_groups = PersonName.parse(pattern.text).groups()
    return all(
        Pattern(q).matches(v, fold_case=fold_case) for q, v in zip(query_groups, name.groups(), strict=True) if q
    )


@dataclass(frozen=True)
class Exclusion:
    """Why an item is not answered: the key that excluded it, what was asked and what
    the item holds (for "the modality shows nothing": `broker find --explain`)."""

    key: str
    asked: str
    found: str


def matches(entry: WorklistEntry, query: WorklistQuery) -> bool:
    """Whether `entry` answers `query`; empty patterns (universal matching) match all."""
    return next(exclusions(entry, query), None) is None


def exclusions(entry: WorklistEntry, query: WorklistQuery) -> Iterator[Exclusion]:
    """Each key of `query` that `entry` fails, lazily: `matches` stops at the first."""
    for key, pattern in query.patterns.items():
        if not pattern.text or pattern.text == "*":
            continue
        if key is Key.PATIENT_NAME:
            if not name_matches(pattern, entry.patient_name, fold_case=query.fold_case_names):
                yield Exclusion(key.value, pattern.text, str(entry.patient_name))
        elif not pattern.matches(entry.value(key), fold_case=query.fold_case_names and key in PN_KEYS):
            yield Exclusion(key.value, pattern.text, entry.value(key))
    for key, uids in query.uid_lists.items():
        if uids and entry.value(key) not in uids:
            yield Exclusion(key.value, "\\".join(sorted(uids)), entry.value(key))
    if query.times is not None and not query.times.contains(entry.start):
        yield Exclusion("time", f"{query.times.start}-{query.times.end}", _moment(entry.start))
    if query.period is not None and not query.period.contains(entry.start):
        asked = f"{_moment(query.period.start)}-{_moment(query.period.end)}"
        yield Exclusion("date", asked, _moment(entry.start))


def _moment(moment: datetime | time | None) -> str:
    return moment.isoformat(sep=" ") if isinstance(moment, datetime) else str(moment or "")
