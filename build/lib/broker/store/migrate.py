"""`broker db upgrade`: bring a database to the newest schema with Alembic."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine.url import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


#: Session advisory lock held while migrating a PostgreSQL database (see store/db.py).
MIGRATION_LOCK_KEY = 0x5357_4D47  # "SWMG"


def upgrade(url: str) -> None:
    """Brokers started together on one PostgreSQL (`serve` migrates first) take turns:
    the second finds the schema at head instead of racing to create the same tables."""
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
