"""The operator's console in a real headless Chromium (#18 Done when): sign in with an
admin token, schedule an order from the form and find it with DCMTK findscu, reconcile
an unscheduled MPPS of that patient by choosing the candidate side by side, and requeue
the status the RIS refused. Every step is a plain HTML form with the form token, under
the broker's Content Security Policy (no script at all); the browser reports no CSP
violation. Screenshots of each step are kept under the test's tmp dir and in
BROKER_SCREENSHOT_DIR when set (docs/screenshots holds the last ones taken).

SQLite only: the API and desk tests run the same actions on both backends."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from broker.app import Broker
from broker.store.outbox import SqlOutboxQueue
from support.browser import csp_violations
from support.dicompeer import findscu, mpps
from support.hl7peer import RisListener, segment
from support.mpps import n_create
from support.recorder import settled
from support.web import ADMIN_TOKEN, web_broker, web_port


@pytest.fixture
def broker(tmp_path: Path, ris: RisListener) -> Iterator[Broker]:
    with web_broker(ris.port, f"sqlite:///{tmp_path / 'console.db'}", audit={"enabled": True}) as running:
        yield running


class Shots:
    """Numbered screenshots of each step, kept where the lead can pick them up."""

    def __init__(self, driver: webdriver.Chrome, folder: Path) -> None:
        self._driver, self._folder, self._count = driver, folder, 0
        self.taken: list[Path] = []

    def __call__(self, name: str) -> None:
        self._count += 1
        path = self._folder / f"console-{self._count}-{name}.png"
        self._driver.set_window_size(1440, max(900, self._height()))
        assert self._driver.save_screenshot(str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        self.taken.append(path)
        if keep := os.environ.get("BROKER_SCREENSHOT_DIR"):
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)

    def _height(self) -> int:
        return int(self._driver.execute_script("return document.documentElement.scrollHeight"))


def _submit(driver: webdriver.Chrome, button_id: str, title: str) -> None:
    """Click and wait for the next page; on failure, say what the browser shows."""
    driver.find_element(By.ID, button_id).click()
    try:
        WebDriverWait(driver, 10).until(lambda d: title in d.title)
    except TimeoutException:
        raise AssertionError(f"no page titled {title!r}: {driver.title!r} {driver.page_source[:2000]}") from None


def test_order_from_the_form_reconcile_and_requeue_in_chromium(
    broker: Broker,
    ris: RisListener,
    chromium: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    base = f"http://127.0.0.1:{web_port(broker)}"
    shot = Shots(chromium, tmp_path)
    chromium.get(f"{base}/login")
    chromium.find_element(By.ID, "token").send_keys(ADMIN_TOKEN)
    _submit(chromium, "sign-in", "Worklist")

    chromium.find_element(By.ID, "nav-new-order").click()
    WebDriverWait(chromium, 10).until(lambda d: d.title.startswith("New order"))
    for field, value in (("patient_id", "WALKIN7"), ("name", "TANAKA^ICHIRO"), ("description", "CT chest")):
        chromium.find_element(By.ID, field).send_keys(value)
    chromium.find_element(By.NAME, "name_ideographic").send_keys("田中^一郎")
    chromium.find_element(By.NAME, "name_phonetic").send_keys("タナカ^イチロウ")
    _date(chromium, "birth_date", "1975-06-15")
    _date(chromium, "date", "2026-11-23")
    _date(chromium, "time", "15:45")
    Select(chromium.find_element(By.ID, "modality")).select_by_value("CT")
    chromium.find_element(By.ID, "code_value").send_keys("CTCHEST")
    shot("order-form")
    _submit(chromium, "submit-order", "scheduled")
    accession = chromium.find_element(By.ID, "accession").text
    assert accession.startswith("A")
    shot("order-scheduled")

    keys = ["ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01", "PatientName", "PatientID",
            "AccessionNumber", "SpecificCharacterSet=ISO_IR 192"]  # fmt: skip
    [found] = findscu(broker.dicom.port, keys, tmp_path)
    assert (found.AccessionNumber, found.PatientID) == (accession, "WALKIN7")
    assert str(found.PatientName) == "TANAKA^ICHIRO=田中^一郎=タナカ^イチロウ"

    [sn] = ris.wait_for(1)  # RAD-3: the RIS hears of the order made here, for it to number
    assert segment(sn, "ORC")[1:4] == ["SN", "", accession]
    ris.script("AE")  # the RIS refuses the status the reconciliation sends: a dead letter
    trauma = n_create("", "", "", "1.2.392.200036.9999.6.7", PatientID="WALKIN7", PatientName="TANAKA^ICHIRO",
                      PatientBirthDate="19750615", PerformedProcedureStepDescription="CT chest (walk-in)")  # fmt: skip
    assert mpps(broker.dicom.port, "create", tmp_path, dataset=trauma)["status"] == 0
    chromium.get(f"{base}/desk")
    shot("desk")
    chromium.find_element(By.ID, "reconcile-1").click()
    WebDriverWait(chromium, 10).until(lambda d: d.title.startswith("Reconcile"))
    rows = chromium.find_elements(By.CSS_SELECTOR, "#candidates tbody tr")
    assert "WALKIN7" in rows[0].text and "1975-06-15" in rows[0].text and "CT chest (walk-in)" in rows[0].text
    assert accession in rows[1].text and "1975-06-15" in rows[1].text and "15:45" in rows[1].text
    assert "田中 一郎" in rows[1].text
    chromium.find_element(By.CSS_SELECTOR, f"input[value='{accession}']").click()
    shot("reconcile-choose")
    _submit(chromium, "choose", "Confirm")
    shot("reconcile-confirm")
    _submit(chromium, "confirm", "MPPS linked")
    shot("reconciled")

    settled(lambda: SqlOutboxQueue(broker.engine).listing("dead", 10), lambda found: len(found) == 1)
    chromium.get(f"{base}/desk")
    requeue = chromium.find_element(By.CSS_SELECTOR, "#desk-dead a[id^='requeue-']")
    requeue.click()
    WebDriverWait(chromium, 10).until(lambda d: d.title.startswith("Requeue"))
    assert chromium.find_element(By.ID, "destination").text == "ris"
    assert chromium.find_element(By.ID, "answer-code").text == "AE"
    assert "207" in chromium.find_element(By.ID, "answer-error").text
    shot("requeue-confirm")
    _submit(chromium, "confirm", "Requeue")
    shot("requeued")
    statuses = settled(lambda: [segment(m, "ORC")[5] for m in ris.received[1:]], lambda found: len(found) == 2)
    assert statuses == ["IP", "IP"]
    assert csp_violations(chromium) == []
    assert len(shot.taken) == 8


def _date(driver: webdriver.Chrome, field: str, value: str) -> None:
    """A date or time input set as a user's picker would (typing depends on the locale)."""
    element = driver.find_element(By.NAME, field)
    driver.execute_script("arguments[0].value = arguments[1]", element, value)
