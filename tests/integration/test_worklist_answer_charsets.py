"""The character set of a worklist answer (#13 Deliver 5; PS3.4 C.2.2.2, PS3.5 6.1):
the one the query names when it holds the text, otherwise the profile's first that does.

A JAHIS order (YAMADA^TAROU=山田^太郎=ヤマダ^タロウ) on the jahis profile, asked for
through findscu and dcmjs-dimse. Every answer is read by two decoders besides the
broker's writer: pydicom (findscu's files) or dcmjs (dcmjs-dimse's own decoding), and
DCMTK's dcmdump converting findscu's files to UTF-8 (`+U8`, which knows ISO_IR 192 and
the ISO 8859 sets; glibc's iconv has no ISO 2022 IR 87, so those answers are checked
byte for byte against PS3.5 H.3.1 instead).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from broker.app import Broker
from support.brokers import BrokerPool
from support.hl7peer import ack_code, sample, send
from support.worklist_clients import CLIENTS, Answer, client_named

JAHIS_ORM = "rad-2-placer-order/jahis/orm_o01_nw_iso2022jp.hl7"
NAME = "YAMADA^TAROU=山田^太郎=ヤマダ^タロウ"
#: PS3.5 H.3.1's form: the ASCII group, then each JIS X 0208 component between ESC $ B and ESC ( B.
IR87_NAME = b"YAMADA^TAROU=" + b"^".join(part.encode("iso2022_jp") for part in ("山田", "太郎")) + b"="
IR87_NAME += b"^".join(part.encode("iso2022_jp") for part in ("ヤマダ", "タロウ"))


def _load(broker: Broker) -> None:
    [ack] = send(broker.hl7.port, sample(JAHIS_ORM))
    assert ack_code(ack) == "AA"


@pytest.fixture(scope="module")
def jahis_worklists() -> Iterator[BrokerPool]:
    with ExitStack() as stack:
        yield BrokerPool(stack, _load)


Ask = Callable[[dict[str, Any]], list[Answer]]


@pytest.fixture(params=CLIENTS)
def ask(request: pytest.FixtureRequest, jahis_worklists: BrokerPool, tmp_path: Path) -> Ask:
    """One query to the jahis broker through one client; its answers."""
    port = jahis_worklists.get(request, "sqlite", "jahis").dicom.port
    client = client_named(request, request.param)
    return lambda query: client(port, query, tmp_path)


def _query(charset: str) -> dict[str, Any]:
    return {"SpecificCharacterSet": charset, "PatientID": "JP0001", "PatientName": ""}


def _dcmdump(path: str, *options: str) -> dict[str, str]:
    dump = subprocess.run(["dcmdump", *options, path], capture_output=True, text=True, timeout=30, check=True)
    return dict(re.findall(r"^\((0008,0005|0010,0010)\) \w\w \[(.*?)\]", dump.stdout, re.MULTILINE))


def dcmtk_reading(answer: Answer) -> dict[str, str] | None:
    """findscu's answer file as DCMTK reads it: (0008,0005) as written, and Patient's
    Name converted to UTF-8 by that set (`+U8`, which also rewrites (0008,0005), hence
    two reads). None for dcmjs-dimse answers, which have no file."""
    path = getattr(answer.identifier, "filename", None)
    if not path:
        return None
    as_written, converted = _dcmdump(str(path)), _dcmdump(str(path), "+U8")
    return {"SpecificCharacterSet": as_written.get("0008,0005", ""), "PatientName": converted.get("0010,0010", "")}


def test_query_in_iso_ir_192_gets_utf8_on_the_jahis_profile_ps3_5_6_1_2_3(ask: Ask) -> None:
    """#13: a query asking for ISO_IR 192 on the jahis profile got ISO 2022 bytes, which
    Orthanc and other UTF-8 clients show as raw JIS."""
    [answer] = ask(_query("ISO_IR 192"))
    assert answer.identifier.SpecificCharacterSet == "ISO_IR 192"
    assert answer.raw["PatientName"].rstrip(b" ") == NAME.encode("utf-8")
    assert str(answer.identifier.PatientName) == NAME  # pydicom (findscu) or dcmjs
    dumped = dcmtk_reading(answer)
    assert dumped in (None, {"SpecificCharacterSet": "ISO_IR 192", "PatientName": NAME})


def test_query_set_without_the_kanji_gets_the_profiles_first_that_holds_them_ps3_5_H_3_1(ask: Ask) -> None:
    """Latin-1 cannot hold 山田: the answer takes the jahis profile's first set, `\\ISO 2022 IR 87`."""
    [answer] = ask(_query("ISO_IR 100"))
    assert list(answer.identifier.SpecificCharacterSet) == ["", "ISO 2022 IR 87"]
    assert answer.raw["PatientName"].rstrip(b" ") == IR87_NAME


def test_plain_ascii_answer_in_the_set_the_query_named_ps3_4_C_2_2_2(ask: Ask) -> None:
    """Only ASCII asked for (no name): the answer names Latin-1 as asked; dcmdump reads it."""
    [answer] = ask({"SpecificCharacterSet": "ISO_IR 100", "PatientID": "JP0001"})
    assert answer.identifier.SpecificCharacterSet == "ISO_IR 100"
    assert answer.identifier.PatientID == "JP0001"
    assert dcmtk_reading(answer) in (None, {"SpecificCharacterSet": "ISO_IR 100", "PatientName": ""})
