"""The Order Filler finds an order by the number its placer assigned (the NA answer to
an order made here) through an index, on SQLite and PostgreSQL (issue #17). That index
is partial: it holds only the orders a placer numbered, so the others, nearly all, add
no entry to it when they are written. A planner uses a partial index only when the
query states the index's condition; this reads the plan of the lookup as it runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from broker.store.uow import SqlUnitOfWorkFactory
from support.plans import plan

ASSIGNED_INDEX = "ix_orders_assigned_placer_application_assigned_placer_number"


def test_the_assigned_placer_number_is_looked_up_through_its_partial_index(engine: Engine) -> None:
    ran: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        ran.append((statement, parameters))

    with SqlUnitOfWorkFactory(engine).reading() as work:
        event.listen(engine, "before_cursor_execute", record)
        try:
            assert work.orders.by_assigned_placer_number("PL0001", "RIS") is None
        finally:
            event.remove(engine, "before_cursor_execute", record)
    [(sql, parameters)] = [(sql, parameters) for sql, parameters in ran if "assigned_placer_number" in sql]
    found = plan(engine, sql, parameters)
    assert found.scans == []
    assert ASSIGNED_INDEX in found.indexes
