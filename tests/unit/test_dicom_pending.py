"""P-DATA-TF framing of the worklist's pending responses (PS3.8 9.3.5, E.2), read back
with pynetdicom's PDU decoder and pydicom."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom.filereader import read_dataset
from pynetdicom.dimse_messages import C_FIND_RSP
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA

from broker.dicom.pdata import command_set, p_data
from broker.dicom.reactor import final_find_status


def _pdus(stream: bytes) -> list[bytes]:
    pdus = []
    while stream:
        length = int.from_bytes(stream[2:6], "big")
        pdus.append(stream[: 6 + length])
        stream = stream[6 + length :]
    return pdus


@pytest.mark.parametrize("max_pdu", [0, 16_384, 64, 7])
@pytest.mark.parametrize("command", [True, False], ids=["command", "data set"])
def test_fragments_respect_max_length_and_reassemble_ps3_8_9_3_5(max_pdu: int, command: bool) -> None:
    data = bytes(range(256)) * 3
    pdus = _pdus(p_data(5, data, max_pdu, command=command))
    if max_pdu:
        assert all(len(pdu) - 6 <= max_pdu for pdu in pdus)
    else:
        assert len(pdus) == 1
    fragments = []
    for raw in pdus:
        pdu = P_DATA_TF()
        pdu.decode(raw)
        [item] = pdu.presentation_data_value_items
        assert item.presentation_context_id == 5
        value = item.presentation_data_value
        control, fragment = value[0], value[1:]
        assert control & 0x01 == int(command)
        fragments.append((control & 0x02, fragment))
    assert [last for last, _ in fragments] == [0] * (len(fragments) - 1) + [0x02]
    assert b"".join(f for _, f in fragments) == data


def test_c_find_rsp_command_set_ps3_7_table_9_1_2() -> None:
    command = read_dataset(BytesIO(command_set("1.2.840.10008.5.1.4.31", 7, 0xFF00)), True, True)
    assert command.CommandGroupLength == len(command_set("1.2.840.10008.5.1.4.31", 7, 0xFF00)) - 12
    assert command.AffectedSOPClassUID == "1.2.840.10008.5.1.4.31"
    assert (command.CommandField, command.MessageIDBeingRespondedTo, command.Status) == (0x8020, 7, 0xFF00)
    assert command.CommandDataSetType != 0x0101  # a data set follows


@pytest.mark.parametrize("status", [0x0000, 0xFE00], ids=["success", "cancel"])
@pytest.mark.parametrize("max_pdu", [16_382, 0, 40])
def test_the_final_status_as_bytes_is_what_pynetdicom_writes(status: int, max_pdu: int) -> None:
    """RawFinalStatus (broker/dicom/reactor.py) replaces pynetdicom's send for these two:
    byte for byte the same PDUs, command set and fragments."""
    rsp = C_FIND()
    rsp.MessageIDBeingRespondedTo, rsp.AffectedSOPClassUID, rsp.Status = 7, "1.2.840.10008.5.1.4.31", status
    message = C_FIND_RSP()
    message.primitive_to_message(rsp)
    theirs = b"".join(_as_pdu(primitive).encode() for primitive in message.encode_msg(3, max_pdu))
    command = final_find_status(rsp)
    assert command is not None and p_data(3, command, max_pdu, command=True) == theirs


def _as_pdu(primitive: P_DATA) -> P_DATA_TF:
    pdu = P_DATA_TF()
    pdu.from_primitive(primitive)
    return pdu


def test_only_a_bare_success_or_cancel_is_written_as_bytes() -> None:
    def rsp(**values: object) -> C_FIND:
        primitive = C_FIND()
        primitive.MessageIDBeingRespondedTo, primitive.AffectedSOPClassUID = 7, "1.2.840.10008.5.1.4.31"
        for name, value in {"Status": 0x0000, **values}.items():
            setattr(primitive, name, value)
        return primitive

    assert final_find_status(rsp()) is not None
    assert final_find_status(rsp(Status=0xFF00, Identifier=BytesIO(b"\x08\x00"))) is None  # pending
    assert final_find_status(rsp(Status=0xA900, ErrorComment="bad key")) is None  # a failure with its comment
    assert final_find_status(rsp(Status=0xC000)) is None
    request = C_FIND()
    request.MessageID, request.AffectedSOPClassUID, request.Identifier = 7, "1.2.840.10008.5.1.4.31", BytesIO()
    assert final_find_status(request) is None
