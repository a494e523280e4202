"""The worklist lab: for items deliberately kept from a modality (another station,
another day, cancelled, the caller's station-only rule), `broker find --explain` and
`GET /api/worklist/explain` name the key that excluded each, using the broker's own
matching; what they call returned is exactly what a C-FIND (DCMTK findscu) gets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broker.app import Broker
from broker.domain.query_log import LoggedQuery, QueryLog
from support.cli import run_cli
from support.dicompeer import findscu
from support.hl7peer import RisListener, ack_code, sample, scheduled_order, send
from support.web import READ_TOKEN, client, web_port
from support.web import web_broker as running

DAY, NEXT_DAY = "20261123", "20261124"
CALLERS = {"CT02": {"station_only": True}, "CT01": {}}


def _orders() -> list[bytes]:
    on_ct01 = scheduled_order("L1", 7001)
    on_mr01 = scheduled_order("L2", 7002).replace(b"|CT|", b"|MR|")
    next_day = scheduled_order("L3", 7003).replace(b"20261123100000", b"20261124100000")
    cancelled = scheduled_order("L4", 7004)
    cancel = sample("rad-2-placer-order/orm_o01_ca.hl7", PO1002="POL4", ORM0003="ORML4CA")
    return [on_ct01, on_mr01, next_day, cancelled, cancel]


@pytest.fixture
def lab(database_url: str, ris: RisListener) -> Iterator[Broker]:
    dicom = {"host": "127.0.0.1", "port": 0, "callers": CALLERS}
    with running(ris.port, database_url, dicom=dicom) as broker:
        acks = send(broker.hl7.port, sample("rad-1-patient-registration/adt_a04.hl7"), *_orders())
        assert [ack_code(a) for a in acks] == ["AA"] * 6
        yield broker


def _explain(broker: Broker, **keys: str) -> dict[str, list[dict[str, Any]]]:
    with client(web_port(broker), READ_TOKEN) as reader:
        answer = reader.get("/api/worklist/explain", params=keys)
    assert answer.status_code == 200, answer.text
    return {item["accession_number"]: item["excluded_by"] for item in answer.json()}


def test_each_excluded_item_names_its_key(lab: Broker, tmp_path: Path) -> None:
    by_item = _explain(lab, calling_ae="CT01", station="CT01", date=DAY)
    assert by_item["ACCL1"] == []
    assert [r["key"] for r in by_item["ACCL2"]] == ["station_ae"]
    assert by_item["ACCL2"][0]["found"] == "MR01"
    assert [r["key"] for r in by_item["ACCL4"]] == ["status"]
    assert "ACCL3" not in by_item, "a step of another day is not among the candidates of this day"
    other_day = _explain(lab, calling_ae="CT01", station="CT01", date=f"{DAY}-{NEXT_DAY}")
    assert other_day["ACCL3"] == []
    one_day = _explain(lab, calling_ae="CT01", date=NEXT_DAY)
    assert set(one_day) == {"ACCL3"}
    [answer] = findscu(lab.dicom.port, ["ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01",
                       f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={DAY}",
                       "AccessionNumber"], tmp_path, aet="CT01")  # fmt: skip
    assert answer.AccessionNumber == "ACCL1"


def test_the_station_only_rule_is_named(lab: Broker) -> None:
    by_item = _explain(lab, calling_ae="CT02", date=DAY)
    assert [r["key"] for r in by_item["ACCL1"]] == ["station_only rule"]
    assert by_item["ACCL1"][0] == {"key": "station_only rule", "asked": "CT02", "found": "CT01"}


def test_find_explain_says_the_same_in_the_terminal(lab: Broker, tmp_path: Path) -> None:
    config = lab.config.model_copy(update={"web": lab.config.web.model_copy(update={"tokens": []})})
    result = run_cli("find", "--explain", "--aet", "CT02", "--date", DAY, config=config, workdir=tmp_path)
    assert result.returncode == 1, result.stderr  # nothing is returned to CT02
    lines = {line.split()[2]: line for line in result.stdout.splitlines()[1:]}
    assert "station_only rule: asked 'CT02', item has 'CT01'" in lines["ACCL1"]
    assert "status: asked 'SCHEDULED or STARTED', item has 'CANCELLED'" in lines["ACCL4"]


def test_malformed_keys_are_refused(lab: Broker) -> None:
    with client(web_port(lab), READ_TOKEN) as reader:
        assert reader.get("/api/worklist/explain", params={"calling_ae": "CT01", "date": "2026-11"}).status_code == 422
        assert reader.get("/api/worklist/explain").status_code == 422


def test_the_last_queries_of_each_station_are_kept(lab: Broker, tmp_path: Path) -> None:
    for station in ("CT01", "MR01"):
        findscu(lab.dicom.port, [f"ScheduledProcedureStepSequence[0].ScheduledStationAETitle={station}",
                                 "AccessionNumber"], tmp_path, aet="CT01")  # fmt: skip
    findscu(lab.dicom.port, ["ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=2026-11"],
            tmp_path, aet="CT02")  # fmt: skip
    with client(web_port(lab), READ_TOKEN) as reader:
        ct01 = reader.get("/api/worklist/queries", params={"calling_ae": "CT01"}).json()
        everyone = reader.get("/api/worklist/queries").json()
    assert [(q["keys"], q["matches"], q["status"]) for q in ct01] == [
        ({"ScheduledProcedureStepSequence.ScheduledStationAETitle": "MR01"}, 1, "0x0000"),
        ({"ScheduledProcedureStepSequence.ScheduledStationAETitle": "CT01"}, 2, "0x0000"),
    ]
    assert everyone[0]["calling_ae"] == "CT02"
    assert everyone[0]["status"] == "0xA900"


def test_the_query_log_is_bounded() -> None:
    log = QueryLog(per_caller=3, callers=2)
    for n in range(10):  # AE0 every other query, AE1 and AE2 in turn between
        calling = "AE0" if n % 2 == 0 else f"AE{1 + n // 2 % 2}"
        log.record(LoggedQuery(datetime(2026, 1, 1, 0, 0, n, tzinfo=UTC), calling, {}, n, 0.0, 0))
    assert {q.calling_ae for q in log.recent()} == {"AE0", "AE1"}  # AE2 was heard from least recently
    assert [q.matches for q in log.recent("AE0")] == [8, 6, 4]
