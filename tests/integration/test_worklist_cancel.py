"""C-CANCEL during a worklist answer (PS3.4 C.4.1.2.3 / K.4.1.3.1): the SCP stops
sending and ends with Cancel (0xFE00).

The broker's answers cost ~0.1 ms each: all of them can be in the socket buffers
before a loaded client has read the first one and sent its C-CANCEL, and a cancel
after the last answer rightly changes nothing. The test therefore slows the broker's
link (a pause after every PDU it sends, through pynetdicom's EVT_DATA_SENT) so the
answer takes over a second, far longer than the cancel needs to arrive."""

from __future__ import annotations

import time

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from broker.app import Broker
from support.hl7peer import sample, send

ITEMS = 300
PAUSE_PER_SEND = 0.005


def test_c_cancel_stops_the_answer_with_fe00(broker: Broker) -> None:
    orders = [
        sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7", ORM0002=f"CANCEL{n}", PO1002=f"PC{n:05d}")
        for n in range(ITEMS)
    ]
    send(broker.hl7.port, *orders)
    broker.dicom.bind(evt.EVT_DATA_SENT, lambda _: time.sleep(PAUSE_PER_SEND))
    ae = AE(ae_title="MODALITY1")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", broker.dicom.port, ae_title="BROKER")
    assert assoc.is_established
    query = Dataset()
    query.AccessionNumber = ""
    statuses = []
    for status, _ in assoc.send_c_find(query, ModalityWorklistInformationFind, msg_id=7):
        statuses.append(int(status.Status))
        if len(statuses) == 1:
            assoc.send_c_cancel(7, assoc.accepted_contexts[0].context_id)
    assoc.release()
    assert statuses[-1] == 0xFE00
    assert 1 <= len(statuses) - 1 < ITEMS
