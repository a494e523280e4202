"""Host header parsing and the allow-list the web server builds (broker/web/guards.py);
the middleware itself is exercised against a running broker in test_web_defaults.py."""

from __future__ import annotations

import pytest

from broker.config import WebToken
from broker.web.auth import Tokens
from broker.web.guards import allowed_hosts, split_host


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("localhost:8080", ("localhost", 8080)),
        ("LocalHost", ("localhost", 80)),
        ("[::1]:8443", ("::1", 8443)),
        ("[::1]", ("::1", 80)),
        ("broker.example.org", ("broker.example.org", 80)),
        ("", None),
        (":8080", None),
        ("a:b", None),
        ("a:123456", None),
        ("[::1", None),
        ("[::1]x", None),
        ("a:1:2", ("a:1:2", 80)),  # not a name any resolver knows: never on the allow-list
    ],
)
def test_split_host(value: str, parsed: tuple[str, int] | None) -> None:
    assert split_host(value, 80) == parsed


def test_allowed_hosts_default_and_configured() -> None:
    assert allowed_hosts("0.0.0.0", 8080, []) == {("localhost", 8080), ("127.0.0.1", 8080), ("::1", 8080)}
    assert ("10.1.2.3", 8080) in allowed_hosts("10.1.2.3", 8080, [])
    extra = allowed_hosts("127.0.0.1", 8080, ["Broker.example.org", "gw:8443", "[fe80::1]:80"])
    assert {("broker.example.org", None), ("gw", 8443), ("fe80::1", 80)} <= extra


def test_tokens_compared_by_digest_any_length() -> None:
    tokens = Tokens([WebToken(name="a", role="admin", token="0123456789abcdef")])
    assert tokens.role_of("0123456789abcdef") is not None
    assert [tokens.role_of(t) for t in ("", "0123456789abcde", "0123456789abcdef0", "\udcff" * 20)] == [None] * 4
