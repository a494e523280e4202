"""Alembic environment: migrations run against the broker's configured database."""

from __future__ import annotations

from alembic import context

from broker.store.db import build_engine
from broker.store.tables import metadata

url = context.config.get_main_option("sqlalchemy.url")
assert url, "the broker passes sqlalchemy.url"

if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = build_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
