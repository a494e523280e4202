"""RAD-5 from indexed SQL (issue 5, item 4): for each usual matching key the worklist
query's plan reaches its rows through an index, on SQLite and on PostgreSQL; only a
query with no usual key (universal matching) scans."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from broker.domain.worklist import Key, Pattern, Period, WorklistQuery
from broker.store.worklist import statement

DAY = Period(datetime(2026, 11, 23), datetime(2026, 11, 23, 23, 59, 59))

USUAL_KEYS = {
    "station+date": WorklistQuery(patterns={Key.STATION_AE: Pattern("CT01")}, period=DAY),
    "modality+date": WorklistQuery(patterns={Key.MODALITY: Pattern("CT")}, period=DAY),
    "date": WorklistQuery(period=DAY),
    "station": WorklistQuery(patterns={Key.STATION_AE: Pattern("CT01")}),
    "patient-id": WorklistQuery(patterns={Key.PATIENT_ID: Pattern("PAT001")}),
    "accession": WorklistQuery(patterns={Key.ACCESSION_NUMBER: Pattern("ACC1001")}),
}


def _pg_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _pg_nodes(child)


def _full_scans(engine: Engine, query: WorklistQuery) -> list[str]:
    """The tables the query's plan reads whole: SQLite's "SCAN t" (with or without an
    index: a whole index is read), PostgreSQL's Seq Scan or an index scan with no
    index condition."""
    compiled = statement(query).compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
            return [str(row[-1]) for row in rows if str(row[-1]).startswith("SCAN")]
        # Tiny tables make any plan cheap; with sequential scans priced out, a scan
        # that remains is one no index could replace.
        conn.execute(text("SET enable_seqscan = off"))
        [[plan]] = conn.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).all()
    return [
        f"{node['Node Type']} on {node['Relation Name']}"
        for node in _pg_nodes(plan[0]["Plan"])
        if node["Node Type"] == "Seq Scan"
        or (node["Node Type"] in ("Index Scan", "Index Only Scan") and "Index Cond" not in node)
    ]


@pytest.mark.parametrize("name", list(USUAL_KEYS))
def test_usual_keys_use_an_index_not_a_full_scan(engine: Engine, name: str) -> None:
    assert _full_scans(engine, USUAL_KEYS[name]) == []


def test_universal_query_scans_the_steps(engine: Engine) -> None:
    """The control: the plan reader does see a full scan when there is one."""
    assert _full_scans(engine, WorklistQuery())
