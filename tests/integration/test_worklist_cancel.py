"""C-CANCEL during a worklist answer (PS3.4 C.4.1.2.3 / K.4.1.3.1): the SCP stops
sending and ends with Cancel (0xFE00).

The broker's answers cost ~0.1 ms each and go out 16 KiB at a time: all of them can be
in the socket buffers before a loaded client has read the first one and sent its
C-CANCEL, and a cancel after the last answer rightly changes nothing (once seen on a
loaded machine, when the test only slowed the link by a fixed pause). So the broker's
link is held after its first answer (pynetdicom's EVT_DATA_SENT, on the thread that
writes and reads the association) until the client has asked for the cancel, and
then long enough for the client's DUL thread to have sent it: the broker reads it
before it can have sent two more batches, whatever the machine's load."""

from __future__ import annotations

import threading
import time

from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from broker.app import Broker
from support.hl7peer import sample, send
from support.worklist_clients import full_answer_query

ITEMS = 300
P_DATA_TF = 0x04
#: Time for the client's DUL thread (it polls every few milliseconds) to send the C-CANCEL.
CANCEL_ON_THE_WIRE = 0.5


class HeldLink:
    """EVT_DATA_SENT handler: the first P-DATA sent waits for `cancel_asked`."""

    def __init__(self) -> None:
        self.cancel_asked = threading.Event()
        self._held = False

    def __call__(self, event: evt.Event) -> None:
        if self._held or event.data[:1] != bytes([P_DATA_TF]):  # the A-ASSOCIATE-AC passes
            return
        self._held = True
        if self.cancel_asked.wait(timeout=30):
            time.sleep(CANCEL_ON_THE_WIRE)


def test_c_cancel_stops_the_answer_with_fe00(broker: Broker) -> None:
    orders = [
        sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7", ORM0002=f"CANCEL{n}", PO1002=f"PC{n:05d}")
        for n in range(ITEMS)
    ]
    send(broker.hl7.port, *orders)
    link = HeldLink()
    broker.dicom.bind(evt.EVT_DATA_SENT, link)
    ae = AE(ae_title="MODALITY1")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", broker.dicom.port, ae_title="BROKER")
    assert assoc.is_established
    query = full_answer_query()
    statuses = []
    for status, _ in assoc.send_c_find(query, ModalityWorklistInformationFind, msg_id=7):
        statuses.append(int(status.Status))
        if len(statuses) == 1:
            assoc.send_c_cancel(7, assoc.accepted_contexts[0].context_id)
            link.cancel_asked.set()
    assoc.release()
    assert statuses[-1] == 0xFE00
    assert 1 <= len(statuses) - 1 < ITEMS
