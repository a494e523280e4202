"""Worklist queries take turns (broker/gate.py), and a modality that stops reading
its answers gives its turn up: another modality's query is answered in full while the
first one's link stays stalled, and the stalled one still gets all of its answers once
it reads again. A DICOMweb search waits in the same line as the C-FINDs.

The stall is made on the broker's side: pynetdicom's EVT_DATA_SENT fires on the thread
that writes the association, so holding it there after the first answer stops that
link whatever the kernel's socket buffers would take, and the handler soon finds its
queue full (broker/dicom/reactor.py MAX_QUEUED_BYTES)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from pynetdicom import evt
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from broker.app import Broker
from support.brokers import module_broker
from support.hl7peer import sample, send
from support.pdus import associate_rq, c_find_rq, final_status, read_pdu
from support.web import client, web_port, web_section
from support.worklist_clients import full_answer_query

ITEMS = 300
P_DATA_TF = 0x04


@pytest.fixture(scope="module")
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    with module_broker(request, "sqlite", dicom={"host": "127.0.0.1", "port": 0}, web=web_section()) as instance:
        orders = [
            sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7", ORM0002=f"TURN{n}", PO1002=f"TN{n:05d}")
            for n in range(ITEMS)
        ]
        send(instance.hl7.port, *orders)
        yield instance


class StalledLink:
    """EVT_DATA_SENT handler: the link of AE `calling` stops after its first P-DATA-TF
    until `resume` is set."""

    def __init__(self, calling: str) -> None:
        self.calling = calling
        self.stalled, self.resume = threading.Event(), threading.Event()

    def __call__(self, event: evt.Event) -> None:
        if event.assoc.requestor.ae_title != self.calling or event.data[:1] != bytes([P_DATA_TF]):
            return
        if not self.stalled.is_set():
            self.stalled.set()
            self.resume.wait(timeout=30)


def _associated(broker: Broker, calling: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", broker.dicom.port), timeout=20)
    sock.sendall(associate_rq(calling=calling, abstract=ModalityWorklistInformationFind))
    assert read_pdu(sock)[0] == 0x02  # A-ASSOCIATE-AC
    return sock


def _every_item() -> bytes:
    return c_find_rq(full_answer_query())


def test_a_modality_that_stops_reading_does_not_hold_the_others(broker: Broker) -> None:
    link = StalledLink("STALLED")
    broker.dicom.bind(evt.EVT_DATA_SENT, link)  # a no-op once resumed (the module's only test)
    try:
        with _associated(broker, "STALLED") as stalled, _associated(broker, "READING") as reading:
            stalled.sendall(_every_item())
            assert link.stalled.wait(10)
            reading.sendall(_every_item())
            assert final_status(reading, expect_pending=ITEMS) == 0x0000
            assert not link.resume.is_set()  # answered while the other link was stalled
            link.resume.set()
            assert final_status(stalled, expect_pending=ITEMS) == 0x0000
    finally:
        link.resume.set()


def test_a_dicomweb_search_waits_in_the_same_line_as_the_c_finds(broker: Broker) -> None:
    turns, statuses = broker.services.worklist_turns, []

    def search() -> None:
        with client(web_port(broker), token=None) as http:
            statuses.append(http.get("/dicomweb/modality-scheduled-procedure-steps", params={"limit": 5}).status_code)

    searching = threading.Thread(target=search)
    with turns.held():  # a C-FIND computing
        searching.start()
        deadline = time.monotonic() + 10
        while turns.waiting == 0:
            assert time.monotonic() < deadline, "the search never lined up"
            time.sleep(0.01)
        assert statuses == []
    searching.join(20)
    assert statuses == [200]
