"""P-DATA-TF framing of the worklist's pending responses (PS3.8 9.3.5, E.2), read back
with pynetdicom's PDU decoder and pydicom."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom.filereader import read_dataset
from pynetdicom.pdu import P_DATA_TF

from broker.dicom.pending import command_set, p_data


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
