"""The operator's commands run as real processes against live peers: `broker find`
against this broker and against DCMTK's wlmscpfs, `broker outbox retry` ending a
backoff, progress on stderr, and the environment overriding the configuration."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from broker.app import Broker
from broker.config import BrokerConfig
from broker.store.outbox import SqlOutboxQueue
from support.brokers import make_config
from support.cli import run_cli
from support.dicompeer import mpps
from support.hl7peer import CATALOG, RisListener, sample, send
from support.mpps import n_create
from support.net import free_port, wait_for_port

ORDER = "rad-2-placer-order/orm_o01_nw.hl7"


def _find(port: int, *options: str) -> subprocess.CompletedProcess[str]:
    return run_cli("find", "127.0.0.1", str(port), *options)


def test_find_prints_the_worklist_as_a_table(broker: Broker) -> None:
    send(broker.hl7.port, sample(ORDER))
    found = _find(broker.dicom.port, "--station", "CT01", "--date", "20261123-20261124", "--patient-name", "DOE^J*")
    assert found.returncode == 0, found.stderr
    header, row = found.stdout.splitlines()
    assert header.split()[:3] == ["Patient", "name", "Patient"]
    assert row.split() == [
        "DOE^JOHN^Q",
        "PAT001",
        "ACC1001",
        "CT",
        "CT01",
        "20261123",
        "100000",
        "CT",
        "Chest",
        "SPS1001",
    ]


def test_find_exit_status_no_answers_1_unreachable_3(broker: Broker) -> None:
    send(broker.hl7.port, sample(ORDER))
    none = _find(broker.dicom.port, "--accession", "NOSUCH")
    assert (none.returncode, none.stdout, none.stderr.strip()) == (1, "", "no matching worklist items")
    assert _find(broker.dicom.port, "--modality", "MR").returncode == 1
    assert _find(free_port()).returncode == 3
    assert _find(broker.dicom.port, "--date", "23-11-2026").returncode == 2  # usage: not a DA


@pytest.fixture
def wlmscpfs(tmp_path: Path) -> Iterator[int]:
    """DCMTK's file-based worklist SCP serving one item (AE title WLM)."""
    folder = tmp_path / "worklists" / "WLM"
    folder.mkdir(parents=True)
    (folder / "lockfile").touch()
    _worklist_item().save_as(folder / "item.wl", enforce_file_format=True)
    port = free_port()
    server = subprocess.Popen(["wlmscpfs", "-dfr", "-dfp", str(folder.parent), str(port)], stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def _worklist_item() -> Dataset:
    step = Dataset()
    step.ScheduledStationAETitle, step.Modality, step.ScheduledProcedureStepID = "MR01", "MR", "SPSW1"
    step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime = "20261124", "090000"
    step.ScheduledProcedureStepDescription = "MR Knee plain"
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 100"
    item.PatientName, item.PatientID, item.AccessionNumber = "SMITH^ANNA", "WL001", "WLACC1"
    item.RequestedProcedureDescription, item.RequestedProcedureID = "MR Knee", "RPW1"
    item.StudyInstanceUID = generate_uid()
    item.ScheduledProcedureStepSequence = [step]
    item.file_meta = FileMetaDataset()
    item.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.31"
    item.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    item.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return item


def test_find_against_dcmtk_wlmscpfs(wlmscpfs: int) -> None:
    found = _find(wlmscpfs, "--aec", "WLM", "--modality", "MR")
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines()[1].split() == [
        "SMITH^ANNA", "WL001", "WLACC1", "MR", "MR01", "20261124", "090000", "MR", "Knee", "SPSW1"
    ]  # fmt: skip
    assert _find(wlmscpfs, "--aec", "WLM", "--modality", "CT").returncode == 1


def test_outbox_retry_ends_the_backoff_once_the_ris_is_back(database_url: str, tmp_path: Path) -> None:
    ris_port = free_port()
    slow = {"poll_seconds": 0.1, "retry_initial_seconds": 600, "retry_max_seconds": 600}
    config = make_config(ris_port, database_url=database_url, outbox=slow)
    broker = Broker(config)
    broker.start()
    try:
        send(broker.hl7.port, sample(ORDER))
        create = n_create("SPS1001", "ACC1001", "RP1001", "1.2.392.200036.9999.1.1001")
        assert mpps(broker.dicom.port, "create", tmp_path, dataset=create)["status"] == 0
        _wait_until_deferred(broker)  # tried once, now waits 10 minutes
        ris = RisListener(ris_port).start()
        try:
            retried = run_cli("outbox", "retry", config=config, workdir=tmp_path)
            assert (retried.returncode, retried.stdout.strip()) == (0, "1 waiting message(s) due now")
            ris.wait_for(1, timeout=10)
        finally:
            ris.stop()
    finally:
        broker.stop()


def _wait_until_deferred(broker: Broker) -> None:
    deadline = time.monotonic() + 10
    while not any(e.attempts for e in SqlOutboxQueue(broker.engine).listing("pending", 10)):
        assert time.monotonic() < deadline, "the status was never tried"
        time.sleep(0.1)


def test_send_shows_progress_on_stderr_when_asked(broker: Broker) -> None:
    files = [str(CATALOG / "rad-1-patient-registration/adt_a04.hl7"), str(CATALOG / ORDER)]
    port = ["--port", str(broker.hl7.port)]
    shown = run_cli("send", "--progress", *port, *files)
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr.split() == ["0/2", "sent", "1/2", "sent", "2/2", "sent"]  # one line, redrawn (\r)
    assert len(shown.stdout.splitlines()) == 2  # the ACKs, as without progress
    quiet = run_cli("send", *port, *files)  # stderr is a pipe here: no progress
    assert (quiet.returncode, quiet.stderr) == (0, "")


def test_environment_overrides_the_file_and_names_a_bad_value(config: BrokerConfig, tmp_path: Path) -> None:
    database = tmp_path / "from-env" / "broker.db"
    upgraded = run_cli(
        "db",
        "upgrade",
        "--create",
        config=config,
        workdir=tmp_path,
        env={"BROKER__DATABASE__URL": f"sqlite:///{database}"},
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert database.exists()
    bad = run_cli("db", "upgrade", config=config, workdir=tmp_path, env={"BROKER__DICOM__PORT": "eleven"})
    assert bad.returncode == 2
    assert "dicom.port = 'eleven': Input should be a valid integer" in bad.stderr
    assert "(from BROKER__DICOM__PORT)" in bad.stderr
