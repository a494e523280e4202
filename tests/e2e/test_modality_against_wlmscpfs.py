"""The modality simulator speaks to a third-party worklist: DCMTK `wlmscpfs` serving
one worklist file, queried with `broker simulate modality --worklist-only`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from broker.cli import main
from support.net import free_port, wait_for_port

pytestmark = pytest.mark.e2e


def _item(accession: str, station: str) -> Dataset:
    step = Dataset()
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = "20261123"
    step.ScheduledProcedureStepStartTime = "100000"
    step.Modality = "CT"
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = "CT Chest"
    step.ScheduledProcedureStepID = f"SPS-{accession}"
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.AccessionNumber = accession
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "PAT001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = generate_uid()
    ds.RequestedProcedureID = f"RP-{accession}"
    ds.RequestedProcedureDescription = "CT Chest"
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def _write(ds: Dataset, path: Path) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.276.0.7230010.3.1.0.1"  # DCMTK's worklist file class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture
def wlmscpfs(tmp_path: Path) -> Iterator[int]:
    folder = tmp_path / "WLMSCP"
    folder.mkdir()
    (folder / "lockfile").touch()
    _write(_item("ACC7001", "CT01"), folder / "a.wl")
    _write(_item("ACC7002", "CT02"), folder / "b.wl")
    port = free_port()
    process = subprocess.Popen(
        ["wlmscpfs", "-dfp", str(tmp_path), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_modality_simulator_queries_dcmtk_wlmscpfs(wlmscpfs: int, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "modality", "--port", str(wlmscpfs), "--called-ae", "WLMSCP", "--station", "CT01"]
    assert main([*args, "--worklist-only"]) == 0
    out = capsys.readouterr().out
    assert "C-FIND: 0x0000, 1 item(s)" in out
    assert "ACC7001  SPS-ACC7001  CT  20261123" in out
    assert "ACC7002" not in out  # the station filter worked on the third-party side


def test_no_item_for_an_unknown_station_exits_1(wlmscpfs: int, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "modality", "--port", str(wlmscpfs), "--called-ae", "WLMSCP", "--station", "MR09"]
    assert main([*args, "--worklist-only"]) == 1
    assert "C-FIND: 0x0000, 0 item(s)" in capsys.readouterr().out
