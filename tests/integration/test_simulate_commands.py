"""`broker simulate ris` and `broker simulate modality` against the broker: the RIS
sends registration and order, the modality performs the step, and the RIS takes the
status messages back (delivered by the outbox once the RIS listens)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.app import Broker
from broker.cli import main
from support.brokers import make_config
from support.net import free_port

FILES = ["rad-1-patient-registration/adt_a04.hl7", "rad-2-placer-order/orm_o01_nw.hl7"]


def test_ris_and_modality_simulators(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ris_port = free_port()
    broker = Broker(make_config(ris_port, database_url=f"sqlite:///{tmp_path / 'broker.db'}"))
    broker.start()
    ris = ["simulate", "ris", *FILES, "--port", str(broker.hl7.port), "--listen-port", str(ris_port)]
    try:
        assert main(ris) == 0
        assert main(["simulate", "modality", "--port", str(broker.dicom.port), "--station", "CT01"]) == 0
        # The same messages again are duplicates (answered AA, not applied twice); meanwhile
        # the outbox delivers the IP and CM status messages to the listening RIS.
        assert main([*ris, "--expect", "2"]) == 0
    finally:
        broker.stop()
    out = capsys.readouterr().out
    assert "C-FIND: 0x0000, 1 item(s)" in out
    assert "N-SET COMPLETED: 0x0000" in out
    assert "status: MSH-9=ORM^O01^ORM_O01 ORC-1=SC ORC-5=IP OBR-18=ACC1001" in out
    assert "status: MSH-9=ORM^O01^ORM_O01 ORC-1=SC ORC-5=CM OBR-18=ACC1001" in out
