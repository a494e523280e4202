"""Fixtures: a RIS listener, and the broker started in-process exactly as `broker
serve` starts it (aiosmtpd's Controller pattern), on free ports and a temporary SQLite
database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.app import Broker
from broker.config import BrokerConfig
from support.brokers import make_config
from support.hl7peer import RisListener
from support.net import free_port


@pytest.fixture
def ris() -> Iterator[RisListener]:
    listener = RisListener(free_port()).start()
    yield listener
    listener.stop()


@pytest.fixture
def config(tmp_path: Path, ris: RisListener) -> BrokerConfig:
    return make_config(tmp_path, ris.port)


@pytest.fixture
def broker(config: BrokerConfig) -> Iterator[Broker]:
    instance = Broker(config)
    instance.start()
    yield instance
    instance.stop()
