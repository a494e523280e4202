"""The Alembic head builds exactly the tables broker/store/tables.py declares, on each
backend: a column, index or constraint added to one and not the other fails here, not
in a deployment that migrated to a schema the code does not expect."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from broker.store.tables import metadata


def test_migrated_schema_equals_the_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert differences == []
