"""`broker db upgrade`: bring a database to the newest schema with Alembic.

Creating a database is a decision an operator makes once (`broker db upgrade --create`),
never a side effect of starting: a broker whose SQLite file was deleted or moved would
otherwise start on a new, empty one, and every acknowledged order would silently be
gone (issue #14, defect 6).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine.url import make_url

from broker.config import ConfigError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseMissing(ConfigError):
    """The configured database does not exist or holds no broker schema (exit 2, as a
    configuration that cannot be used)."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


#: Session advisory lock held while migrating a PostgreSQL database (see store/db.py).
MIGRATION_LOCK_KEY = 0x5357_4D47  # "SWMG"

#: The page size of a SQLite file the broker creates (SQLite's own is 4 KiB). An order
#: changes about 30 pages (the last leaf of each b-tree it writes, 22 since migration
#: 0010, and some above them), each written whole to the log, checksummed, copied back
#: by the checkpoint and, after another process's commit, read again: 1 KiB pages carry
#: a quarter of those bytes (issue #17: ORM^O01 over four connections and two processes
#: 1,390-1,450 -> 1,650-1,750 msg/s, one connection +5 %; measured: 30.8 KB of log an
#: order, 29 frames). Rows of a few KiB (raw HL7, MPPS) go on in overflow pages; queries
#: read the same b-tree paths, one level deeper at most. A file created before keeps its
#: page size (README, "Operate it", says how to convert one).
SQLITE_PAGE_SIZE = 1024


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other backends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def upgrade(url: str, *, create: bool = False) -> None:
    """Migrate an existing broker database to the newest schema; with `create`, make it
    first if it does not exist. Brokers started together on one PostgreSQL (`serve`
    migrates first) take turns: the second finds the schema at head instead of racing
    to create the same tables."""
    if not create:
        _require_existing(url)
    path = sqlite_path(url)
    if path is not None and not path.exists():  # create: the engine opens existing files only
        _create_sqlite(path)
    if make_url(url).get_backend_name() != "postgresql":
        command.upgrade(alembic_config(url), "head")
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            conn.commit()
            try:
                command.upgrade(alembic_config(url), "head")
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()


def _create_sqlite(path: Path) -> None:
    """An empty database in WAL mode: switching to it writes the header, which fixes
    the page size (a file's page size cannot change once it is in WAL mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as connection:
        connection.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        connection.execute("PRAGMA journal_mode=WAL")


def _require_existing(url: str) -> None:
    """A SQLite file must exist (checked before connecting, which would create it), and
    any database must already carry the broker's schema (an empty one is not ours)."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise DatabaseMissing(f"no database at {path}; create it with `broker db upgrade --create`")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            versioned = inspect(conn).has_table("alembic_version")
    finally:
        engine.dispose()
    if not versioned:
        where = path or make_url(url).render_as_string(hide_password=True)
        raise DatabaseMissing(f"{where} holds no broker schema; create it with `broker db upgrade --create`")
