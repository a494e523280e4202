"""DICOM Upper Layer PDUs as raw bytes (PS3.8 9.3), for tests that must send what no
well-behaved SCU would: oversize lengths, trickled bytes, mutated fields."""

from __future__ import annotations

import socket
import struct

from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
COMMAND_LAST = 0x03  # PDV message control header: command, last fragment
DATASET_MORE = 0x00  # data set, more fragments follow


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, len(body)) + body


def associate_rq(called: str = "BROKER", calling: str = "FUZZER", max_length: int = 16382) -> bytes:
    """An A-ASSOCIATE-RQ proposing Verification in Implicit VR Little Endian (context 1)."""
    context = bytes([1, 0, 0, 0]) + _item(0x30, Verification.encode()) + _item(0x40, ImplicitVRLittleEndian.encode())
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
    command = Dataset()
    command.AffectedSOPClassUID = Verification
    command.CommandField = 0x0030
    command.MessageID = message_id
    command.CommandDataSetType = 0x0101
    body = encode(command, True, True)
    assert body is not None
    return b"\x00\x00\x00\x00\x04\x00\x00\x00" + struct.pack("<L", len(body)) + body


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
