"""The worklist read path: indexed SQL narrows, `domain.worklist.matches` decides.

Exact values on the indexed keys (station, modality, patient ID, accession, SPS ID)
and the start-time range go to SQL; wildcards become LIKE with `*`→`%`, `?`→`_` and
the SQL wildcards in the value escaped. Patient's Name is matched in Python, because
PN matching works per component group.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Engine, select
from sqlalchemy.orm import Session

from broker.domain.model import Order, RequestedProcedure, ScheduledStep
from broker.domain.states import ON_WORKLIST
from broker.domain.worklist import Key, Pattern, WorklistEntry, WorklistQuery, matches
from broker.store import tables as t

_COLUMNS = {
    Key.STATION_AE: t.scheduled_steps.c.station_ae,
    Key.STATION_NAME: t.scheduled_steps.c.station_name,
    Key.MODALITY: t.scheduled_steps.c.modality,
    Key.SPS_ID: t.scheduled_steps.c.sps_id,
    Key.PATIENT_ID: t.patients.c.patient_id,
    Key.ACCESSION_NUMBER: t.orders.c.accession_number,
    Key.REQUESTED_PROCEDURE_ID: t.requested_procedures.c.requested_procedure_id,
    Key.STUDY_INSTANCE_UID: t.requested_procedures.c.study_instance_uid,
}


def _like(pattern: Pattern) -> str:
    escaped = pattern.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _conditions(query: WorklistQuery) -> list[ColumnElement[bool]]:
    status_values = [s.value for s in ON_WORKLIST]
    conditions: list[ColumnElement[bool]] = [t.scheduled_steps.c.status.in_(status_values)]
    for key, pattern in query.patterns.items():
        column = _COLUMNS.get(key)
        if column is None or pattern.text in ("", "*"):
            continue
        if pattern.is_wildcard:
            conditions.append(column.like(_like(pattern), escape="\\"))
        else:
            conditions.append(column == pattern.text)
    for key, uids in query.uid_lists.items():
        if key in _COLUMNS and uids:
            conditions.append(_COLUMNS[key].in_(sorted(uids)))
    if query.period is not None:
        if query.period.start is not None:
            conditions.append(t.scheduled_steps.c.start >= query.period.start)
        if query.period.end is not None:
            conditions.append(t.scheduled_steps.c.start <= query.period.end)
    return conditions


class SqlWorklistReader:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find(self, query: WorklistQuery, limit: int) -> list[WorklistEntry]:
        """At most `limit` entries, in scheduled start order."""
        stmt = (
            select(ScheduledStep, RequestedProcedure, Order)
            .join(t.requested_procedures, t.scheduled_steps.c.procedure_pk == t.requested_procedures.c.id)
            .join(t.orders, t.requested_procedures.c.order_pk == t.orders.c.id)
            .join(t.patients, t.orders.c.patient_pk == t.patients.c.id)
            .where(*_conditions(query))
            # Steps without a start time first on every backend: SQLite's default, where
            # PostgreSQL would put them last and so answer a capped query differently.
            .order_by(t.scheduled_steps.c.start.nulls_first(), t.scheduled_steps.c.id)
        )
        entries: list[WorklistEntry] = []
        with self._engine.connect().execution_options(readonly=True) as conn, Session(bind=conn) as session:
            for step, procedure, order in session.execute(stmt).unique():
                entry = WorklistEntry(order, procedure, step)
                if matches(entry, query):
                    entries.append(entry)
                    if len(entries) >= limit:
                        break
        return entries
