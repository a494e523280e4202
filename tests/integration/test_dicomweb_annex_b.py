"""PS3.18 Annex B's examples for the worklist and MPPS services (B.36 to B.40), sent to a
running broker as they are written (tests/fixtures/ps3.18/*.http; the README there
says where each comes from and what was completed where an example writes "…").

The examples are one story: Sally Doe's two CT angiography steps on CTSCANNER (B.36),
an MPPS created for the head step (B.37), its series recorded (B.38), completed
(B.39) and read back whole (B.40.1) and in part (B.40.2). The examples' base path
`/radiology` is this broker's `/dicomweb`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
from pydicom.dataset import Dataset

from support.hl7peer import RisListener, ack_code, send
from support.web import web_broker as running
from support.web import web_port

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ps3.18"


@dataclass(frozen=True)
class Example:
    """One Annex B request: method, target (on this broker), headers, body, and the
    status this broker answers (the example's, or the normative table's where they differ)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    expect: int


def example(name: str) -> Example:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    comments = [line for line in text.splitlines() if line.startswith("#")]
    head, _, body = "\n".join(line for line in text.splitlines() if not line.startswith("#")).partition("\n\n")
    request_line, *header_lines = head.strip().splitlines()
    method, target, _version = request_line.split(" ")
    headers = dict(line.split(": ", 1) for line in header_lines)
    headers.pop("Host")  # www.hospital-stmarco is the example's; httpx names this broker
    [expect] = [int(c.split()[2]) for c in comments if c.startswith("# expect:")]
    return Example(method, target.replace("/radiology/", "/dicomweb/", 1), headers, body.strip().encode(), expect)


def _send(http: httpx.Client, name: str) -> httpx.Response:
    request = example(name)
    answer = http.request(request.method, request.target, headers=request.headers, content=request.body or None)
    assert answer.status_code == request.expect, (name, answer.status_code, answer.headers.get("Warning"))
    return answer


def test_ps3_18_annex_b_36_to_b_40_as_written(database_url: str, ris: RisListener) -> None:
    """B.36 Search, B.37 Create (refused as written: its PPS ID overflows SH; then 201,
    Table 15.4.3-1 over the example's 200), B.38 and B.39 Update by `…/update` (15.5.1
    writes `?update`), B.40.1/B.40.2 Retrieve."""
    order = (FIXTURES / "b36_order_omi_o23.hl7").read_bytes()
    with running(ris.port, database_url) as broker:
        assert ack_code(send(broker.hl7.port, order)[0]) == "AA"
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port(broker)}", timeout=10) as http:
            found = [Dataset.from_json(item) for item in _send(http, "b36_search.http").json()]
            refused = _send(http, "b37_create.http")  # as written: a UID in an SH (400)
            _send(http, "b37_create_sh_16.http")
            _send(http, "b38_update.http")
            _send(http, "b39_complete.http")
            [whole] = _send(http, "b40_1_retrieve_all.http").json()
            [some] = _send(http, "b40_2_retrieve_some.http").json()
            [after] = [Dataset.from_json(item) for item in _send(http, "b36_search.http").json()]
    assert sorted(ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID for ds in found) == [
        "PS-ID-23",
        "PS-ID-24",
    ]
    assert {str(ds.PatientName) for ds in found} == {"Doe^Sally"}
    assert Dataset.from_json(refused.json())[0x00000900].value == 0x0106  # Invalid attribute value
    assert {ds.StudyInstanceUID for ds in found} == {"1.2.250.1.59.40211.30000008090412501082300000004"}
    # B.37..B.39 moved PS-ID-23 off the worklist (IHE RAD-6/7: COMPLETED); PS-ID-24 is left.
    assert after.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID == "PS-ID-24"
    record = Dataset.from_json(whole)
    assert record.PerformedProcedureStepStatus == "COMPLETED"
    [series] = record.PerformedSeriesSequence
    assert series.SeriesInstanceUID == "1.2.250.1.59.40211.197132.30000020040718322840300000007"
    assert len(series.ReferencedImageSequence) == 2
    assert some == {  # B.40.2's answer, in tag order (F.2.2)
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Sally"}]},
        "00400242": {"vr": "SH", "Value": ["CTSCANNER"]},
        "00400252": {"vr": "CS", "Value": ["COMPLETED"]},
    }
