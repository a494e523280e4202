"""`broker serve` as a real process, driven over real sockets: the slice survives
kill -9 (committed orders stay on the worklist, pending statuses are still delivered)
and SIGTERM stops it cleanly. Runs on each backend (`database_url`, tests/conftest.py):
the process reaches the test PostgreSQL server over TCP like any deployment would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.dicompeer import findscu, mpps
from support.hl7peer import RisListener, ack_code, sample, segment, send
from support.mpps import n_create
from support.net import free_port
from support.processes import BrokerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def ris_port() -> int:
    return free_port()


@pytest.fixture
def broker_process(tmp_path: Path, ris_port: int, database_url: str) -> Iterator[BrokerProcess]:
    process = BrokerProcess(tmp_path, ris_port, database_url).start()
    yield process
    process.stop()


REFERENCE = n_create("SPS1001", "ACC1001", "RP1001", "1.2.392.200036.9999.1.1001")
KEYS = ["ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01", "AccessionNumber", "PatientName"]


def test_kill_9_after_ack_order_stays_and_pending_status_is_delivered(
    broker_process: BrokerProcess, ris_port: int, tmp_path: Path
) -> None:
    [ack] = send(broker_process.hl7_port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
    assert ack_code(ack) == "AA"
    # The RIS is down: the IN PROGRESS status waits in the outbox.
    assert mpps(broker_process.dicom_port, "create", tmp_path, dataset=REFERENCE)["status"] == 0
    broker_process.kill()

    ris = RisListener(ris_port).start()
    try:
        broker_process.start()
        [item] = findscu(broker_process.dicom_port, KEYS, tmp_path)
        assert item.AccessionNumber == "ACC1001"
        [status] = ris.wait_for(1)
        assert segment(status, "ORC")[5] == "IP"
    finally:
        ris.stop()


def test_sigterm_stops_cleanly(broker_process: BrokerProcess) -> None:
    assert broker_process.terminate() == 0


def test_malformed_message_answered_and_process_keeps_serving(broker_process: BrokerProcess) -> None:
    replies = send(
        broker_process.hl7_port,
        b"MSH|^~\\&|RIS|H|BROKER|R|2026||ORM^O01|X1|P|2.3.1\rPID|\r",
        sample("rad-1-patient-registration/adt_a04.hl7"),
    )
    assert [ack_code(r) for r in replies] == ["AE", "AA"]
    assert broker_process.process is not None and broker_process.process.poll() is None
