"""The worklist answer on the wire (PS3.8 9.3.5, PS3.7 9.3.2.2): each pending response
written by the broker's own send path, read back by an independent DIMSE stack
(pynetdicom as the modality) in each transfer syntax the broker accepts, with P-DATA
fragments cut to the modality's Maximum Length Received."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from broker.app import Broker
from support.hl7peer import sample, send

ITEMS = 3
#: A small Maximum Length Received: every answer (the whole SPS item) spans several PDUs.
SMALL_PDU = 128


def _query() -> Dataset:
    query = Dataset()
    query.PatientName = ""
    query.AccessionNumber = ""
    query.ScheduledProcedureStepSequence = Sequence()  # no item: the whole item (C.2.2.2.6)
    return query


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian], ids=["explicit", "implicit"])
@pytest.mark.parametrize("max_pdu", [SMALL_PDU, 0], ids=["fragmented", "unlimited"])
def test_pending_answers_decode_in_each_transfer_syntax_ps3_8_9_3_5(broker: Broker, syntax: str, max_pdu: int) -> None:
    orders = [
        sample("rad-2-placer-order/orm_o01_nw_unassigned.hl7", ORM0002=f"WIRE{n}", PO1002=f"PW{n:05d}")
        for n in range(ITEMS)
    ]
    send(broker.hl7.port, *orders)
    ae = AE(ae_title="MODALITY1")
    ae.maximum_pdu_size = max_pdu
    ae.add_requested_context(ModalityWorklistInformationFind, [syntax])
    assoc = ae.associate("127.0.0.1", broker.dicom.port, ae_title="BROKER")
    assert assoc.is_established
    answers = [(int(s.Status), ds) for s, ds in assoc.send_c_find(_query(), ModalityWorklistInformationFind)]
    assoc.release()
    assert [status for status, _ in answers] == [0xFF00] * ITEMS + [0x0000]
    for _, ds in answers[:-1]:
        assert [e.keyword for e in ds] == ["AccessionNumber", "PatientName", "ScheduledProcedureStepSequence"]
        [item] = ds.ScheduledProcedureStepSequence
        assert item.ScheduledProcedureStepStatus == "SCHEDULED"
        assert item.Modality
