"""The worklist lab: for items deliberately kept from a modality (another station,
another day, cancelled, the caller's station-only rule), `broker find --explain`,
`GET /api/worklist/explain` and the lab page name the key that excluded each, using the
broker's own matching; what they call returned is exactly what a C-FIND (DCMTK
findscu) gets. The page shows each station's last queries, captured within a bound."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from broker.app import Broker
from broker.domain.query_log import Captured, LoggedQuery, QueryLog
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
    assert [r["key"] for r in by_item["ACCL3"]] == ["date"], "a step of the next day is named, with its date"
    assert by_item["ACCL3"][0]["found"] == "2026-11-24 10:00:00"
    other_day = _explain(lab, calling_ae="CT01", station="CT01", date=f"{DAY}-{NEXT_DAY}")
    assert other_day["ACCL3"] == []
    one_day = _explain(lab, calling_ae="CT01", date=NEXT_DAY)
    assert one_day["ACCL3"] == [] and [r["key"] for r in one_day["ACCL1"]] == ["date"]
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
    ct01 = run_cli("find", "--explain", "--aet", "CT01", "--station", "CT01", "--date", DAY, config=config,
                   workdir=tmp_path)  # fmt: skip
    assert ct01.returncode == 0, ct01.stderr
    lines = {line.split()[2]: line for line in ct01.stdout.splitlines()[1:]}
    assert lines["ACCL1"].endswith("returned")
    assert "station_ae: asked 'CT01', item has 'MR01'" in lines["ACCL2"]
    assert (
        "date: asked '2026-11-23 00:00:00-2026-11-23 23:59:59.999999', item has '2026-11-24 10:00:00'" in lines["ACCL3"]
    )


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


def _lab_page(broker: Broker, **params: str) -> str:
    """The lab page as a signed-in browser gets it (the sign-in cookie)."""
    with client(web_port(broker), None, cookie=READ_TOKEN) as browser:
        page = browser.get("/lab", params=params)
    assert page.status_code == 200, page.text
    return page.text


def _row(html: str, accession: str) -> str:
    found = re.search(rf'<tr id="excluded-{accession}">(.*?)</tr>', html, re.DOTALL)
    return found.group(1) if found else ""


def _excluding_keys(html: str, accession: str) -> list[str]:
    return re.findall(r'<b class="key">([^<]*)</b>', _row(html, accession))


def _returned(html: str) -> str:
    found = re.search(r'<section class="panel" id="returned">(.*?)</section>', html, re.DOTALL)
    assert found is not None
    return found.group(1)


def test_the_lab_page_names_the_key_that_excluded_each_item(lab: Broker, tmp_path: Path) -> None:
    page = _lab_page(lab, calling_ae="CT01", station="CT01", date=DAY)
    assert _excluding_keys(page, "ACCL2") == ["station_ae"] and "MR01" in _row(page, "ACCL2")  # wrong station
    assert _excluding_keys(page, "ACCL3") == ["date"] and "2026-11-24 10:00" in _row(page, "ACCL3")  # wrong date
    assert _excluding_keys(page, "ACCL4") == ["status"]
    assert _row(page, "ACCL1") == ""  # returned, so not among the excluded
    returned = _returned(page)
    [answer] = findscu(lab.dicom.port, ["ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01",
                       f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={DAY}",
                       "AccessionNumber", "PatientName", "PatientID"], tmp_path, aet="CT01")  # fmt: skip
    for value in (answer.AccessionNumber, answer.PatientID, str(answer.PatientName)):
        assert html.escape(value) in returned  # what the page says CT01 gets is what findscu got
    station_only = _lab_page(lab, calling_ae="CT02", date=DAY)
    assert _excluding_keys(station_only, "ACCL1") == ["station_only rule"]  # the caller's rule
    assert "Nothing: the modality shows an empty worklist" in _returned(station_only)


def test_a_pasted_query_gets_exactly_the_keys_it_asks(lab: Broker) -> None:
    pasted = "ScheduledProcedureStepSequence.ScheduledStationAETitle=CT01\nAccessionNumber\nPatientSex"
    returned = _returned(_lab_page(lab, calling_ae="CT01", query=pasted))
    attributes = re.findall(r'<td class="kw">([^<]*)</td>', returned)
    assert attributes == ["AccessionNumber", "PatientSex", "ScheduledStationAETitle"]
    assert "ACCL1" in returned and "ACCL4" not in returned
    as_json = json.dumps({"00080050": {"vr": "SH", "Value": ["ACCL2"]}, "00100010": {"vr": "PN"}})
    assert "ACCL2" in _returned(_lab_page(lab, calling_ae="CT01", query=as_json))
    refused = _lab_page(lab, calling_ae="CT01", query="NoSuchKeyword=1")
    assert "The query cannot be run: line 1: NoSuchKeyword is no DICOM keyword" in refused


def test_the_lab_page_needs_a_sign_in(lab: Broker) -> None:
    with client(web_port(lab), None) as anonymous:
        assert anonymous.get("/lab").headers["location"] == "/login"


def test_the_lab_page_shows_each_stations_last_queries(lab: Broker, tmp_path: Path) -> None:
    findscu(lab.dicom.port, ["ScheduledProcedureStepSequence[0].Modality=CT", "AccessionNumber"], tmp_path,
            aet="CT01")  # fmt: skip
    page = _lab_page(lab)
    found = re.search(r'<section class="station" id="queries-CT01">(.*?)</section>', page, re.DOTALL)
    assert found is not None
    section = found.group(1)
    assert "<code>Modality=CT</code>" in section and "0x0000" in section and "<td>2</td>" in section
    assert "CT01" in re.findall(r'<option value="([^"]*)">', page)  # offered as a calling AE
    [retry] = re.findall(r'<a href="(/lab\?[^"]*)">run in the lab</a>', section)
    again = _lab_page(lab, **{k: v[0] for k, v in parse_qs(urlsplit(html.unescape(retry)).query).items()})
    assert "ACCL1" in _returned(again) and "ACCL2" not in _returned(again)


def test_captured_queries_stay_within_their_byte_bound() -> None:
    log = QueryLog(per_caller=50, callers=5, captured_bytes=20_000)
    captures = []
    for n in range(40):
        captured = Captured(b"q" * 500, implicit=False)
        for _ in range(10):
            captured.keep(b"a" * 300)
        captures.append(captured)
        log.record(LoggedQuery(datetime(2026, 1, 1, 0, 0, n, tzinfo=UTC), "CT01", {}, 10, 0.0, 0, captured))
        assert log.held_bytes <= 20_000
    assert captures[0].dropped and captures[0].answers == [] and not captures[-1].dropped
    assert len(log.recent("CT01")) == 40  # the queries stay listed, only their bytes go
    big = Captured(b"", implicit=False, limit=3)
    for _ in range(10):
        big.keep(b"a")
    assert len(big.answers) == 3


QUIRKS_PROFILE = str(Path(__file__).resolve().parents[1] / "support" / "profiles" / "station-quirks.yaml")


def test_the_lab_shows_a_stations_quirks(tmp_path: Path, ris: RisListener) -> None:
    """MODALITY1's quirks (alphabetic names only, ISO_IR 100, a priority always sent):
    the lab answers as its C-FIND does, and another station gets the standard answer."""
    with running(ris.port, f"sqlite:///{tmp_path / 'quirks.db'}", profile=QUIRKS_PROFILE) as broker:
        [ack] = send(broker.hl7.port, sample("rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"))
        assert ack_code(ack) == "AA"
        pasted = "SpecificCharacterSet=ISO_IR 192\nPatientID=JP0001\nPatientName\nRequestedProcedureDescription"
        quirky = _returned(_lab_page(broker, calling_ae="MODALITY1", query=pasted))
        standard = _returned(_lab_page(broker, calling_ae="CT01", query=pasted))
    assert "<td>YAMADA^TAROU</td>" in quirky and "山田" not in quirky
    assert "RequestedProcedurePriority" in quirky and "RequestedProcedurePriority" not in standard
    assert "ISO_IR 100, the station&#39;s set, cannot hold this text" in quirky  # the kanji description
    assert "YAMADA^TAROU=山田^太郎=ヤマダ^タロウ" in standard and "ISO_IR 192" in standard
