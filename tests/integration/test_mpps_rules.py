"""PS3.4 Annex F (F.7) rules for the MPPS SCP, driven by an independent DIMSE
implementation (dcmjs-dimse). Each refusal carries its status and an Error Comment,
and leaves the stored instance exactly as it was (RELIABILITY M1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from broker.app import Broker
from broker.store import tables as t
from support.dicompeer import mpps
from support.hl7peer import sample, send
from support.mpps import n_create, n_set_final

CREATE = n_create("SPS1001", "ACC1001", "RP1001", "1.2.392.200036.9999.1.1001")


def _stored(broker: Broker, uid: str) -> tuple[str, str] | None:
    p = t.performed_steps
    with broker.engine.connect() as conn:
        row = conn.execute(select(p.c.status, p.c.attributes).where(p.c.sop_instance_uid == uid)).first()
    return (row.status, row.attributes) if row else None


@pytest.fixture
def created(broker: Broker, tmp_path: Path) -> str:
    send(broker.hl7.port, sample("rad-2-placer-order/orm_o01_nw.hl7"))
    answer = mpps(broker.dicom.port, "create", tmp_path, uid="1.2.392.200036.9999.9.1", dataset=CREATE)
    assert answer["status"] == 0x0000
    return str(answer["affectedSopInstanceUid"])


def _without(key: str) -> dict[str, Any]:
    return {k: v for k, v in CREATE.items() if k != key}


@pytest.mark.parametrize(
    ("dataset", "status"),
    [
        pytest.param(
            {**CREATE, "PerformedProcedureStepStatus": "COMPLETED"}, 0x0106, id="F.7.2.1-status-not-IN-PROGRESS"
        ),
        pytest.param(_without("PerformedStationAETitle"), 0x0120, id="F.7.2-1-type1-missing"),
        pytest.param({**CREATE, "PerformedProcedureStepID": ""}, 0x0121, id="F.7.2-1-type1-empty"),
        pytest.param(_without("ScheduledStepAttributesSequence"), 0x0120, id="F.7.2-1-no-scheduled-step-sequence"),
    ],
)
def test_n_create_refused(broker: Broker, tmp_path: Path, dataset: dict[str, Any], status: int) -> None:
    answer = mpps(broker.dicom.port, "create", tmp_path, uid="1.2.392.200036.9999.9.2", dataset=dataset)
    assert answer["status"] == status
    assert answer["errorComment"]
    assert _stored(broker, "1.2.392.200036.9999.9.2") is None


def test_duplicate_n_create_is_0111_F_7_2_1(broker: Broker, tmp_path: Path, created: str) -> None:
    before = _stored(broker, created)
    answer = mpps(broker.dicom.port, "create", tmp_path, uid=created, dataset=CREATE)
    assert answer["status"] == 0x0111
    assert _stored(broker, created) == before


def test_n_set_unknown_instance_is_0112_F_7_2_2(broker: Broker, tmp_path: Path) -> None:
    answer = mpps(broker.dicom.port, "set", tmp_path, uid="1.2.392.200036.9999.9.404", dataset=n_set_final())
    assert answer["status"] == 0x0112


@pytest.mark.parametrize(
    ("modification", "status"),
    [
        pytest.param({"PatientName": "ROE^JANE"}, 0x0105, id="F.7.2-1-not-allowed-patient"),
        pytest.param({"PerformedStationAETitle": "CT09"}, 0x0105, id="F.7.2-1-not-allowed-station"),
        pytest.param({"PerformedProcedureStepStatus": "COMPLETED"}, 0x0120, id="F.7.2.2-final-needs-end-date-time"),
        pytest.param({"PerformedProcedureStepStatus": "DONE"}, 0x0106, id="C.4.14-undefined-status"),
    ],
)
def test_n_set_refused_state_unchanged(
    broker: Broker, tmp_path: Path, created: str, modification: dict[str, Any], status: int
) -> None:
    before = _stored(broker, created)
    answer = mpps(broker.dicom.port, "set", tmp_path, uid=created, dataset=modification)
    assert answer["status"] == status
    assert answer["errorComment"]
    assert _stored(broker, created) == before


@pytest.mark.parametrize("final", ["COMPLETED", "DISCONTINUED"])
def test_final_state_may_no_longer_be_updated_F_7_2_2_3(
    broker: Broker, tmp_path: Path, created: str, final: str
) -> None:
    assert mpps(broker.dicom.port, "set", tmp_path, uid=created, dataset=n_set_final(final))["status"] == 0
    before = _stored(broker, created)
    for modification in (n_set_final("COMPLETED"), {"PerformedProcedureStepDescription": "late"}):
        answer = mpps(broker.dicom.port, "set", tmp_path, uid=created, dataset=modification)
        assert (answer["status"], answer["errorId"]) == (0x0110, 0xA710)
        assert answer["errorComment"] == "Performed Procedure Step may no longer be updated"
    assert _stored(broker, created) == before


def test_in_progress_n_set_keeps_status_and_merges_F_7_2_2(broker: Broker, tmp_path: Path, created: str) -> None:
    answer = mpps(broker.dicom.port, "set", tmp_path, uid=created, dataset={"PerformedProcedureStepDescription": "CT"})
    assert answer["status"] == 0
    status, attributes = _stored(broker, created) or ("", "")
    assert status == "IN PROGRESS"
    assert '"Value": ["CT"]' in attributes
