"""Japan first: a JAHIS-style order in ISO-2022-JP reaches the modality byte-correct.

HL7 side: MSH-18 `~ISO IR87`, MSH-20 `ISO 2022-1994`, names as XPN repetitions flagged
A/I/P. DICOM side: the worklist answers in `\\ISO 2022 IR 87` (PS3.5 Annex H), and a
query for a kanji wildcard name in that character set matches (PS3.4 C.2.2.2.4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from broker.app import Broker
from support.brokers import make_config
from support.dicompeer import findscu
from support.hl7peer import RisListener, ack_code, sample, send

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


def _kanji_query(name: str) -> Dataset:
    query = Dataset()
    query.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    query.PatientName = name
    query.PatientID = ""
    query.AccessionNumber = ""
    step = Dataset()
    step.Modality = "CR"
    step.ScheduledProtocolCodeSequence = []
    query.ScheduledProcedureStepSequence = [step]
    return query


def test_jahis_orm_iso2022jp_found_by_kanji_wildcard_bytes_exact(jahis_broker: Broker, tmp_path: Path) -> None:
    [ack] = send(jahis_broker.hl7.port, sample(JAHIS_ORM))
    assert ack_code(ack) == "AA"

    [answer] = findscu(jahis_broker.dicom.port, [], tmp_path, query=_kanji_query("山田*"))
    assert list(answer.SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
    raw_name = answer.get_item("PatientName").value
    assert raw_name == EXPECTED_NAME
    assert raw_name.startswith(b"YAMADA^TAROU=\x1b$B;3ED\x1b(B^")  # 山田 = JIS 0x3B33 0x4544
    assert answer.PatientID == "JP0001"
    code = answer.ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == ("GX.01.00", "JJ1017", "胸部単純撮影")


@pytest.mark.parametrize("name", ["ヤマダ*", "*太郎", "YAMADA^*", "山田^太郎"])
def test_each_pn_component_group_matches_c_2_2_2_4(jahis_broker: Broker, tmp_path: Path, name: str) -> None:
    send(jahis_broker.hl7.port, sample(JAHIS_ORM))
    answers = findscu(jahis_broker.dicom.port, [], tmp_path, query=_kanji_query(name))
    assert [a.PatientID for a in answers] == ["JP0001"]


def test_other_kanji_name_does_not_match(jahis_broker: Broker, tmp_path: Path) -> None:
    send(jahis_broker.hl7.port, sample(JAHIS_ORM))
    assert findscu(jahis_broker.dicom.port, [], tmp_path, query=_kanji_query("田中*")) == []


def test_jahis_ack_is_iso2022jp_with_msa_control_id(jahis_broker: Broker) -> None:
    [ack] = send(jahis_broker.hl7.port, sample(JAHIS_ORM))
    assert b"|~ISO IR87" in ack
    assert b"MSA|AA|JPORM0001" in ack


def test_half_width_katakana_order_answered_in_ir13_ir87_ps3_5_H_3_2(jahis_broker: Broker, tmp_path: Path) -> None:
    """MSH-18 `~ISO IR87~ISO IR13`: the kana reach the modality in JIS X 0201 (G1)."""
    [ack] = send(jahis_broker.hl7.port, sample("rad-2-placer-order/jahis/orm_o01_nw_half_width_kana.hl7"))
    assert ack_code(ack) == "AA"
    [answer] = findscu(jahis_broker.dicom.port, [], tmp_path, query=_kanji_query("*"))
    assert list(answer.SpecificCharacterSet) == ["ISO 2022 IR 13", "ISO 2022 IR 87"]
    raw_name = answer.get_item("PatientName").value.rstrip(b" ")  # even-length padding
    assert raw_name == b"YAMADA^TAROU=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\xd4\xcf\xc0\xde^\xc0\xdb\xb3"
