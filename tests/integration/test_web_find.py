"""The console's search and order page over HTTP, on SQLite and PostgreSQL: a JAHIS
order (YAMADA^TAROU=山田^太郎=ヤマダ^タロウ, sent ISO-2022-JP) found by each of its name
groups, by ID, accession, station and days; its page with the HL7 it came in, its
steps, its MPPS and the status sent to the RIS; the page's language; what a search
may not see."""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape

import httpx
import pytest
from sqlalchemy import text

from broker.app import Broker
from support.brokers import module_broker
from support.hl7peer import ack_code, sample, send
from support.mpps import as_dataset, n_create
from support.senders import MppsSender
from support.web import READ_TOKEN, client, web_port, web_section

JAHIS_ORM = "rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"
CT_ORM = "rad-2-placer-order/orm_o01_nw.hl7"
NEXT_DAY = {"JPORM0001": "JPORM0003", "JPPO0001": "JPPO0003", "JPACC0001": "JPACC0003", "JPRP0001": "JPRP0003",
            "JPSPS0001": "JPSPS0003", "20261123093000": "20261124083000"}  # fmt: skip


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def found(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """Two JAHIS orders of the same patient (23 and 24 November, CR01), one CT order
    of DOE^JOHN^Q (CT01); an MPPS started on the first JAHIS order."""
    with module_broker(request, request.param, profile="jahis", web=web_section()) as broker:
        acks = send(broker.hl7.port, sample(JAHIS_ORM), sample(JAHIS_ORM, **NEXT_DAY), sample(CT_ORM))
        assert [ack_code(a) for a in acks] == ["AA", "AA", "AA"]
        with client(web_port(broker)) as api:
            study = api.get("/api/orders/JPACC0001").json()["procedures"][0]["study_instance_uid"]
        started = n_create("JPSPS0001", "JPACC0001", "JPRP0001", study, PerformedStationAETitle="CR01",
                           Modality="CR", PatientID="JP0001", PatientName="YAMADA^TAROU=山田^太郎=ヤマダ^タロウ",
                           SpecificCharacterSet=["ISO_IR 192"])  # fmt: skip
        assert MppsSender(broker.dicom.port).create("1.2.392.200036.9999.7.77", as_dataset(started))() == 0x0000
        yield broker


def _page(broker: Broker, path: str, language: str = "en", **params: str) -> httpx.Response:
    with client(web_port(broker), None, cookie=READ_TOKEN) as browser:
        return browser.get(path, params=params, headers={"Accept-Language": language})


def _accessions(broker: Broker, **params: str) -> list[str]:
    answer = _page(broker, "/find", **params)
    assert answer.status_code == 200, answer.text
    html = answer.text
    return [part.split("<", 1)[0] for part in html.split('class="order-link" href="/order/')[1:]]


def _hits(broker: Broker, **params: str) -> set[str]:
    return {link.split('">', 1)[1] for link in _accessions(broker, **params)}


NAMES = ["山田", "ヤマダ", "yamada", "YAMADA", "やまだ", "ﾔﾏﾀﾞ", "山田 太郎", "山田太郎", "タロウ", "yamada^tarou", "山"]


@pytest.mark.parametrize("name", NAMES)
def test_a_name_is_found_by_any_of_its_groups(found: Broker, name: str) -> None:
    assert _hits(found, name=name) == {"JPACC0001", "JPACC0003"}


def test_names_narrow_word_by_word_and_match_prefixes_only(found: Broker) -> None:
    assert _hits(found, name="doe") == {"ACC1001"}
    assert _hits(found, name="山田 ジョン") == set()  # every word must match
    assert _hits(found, name="マダ") == set()  # a prefix of a key, not any substring
    assert _hits(found, name="%") == set() and _hits(found, name="_") == set()  # no LIKE wildcards


def test_patient_id_accession_station_and_days(found: Broker) -> None:
    assert _hits(found, patient_id="JP0001") == {"JPACC0001", "JPACC0003"}
    assert _hits(found, accession="ACC1001") == {"ACC1001"}
    assert _hits(found, station="CR01") == {"JPACC0001", "JPACC0003"}
    assert _hits(found, station="CT01") == {"ACC1001"}
    day = {"from": "2026-11-23", "to": "2026-11-23"}
    assert _hits(found, **day) == {"JPACC0001", "ACC1001"}
    assert _hits(found, **{"from": "2026-11-24"}) == {"JPACC0003"}
    assert _hits(found, **{"to": "2026-11-22"}) == set()
    assert _hits(found, name="ヤマダ", **day) == {"JPACC0001"}
    assert _hits(found, name="yamada", station="CT01") == set()


def test_an_empty_search_lists_nothing_and_bad_days_are_refused(found: Broker) -> None:
    assert _hits(found) == set() and "Give a name" in _page(found, "/find").text
    assert _page(found, "/find", **{"from": "9999-12-31"}).status_code == 422
    assert _page(found, "/find", **{"to": "23/11/2026"}).status_code == 422
    assert _hits(found, name="yamada", **{"from": "", "to": ""}) == {"JPACC0001", "JPACC0003"}  # blank fields
    with client(web_port(found), None) as stranger:
        assert stranger.get("/find", params={"name": "yamada"}).headers["location"] == "/login"
        assert stranger.get("/order/1").headers["location"] == "/login"


def test_the_order_page_shows_history_steps_mpps_and_outbound(found: Broker) -> None:
    (link,) = _accessions(found, accession="JPACC0001")
    html = unescape(_page(found, f"/order/{link.split(chr(34))[0]}").text)
    facts, procedures, mpps, inbound, outbound = (
        html.split(f'id="{part}"', 1)[1].split("</table>", 1)[0]
        for part in ("order-facts", "procedures", "mpps", "inbound", "outbound")
    )
    assert "YAMADA, TAROU" in facts and "山田 太郎" in facts and "ヤマダ タロウ" in facts and "JP0001" in facts
    assert "JPPO0001^HIS" in facts
    assert "JPRP0001 / JPSPS0001" in procedures and "2026-11-23 09:30" in procedures and "CR01" in procedures
    assert "Started" in procedures
    assert "1.2.392.200036.9999.7.77" in mpps and "JPSPS0001" in mpps and "In Progress" in mpps
    assert "PerformedStationAETitle" in mpps and "YAMADA^TAROU=山田^太郎=ヤマダ^タロウ" in mpps
    assert "ScheduledStepAttributesSequence" in mpps and "1 item(s)" in mpps
    assert "ORM^O01" in inbound and "JPORM0001" in inbound and "AA" in inbound
    assert "PID|1||JP0001^^^JPHOSP||YAMADA^TAROU^^^^^L^A~山田^太郎" in inbound  # decoded as MSH-18 says
    assert "ris" in outbound.lower() and "ORC|SC" in outbound  # the status sent to the RIS (RAD-3)
    assert "Attempts" in outbound


def test_an_unknown_order_is_404(found: Broker) -> None:
    assert _page(found, "/order/999999").status_code == 404
    assert _page(found, "/order/0").status_code == 422


def test_the_page_speaks_japanese_when_the_browser_asks(found: Broker) -> None:
    japanese = _page(found, "/find", "ja-JP,ja;q=0.9,en;q=0.8", name="山田").text
    assert '<html lang="ja">' in japanese and "オーダ検索" in japanese and "2 件のオーダ" in japanese
    english = _page(found, "/find", "en-GB,en;q=0.9,ja;q=0.5", name="山田").text
    assert '<html lang="en">' in english and "Find orders" in english and "2 order(s) found" in english
    day = _page(found, "/", "ja", day="2026-11-23").text
    assert "2026年11月23日\uff08月\uff09" in day and "装置別ワークリスト" in day and "実施中" in day
    assert "Monday 23 November 2026" in _page(found, "/", "fr, en;q=0.1", day="2026-11-23").text


RANGE = "name_key >= 'a' AND name_key < 'b'"


def test_the_name_search_is_an_index_range(found: Broker) -> None:
    """Each typed word is a range over the keys' index, not a scan of every patient."""
    if found.config.database.url.startswith("sqlite"):
        with found.engine.connect() as conn:
            plan = " ".join(
                str(row[-1])
                for row in conn.execute(
                    text(f"EXPLAIN QUERY PLAN SELECT patient_pk FROM patient_name_keys WHERE {RANGE}")
                )
            )
        assert "USING COVERING INDEX ix_patient_name_keys_name_key_patient_pk (name_key>? AND name_key<?)" in plan


def test_a_refused_message_is_in_its_orders_history(found: Broker) -> None:
    """A CA the Order Filler refuses (the exam has started: an MPPS is in progress)
    changes nothing, and the order's page shows it beside the NW, with its answer."""
    cancel = sample(JAHIS_ORM, **{"ORC|NW|": "ORC|CA|", "JPORM0001": "JPORM0009"})
    [answer] = send(found.hl7.port, cancel)
    assert ack_code(answer) == "AE"
    (link,) = _accessions(found, accession="JPACC0001")
    html = unescape(_page(found, f"/order/{link.split(chr(34))[0]}").text)
    inbound = html.split('id="inbound"', 1)[1].split("</table>", 1)[0]
    assert "JPORM0001" in inbound and "JPORM0009" in inbound and "AE" in inbound
