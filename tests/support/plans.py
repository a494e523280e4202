"""Query plans read alike on SQLite and PostgreSQL: the tables a plan reads whole and
the indexes it reads through."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

_SQLITE_INDEX = re.compile(r"USING (?:COVERING )?INDEX (\w+)")


@dataclass(frozen=True)
class Plan:
    #: SQLite's "SCAN t" (with or without an index: a whole index is read),
    #: PostgreSQL's Seq Scan or an index scan with no index condition.
    scans: list[str]
    indexes: set[str]


def plan(engine: Engine, sql: str, parameters: Any = None) -> Plan:
    """The plan of `sql` as the driver would run it (its own parameter style)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            details = [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters or ())]
            found = (_SQLITE_INDEX.search(detail) for detail in details)
            return Plan([d for d in details if d.startswith("SCAN")], {m.group(1) for m in found if m})
        # Tiny tables make any plan cheap; with sequential scans priced out, a scan
        # that remains is one no index could replace.
        conn.exec_driver_sql("SET enable_seqscan = off")
        [[json_plan]] = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", parameters).all()
    nodes = list(_pg_nodes(json_plan[0]["Plan"]))
    scans = [
        f"{node['Node Type']} on {node['Relation Name']}"
        for node in nodes
        if node["Node Type"] == "Seq Scan"
        or (node["Node Type"] in ("Index Scan", "Index Only Scan") and "Index Cond" not in node)
    ]
    return Plan(scans, {node["Index Name"] for node in nodes if "Index Name" in node})


def _pg_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _pg_nodes(child)
