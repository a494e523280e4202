"""Association policy (RELIABILITY.md S2): the exact A-ASSOCIATE-RJ a refused peer gets —
wrong called AE 1/1/7, unknown calling AE 1/1/3, known AE from an address it is not bound
to 1/1/3 — as DCMTK echoscu reads it and as bytes decoded by pynetdicom; a caller not
allowed a service has that presentation context rejected (result 3) while its others
work. Every refusal is one security alert."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityWorklistInformationFind, Verification  # type: ignore[attr-defined]

from broker.config import DicomConfig
from broker.dicom.ae import DicomListener
from broker.security import DICOM_ASSOCIATION, DICOM_SERVICE
from support.recorder import AlertRecorder

#: Linux routes all of 127/8 to loopback: a peer can call from 127.0.0.2.
BOUND_ADDRESS = "127.0.0.2"

CALLERS: dict[str, Any] = {
    "MODALITY1": {},
    "BOUNDCT": {"addresses": [f"{BOUND_ADDRESS}/32", "10.0.0.0/8"]},
    "FINDONLY": {"services": ["worklist"]},
}


@pytest.fixture
def listener() -> Iterator[tuple[int, AlertRecorder]]:
    alerts = AlertRecorder()
    config = DicomConfig(host="0.0.0.0", port=0, accept_unknown_callers=False, callers=CALLERS)
    handlers = [(evt.EVT_C_ECHO, lambda event: 0x0000, []), (evt.EVT_C_FIND, lambda event: iter(()), [])]
    dicom = DicomListener(config, handlers, alerts)
    dicom.start()
    yield dicom.port, alerts
    dicom.stop()


def _associate(port: int, calling: str, called: str = "BROKER", source: str = "127.0.0.1") -> Any:
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.add_requested_context(ModalityWorklistInformationFind)
    ae.acse_timeout = 10
    return ae.associate("127.0.0.1", port, ae_title=called, bind_address=(source, 0))


def _echoscu(port: int, calling: str, called: str = "BROKER") -> str:
    args = ["echoscu", "-aet", calling, "-aec", called, "127.0.0.1", str(port)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    ("calling", "called", "reason", "text"),
    [
        ("MODALITY1", "NOTBROKER", 7, "Called AE Title Not Recognized"),
        ("STRANGER", "BROKER", 3, "Calling AE Title Not Recognized"),
        ("BOUNDCT", "BROKER", 3, "Calling AE Title Not Recognized"),  # from 127.0.0.1, bound to .2
    ],
    ids=["wrong called AE", "unknown calling AE", "known AE, wrong address"],
)
def test_refused_association_gets_the_exact_rj_and_one_alert(
    listener: tuple[int, AlertRecorder], calling: str, called: str, reason: int, text: str
) -> None:
    port, alerts = listener
    assoc = _associate(port, calling, called)
    assert assoc.is_rejected
    rj = assoc.acceptor.primitive
    assert (rj.result, rj.result_source, rj.diagnostic) == (1, 1, reason)  # rejected-permanent, service-user
    dcmtk = _echoscu(port, calling, called)
    assert "Result: Rejected Permanent, Source: Service User" in dcmtk
    assert f"Reason: {text}" in dcmtk
    assert alerts.kinds() == [DICOM_ASSOCIATION, DICOM_ASSOCIATION]
    assert all(peer.startswith(f"{calling}@127.0.0.1") for _, peer, _ in alerts.received)


def test_bound_caller_is_accepted_from_its_address(listener: tuple[int, AlertRecorder]) -> None:
    port, alerts = listener
    assoc = _associate(port, "BOUNDCT", source=BOUND_ADDRESS)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert alerts.received == []


def test_service_not_allowed_has_its_context_rejected_others_work(listener: tuple[int, AlertRecorder]) -> None:
    """PS3.8 9.3.3.2: the acceptor may reject any presentation context; the association
    itself stands, so the caller's allowed services still work on it."""
    port, alerts = listener
    assoc = _associate(port, "FINDONLY")
    assert assoc.is_established
    results = {str(cx.abstract_syntax): cx.result for cx in assoc.rejected_contexts + assoc.accepted_contexts}
    assert results == {Verification: 3, ModalityWorklistInformationFind: 0}  # 3: abstract syntax not supported
    assert [status.Status for status, _ in assoc.send_c_find(_query(), ModalityWorklistInformationFind)] == [0]
    assoc.release()
    assert "No Acceptable Presentation Contexts" in _echoscu(port, "FINDONLY")
    assert alerts.kinds() == [DICOM_SERVICE, DICOM_SERVICE]
    assert "verification" in alerts.received[0][2]


def _query() -> Dataset:
    query = Dataset()
    query.PatientID = ""
    return query
