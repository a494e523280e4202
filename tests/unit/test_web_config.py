"""RELIABILITY S5: the API is never reachable from the network without a token; the
refusal names the key, and `broker serve` stops before binding anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from broker.cli import main
from broker.config import BrokerConfig, ConfigError, load_config

TOKEN = {"name": "ops", "role": "read", "token": "0123456789abcdef"}


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "broker.example.org"])
def test_network_bind_without_token_refused(host: str) -> None:
    with pytest.raises(ValidationError, match=r"web\.tokens"):
        BrokerConfig.model_validate({"web": {"enabled": True, "host": host}})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_bind_without_token_allowed(host: str) -> None:
    assert BrokerConfig.model_validate({"web": {"enabled": True, "host": host}}).web.host == host


def test_network_bind_with_token_or_disabled_allowed() -> None:
    assert BrokerConfig.model_validate({"web": {"enabled": True, "host": "0.0.0.0", "tokens": [TOKEN]}}).web.tokens
    assert not BrokerConfig.model_validate({"web": {"host": "0.0.0.0"}}).web.enabled


def test_short_token_and_unknown_role_refused() -> None:
    with pytest.raises(ValidationError):
        BrokerConfig.model_validate({"web": {"tokens": [{**TOKEN, "token": "short"}]}})
    with pytest.raises(ValidationError):
        BrokerConfig.model_validate({"web": {"tokens": [{**TOKEN, "role": "root"}]}})


def test_serve_refuses_to_start_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump({"web": {"enabled": True, "host": "0.0.0.0", "port": 0}}))
    with pytest.raises(ConfigError, match=r"web = .*web.host 0.0.0.0 is reachable from the network"):
        load_config(path)
    assert main(["serve", "--config", str(path)]) == 2
    assert "set web.tokens or bind 127.0.0.1" in capsys.readouterr().err
