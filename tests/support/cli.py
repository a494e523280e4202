"""The `broker` command run as an operator runs it: a separate process, a YAML file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from broker.config import BrokerConfig


def run_cli(*args: str, config: BrokerConfig | None = None, workdir: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """`python -m broker ARGS [--config FILE]`, FILE holding `config`; `env` is added
    to this process's environment."""
    command = [sys.executable, "-m", "broker", *args]
    if config is not None:
        assert workdir is not None, "a configuration needs a directory to be written to"
        path = workdir / "cli.yaml"
        path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
        command += ["--config", str(path)]
    environment = {**os.environ, **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment)
