"""`broker serve` as a real process (what an operator starts), configured through a
YAML file of its own, reaching the database under test over its URL."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import yaml

from broker.store.migrate import upgrade
from support.net import free_port, wait_for_port


class BrokerProcess:
    def __init__(self, workdir: Path, ris_port: int, database_url: str, **settings: object) -> None:
        """`settings`: top-level configuration sections laid over the test defaults."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.hl7_port, self.dicom_port = free_port(), free_port()
        self.config = workdir / "broker.yaml"
        config: dict[str, object] = {
            "database": {"url": database_url},
            "hl7": {"host": "127.0.0.1", "port": self.hl7_port},
            "dicom": {"host": "127.0.0.1", "port": self.dicom_port},
            "ris": {"host": "127.0.0.1", "port": ris_port, "timeout_seconds": 5},
            "outbox": {"poll_seconds": 0.1, "retry_initial_seconds": 0.2, "retry_max_seconds": 1},
        }
        for name, value in settings.items():  # a section's keys join the defaults' (e.g. dicom limits)
            base = config.get(name)
            config[name] = {**base, **value} if isinstance(base, dict) and isinstance(value, dict) else value
        self.config.write_text(yaml.safe_dump(config))
        upgrade(database_url, create=True)  # `broker db upgrade --create`: serve never creates it
        self.log = workdir / "broker.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> BrokerProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "broker", "serve", "--config", str(self.config)], stdout=log, stderr=log
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        wait_for_port(self.hl7_port, timeout=60)
        wait_for_port(self.dicom_port, timeout=60)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def stop(self) -> None:
        """Whatever state it is in, it is gone afterwards."""
        if self.process and self.process.poll() is None:
            self.kill()
