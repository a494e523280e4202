"""Japan first: a JAHIS-style order in ISO-2022-JP reaches the modality byte-correct.

HL7 side: MSH-18 `~ISO IR87`, MSH-20 `ISO 2022-1994`, names as XPN repetitions flagged
A/I/P. DICOM side: the worklist answers in `\\ISO 2022 IR 87` (PS3.5 Annex H), and a
query for a kanji wildcard name in that character set matches (PS3.4 C.2.2.2.4), through
findscu and through dcmjs-dimse (support/worklist_clients.py RUNS)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from broker.app import Broker
from support.brokers import BrokerPool, make_config
from support.dicompeer import findscu
from support.hl7peer import RisListener, ack_code, sample, send
from support.mpps import as_dataset
from support.worklist_clients import RUNS, Client, on_run

JAHIS_ORM = "rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"


def _jis(text: str) -> bytes:
    """One PN component in ISO 2022 IR 87 (JIS X 0208 between ESC $ B and ESC ( B)."""
    return text.encode("iso2022_jp")


#: PS3.5 H.3.1 builds names the same way: ASCII group, then each ideographic/phonetic
#: component switched to JIS X 0208 and back to ASCII before every delimiter.
EXPECTED_NAME = b"YAMADA^TAROU=" + _jis("山田") + b"^" + _jis("太郎") + b"=" + _jis("ヤマダ") + b"^" + _jis("タロウ")


@pytest.fixture
def jahis_broker(database_url: str, ris: RisListener) -> Iterator[Broker]:
    broker = Broker(make_config(ris.port, database_url=database_url, profile="jahis"))
    broker.start()
    yield broker
    broker.stop()


def load_jahis_order(broker: Broker) -> None:
    [ack] = send(broker.hl7.port, sample(JAHIS_ORM))
    assert ack_code(ack) == "AA"


@pytest.fixture(scope="module")
def jahis_worklists() -> Iterator[BrokerPool]:
    with ExitStack() as stack:
        yield BrokerPool(stack, load_jahis_order)


@pytest.fixture(params=RUNS)
def run(request: pytest.FixtureRequest, jahis_worklists: BrokerPool) -> tuple[int, Client]:
    """A JAHIS broker holding the ISO-2022-JP order, and one client."""
    return on_run(request, jahis_worklists, profile="jahis")


def _kanji_query(name: str) -> dict[str, Any]:
    """A query in ISO 2022 IR 87: findscu gets it encoded by pydicom, dcmjs-dimse as
    pre-escaped 7-bit text (support/worklist_clients.py)."""
    return {
        "SpecificCharacterSet": ["", "ISO 2022 IR 87"],
        "PatientName": name,
        "PatientID": "",
        "AccessionNumber": "",
        "ScheduledProcedureStepSequence": [{"Modality": "CR", "ScheduledProtocolCodeSequence": []}],
    }


def test_jahis_orm_iso2022jp_found_by_kanji_wildcard_bytes_exact(run: tuple[int, Client], tmp_path: Path) -> None:
    port, client = run
    [answer] = client(port, _kanji_query("山田*"), tmp_path)
    assert list(answer.identifier.SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
    raw_name = answer.raw["PatientName"]
    assert raw_name == EXPECTED_NAME
    assert raw_name.startswith(b"YAMADA^TAROU=\x1b$B;3ED\x1b(B^")  # 山田 = JIS 0x3B33 0x4544
    assert answer.identifier.PatientID == "JP0001"
    code = answer.identifier.ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("GX.01.00", "JJ1017")


def test_code_meaning_in_iso2022_ir87_decodes_ps3_5_H(
    request: pytest.FixtureRequest, jahis_worklists: BrokerPool, tmp_path: Path
) -> None:
    """findscu only: dcmjs decodes with the first Specific Character Set term only (here
    the ASCII default), so its kanji come out as escape-sequence text."""
    port = jahis_worklists.get(request, "sqlite", "jahis").dicom.port
    [answer] = findscu(port, [], tmp_path, query=as_dataset(_kanji_query("山田*")))
    code = answer.ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence[0]
    assert code.CodeMeaning == "胸部単純撮影"


@pytest.mark.parametrize("name", ["ヤマダ*", "*太郎", "YAMADA^*", "山田^太郎", "山?^*"])
def test_each_pn_component_group_matches_c_2_2_2_4(run: tuple[int, Client], tmp_path: Path, name: str) -> None:
    port, client = run
    answers = client(port, _kanji_query(name), tmp_path)
    assert [a.identifier.PatientID for a in answers] == ["JP0001"]


@pytest.mark.parametrize("name", ["田中*", "山田^次*", "ヤマダ^ジロウ"])
def test_other_kanji_name_does_not_match(run: tuple[int, Client], tmp_path: Path, name: str) -> None:
    port, client = run
    assert client(port, _kanji_query(name), tmp_path) == []


def test_jahis_ack_is_iso2022jp_with_msa_control_id(jahis_broker: Broker) -> None:
    [ack] = send(jahis_broker.hl7.port, sample(JAHIS_ORM))
    assert b"|~ISO IR87" in ack
    assert b"MSA|AA|JPORM0001" in ack


def test_half_width_katakana_order_answered_in_ir13_ir87_ps3_5_H_3_2(jahis_broker: Broker, tmp_path: Path) -> None:
    """MSH-18 `~ISO IR87~ISO IR13`: the kana reach the modality in JIS X 0201 (G1)."""
    [ack] = send(jahis_broker.hl7.port, sample("rad-2-placer-order/jahis/orm_o01_nw_half_width_kana.hl7"))
    assert ack_code(ack) == "AA"
    [answer] = findscu(jahis_broker.dicom.port, [], tmp_path, query=as_dataset(_kanji_query("*")))
    assert list(answer.SpecificCharacterSet) == ["ISO 2022 IR 13", "ISO 2022 IR 87"]
    raw_name = answer.get_item("PatientName").value.rstrip(b" ")  # even-length padding
    assert raw_name == b"YAMADA^TAROU=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\xd4\xcf\xc0\xde^\xc0\xdb\xb3"
