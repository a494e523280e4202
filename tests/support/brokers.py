"""A broker configuration for tests: free ports, the database under test, fast retries."""

from __future__ import annotations

from broker.config import BrokerConfig
from support.net import free_port


def make_config(ris_port: int, *, database_url: str, **overrides: object) -> BrokerConfig:
    """`database_url` comes from the `database_url` fixture (tests/conftest.py), so a
    test building its own broker runs on SQLite and on PostgreSQL like the others."""
    data: dict[str, object] = {
        "database": {"url": database_url},
        "hl7": {"host": "127.0.0.1", "port": free_port()},
        "dicom": {"host": "127.0.0.1", "port": free_port()},
        "ris": {"host": "127.0.0.1", "port": ris_port, "timeout_seconds": 5},
        "outbox": {"poll_seconds": 0.1, "retry_initial_seconds": 0.2, "retry_max_seconds": 1},
        "uid_root": "1.2.392.200036.9999.7",
    }
    data.update(overrides)
    return BrokerConfig.model_validate(data)
