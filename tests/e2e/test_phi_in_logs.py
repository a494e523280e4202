"""RELIABILITY.md S6 and issue #15 defect 3: no patient value in the log of `broker
serve` at INFO (so at INFO, WARNING, ERROR and CRITICAL: every level but DEBUG), from
any logger, the broker's or a library's.

Latin and kanji names and a patient ID are seeded through every listener: HL7 (valid,
bad escapes, a segment before MSH, ISO-2022-JP text under UTF-8 and Shift_JIS under
8859/1), the worklist (C-FIND with names, a broken date, an unknown character set),
MPPS (names, a patient value in a CS attribute, an unknown character set) and the web
API and page. python-hl7, pydicom and pynetdicom quote such values at WARNING; the
broker's logging setup withholds their text above DEBUG."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from broker.logs import WITHHELD
from support.dicompeer import findscu, mpps
from support.hl7peer import ack_code, sample, send
from support.mpps import n_create
from support.net import free_port
from support.processes import BrokerProcess
from support.web import READ_TOKEN, client, web_section

pytestmark = pytest.mark.e2e

FAMILY, GIVEN, PATIENT_ID = "QZXWVBNM", "YOLANDE", "PHI7734"
KANJI = ("山田", "太郎", "ヤマダ", "YAMADA", "JP0001")  # the JAHIS sample's patient
SEEDS = (FAMILY, FAMILY.lower(), GIVEN, PATIENT_ID, *KANJI)
ADT = "rad-1-patient-registration/adt_a04.hl7"
JAHIS = "rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"


def _adt(control_id: str, name: str) -> bytes:
    return sample(ADT, ADT0001=control_id, PAT001=PATIENT_ID).replace(b"DOE^JOHN^Q", name.encode("ascii"))


def _hl7_inputs() -> list[bytes]:
    jahis = sample(JAHIS)
    text = jahis.decode("iso-2022-jp")
    return [
        _adt("PHI1", f"{FAMILY}^{GIVEN}"),
        _adt("PHI2", f"{FAMILY}\\Z99\\^{GIVEN}"),  # an escape HL7 does not define
        _adt("PHI3", f"{FAMILY}\\\\^{GIVEN}\\C2842\\"),  # empty escape; inline charset switch
        f"PID|1||{PATIENT_ID}||{FAMILY}^{GIVEN}\r".encode() + _adt("PHI4", FAMILY),  # segment before MSH
        jahis,
        jahis.replace(b"JPORM0001", b"JPORM0002").replace(b"~ISO IR87", b"UNICODE UTF-8"),  # JIS under UTF-8
        text.replace("JPORM0001", "JPORM0003").replace("~ISO IR87", "8859/1").encode("shift_jis"),
    ]


def _queries() -> list[tuple[list[str], Dataset | None]]:
    kanji = Dataset()
    kanji.SpecificCharacterSet = "ISO_IR 192"
    kanji.PatientName = "山田*"
    kanji.PatientID = ""
    unknown = Dataset()
    unknown.SpecificCharacterSet = "ISO_IR 999"
    unknown.PatientName = "ヤマダ*".encode()  # bytes: pydicom writes them as they are
    return [
        ([f"PatientName={FAMILY}*", f"PatientID={PATIENT_ID}"], None),
        ([f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={FAMILY}"], None),
        (["AccessionNumber"], kanji),
        (["AccessionNumber"], unknown),
    ]


def _performed() -> list[dict[str, object]]:
    base = n_create("SPS1001", "ACC1001", "RP1001", "1.2.392.200036.9999.1.1001")
    latin = {**base, "PatientName": f"{FAMILY}^{GIVEN}", "PatientID": PATIENT_ID, "PatientSex": FAMILY.lower()}
    kanji = {**base, "SpecificCharacterSet": "ISO_IR 192", "PatientName": "山田^太郎", "PatientID": "JP0001"}
    return [latin, kanji, {**kanji, "SpecificCharacterSet": "ISO_IR 999", "PatientName": "ヤマダ^タロウ"}]


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[BrokerProcess, int]]:
    web = free_port()
    process = BrokerProcess(
        tmp_path,
        free_port(),
        f"sqlite:///{tmp_path / 'broker.db'}",
        log_level="INFO",
        profile="jahis",
        web=web_section(port=web),
    ).start()
    yield process, web
    process.stop()


def test_no_patient_value_in_the_log_above_debug(serving: tuple[BrokerProcess, int], tmp_path: Path) -> None:
    process, web = serving
    answers = [ack_code(reply) for reply in send(process.hl7_port, *_hl7_inputs())]
    assert answers[0] == answers[4] == "AA"  # the valid Latin and kanji messages were taken
    for keys, query in _queries():
        with warnings.catch_warnings():  # writing the query file: pydicom warns of the unknown charset
            warnings.simplefilter("ignore")
            findscu(process.dicom_port, keys, tmp_path, query=query)
    for attributes in _performed():
        mpps(process.dicom_port, "create", tmp_path, dataset=attributes)
    with client(web) as reader:
        assert reader.get("/api/patients", params={"patient_id": PATIENT_ID}).status_code == 200
        assert reader.get(f"/api/orders/{FAMILY}").status_code == 404
    with client(web, None, cookie=READ_TOKEN) as page:
        assert page.get("/", params={"day": "2026-11-23"}).status_code == 200
    assert process.terminate() == 0

    log = process.log.read_text(encoding="utf-8", errors="replace")
    assert not re.search(r"^\S+ \S+ DEBUG ", log, re.M)  # INFO and above only: what the test covers
    assert WITHHELD in log  # the library paths were taken, and filtered
    leaks = [line for line in log.splitlines() if any(seed in line for seed in SEEDS)]
    assert leaks == []
