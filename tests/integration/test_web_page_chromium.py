"""The page for the day in a real headless Chromium (Debian `chromium` + `chromium-driver`,
driven by Selenium): sign in through the form, then read the worklist by station with a
Japanese patient, each step's state and its MPPS, outbox health and the exceptions; the
screenshot is kept under the test's tmp dir (and BROKER_SCREENSHOT_DIR when set).
Every request the browser makes is recorded (Chrome DevTools Network events): the page
and /docs load nothing from any other origin, and the browser reports no Content
Security Policy violation (RELIABILITY W1).

SQLite only: the page reads through the same store queries the API tests run on both
backends; this test is about what a browser shows.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from broker.app import Broker
from support.browser import csp_violations
from support.dicompeer import mpps
from support.hl7peer import RisListener, ack_code, sample, send
from support.mpps import n_create, n_set_final
from support.web import READ_TOKEN, client, web_broker, web_port

JAHIS_ORM = "rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"
SECOND_ORDER = {"JPORM0001": "JPORM0002", "JPPO0001": "JPPO0002", "JPACC0001": "JPACC0002",
                "JPRP0001": "JPRP0002", "JPSPS0001": "JPSPS0002", "093000": "111500"}  # fmt: skip


@pytest.fixture
def jahis_broker(tmp_path: Path, ris: RisListener) -> Iterator[Broker]:
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'page.db'}", profile="jahis") as broker:
        yield broker


def _traffic(broker: Broker, tmp_path: Path) -> None:
    """Two JAHIS orders (CR01), one started by an MPPS; a CT order (CT01) done; a trauma
    MPPS linked to nothing."""
    orders = (sample(JAHIS_ORM), sample(JAHIS_ORM, **SECOND_ORDER), sample("rad-2-placer-order/orm_o01_nw.hl7"))
    assert [ack_code(a) for a in send(broker.hl7.port, *orders)] == ["AA", "AA", "AA"]
    ct = n_create("SPS1001", "ACC1001", "RP1001", "1.2.392.200036.9999.1.1001")
    ct_uid = str(mpps(broker.dicom.port, "create", tmp_path, dataset=ct)["affectedSopInstanceUid"])
    assert mpps(broker.dicom.port, "set", tmp_path, uid=ct_uid, dataset=n_set_final())["status"] == 0
    with client(web_port(broker)) as api:  # the broker made the Study Instance UID
        study = api.get("/api/orders/JPACC0001").json()["procedures"][0]["study_instance_uid"]
    started = n_create(
        "JPSPS0001", "JPACC0001", "JPRP0001", study, PerformedStationAETitle="CR01", Modality="CR", PatientID="JP0001"
    )  # the MPPS names its own patient: linked only to that patient's step (#14)
    assert mpps(broker.dicom.port, "create", tmp_path, dataset=started)["status"] == 0
    trauma = n_create("", "", "", "1.2.392.200036.9999.6.1", PerformedStationAETitle="CT02")
    assert mpps(broker.dicom.port, "create", tmp_path, dataset=trauma)["status"] == 0


def test_day_page_in_headless_chromium(jahis_broker: Broker, chromium: webdriver.Chrome, tmp_path: Path) -> None:
    _traffic(jahis_broker, tmp_path)
    base = f"http://127.0.0.1:{web_port(jahis_broker)}"

    chromium.get(f"{base}/?day=2026-11-23")
    assert chromium.current_url == f"{base}/login"  # not signed in: sent to the form
    chromium.find_element(By.ID, "token").send_keys(READ_TOKEN)
    chromium.find_element(By.ID, "sign-in").click()
    WebDriverWait(chromium, 10).until(lambda d: d.title.startswith("Worklist"))
    cookie = chromium.get_cookie("broker_token")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert chromium.execute_script("return document.cookie") == ""  # no script can read the token

    chromium.get(f"{base}/?day=2026-11-23")
    station = chromium.find_element(By.ID, "station-CR01").text
    rows = [row.text for row in chromium.find_elements(By.CSS_SELECTOR, "#station-CR01 tbody tr")]
    assert "山田 太郎" in station and "ヤマダ タロウ" in station and "YAMADA, TAROU" in station
    assert len(rows) == 2
    assert rows[0].startswith("09:30") and "JPACC0001" in rows[0] and "Started" in rows[0] and "In Progress" in rows[0]
    assert rows[1].startswith("11:15") and "Scheduled" in rows[1] and "none yet" in rows[1]
    ct = chromium.find_element(By.ID, "station-CT01").text
    assert "DOE, JOHN Q" in ct and "Completed" in ct and "10:00" in ct
    assert "CT02" in chromium.find_element(By.ID, "exceptions").text
    outbox = chromium.find_element(By.ID, "outbox").text
    assert "waiting" in outbox and "dead letters" in outbox

    screenshot = tmp_path / "day-page.png"
    assert chromium.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
    if keep := os.environ.get("BROKER_SCREENSHOT_DIR"):
        shutil.copy(screenshot, Path(keep) / screenshot.name)


def _requests(driver: webdriver.Chrome, base: str) -> list[str]:
    """URLs of every request sent since the last call on behalf of a document of `base`'s
    origin (DevTools Network log); the browser's own chrome:// traffic is not the page's."""
    events = (json.loads(entry["message"])["message"] for entry in driver.get_log("performance"))
    sent = (e["params"] for e in events if e["method"] == "Network.requestWillBeSent")
    return [p["request"]["url"] for p in sent if not _other_origins([p.get("documentURL", "")], base)]


def _other_origins(urls: list[str], base: str) -> list[str]:
    origin = urlsplit(base)
    return [u for u in urls if (urlsplit(u).scheme, urlsplit(u).netloc) != (origin.scheme, origin.netloc)]


def test_page_and_docs_load_nothing_from_other_origins(
    jahis_broker: Broker, chromium: webdriver.Chrome, tmp_path: Path
) -> None:
    _traffic(jahis_broker, tmp_path)
    base = f"http://127.0.0.1:{web_port(jahis_broker)}"
    chromium.get_log("performance")  # what the browser did before it opened the page
    with client(web_port(jahis_broker)) as api:
        expected_operations = sum(len(ops) for ops in api.get("/openapi.json").json()["paths"].values())
    chromium.get(f"{base}/login")
    chromium.find_element(By.ID, "token").send_keys(READ_TOKEN)
    chromium.find_element(By.ID, "sign-in").click()
    WebDriverWait(chromium, 10).until(lambda d: d.title.startswith("Worklist"))
    signing_in = _requests(chromium, base)
    chromium.get(f"{base}/?day=2026-11-23")
    assert "山田 太郎" in chromium.find_element(By.ID, "station-CR01").text
    page = _requests(chromium, base)
    assert chromium.find_element(By.CSS_SELECTOR, "header.bar").value_of_css_property("display") == "flex"

    chromium.get(f"{base}/docs")  # Swagger UI renders every operation from the broker's own assets
    WebDriverWait(chromium, 20).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= expected_operations
    )
    docs = _requests(chromium, base)

    for name, urls in (("sign-in", signing_in), ("/", page), ("/docs", docs)):
        print(f"requests from {name}: {len(urls)}, to other origins: {len(_other_origins(urls, base))}")
    assert _other_origins(signing_in, base) == [] and _other_origins(page, base) == []
    assert _other_origins(docs, base) == []
    assert f"{base}/static/broker.css" in page
    assert {f"{base}/static/swagger-ui/swagger-ui-bundle.js", f"{base}/static/docs.js", f"{base}/openapi.json"} <= set(
        docs
    )
    assert csp_violations(chromium) == []
