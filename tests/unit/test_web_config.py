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
    with pytest.raises(ConfigError, match=r"web: .*web.host 0.0.0.0 is reachable from the network"):
        load_config(path)
    assert main(["serve", "--config", str(path)]) == 2
    assert "set web.tokens or bind 127.0.0.1" in capsys.readouterr().err


SECRET = "s3cret-value-NOT-for-logs"


@pytest.mark.parametrize(
    "tokens",
    [
        [{"name": "ops", "token": "short-s3cret"}],  # too short: the defect printed it
        [{"name": "ops", "token": SECRET, "role": "root"}],  # another field wrong
        [{"name": "ops", "token": SECRET, "token_env": "X"}],  # two sources: the whole entry is wrong
        [{"name": "", "token": SECRET}],
    ],
)
def test_token_never_in_the_configuration_error(tmp_path: Path, tokens: list[dict[str, str]]) -> None:
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump({"web": {"enabled": True, "tokens": tokens}}))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert "web.tokens[0]" in message
    assert "s3cret" not in message and refused.value.__cause__ is None  # nor in a chained pydantic error


def test_token_never_in_an_environment_or_yaml_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as from_environment:
        load_config(None, {"BROKER__WEB__TOKENS": "[{name: ops, token: s3cret: x}"})
    path = tmp_path / "broker.yaml"
    path.write_text("web:\n  tokens:\n    - {name: ops, token: s3cret: x}\n")
    with pytest.raises(ConfigError) as from_file:
        load_config(path)
    for refused in (from_environment, from_file):
        assert "s3cret" not in str(refused.value) and refused.value.__cause__ is None
    assert "line 3" in str(from_file.value)


def test_token_from_a_file_or_an_environment_variable(tmp_path: Path) -> None:
    secret_file = tmp_path / "admin.token"
    secret_file.write_text(SECRET + "\n")
    path = tmp_path / "broker.yaml"
    entries = [{"name": "file", "role": "admin", "token_file": str(secret_file)}, {"name": "env", "token_env": "TOK"}]
    path.write_text(yaml.safe_dump({"web": {"enabled": True, "tokens": entries}}))
    web = load_config(path, {"TOK": "from-the-environment-0001"}).web
    assert [t.token.get_secret_value() for t in web.tokens] == [SECRET, "from-the-environment-0001"]
    assert SECRET not in repr(web)
    with pytest.raises(ConfigError, match=r"web.tokens\[1\]: .*TOK is not set"):
        load_config(path, {})
    secret_file.unlink()
    with pytest.raises(ConfigError, match=r"token_file .*admin.token cannot be read"):
        load_config(path, {"TOK": "from-the-environment-0001"})
