"""Clinical integrity through real peers (issue 14, defects 1 and 2): two RIS over MLLP,
a modality that quotes only the accession number (dcmjs-dimse mpps_scu.mjs), the CLI
as an operator runs it, and the REST API and page.

Before: a second RIS re-used an accession number active for another patient and got AA;
an MPPS quoting only that accession then started the *first* patient's exam. After a
cancel and a re-order with the same accession, the MPPS became an exception and
`mpps reconcile` answered "unknown order" (it found the cancelled order).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broker.app import RIS, Broker
from broker.config import BrokerConfig
from broker.store import reads
from broker.store import tables as t
from support.cli import run_cli
from support.dicompeer import mpps
from support.hl7peer import RisListener, ack_code, sample, segment, send
from support.mpps import n_create
from support.web import ADMIN_TOKEN, client, web_port
from support.web import web_broker as running

STUDY = "1.2.392.200036.9999.1.1001"
NW = "rad-2-placer-order/orm_o01_nw.hl7"

#: The catalog order as a second RIS sends it: its own sender, placer number, patient,
#: procedure and study, but the accession number ACC1001 the first RIS's order holds.
SECOND_RIS = {
    "|RIS|HOSPITAL|": "|RIS2|HOSPITAL|",
    "ORM0001": "ORM2001",
    "PO1001^RIS": "PO2001^RIS2",
    "FO1001": "FO2001",
    "PAT001": "PAT002",
    "DOE^JOHN^Q": "ROE^JANE",
    "RP1001": "RP2001",
    "SPS1001": "SPS2001",
    "9999.1.1001": "9999.1.2001",
}


def _ris_messages(broker: Broker) -> int:
    """Status messages (RAD-3) queued for the RIS: state, not a wait-and-count."""
    with broker.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(t.outbox.c.destination == RIS)).scalar_one())


def _step_status(broker: Broker, sps_id: str) -> str:
    return next(s.status for s in reads.steps(broker.engine) if s.sps_id == sps_id)


def _accession_only(patient_id: str, study: str = STUDY) -> dict[str, object]:
    """What many modalities send: no SPS ID, no Requested Procedure ID."""
    return n_create("", "ACC1001", "", study, PatientID=patient_id)


def test_defect_1_second_ris_reusing_an_active_accession_is_refused(
    broker: Broker, ris: RisListener, tmp_path: Path
) -> None:
    [first] = send(broker.hl7.port, sample(NW))
    [second] = send(broker.hl7.port, sample(NW, **SECOND_RIS))
    assert ack_code(first) == "AA"
    assert ack_code(second) == "AE"
    location = segment(second, "ERR", "ascii")[1].split("^")  # v2.3.1 ERR-1: OBR^seq^18^205&text&HL70357
    assert (location[0], location[2], location[3].split("&")[0]) == ("OBR", "18", "205"), location
    assert [o.placer_order_number for o in reads.orders(broker.engine)] == ["PO1001"]
    assert reads.patients(broker.engine, patient_id="PAT002") == []

    # the modality has the second patient in front of it and quotes only ACC1001
    other = mpps(broker.dicom.port, "create", tmp_path, dataset=_accession_only("PAT002"))
    assert other["status"] == 0  # accepted and kept: the exam goes on, the link waits
    assert _step_status(broker, "SPS1001") == "SCHEDULED"
    assert _ris_messages(broker) == 0

    # the first patient's own MPPS, quoting only the accession, is linked
    own = mpps(broker.dicom.port, "create", tmp_path, dataset=_accession_only("PAT001"))
    assert own["status"] == 0
    assert (_step_status(broker, "SPS1001"), _ris_messages(broker)) == ("STARTED", 1)
    [status] = ris.wait_for(1)
    assert (segment(status, "PID")[3].split("^")[0], segment(status, "ORC")[5]) == ("PAT001", "IP")


def test_defect_2_cancel_then_reorder_with_the_same_accession(
    broker: Broker, config: BrokerConfig, ris: RisListener, tmp_path: Path
) -> None:
    reorder = {"ORM0001": "ORM0004", "PO1001": "PO1003", "FO1001": "FO1003", "SPS1001": "SPS1003",
               "RP1001": "RP1003", "9999.1.1001": "9999.1.1003"}  # fmt: skip
    acks = send(
        broker.hl7.port,
        sample(NW),
        sample("rad-2-placer-order/orm_o01_ca.hl7", PO1002="PO1001"),
        sample(NW, **reorder),
    )
    assert [ack_code(a) for a in acks] == ["AA", "AA", "AA"]
    linked = mpps(
        broker.dicom.port, "create", tmp_path, dataset=_accession_only("PAT001", "1.2.392.200036.9999.1.1003")
    )
    assert linked["status"] == 0
    [status] = ris.wait_for(1)
    assert (segment(status, "OBR")[20], segment(status, "ORC")[5]) == ("SPS1003", "IP")

    trauma = n_create("", "", "", "1.2.392.200036.9999.6.1", PatientID="PAT001")
    uid = str(mpps(broker.dicom.port, "create", tmp_path, dataset=trauma)["affectedSopInstanceUid"])
    reconciled = run_cli("mpps", "reconcile", uid, "ACC1001", config=config, workdir=tmp_path)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert uid not in run_cli("mpps", "exceptions", config=config, workdir=tmp_path).stdout


def test_exception_reason_candidates_and_forced_reconcile_in_the_cli(
    broker: Broker, config: BrokerConfig, tmp_path: Path
) -> None:
    send(broker.hl7.port, sample(NW), sample(NW, **{**SECOND_RIS, "ACC1001": "ACC2001"}))
    uid = str(mpps(broker.dicom.port, "create", tmp_path, dataset=_accession_only("PAT002"))["affectedSopInstanceUid"])

    listing = run_cli("mpps", "exceptions", config=config, workdir=tmp_path).stdout
    [row] = [line for line in listing.splitlines() if uid in line]
    assert "PAT002" in row and "PatientID disagrees: MPPS 'PAT002', scheduled 'PAT001'" in row

    candidates = run_cli("mpps", "candidates", uid, config=config, workdir=tmp_path)
    assert candidates.returncode == 0
    assert "ACC2001" in candidates.stdout and "ACC1001" not in candidates.stdout

    refused = run_cli("mpps", "reconcile", uid, "ACC1001", config=config, workdir=tmp_path)
    assert (refused.returncode, "PatientID disagrees" in refused.stdout) == (1, True)
    assert _step_status(broker, "SPS1001") == "SCHEDULED"
    forced = run_cli("mpps", "reconcile", uid, "ACC1001", "--force", config=config, workdir=tmp_path)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert _step_status(broker, "SPS1001") == "STARTED"


@pytest.fixture
def web_broker(database_url: str, ris: RisListener) -> Iterator[Broker]:
    with running(ris.port, database_url) as broker:
        yield broker


def test_exception_reason_candidates_and_forced_reconcile_in_the_api_and_page(
    web_broker: Broker, tmp_path: Path
) -> None:
    send(web_broker.hl7.port, sample(NW), sample(NW, **{**SECOND_RIS, "ACC1001": "ACC2001"}))
    created = mpps(web_broker.dicom.port, "create", tmp_path, dataset=_accession_only("PAT002"))
    uid = str(created["affectedSopInstanceUid"])
    with client(web_port(web_broker), ADMIN_TOKEN) as admin:
        [exception] = admin.get("/api/mpps/exceptions").json()
        assert (exception["sop_instance_uid"], exception["patient_id"]) == (uid, "PAT002")
        assert exception["reason"].startswith("PatientID disagrees: MPPS 'PAT002', scheduled 'PAT001'")
        candidates = admin.get(f"/api/mpps/exceptions/{uid}/candidates").json()
        assert [c["accession_number"] for c in candidates] == ["ACC2001"]
        path = f"/api/mpps/exceptions/{uid}/reconcile"
        refused = admin.post(path, json={"accession_number": "ACC1001"})
        assert refused.status_code == 409 and "PatientID" in refused.text
        with client(web_port(web_broker), None, cookie=ADMIN_TOKEN) as browser:
            page = browser.get("/").text
        assert "PatientID disagrees" in page and uid in page
        forced = admin.post(path, json={"accession_number": "ACC1001", "force": True})
        assert forced.status_code == 200, forced.text
        assert forced.json()["linked_sps_ids"] == ["SPS1001"]
