"""One store, two faces: for generated worklist queries, the DICOMweb search (JSON and
XML) returns the same items with the same values as the C-FIND SCP asked through
pynetdicom and DCMTK findscu, each answer decoded by its own decoder
(`pydicom.Dataset.from_json`, lxml against the PS3.19 schema, pydicom on the wire
bytes, DCMTK's own files)."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from broker.app import Broker
from broker.mapping.dicomweb import DEFAULT_RETURN
from support.brokers import module_broker
from support.dicompeer import findscu
from support.hl7peer import ack_code, scheduled_order, send
from support.mpps import as_dataset
from support.web import web_port, web_section

SEARCH = "/dicomweb/modality-scheduled-procedure-steps"
NATIVE = "{http://dicom.nema.org/PS3.19/models/NativeDICOM}"
SCHEMA = etree.RelaxNG(etree.parse(str(Path(__file__).resolve().parents[1] / "support" / "native_dicom_model.rng")))
STEP = "ScheduledProcedureStepSequence"
NAMES = ["DOE^JOHN^Q", "DOE^JANE", "SMITH^ANN", "O'BRIEN^PAT", "LEE^MIN^J"]
MODALITIES = ["CT", "MR", "CR"]
DAYS = ["20261123", "20261124", "20261125"]


def _orders() -> Iterator[bytes]:
    """18 orders over three stations, three days and five patients."""
    for n in range(18):
        modality, day, name = MODALITIES[n % 3], DAYS[(n // 3) % 3], NAMES[n % 5]
        order = scheduled_order(f"D{n:02}", 5000 + n).replace(b"DOE^JOHN^Q", name.encode())
        order = order.replace(b"PAT001", f"PD{n % 5}".encode()).replace(b"|CT|", f"|{modality}|".encode())
        yield order.replace(b"20261123100000", f"{day}{8 + n % 9:02}3000".encode())


@pytest.fixture(scope="module")
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    with module_broker(request, "sqlite", web=web_section(tokens=[])) as running:
        assert {ack_code(a) for a in send(running.hl7.port, *_orders())} == {"AA"}
        yield running


#: A query as (keyword path, value) pairs: top-level keys and step keys.
Query = list[tuple[str, str]]

_station = st.sampled_from(["CT01", "MR01", "CR01", "CT*", "?R01", "*"])
_day = st.sampled_from(DAYS)
_date = st.one_of(_day, st.tuples(_day, _day).map(lambda d: f"{min(d)}-{max(d)}"), _day.map(lambda d: f"-{d}"),
                  _day.map(lambda d: f"{d}-"))  # fmt: skip
_name = st.sampled_from(["DOE*", "*ANN", "SMITH^ANN", "d*", "LEE^MIN^J", "O'BRIEN*"])
queries = st.lists(
    st.one_of(
        st.tuples(st.just(f"{STEP}.ScheduledStationAETitle"), _station),
        st.tuples(st.just(f"{STEP}.Modality"), st.sampled_from(MODALITIES)),
        st.tuples(st.just(f"{STEP}.ScheduledProcedureStepStartDate"), _date),
        st.tuples(st.just("PatientName"), _name),
        st.tuples(st.just("PatientID"), st.sampled_from(["PD1", "PD*", "PD?"])),
        st.tuples(st.just("AccessionNumber"), st.sampled_from(["ACCD0*", "ACCD1?", "ACCD07"])),
    ),
    max_size=3,
    unique_by=lambda pair: pair[0],
)


def _identifier(query: Query) -> dict[str, Any]:
    """The C-FIND identifier: the web search's default return keys, the query's values."""
    top: dict[str, Any] = {}
    step: dict[str, Any] = {}
    for path in DEFAULT_RETURN:
        keyword = path.removeprefix(f"{STEP}.")
        (step if path.startswith(STEP) else top)[keyword] = [] if keyword.endswith("Sequence") else ""
    for path, value in query:
        keyword = path.removeprefix(f"{STEP}.")
        (step if path.startswith(STEP) else top)[keyword] = value
    return {**top, STEP: [step]}


def _canonical(answers: list[Dataset]) -> list[str]:
    """Order-free, character-set-free: the answers as sorted DICOM JSON."""
    for ds in answers:
        ds.pop("SpecificCharacterSet", None)
    return sorted(json.dumps(ds.to_json_dict(), sort_keys=True) for ds in answers)


def _c_find(port: int, identifier: Dataset) -> list[Dataset]:
    ae = AE(ae_title="DIFFTEST")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="BROKER")
    assert assoc.is_established
    try:
        answers = [ds for status, ds in assoc.send_c_find(identifier, ModalityWorklistInformationFind)
                   if status is not None and status.Status in (0xFF00, 0xFF01)]  # fmt: skip
    finally:
        assoc.release()
    return answers


def _xml_items(answer: httpx.Response) -> list[etree._Element]:
    message = email.message_from_bytes(
        b"Content-Type: " + answer.headers["content-type"].encode() + b"\r\n\r\n" + answer.content
    )
    roots = [etree.fromstring(part.get_payload(decode=True)) for part in message.get_payload()]
    for root in roots:
        assert SCHEMA.validate(root), str(SCHEMA.error_log)
    return roots


def _xml_value(root: etree._Element, keyword: str) -> str:
    return str(root.findtext(f"{NATIVE}DicomAttribute[@keyword='{keyword}']/{NATIVE}Value") or "")


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=queries)
def test_web_search_and_c_find_answer_the_same(broker: Broker, tmp_path: Path, query: Query) -> None:
    identifier = as_dataset(_identifier(query))
    over_dimse = _canonical(_c_find(broker.dicom.port, identifier))
    by_dcmtk = _canonical(findscu(broker.dicom.port, [], tmp_path, query=as_dataset(_identifier(query))))
    with httpx.Client(base_url=f"http://127.0.0.1:{web_port(broker)}", timeout=10) as http:
        as_json = http.get(SEARCH, params=query)
        as_xml = http.get(SEARCH, params=query, headers={"Accept": "application/dicom+xml"})
    assert as_json.status_code == as_xml.status_code == (200 if over_dimse else 204)  # PS3.18 Table 14.4.3-1
    items = as_json.json() if over_dimse else []
    over_web = _canonical([Dataset.from_json(item) for item in items])
    assert over_web == over_dimse == by_dcmtk
    accessions = sorted(_xml_value(root, "AccessionNumber") for root in _xml_items(as_xml)) if over_dimse else []
    assert accessions == sorted(Dataset.from_json(item).AccessionNumber for item in items)


def test_the_generated_worklist_is_what_the_queries_run_over(broker: Broker) -> None:
    """The 18 orders are all there (a loading mistake would make every comparison vacuous)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{web_port(broker)}", timeout=10) as http:
        everything = http.get(SEARCH).json()
    assert len(everything) == 18
    assert {Dataset.from_json(d)[STEP][0].Modality for d in everything} == set(MODALITIES)
