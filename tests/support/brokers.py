"""A broker for tests: free ports, the database under test, fast retries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest

from broker.app import Broker
from broker.config import BrokerConfig
from broker.store.migrate import upgrade
from support.hl7peer import RisListener
from support.net import free_port


def make_config(ris_port: int, *, database_url: str, **overrides: object) -> BrokerConfig:
    """`database_url` comes from the `database_url` fixture (tests/conftest.py), so a
    test building its own broker runs on SQLite and on PostgreSQL like the others. The
    database is created here, as an operator does once with `broker db upgrade
    --create`: a broker never creates one itself."""
    upgrade(database_url, create=True)
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


@contextmanager
def module_broker(request: pytest.FixtureRequest, backend: str, **overrides: object) -> Iterator[Broker]:
    """A started broker with a RIS listener of its own, for a module-scoped fixture: a
    module whose tests only read loads its orders once instead of once per test."""
    with ExitStack() as stack:
        ris = RisListener(free_port()).start()
        stack.callback(ris.stop)
        if backend == "sqlite":
            url = f"sqlite:///{request.getfixturevalue('tmp_path_factory').mktemp('db') / 'broker.db'}"
        else:
            url = stack.enter_context(request.getfixturevalue("postgres_server").database())
        broker = Broker(make_config(ris.port, database_url=url, **overrides))
        broker.start()
        stack.callback(broker.stop)
        yield broker


class BrokerPool:
    """Brokers for one test module, started on first use and kept until the module ends:
    a module whose tests only read loads its orders once per backend, and a backend no
    selected test asks for costs nothing."""

    def __init__(self, stack: ExitStack, load: Callable[[Broker], object] = lambda broker: None) -> None:
        self._stack, self._load = stack, load
        self._brokers: dict[tuple[str, str], Broker] = {}

    def get(self, request: pytest.FixtureRequest, backend: str, profile: str = "ihe-swf") -> Broker:
        """The broker on `backend` with `profile` (a name or a YAML path), its orders loaded."""
        key = (backend, profile)
        if key not in self._brokers:
            broker = self._stack.enter_context(module_broker(request, backend, profile=profile))
            self._load(broker)
            self._brokers[key] = broker
        return self._brokers[key]
