"""The worklist lab page in a real headless Chromium (the harness of the day page's
test): signed in, the operator picks CT01 from the known calling AE titles, asks for
its station and day, and reads what CT01 gets and why each other step is left out —
another station, another day, cancelled — then CT02, whose station-only rule keeps it
from CT01's steps; the last queries of each station are listed with a bundle link.
The screenshot is kept under the test's tmp dir (and BROKER_SCREENSHOT_DIR when set,
as docs/screenshots/lab-page.png is made). No script runs: the CSP reports nothing.

SQLite only: the page reads through the same provider the explain tests run on both
backends; this test is about what a browser shows."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from broker.app import Broker
from support.browser import csp_violations
from support.dicompeer import findscu
from support.hl7peer import RisListener, ack_code, sample, scheduled_order, send
from support.web import READ_TOKEN, web_broker, web_port

DAY = "20261123"


@pytest.fixture
def lab_broker(tmp_path: Path, ris: RisListener) -> Iterator[Broker]:
    dicom = {"host": "127.0.0.1", "port": 0, "callers": {"CT02": {"station_only": True}, "CT01": {}}}
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'lab.db'}", dicom=dicom) as broker:
        orders = [
            scheduled_order("L1", 7001),
            scheduled_order("L2", 7002).replace(b"|CT|", b"|MR|"),
            scheduled_order("L3", 7003).replace(b"20261123100000", b"20261124100000"),
            scheduled_order("L4", 7004),
            sample("rad-2-placer-order/orm_o01_ca.hl7", PO1002="POL4", ORM0003="ORML4CA"),
        ]
        acks = send(broker.hl7.port, sample("rad-1-patient-registration/adt_a04.hl7"), *orders)
        assert [ack_code(a) for a in acks] == ["AA"] * 6
        yield broker


def _queries(broker: Broker, tmp_path: Path) -> None:
    """CT01 asks for its day twice (the second time with a typo'd station), CT02 once."""
    for station in ("CT01", "CT1"):
        findscu(broker.dicom.port, [f"ScheduledProcedureStepSequence[0].ScheduledStationAETitle={station}",
                f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={DAY}", "PatientName",
                "AccessionNumber"], tmp_path, aet="CT01")  # fmt: skip
    findscu(broker.dicom.port, [f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={DAY}",
            "AccessionNumber"], tmp_path, aet="CT02")  # fmt: skip


def _excluded_by(driver: webdriver.Chrome, accession: str) -> list[str]:
    return [b.text for b in driver.find_elements(By.CSS_SELECTOR, f"#excluded-{accession} .key")]


def test_lab_page_in_headless_chromium(lab_broker: Broker, chromium: webdriver.Chrome, tmp_path: Path) -> None:
    _queries(lab_broker, tmp_path)
    base = f"http://127.0.0.1:{web_port(lab_broker)}"
    chromium.get(f"{base}/login")
    chromium.find_element(By.ID, "token").send_keys(READ_TOKEN)
    chromium.find_element(By.ID, "sign-in").click()
    WebDriverWait(chromium, 10).until(lambda d: d.title.startswith("Worklist"))

    chromium.get(f"{base}/lab")
    known = [o.get_attribute("value") for o in chromium.find_elements(By.CSS_SELECTOR, "#known-callers option")]
    assert known == ["CT01", "CT02"]  # configured callers and the AE titles heard from
    chromium.find_element(By.ID, "calling_ae").send_keys("CT01")
    chromium.find_element(By.ID, "station").send_keys("CT01")
    chromium.find_element(By.ID, "date").send_keys(DAY)
    chromium.find_element(By.ID, "run").click()
    WebDriverWait(chromium, 10).until(lambda d: d.find_elements(By.ID, "not-returned"))

    returned = chromium.find_element(By.ID, "returned").text
    assert "ACCL1" in returned and "DOE^JOHN^Q" in returned
    assert _excluded_by(chromium, "ACCL2") == ["station_ae"]  # scheduled on MR01
    assert _excluded_by(chromium, "ACCL3") == ["date"]  # scheduled the next day
    assert _excluded_by(chromium, "ACCL4") == ["status"]  # cancelled
    log = chromium.find_element(By.ID, "queries-CT01").text
    assert "ScheduledStationAETitle=CT1" in log and "0x0000" in log
    assert chromium.find_element(By.ID, "bundle-CT01").get_attribute("href").endswith("calling_ae=CT01")

    screenshot = tmp_path / "lab-page.png"
    chromium.set_window_size(1440, chromium.execute_script("return document.documentElement.scrollHeight") + 40)
    assert chromium.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000
    if keep := os.environ.get("BROKER_SCREENSHOT_DIR"):
        shutil.copy(screenshot, Path(keep) / screenshot.name)

    chromium.get(f"{base}/lab?calling_ae=CT02&date={DAY}")
    assert _excluded_by(chromium, "ACCL1") == ["station_only rule"]
    assert "the modality shows an empty worklist" in chromium.find_element(By.ID, "returned").text
    assert csp_violations(chromium) == []
