"""The web side of the tests: a broker with its API on a free port, two tokens, and
an HTTP client with one of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from broker.app import Broker
from support.brokers import make_config

READ_TOKEN = "read-token-for-tests-0001"
ADMIN_TOKEN = "admin-token-for-tests-0001"


def web_section(**overrides: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "host": "127.0.0.1",
        "port": 0,
        "max_body_bytes": 4096,
        "tokens": [
            {"name": "viewer", "role": "read", "token": READ_TOKEN},
            {"name": "operator", "role": "admin", "token": ADMIN_TOKEN},
        ],
        **overrides,
    }


def client(port: int, token: str | None = READ_TOKEN, *, cookie: str = "") -> httpx.Client:
    """With `token` as the bearer header, or (`cookie`) as the page's sign-in cookie."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    cookies = {"broker_token": cookie} if cookie else {}
    url = f"http://127.0.0.1:{port}"
    return httpx.Client(base_url=url, headers=headers, cookies=cookies, timeout=10, follow_redirects=False)


def web_port(broker: Broker) -> int:
    assert broker.web is not None, "web.enabled is false"
    return broker.web.port


def metric(exposition: str, name: str, **labels: str) -> float:
    """One sample's value from /metrics text; 0 when that series does not exist (yet)."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@contextmanager
def web_broker(ris_port: int, database_url: str, **overrides: object) -> Iterator[Broker]:
    """A started broker with `web_section()`; stopped on exit."""
    web = overrides.pop("web", web_section())
    broker = Broker(make_config(ris_port, database_url=database_url, web=web, **overrides))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
