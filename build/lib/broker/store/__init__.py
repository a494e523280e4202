"""Persistence: SQLAlchemy 2 tables mapped onto the domain classes, units of work, the
outbox, and Alembic migrations. SQLite (WAL) embedded; PostgreSQL to scale out."""
