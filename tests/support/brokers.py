"""A broker configuration for tests: free ports, a temporary SQLite file, fast retries."""

from __future__ import annotations

from pathlib import Path

from broker.config import BrokerConfig
from support.net import free_port


def make_config(tmp_path: Path, ris_port: int, **overrides: object) -> BrokerConfig:
    data: dict[str, object] = {
        "database": {"url": f"sqlite:///{tmp_path / 'broker.db'}"},
        "hl7": {"host": "127.0.0.1", "port": free_port()},
        "dicom": {"host": "127.0.0.1", "port": free_port()},
        "ris": {"host": "127.0.0.1", "port": ris_port, "timeout_seconds": 5},
        "outbox": {"poll_seconds": 0.1, "retry_initial_seconds": 0.2, "retry_max_seconds": 1},
        "uid_root": "1.2.392.200036.9999.7",
    }
    data.update(overrides)
    return BrokerConfig.model_validate(data)
