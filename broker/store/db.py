"""The engine, built once per broker (never per request), and its connection settings.

SQLite runs in WAL mode so worklist readers never wait for the HL7 writer; writes
start with BEGIN IMMEDIATE so two writers queue on the lock instead of failing when a
read transaction tries to upgrade. `synchronous` is NORMAL by default (survives a
process crash) and FULL on request (survives power loss).

PostgreSQL gets the same two guarantees the actors rely on (a unit of work reads,
decides, then writes, and no other writer may slip in between): every write
transaction first takes one transaction-scoped advisory lock, so writers queue as
they do behind SQLite's BEGIN IMMEDIATE, also across broker instances sharing the
database; transactions opened with `execution_options(readonly=True)` are READ ONLY
and skip that lock, so worklist readers never wait for a writer; transactions opened with
`execution_options(row_locked=True)` (the outbox sender's) guard their rows with
`SELECT ... FOR UPDATE SKIP LOCKED` themselves and skip it too, so brokers deliver in
parallel without holding up HL7 intake. `lock_timeout` plays
SQLite's `busy_timeout`: a writer stuck behind the lock for 30 s fails (the HL7 side
answers AR) instead of hanging.

A SQLite file is opened for reading and writing only if it exists (`mode=rw`): a
connection opened after the file was deleted fails instead of creating an empty
database, and one opened after it was replaced fails the `StoreWatch` identity check
(see store/watch.py) instead of serving another database.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.url import URL, make_url

from broker.errors import StoreUnavailable

if TYPE_CHECKING:
    from broker.store.watch import StoreWatch

#: The advisory lock every PostgreSQL write transaction takes: any bigint no other
#: application on the same database uses.
WRITER_LOCK_KEY = int.from_bytes(b"swfbrokr", "big")


def build_engine(url: str, *, sqlite_synchronous: str = "NORMAL", watch: StoreWatch | None = None) -> Engine:
    """`hide_parameters`: a database error that reaches the log must not carry the
    bound values (patient names, IDs); no patient data in logs above DEBUG."""
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        engine = create_engine(
            url,
            hide_parameters=True,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            connect_args={"options": "-c lock_timeout=30000"},  # ms, as busy_timeout below
        )
        _queue_postgresql_writers(engine)
        return engine
    if backend != "sqlite":
        return create_engine(url, hide_parameters=True, pool_pre_ping=True, pool_size=10, max_overflow=20)
    # LIFO: the connection that wrote last is taken again, its page cache still valid;
    # taken in turn, each found the others' writes in the WAL and read its pages again
    # (six reads an HL7 message, none now).
    engine = create_engine(
        _existing_only(make_url(url)),
        hide_parameters=True,
        pool_use_lifo=True,
        connect_args={"check_same_thread": False, "timeout": 30},
    )
    _tune_sqlite(engine, sqlite_synchronous, watch)
    return engine


def _existing_only(url: URL) -> URL:
    """The URL of a SQLite file that is never created by connecting (`mode=rw`)."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return url
    # A URI filename: '?', '#' and '%' in the path would otherwise end or escape it.
    return url.set(database=f"file:{quote(database, safe='/')}").update_query_dict({"mode": "rw", "uri": "true"})


def sqlite_file(engine: Engine) -> Path | None:
    """The file a SQLite engine of `build_engine` opens (its URL as `_existing_only`
    wrote it: a URI, the path quoted); None in memory."""
    database = unquote(str(engine.url.database or "").removeprefix("file:"))
    return None if database in ("", ":memory:") else Path(database)


def _tune_sqlite(engine: Engine, synchronous: str, watch: StoreWatch | None) -> None:
    path = sqlite_file(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if watch is not None and path is not None and not watch.same_file(path):
            dbapi_connection.close()
            raise StoreUnavailable(f"database file {path} is not the file opened at start")
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        """On the driver's connection: SQLAlchemy's execution path would cost more than
        the BEGIN (once per unit of work, so once per HL7 message)."""
        readonly = connection.get_execution_options().get("readonly", False)
        connection.connection.dbapi_connection.execute("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _queue_postgresql_writers(engine: Engine) -> None:
    """psycopg opens the transaction itself (BEGIN before the first statement), so the
    first statement here is the first one inside it."""

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get("readonly", False):
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        elif not options.get("row_locked", False):
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK_KEY})")
