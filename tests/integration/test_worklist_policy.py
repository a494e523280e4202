"""RAD-5 policy: a match limit answered with 0xA700 (never a silently cut worklist),
stations that see only their own steps, and unknown callers refused (A-ASSOCIATE-RJ)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.app import Broker
from support.brokers import make_config
from support.dicompeer import findscu
from support.hl7peer import RisListener, sample, send

ORDERS = [
    sample("rad-2-placer-order/orm_o01_nw.hl7"),  # CT → CT01
    sample("rad-2-placer-order/omg_o19_nw.hl7"),  # US → US01
    sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7"),  # MR → MR01
]


@pytest.fixture
def policy_broker(database_url: str, ris: RisListener) -> Iterator[Broker]:
    dicom = {
        "host": "127.0.0.1",
        "port": 0,
        "max_worklist_matches": 2,
        "accept_unknown_callers": False,
        "callers": {
            "CT01": {"station_only": True},
            "PORTABLE": {"station_only": True, "station_ae": "US01"},
            "RIS": {},
        },
    }
    broker = Broker(make_config(ris.port, database_url=database_url, dicom=dicom))
    broker.start()
    send(broker.hl7.port, *ORDERS)
    yield broker
    broker.stop()


def _modalities(broker: Broker, tmp_path: Path, aet: str) -> list[str]:
    answers = findscu(broker.dicom.port, ["ScheduledProcedureStepSequence[0].Modality"], tmp_path, aet=aet)
    return sorted(a.ScheduledProcedureStepSequence[0].Modality for a in answers)


@pytest.mark.parametrize(("aet", "seen"), [("CT01", ["CT"]), ("PORTABLE", ["US"])])
def test_station_sees_only_its_own_steps(policy_broker: Broker, tmp_path: Path, aet: str, seen: list[str]) -> None:
    assert _modalities(policy_broker, tmp_path, aet) == seen


def test_more_matches_than_the_limit_is_refused_0xA700(policy_broker: Broker, tmp_path: Path) -> None:
    result = subprocess.run(
        ["findscu", "-d", "-W", "-aet", "RIS", "-aec", "BROKER", "-k", "AccessionNumber",
         "127.0.0.1", str(policy_broker.dicom.port)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "TCP_NODELAY": "1"},
    )  # fmt: skip
    dump = result.stderr + result.stdout  # findscu -d prints the response command set
    assert "DIMSE Status                  : 0xa700: Refused: Out of resources" in dump
    assert "(0000,0902) LO [more than 2 matches; narrow the query" in dump  # Error Comment


def test_unknown_calling_ae_is_rejected_1_1_3(policy_broker: Broker) -> None:
    result = subprocess.run(
        ["echoscu", "-aet", "STRANGER", "-aec", "BROKER", "127.0.0.1", str(policy_broker.dicom.port)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Calling AE Title Not Recognized" in result.stderr + result.stdout
