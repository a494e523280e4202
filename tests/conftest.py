"""Fixtures: a RIS listener, and the broker started in-process exactly as `broker
serve` starts it (aiosmtpd's Controller pattern), on free ports.

Every test that stores anything runs twice, on each backend the broker supports: a
temporary SQLite file, and a database of its own on a throwaway PostgreSQL server that
the session starts (tests/support/postgres.py) only when a PostgreSQL test is selected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import Engine

from broker.app import Broker
from broker.config import BrokerConfig
from broker.store.db import build_engine
from broker.store.migrate import upgrade
from support.brokers import make_config
from support.dicompeer import DimseFinder
from support.hl7peer import RisListener
from support.net import free_port
from support.postgres import PostgresServer

#: The `chromium` fixture of the page tests.
pytest_plugins = ["support.browser"]

DB_BACKENDS = ["sqlite", "postgresql"]

# Property tests draw the same examples on every run (a CI failure reproduces as is);
# HYPOTHESIS_PROFILE=random explores new ones, and prints the seed of a failure.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("random", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=DB_BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database on the backend under test (the broker migrates it)."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'broker.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.database() as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The migrated database under test, for tests of the store on its own."""
    upgrade(database_url, create=True)
    engine = build_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def ris() -> Iterator[RisListener]:
    listener = RisListener(free_port()).start()
    yield listener
    listener.stop()


@pytest.fixture
def config(database_url: str, ris: RisListener) -> BrokerConfig:
    return make_config(ris.port, database_url=database_url)


@pytest.fixture
def broker(config: BrokerConfig) -> Iterator[Broker]:
    instance = Broker(config)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def dimse_finder() -> Iterator[DimseFinder]:
    """One dcmjs-dimse worklist client process for the session (support/worklist_clients.py)."""
    finder = DimseFinder()
    yield finder
    finder.close()
