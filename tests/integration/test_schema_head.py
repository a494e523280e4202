"""The Alembic head builds exactly the tables broker/store/tables.py declares, on each
backend: a column, index or constraint added to one and not the other fails here, not
in a deployment that migrated to a schema the code does not expect."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from broker.store.migrate import alembic_config, upgrade
from broker.store.tables import metadata


def test_migrated_schema_equals_the_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert differences == []


def test_0010_keeps_the_rows_it_rebuilds_both_ways(database_url: str) -> None:
    """Revision 0010 copies the two key tables into tables without a rowid (SQLite)
    and rebuilds an index: a database at 0009 with rows in them keeps every row, up
    and down again."""
    config = alembic_config(database_url)
    upgrade(database_url, create=True)
    command.downgrade(config, "0009")
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            for statement in _ROWS_0009:
                conn.execute(text(statement))
        before = _contents(engine)
        command.upgrade(config, "head")
        assert _contents(engine) == before
        if engine.dialect.name == "sqlite":
            assert _without_rowid(engine) == {"patient_name_keys", "inbound_message_orders"}
        command.downgrade(config, "0009")
        assert _contents(engine) == before
        if engine.dialect.name == "sqlite":
            assert _without_rowid(engine) == set()
    finally:
        engine.dispose()


_ROWS_0009 = (
    "INSERT INTO patients (id, patient_id, issuer, name_alphabetic, name_ideographic, name_phonetic, birth_date, sex)"
    " VALUES (1, 'PAT001', '', 'YAMADA^TAROU', '', '', '', '')",
    "INSERT INTO patient_name_keys (patient_pk, name_key) VALUES (1, 'YAMADA'), (1, 'TAROU')",
    "INSERT INTO orders (id, patient_pk, placer_order_number, placer_application, filler_order_number,"
    " accession_number, referring_physician, cancelled, discontinued, assigned_placer_number,"
    " assigned_placer_application) VALUES (1, 1, 'F1', 'BROKER', 'F1', 'ACC1', '', false, false, 'PL9', 'RIS'),"
    " (2, 1, 'PL1', 'RIS', '', 'ACC2', '', false, false, '', '')",
    "INSERT INTO inbound_messages (id, sender, control_id, message_type, received_at, raw, answer, error_code,"
    " error_location, error) VALUES (1, 'RIS', 'MSG1', 'ORM^O01', '2026-12-04 10:00:00', 'x', 'AA', '', '', '')",
    "INSERT INTO inbound_message_orders (message_pk, placer_application, placer_order_number)"
    " VALUES (1, 'RIS', 'PL1'), (1, 'RIS', 'PL2')",
)


def _contents(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    queries = {
        "patient_name_keys": "SELECT patient_pk, name_key FROM patient_name_keys ORDER BY 1, 2",
        "inbound_message_orders": "SELECT * FROM inbound_message_orders ORDER BY 1, 2, 3",
        "assigned": "SELECT id FROM orders WHERE assigned_placer_application = 'RIS'"
        " AND assigned_placer_number = 'PL9' AND assigned_placer_number != ''",
    }
    with engine.connect() as conn:
        return {name: [tuple(row) for row in conn.execute(text(sql))] for name, sql in queries.items()}


def _without_rowid(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        return {name for name, sql in rows if "WITHOUT ROWID" in sql.upper()}
