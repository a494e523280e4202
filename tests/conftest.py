"""Fixtures: a RIS listener, and the broker started in-process exactly as `broker
serve` starts it (aiosmtpd's Controller pattern), on free ports and a temporary SQLite
database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.app import Broker
from broker.config import BrokerConfig
from support.hl7peer import RisListener
from support.net import free_port


@pytest.fixture
def ris() -> Iterator[RisListener]:
    listener = RisListener(free_port()).start()
    yield listener
    listener.stop()


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


@pytest.fixture
def config(tmp_path: Path, ris: RisListener) -> BrokerConfig:
    return make_config(tmp_path, ris.port)


@pytest.fixture
def broker(config: BrokerConfig) -> Iterator[Broker]:
    instance = Broker(config)
    instance.start()
    yield instance
    instance.stop()
