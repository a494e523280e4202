"""DICOM Upper Layer PDUs as raw bytes (PS3.8 9.3), for tests that must send what no
well-behaved SCU would: oversize lengths, trickled bytes, mutated fields."""

from __future__ import annotations

import socket
import struct
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom.dsutils import decode, encode
from pynetdicom.sop_class import ModalityWorklistInformationFind, Verification  # type: ignore[attr-defined]

APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
COMMAND_LAST = 0x03  # PDV message control header: command, last fragment
DATASET_MORE = 0x00  # data set, more fragments follow
DATASET_LAST = 0x02


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, len(body)) + body


def associate_rq(
    called: str = "BROKER", calling: str = "FUZZER", max_length: int = 16382, abstract: str = Verification
) -> bytes:
    """An A-ASSOCIATE-RQ proposing `abstract` in Implicit VR Little Endian (context 1)."""
    context = bytes([1, 0, 0, 0]) + _item(0x30, abstract.encode()) + _item(0x40, ImplicitVRLittleEndian.encode())
    user = _item(0x51, struct.pack(">L", max_length)) + _item(0x52, b"1.2.826.0.1.3680043.9.9999.1")
    body = (
        struct.pack(">HH", 1, 0)
        + called.encode().ljust(16)
        + calling.encode().ljust(16)
        + bytes(32)
        + _item(0x10, APPLICATION_CONTEXT)
        + _item(0x20, context)
        + _item(0x50, user)
    )
    return pdu(0x01, body)


def pdv(control: int, data: bytes, context_id: int = 1) -> bytes:
    """One presentation data value item."""
    return struct.pack(">LBB", len(data) + 2, context_id, control) + data


def p_data(control: int, data: bytes, context_id: int = 1) -> bytes:
    """A P-DATA-TF with one presentation data value."""
    return pdu(0x04, pdv(control, data, context_id))


def c_echo_rq(message_id: int = 1) -> bytes:
    """A C-ECHO-RQ command set, implicit VR little endian, group length first."""
    return _command(Verification, 0x0030, message_id, has_dataset=False)


def c_find_rq(identifier: Dataset, message_id: int = 1) -> bytes:
    """A Modality Worklist C-FIND-RQ: the command PDU, then the identifier PDU."""
    command = _command(ModalityWorklistInformationFind, 0x0020, message_id, has_dataset=True)
    data = encode(identifier, True, True)
    assert data is not None
    return p_data(COMMAND_LAST, command) + p_data(DATASET_LAST, data)


def _command(sop_class: str, field: int, message_id: int, *, has_dataset: bool) -> bytes:
    command = Dataset()
    command.AffectedSOPClassUID = sop_class
    command.CommandField = field
    command.MessageID = message_id
    if field == 0x0020:
        command.Priority = 0
    command.CommandDataSetType = 0x0000 if has_dataset else 0x0101
    body = encode(command, True, True)
    assert body is not None
    return b"\x00\x00\x00\x00\x04\x00\x00\x00" + struct.pack("<L", len(body)) + body


def final_status(sock: socket.socket, expect_pending: int | None = None) -> int:
    """Read P-DATA answers until a command whose status is not Pending; its status
    (-1 when the association ended first, or when not `expect_pending` answers came)."""
    pending = 0
    while True:
        pdu_type, body = read_pdu(sock)
        if pdu_type != 0x04:
            return -1
        if body[5] & 0x01:  # a command fragment (one PDV per PDU is what the broker sends)
            command = decode(BytesIO(body[6:]), True, True)
            if int(command.Status) in (0xFF00, 0xFF01):
                pending += 1
            elif expect_pending is not None and pending != expect_pending:
                return -1
            else:
                return int(command.Status)


def read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    """The next PDU's type and body; (0, b"") when the peer closed the connection."""
    header = _read_exactly(sock, 6)
    if len(header) < 6:
        return 0, b""
    pdu_type, _, length = struct.unpack(">BBL", header)
    return pdu_type, _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
