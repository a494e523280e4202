"""C-FIND identifiers read once, kept by their bytes (broker/dicom/mwl_scp.py
`FindRequests`): the same bytes from the same AE in the same transfer syntax are
read once; any of the three differing is read anew; the kept readings stay bounded
in number, and an identifier over `max_bytes` is never kept."""

from __future__ import annotations

from io import BytesIO
from types import SimpleNamespace
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.dsutils import decode, encode

from broker.dicom.mwl_scp import FindRequests
from broker.domain.errors import InvalidInput
from broker.domain.worklist import Key
from broker.mapping.profile import load_profile

SWF = load_profile("ihe-swf")


def _identifier(station: str, **top: str) -> Dataset:
    step = Dataset()
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = "20261204"
    step.Modality = ""
    ds = Dataset()
    ds.PatientName = ""
    for keyword, value in top.items():
        setattr(ds, keyword, value)
    ds.ScheduledProcedureStepSequence = [step]
    return ds


class _Event:
    """What `read` uses of a pynetdicom Event; `identifier` decodes the bytes, as
    pynetdicom's does, and counts how often it was asked for."""

    def __init__(self, raw: bytes, calling_ae: str, syntax: UID) -> None:
        self.request = C_FIND()
        self.request.Identifier = BytesIO(raw)
        self.context = SimpleNamespace(transfer_syntax=syntax)
        self.assoc = SimpleNamespace(requestor=SimpleNamespace(ae_title=calling_ae))
        self.decoded = 0

    @property
    def identifier(self) -> Dataset:
        self.decoded += 1
        raw = self.request.Identifier.getvalue()
        return decode(BytesIO(raw), self.context.transfer_syntax == ImplicitVRLittleEndian, True)


def _event(identifier: Dataset, calling_ae: str = "CT01", syntax: UID = ExplicitVRLittleEndian) -> Any:
    raw = encode(identifier, syntax == ImplicitVRLittleEndian, True)
    assert raw is not None
    return _Event(raw, calling_ae, syntax)


def test_the_same_identifier_is_read_once_and_its_reading_is_the_same() -> None:
    requests = FindRequests(SWF)
    first, again = _event(_identifier("CT07")), _event(_identifier("CT07"))
    reading = requests.read(first)
    assert requests.read(again) is reading
    assert (first.decoded, again.decoded) == (1, 0)
    assert reading.query.patterns[Key.STATION_AE].text == "CT07"
    assert reading.keys == {"ScheduledProcedureStepSequence.ScheduledStationAETitle": "CT07",
                            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate": "20261204"}  # fmt: skip


@pytest.mark.parametrize(
    "other",
    [
        _event(_identifier("CT08")),  # other bytes
        _event(_identifier("CT07"), calling_ae="MR01"),  # another station: its own quirks
        _event(_identifier("CT07"), syntax=ImplicitVRLittleEndian),
    ],
    ids=["bytes", "calling AE", "transfer syntax"],
)
def test_a_reading_is_kept_for_its_bytes_calling_ae_and_transfer_syntax(other: Any) -> None:
    requests = FindRequests(SWF)
    reading = requests.read(_event(_identifier("CT07")))
    assert requests.read(other) is not reading
    assert other.decoded == 1
    assert len(requests) == 2


def test_kept_readings_are_bounded_the_least_recently_used_going_first() -> None:
    requests = FindRequests(SWF, size=2)
    a, b, c = (_event(_identifier(station)) for station in ("A", "B", "C"))
    for event in (a, b, a, c):  # A used again: B is the one dropped
        requests.read(event)
    assert len(requests) == 2
    kept_a, kept_b = _event(_identifier("A")), _event(_identifier("B"))
    requests.read(kept_a)
    requests.read(kept_b)
    assert (kept_a.decoded, kept_b.decoded) == (0, 1)


def test_an_identifier_over_the_limit_is_read_each_time() -> None:
    requests = FindRequests(SWF, max_bytes=200)
    large = _identifier("CT07", PatientID="P" * 64, AccessionNumber="A" * 16, StudyInstanceUID="1.2.392." + "1" * 54)
    events = [_event(large), _event(large)]
    assert len(events[0].request.Identifier.getvalue()) > 200
    assert requests.read(events[0]) is not requests.read(events[1])
    assert [event.decoded for event in events] == [1, 1]
    assert len(requests) == 0


def test_a_refused_identifier_is_not_kept() -> None:
    requests = FindRequests(SWF)
    good = encode(_identifier("CT07"), False, True)
    assert good is not None
    bad = good.replace(b"20261204", b"2026-1-4")  # not a DA
    for _ in range(2):
        with pytest.raises(InvalidInput):
            requests.read(_Event(bad, "CT01", ExplicitVRLittleEndian))
    assert len(requests) == 0
