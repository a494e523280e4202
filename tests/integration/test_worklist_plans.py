"""RAD-5 from indexed SQL (issue 5, item 4): for each usual matching key the worklist
query's plan reaches its rows through an index, on SQLite and on PostgreSQL; only a
query with no usual key (universal matching) scans."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine

from broker.domain.worklist import Key, Pattern, Period, WorklistQuery
from broker.store.worklist import statement
from support.plans import plan

DAY = Period(datetime(2026, 11, 23), datetime(2026, 11, 23, 23, 59, 59))

USUAL_KEYS = {
    "station+date": WorklistQuery(patterns={Key.STATION_AE: Pattern("CT01")}, period=DAY),
    "modality+date": WorklistQuery(patterns={Key.MODALITY: Pattern("CT")}, period=DAY),
    "date": WorklistQuery(period=DAY),
    "station": WorklistQuery(patterns={Key.STATION_AE: Pattern("CT01")}),
    "patient-id": WorklistQuery(patterns={Key.PATIENT_ID: Pattern("PAT001")}),
    "accession": WorklistQuery(patterns={Key.ACCESSION_NUMBER: Pattern("ACC1001")}),
}


def _full_scans(engine: Engine, query: WorklistQuery) -> list[str]:
    compiled = statement(query).compile(engine, compile_kwargs={"literal_binds": True})
    return plan(engine, str(compiled)).scans


@pytest.mark.parametrize("name", list(USUAL_KEYS))
def test_usual_keys_use_an_index_not_a_full_scan(engine: Engine, name: str) -> None:
    assert _full_scans(engine, USUAL_KEYS[name]) == []


def test_universal_query_scans_the_steps(engine: Engine) -> None:
    """The control: the plan reader does see a full scan when there is one."""
    assert _full_scans(engine, WorklistQuery())


def test_a_select_is_built_once_for_what_a_query_narrows_by() -> None:
    """A modality's poll asks the same query again: its SELECT is the one built before
    (store/worklist.py keeps it, and SQLAlchemy then finds it compiled). A query that
    narrows by anything else gets its own; names are matched in Python, not in SQL."""
    again = WorklistQuery(patterns={Key.STATION_AE: Pattern("CT01")}, period=DAY)
    assert statement(again) is statement(USUAL_KEYS["station+date"])
    named = WorklistQuery(patterns={Key.STATION_AE: Pattern("CT01"), Key.PATIENT_NAME: Pattern("YAMADA*")}, period=DAY)
    assert statement(named) is statement(again)
    for other in (
        WorklistQuery(patterns={Key.STATION_AE: Pattern("CT02")}, period=DAY),
        WorklistQuery(patterns={Key.STATION_AE: Pattern("CT0?")}, period=DAY),
        WorklistQuery(patterns={Key.STATION_AE: Pattern("CT01")}),
    ):
        assert statement(other) is not statement(again)
    assert statement(again, by_creation=True) is not statement(again)
