"""Find an order in a real headless Chromium: by kana and by kanji, then its page; and
the day view refreshing itself, marking the step an MPPS started. Every request stays
on the broker's origin and the browser reports no Content Security Policy violation.
Screenshots go to the test's tmp dir (and BROKER_SCREENSHOT_DIR when set)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from broker.app import Broker
from support.browser import chromium, csp_violations
from support.hl7peer import RisListener, ack_code, sample, send
from support.mpps import as_dataset, n_create
from support.senders import MppsSender
from support.web import READ_TOKEN, client, web_broker, web_port

__all__ = ["chromium"]  # the fixture

JAHIS_ORM = "rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"


@pytest.fixture
def jahis_broker(tmp_path: Path, ris: RisListener) -> Iterator[Broker]:
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'find.db'}", profile="jahis") as broker:
        orders = (sample(JAHIS_ORM), sample("rad-2-placer-order/orm_o01_nw.hl7"))
        assert [ack_code(a) for a in send(broker.hl7.port, *orders)] == ["AA", "AA"]
        yield broker


def _keep(driver: webdriver.Chrome, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if keep := os.environ.get("BROKER_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(keep) / name)


def _origins(driver: webdriver.Chrome) -> set[tuple[str, str]]:
    """(scheme, host:port) of every request the pages made (DevTools Network log)."""
    events = (json.loads(entry["message"])["message"] for entry in driver.get_log("performance"))
    urls = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    return {(urlsplit(u).scheme, urlsplit(u).netloc) for u in urls if not u.startswith(("data:", "chrome"))}


def _loaded(driver: webdriver.Chrome) -> None:
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _filled(driver: webdriver.Chrome, name: str) -> bool:
    field = driver.find_element(By.ID, "name")
    field.clear()
    field.send_keys(name)
    return bool(field.get_attribute("value") == name)


def _find(driver: webdriver.Chrome, name: str) -> list[str]:
    """Submit the form and read the hits of the page it loads. Each page is waited out
    until it has loaded, and the old one until it is gone: a second search could
    otherwise read the first one's page, or type into a field Chromium is replacing
    (CI once: "Node with given id does not belong to the document"); the field is then
    found and filled again, before anything is submitted."""
    _loaded(driver)
    before = driver.find_element(By.TAG_NAME, "html")
    retried = (StaleElementReferenceException, WebDriverException)
    WebDriverWait(driver, 10, ignored_exceptions=retried).until(lambda d: _filled(d, name))
    driver.find_element(By.ID, "find-submit").click()
    WebDriverWait(driver, 10).until(staleness_of(before))
    _loaded(driver)
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "found"))
    return [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#hits tr.hit")]


def test_find_by_kana_and_kanji_then_drill_down(
    jahis_broker: Broker, chromium: webdriver.Chrome, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{web_port(jahis_broker)}"
    chromium.get_log("performance")
    chromium.get(f"{base}/login")
    chromium.find_element(By.ID, "token").send_keys(READ_TOKEN)
    chromium.find_element(By.ID, "sign-in").click()
    WebDriverWait(chromium, 10).until(lambda d: d.title.startswith("Worklist"))
    chromium.find_element(By.ID, "nav-find").click()
    WebDriverWait(chromium, 10).until(lambda d: d.find_elements(By.ID, "name"))

    (by_kana,) = _find(chromium, "ヤマダ")
    assert "JPACC0001" in by_kana and "YAMADA, TAROU" in by_kana
    assert "山田 太郎" in by_kana and "ヤマダ タロウ" in by_kana
    _keep(chromium, tmp_path, "find-1-by-kana.png")
    (by_kanji,) = _find(chromium, "山田")
    assert "JPACC0001" in by_kanji and "CR01" in by_kanji and "DOE" not in by_kanji
    _keep(chromium, tmp_path, "find-2-by-kanji.png")

    chromium.find_element(By.CSS_SELECTOR, "#hits a.order-link").click()
    WebDriverWait(chromium, 10).until(lambda d: d.title.startswith("Order JPACC0001"))
    assert "山田 太郎" in chromium.find_element(By.ID, "order-facts").text
    assert "ORM^O01" in chromium.find_element(By.ID, "inbound").text
    assert "JPSPS0001" in chromium.find_element(By.ID, "procedures").text
    chromium.find_element(By.CSS_SELECTOR, "#inbound details summary").click()
    assert "山田^太郎" in chromium.find_element(By.CSS_SELECTOR, "#inbound .wire").text
    _keep(chromium, tmp_path, "find-3-order.png")

    assert _origins(chromium) == {("http", f"127.0.0.1:{web_port(jahis_broker)}")}
    assert csp_violations(chromium) == []


def test_the_day_view_refreshes_and_marks_what_changed(
    jahis_broker: Broker, chromium: webdriver.Chrome, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{web_port(jahis_broker)}"
    chromium.get(f"{base}/login")
    chromium.find_element(By.ID, "token").send_keys(READ_TOKEN)
    chromium.find_element(By.ID, "sign-in").click()
    WebDriverWait(chromium, 10).until(lambda d: d.title.startswith("Worklist"))
    chromium.get(f"{base}/?day=2026-11-23&every=2")
    assert chromium.find_elements(By.CSS_SELECTOR, "tr.changed") == []

    with client(web_port(jahis_broker)) as api:
        study = api.get("/api/orders/JPACC0001").json()["procedures"][0]["study_instance_uid"]
    started = n_create("JPSPS0001", "JPACC0001", "JPRP0001", study, PerformedStationAETitle="CR01", Modality="CR",
                       PatientID="JP0001")  # fmt: skip
    assert MppsSender(jahis_broker.dicom.port).create("1.2.392.200036.9999.7.78", as_dataset(started))() == 0x0000

    WebDriverWait(chromium, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.changed"))
    (changed,) = chromium.find_elements(By.CSS_SELECTOR, "tr.changed")
    assert "JPACC0001" in changed.text and "In Progress" in changed.text
    changes = chromium.find_element(By.ID, "changes").text
    assert "JPACC0001 JPSPS0001: Scheduled / none yet → Started / In Progress" in changes
    assert "Scheduled steps: started: 0 → 1" in changes
    _keep(chromium, tmp_path, "find-4-day-changed.png")
    assert csp_violations(chromium) == []
