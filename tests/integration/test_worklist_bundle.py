"""A station's captured queries and answers exported as a bundle for its modality vendor,
de-identified by the PS3.15 Annex E Basic Profile, and replayed with `broker find
--replay`: against DCMTK wlmscpfs serving the bundle's own de-identified worklist
(every query whose matching the profile kept gets the captured count, and the same
answers), and against the broker itself (counts as captured; a pseudonymized key finds
nothing there, and the replay says which answer is missing).

SQLite only: the capture is in memory and the export reads through the same worklist
queries the explain tests run on both backends; this is about DICOM and de-identification.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from broker.app import Broker
from broker.dicom.mwl_scu import Peer, find
from broker.dicom.query_text import parse
from support.cli import run_cli
from support.hl7peer import RisListener, ack_code, sample, scheduled_order, send
from support.net import free_port, wait_for_port
from support.web import READ_TOKEN, client, web_broker, web_port

DAY, NEXT_DAY = "20261123", "20261124"
STEP = "ScheduledProcedureStepSequence."
#: What CT01 asks, and how many steps each gets: station+date, a patient ID, a whole-
#: component name wildcard, a date range, a key the profile removes, a study UID.
QUERIES = [
    (f"{STEP}ScheduledStationAETitle=CT01\n{STEP}ScheduledProcedureStepStartDate={DAY}\nPatientName\nPatientID\n"
     f"AccessionNumber\nStudyInstanceUID\nPatientBirthDate\n{STEP}ScheduledProcedureStepID\n{STEP}Modality\n"
     f"{STEP}ScheduledProcedureStepStartTime"),
    f"PatientID=PAT002\nAccessionNumber\n{STEP}ScheduledProcedureStepID",
    f"PatientName=DOE^*\nAccessionNumber\n{STEP}ScheduledProcedureStepID",
    f"{STEP}ScheduledProcedureStepStartDate={DAY}-{NEXT_DAY}\n{STEP}Modality=CT\nAccessionNumber\n"
    f"{STEP}ScheduledProcedureStepID",
    f"RequestedProcedureID=RPB1\nAccessionNumber\n{STEP}ScheduledProcedureStepID",
    f"StudyInstanceUID=1.2.392.200036.9999.1.8002\nAccessionNumber\n{STEP}ScheduledProcedureStepID",
]  # fmt: skip
COUNTS = [2, 1, 2, 3, 1, 1]
#: Identifying values of the orders: none may be in a bundle.
IDENTIFYING = ["DOE^JOHN", "SMITH^ANNA", "ROE^JANE", "PAT00", "ACCB1", "ACCB2", "RPB1", "POB1", "FOB1",
               "9999.1.800", "19700101", DAY, NEXT_DAY, "WELBY"]  # fmt: skip


def _orders() -> list[bytes]:
    first = scheduled_order("B1", 8001)
    second = scheduled_order("B2", 8002).replace(b"PAT001", b"PAT002").replace(b"DOE^JOHN^Q", b"SMITH^ANNA")
    second = second.replace(b"20261123100000", b"20261123110000")
    next_day = scheduled_order("B3", 8003).replace(b"PAT001", b"PAT003").replace(b"DOE^JOHN^Q", b"ROE^JANE")
    next_day = next_day.replace(b"20261123100000", b"20261124100000")
    on_mr01 = scheduled_order("B4", 8004).replace(b"|CT|", b"|MR|")
    return [first, second, next_day, on_mr01]


@pytest.fixture
def captured(tmp_path: Path, ris: RisListener) -> Iterator[Broker]:
    """A broker that has answered CT01's six queries."""
    dicom = {"host": "127.0.0.1", "port": 0}
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'bundle.db'}", dicom=dicom) as broker:
        acks = send(broker.hl7.port, sample("rad-1-patient-registration/adt_a04.hl7"), *_orders())
        assert [ack_code(a) for a in acks] == ["AA"] * 5
        peer = Peer("127.0.0.1", broker.dicom.port, "CT01", "BROKER")
        assert [len(find(peer, parse(text))) for text in QUERIES] == COUNTS
        yield broker


def _bundle(broker: Broker, tmp_path: Path, dates: str = "shift") -> tuple[dict[str, Any], Path]:
    with client(web_port(broker), READ_TOKEN) as reader:
        answer = reader.get("/api/worklist/bundle", params={"calling_ae": "CT01", "dates": dates})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == 'attachment; filename="worklist-bundle-CT01.json"'
    path = tmp_path / f"bundle-{dates}.json"
    path.write_bytes(answer.content)
    return answer.json(), path


def _value(ds: dict[str, Any], tag: str) -> Any:
    element = ds.get(tag, {})
    values = element.get("Value", [""])
    return values[0]["Alphabetic"] if isinstance(values[0], dict) and "Alphabetic" in values[0] else values[0]


def test_the_bundle_is_de_identified_consistently(captured: Broker, tmp_path: Path) -> None:
    bundle, path = _bundle(captured, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert [word for word in IDENTIFYING if word in text] == []
    applied = bundle["deidentification"]
    assert [c["CodeValue"] for c in applied["codes"]] == ["113100", "113109", "113107"]
    assert applied["options"] == ["Retain Device Identity Option",
                                  "Retain Longitudinal Temporal Information Modified Dates Option"]  # fmt: skip
    queries = bundle["queries"]
    assert bundle["station"] == "CT01" and bundle["not_captured"] == 0
    assert [q["matches"] for q in queries] == COUNTS and [q["status"] for q in queries] == ["0x0000"] * 6
    assert [q["matching_kept"] for q in queries] == [True, True, True, True, False, True]
    assert queries[4]["not_kept"] == ["RequestedProcedureID: removed by the profile"]

    patient = _value(queries[1]["identifier"], "00100020")  # PatientID=PAT002, replaced
    assert patient and [_value(a, "00100020") for a in queries[1]["answers"]] == [patient]
    first_answers = {_value(a, "00100020") for a in queries[0]["answers"]}
    assert patient in first_answers and len(first_answers) == 2  # the same pseudonym in another query's answers
    assert patient in {_value(item, "00100020") for item in bundle["worklist"]}
    name = _value(queries[2]["identifier"], "00100010")
    assert name.endswith("^*") and name != "DOE^*"
    uid = _value(queries[5]["identifier"], "0020000D")
    assert uid.startswith("2.25.") and uid in {_value(item, "0020000D") for item in bundle["worklist"]}

    low, high = _value(queries[3]["identifier"]["00400100"]["Value"][0], "00400002").split("-")
    assert _day(high) - _day(low) == timedelta(days=1)  # the range keeps its length
    assert low != DAY and low == _value(queries[0]["identifier"]["00400100"]["Value"][0], "00400002")
    assert len(bundle["worklist"]) == 4  # every step CT01 could see on the asked days


def _day(text: str) -> date:
    return datetime.strptime(text, "%Y%m%d").date()


@pytest.fixture
def wlmscpfs(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """DCMTK's worklist SCP (AE title WLM) over a folder the test fills."""
    folder = tmp_path / "worklists" / "WLM"
    folder.mkdir(parents=True)
    (folder / "lockfile").touch()
    port = free_port()
    server = subprocess.Popen(["wlmscpfs", "-dfr", "-dfp", str(folder.parent), str(port)], stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        yield port, folder
    finally:
        server.terminate()
        server.wait(timeout=10)


def _worklist_files(bundle: dict[str, Any], folder: Path) -> None:
    """The bundle's worklist as wlmscpfs reads it: one file per item."""
    for number, item in enumerate(bundle["worklist"]):
        ds = Dataset.from_json(item)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.31"
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(folder / f"{number:04d}.wl", enforce_file_format=True)


def test_replay_against_wlmscpfs_with_the_bundles_worklist(
    captured: Broker, wlmscpfs: tuple[int, Path], tmp_path: Path
) -> None:
    port, folder = wlmscpfs
    bundle, path = _bundle(captured, tmp_path)
    _worklist_files(bundle, folder)
    result = run_cli("find", "127.0.0.1", str(port), "--aec", "WLM", "--aet", "CT01", "--replay", str(path))
    assert result.returncode == 1, result.stderr  # the query whose key the profile removed differs
    lines = result.stdout.splitlines()
    verdicts = [line for line in lines if line.startswith("query ")]
    expected = [f"query {n}: expected {c} (0x0000), got {c} (0x0000): same" for n, c in enumerate(COUNTS, 1)]
    assert verdicts[:4] == expected[:4]  # matching kept: the same counts from a third-party SCP
    assert verdicts[4].startswith("query 5: expected 1 (0x0000), got 4 (0x0000): DIFFERENT (a matching key")
    # wlmscpfs does not match on Study Instance UID (not among its matching keys): a
    # difference between two SCPs, which is what a replay is for
    assert verdicts[5] == "query 6: expected 1 (0x0000), got 4 (0x0000): DIFFERENT"
    details = [line for line in lines if not line.startswith("query ")]
    assert [line for line in details if "differs in" in line or "missing" in line] == [], result.stdout
    assert lines[-1] == "4 of 6 queries answered as captured"


def test_replay_against_the_broker_itself(captured: Broker, tmp_path: Path) -> None:
    _, path = _bundle(captured, tmp_path, dates="keep")
    result = run_cli("find", "127.0.0.1", str(captured.dicom.port), "--replay", str(path))  # as CT01, its station
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    station_and_day = lines[0 : lines.index("query 2: expected 1 (0x0000), got 0 (0x0000): DIFFERENT")]
    assert station_and_day[0] == "query 1: expected 2 (0x0000), got 2 (0x0000): same"
    assert "  step SPSB1 differs in AccessionNumber, PatientBirthDate, PatientID, PatientName, StudyInstanceUID" in (
        station_and_day
    )
    assert "  missing: step SPSB2" in lines  # a pseudonymous patient ID finds no one here
    assert "query 4: expected 3 (0x0000), got 3 (0x0000): same" in lines  # a date range, dates kept


def test_a_file_that_is_no_bundle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something else"}))
    result = run_cli("find", "--replay", str(path))
    assert (result.returncode, result.stderr.strip()) == (2, f"broker find: {path}: not a 'swf-broker worklist "
                                                          "bundle 1' file")  # fmt: skip
