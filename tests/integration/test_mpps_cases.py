"""The IHE SWF cases the PPS Manager must handle, driven by dcmjs-dimse: link by
accession when no SPS ID is quoted, the group case (one MPPS, several steps), and the
unscheduled case kept as an exception and reconciled later (PS3.17 Annex J)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml
from sqlalchemy import select

from broker.app import Broker
from broker.config import BrokerConfig
from broker.store import tables as t
from broker.store.outbox import WAITING
from support.dicompeer import findscu, mpps
from support.hl7peer import RisListener, sample, segment, send
from support.mpps import n_create, n_set_final

STUDY = "1.2.392.200036.9999.1.1001"


def _cli(config: BrokerConfig, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    command = [sys.executable, "-m", "broker", *args, "--config", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_no_sps_id_linked_by_accession(broker: Broker, ris: RisListener, tmp_path: Path) -> None:
    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
    create = n_create("", "ACC1001", "", STUDY)
    assert mpps(broker.dicom.port, "create", tmp_path, dataset=create)["status"] == 0
    [status] = ris.wait_for(1)
    assert segment(status, "ORC")[5] == "IP"


def test_group_case_one_mpps_completes_two_steps(broker: Broker, ris: RisListener, tmp_path: Path) -> None:
    send(broker.hl7.port, sample("rad-4-procedure-scheduled/omi_o23_two_ipc.hl7"))
    create = n_create("SPS4001A", "ACC4001", "RP4001", "1.2.392.200036.9999.1.4001")
    create["ScheduledStepAttributesSequence"].append(
        {"StudyInstanceUID": "1.2.392.200036.9999.1.4002", "AccessionNumber": "ACC4001",
         "RequestedProcedureID": "RP4002", "ScheduledProcedureStepID": "SPS4002A"}
    )  # fmt: skip
    uid = str(mpps(broker.dicom.port, "create", tmp_path, dataset=create)["affectedSopInstanceUid"])
    assert mpps(broker.dicom.port, "set", tmp_path, uid=uid, dataset=n_set_final())["status"] == 0
    statuses = [segment(m, "OBR")[20] + ":" + segment(m, "ORC")[5] for m in ris.wait_for(4)]
    assert sorted(statuses) == ["SPS4001A:CM", "SPS4001A:IP", "SPS4002A:CM", "SPS4002A:IP"]
    assert findscu(broker.dicom.port, ["AccessionNumber=ACC4001"], tmp_path) == []


def test_unscheduled_kept_as_exception_then_reconciled(
    broker: Broker, config: BrokerConfig, ris: RisListener, tmp_path: Path
) -> None:
    trauma = n_create("", "", "", "1.2.392.200036.9999.6.1")
    uid = str(mpps(broker.dicom.port, "create", tmp_path, dataset=trauma)["affectedSopInstanceUid"])
    assert mpps(broker.dicom.port, "set", tmp_path, uid=uid, dataset=n_set_final())["status"] == 0
    listing = _cli(config, tmp_path, "mpps", "exceptions")
    assert uid in listing.stdout and "COMPLETED" in listing.stdout
    assert _ris_outbox_settled(broker) == []  # nothing queued for the RIS: nothing can arrive
    assert ris.received == []

    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))  # the order comes afterwards
    reconciled = _cli(config, tmp_path, "mpps", "reconcile", uid, "ACC1001")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    [status] = ris.wait_for(1)
    assert segment(status, "ORC")[5] == "CM"
    assert uid not in _cli(config, tmp_path, "mpps", "exceptions").stdout


def test_discontinued_with_reason_cid_9300(broker: Broker, ris: RisListener, tmp_path: Path) -> None:
    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
    uid = str(mpps(broker.dicom.port, "create", tmp_path, dataset=n_create("SPS1001", "ACC1001", "RP1001", STUDY))[
        "affectedSopInstanceUid"
    ])  # fmt: skip
    reason = {
        "CodeValue": "110514",
        "CodingSchemeDesignator": "DCM",
        "CodeMeaning": "Incorrect worklist entry selected",
    }
    stop = {**n_set_final("DISCONTINUED"), "PerformedProcedureStepDiscontinuationReasonCodeSequence": [reason]}
    assert mpps(broker.dicom.port, "set", tmp_path, uid=uid, dataset=stop)["status"] == 0
    assert [segment(m, "ORC")[5] for m in ris.wait_for(2)] == ["IP", "DC"]
    assert findscu(broker.dicom.port, ["AccessionNumber=ACC1001"], tmp_path) == []


def test_append_case_second_mpps_for_a_completed_step(broker: Broker, ris: RisListener, tmp_path: Path) -> None:
    """IHE SWF append: more images after completion come as a new MPPS quoting the same
    step; accepted and linked, while the step stays COMPLETED and the RIS is not told
    again."""
    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
    for _ in range(2):
        create = n_create("SPS1001", "ACC1001", "RP1001", STUDY)
        uid = str(mpps(broker.dicom.port, "create", tmp_path, dataset=create)["affectedSopInstanceUid"])
        assert mpps(broker.dicom.port, "set", tmp_path, uid=uid, dataset=n_set_final())["status"] == 0
    assert [segment(m, "ORC")[5] for m in ris.wait_for(2)] == ["IP", "CM"]
    listing = _cli(broker.config, tmp_path, "mpps", "exceptions")
    assert uid not in listing.stdout  # linked, not an exception
    assert _ris_outbox_settled(broker) == ["sent", "sent"]  # nothing else queued: nothing more can arrive
    assert len(ris.received) == 2


def _ris_outbox_settled(broker: Broker) -> list[str]:
    """The states of the RIS's outbox rows once none is waiting (pending or leased)."""
    o = t.outbox.c
    deadline = time.monotonic() + 15
    while True:
        with broker.engine.connect() as conn:
            states = list(conn.execute(select(o.state).where(o.destination == "ris").order_by(o.id)).scalars())
        if not set(states) & set(WAITING) or time.monotonic() > deadline:
            return states
        time.sleep(0.05)
