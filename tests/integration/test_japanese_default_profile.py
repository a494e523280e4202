"""A Japanese site without a profile of its own (#13 Deliver 6): the profile that
config.example.yaml (`make run`) names reads a JAHIS order (MSH-18 `~ISO IR87`, MSH-20
`ISO 2022-1994`), and a modality asking in `\\ISO 2022 IR 87` gets the name as PS3.5
H.3.1 writes it. Before, that profile answered AE "character set 'ISO IR87' is not
supported"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.app import Broker
from broker.config import load_config
from support.brokers import make_config
from support.dicompeer import findscu
from support.hl7peer import RisListener, ack_code, sample, segment, send
from support.mpps import as_dataset

ROOT = Path(__file__).resolve().parents[2]
JAHIS_ORM = "rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"


def _jis(text: str) -> bytes:
    return text.encode("iso2022_jp")


#: PS3.5 H.3.1: ASCII group, then each ideographic/phonetic component in JIS X 0208,
#: switched back to ASCII before every delimiter.
EXPECTED_NAME = b"YAMADA^TAROU=" + _jis("山田") + b"^" + _jis("太郎") + b"=" + _jis("ヤマダ") + b"^" + _jis("タロウ")


@pytest.fixture
def default_broker(database_url: str, ris: RisListener) -> Iterator[Broker]:
    profile = load_config(ROOT / "config.example.yaml").profile
    broker = Broker(make_config(ris.port, database_url=database_url, profile=profile))
    broker.start()
    yield broker
    broker.stop()


def _query(charset: list[str]) -> dict[str, object]:
    return {
        "SpecificCharacterSet": charset,
        "PatientName": "",
        "PatientID": "JP0001",
        "ScheduledProcedureStepSequence": [{"Modality": "CR"}],
    }


def test_jahis_order_accepted_by_the_default_profile_13_deliver_6(default_broker: Broker, tmp_path: Path) -> None:
    [ack] = send(default_broker.hl7.port, sample(JAHIS_ORM))
    assert ack_code(ack) == "AA", segment(ack, "MSA")
    [answer] = findscu(default_broker.dicom.port, [], tmp_path, query=as_dataset(_query(["ISO_IR 192"])))
    assert str(answer.PatientName) == "YAMADA^TAROU=山田^太郎=ヤマダ^タロウ"


def test_jahis_order_reaches_modality_asking_in_iso_2022_ir_87_byte_exact_ps3_5_H_3_1(
    default_broker: Broker, tmp_path: Path
) -> None:
    [ack] = send(default_broker.hl7.port, sample(JAHIS_ORM))
    assert ack_code(ack) == "AA"
    [answer] = findscu(default_broker.dicom.port, [], tmp_path, query=as_dataset(_query(["", "ISO 2022 IR 87"])))
    assert list(answer.SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
    assert answer.get_item("PatientName").value.rstrip(b" ") == EXPECTED_NAME


def test_half_width_kana_order_accepted_by_the_default_profile(default_broker: Broker, tmp_path: Path) -> None:
    """MSH-18 `~ISO IR87~ISO IR13`: JIS X 0201 katakana through the ISO 2022 escapes."""
    [ack] = send(default_broker.hl7.port, sample("rad-2-placer-order/jahis/orm_o01_nw_half_width_kana.hl7"))
    assert ack_code(ack) == "AA"
    [answer] = findscu(default_broker.dicom.port, ["PatientID=JP0002", "PatientName"], tmp_path)
    assert str(answer.PatientName).split("=")[2] == "ﾔﾏﾀﾞ^ﾀﾛｳ"
