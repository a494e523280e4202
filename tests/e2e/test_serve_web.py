"""`broker serve` with `web:` enabled and `log_format: json`, as a real process: the API
answers on its port, SIGTERM stops everything, and every log line is one JSON object
with no patient data in it at INFO."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from broker.store.migrate import upgrade
from support.hl7peer import ack_code, sample, send
from support.net import free_port, wait_for_port
from support.web import client, metric, web_section

pytestmark = pytest.mark.e2e


def test_serve_json_logs_and_web_api(tmp_path: Path) -> None:
    hl7_port, web_port = free_port(), free_port()
    config = tmp_path / "broker.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "log_format": "json",
                "database": {"url": f"sqlite:///{tmp_path / 'broker.db'}"},
                "hl7": {"host": "127.0.0.1", "port": hl7_port},
                "dicom": {"host": "127.0.0.1", "port": free_port()},
                "web": web_section(port=web_port),
            }
        )
    )
    upgrade(f"sqlite:///{tmp_path / 'broker.db'}", create=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "broker", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(web_port)
        [ack] = send(hl7_port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
        with client(web_port) as reader:
            assert reader.get("/ready").json() == {"status": "ready"}
            [order] = reader.get("/api/orders").json()
            exposition = reader.get("/metrics").text
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert (ack_code(ack), order["accession_number"], process.returncode) == ("AA", "ACC1001", 0)
    assert metric(exposition, "broker_hl7_acked_total", message_type="ORM^O01", code="AA") == 1

    entries = [json.loads(line) for line in err.decode("utf-8").splitlines()]
    assert {"broker started", "broker stopped"} <= {e["message"].split(":")[0] for e in entries}
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert not [e for e in entries if "DOE" in json.dumps(e) or "PAT001" in json.dumps(e)]
