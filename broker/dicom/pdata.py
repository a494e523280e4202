"""DIMSE command sets and P-DATA-TF framing written as bytes (PS3.7 9.3.2.2, E;
PS3.8 9.3.5): the C-FIND responses, which differ only in status and identifier, are
encoded here once instead of through a command Dataset each (broker/dicom/pending.py,
broker/dicom/reactor.py). A command set is always Implicit VR Little Endian."""

from __future__ import annotations

import struct

_COMMAND_LAST, _DATA_LAST = 0x03, 0x02
_C_FIND_RSP = 0x8020
_DATA_SET_PRESENT, _NO_DATA_SET = 0x0001, 0x0101
_PDV_HEADER = 6  # item length (4) + presentation context ID (1) + control header (1)


def _us(tag: int, value: int) -> bytes:
    return struct.pack("<HHIH", tag >> 16, tag & 0xFFFF, 2, value)


def command_set(sop_class_uid: str, message_id: int, status: int, *, data_set: bool = True) -> bytes:
    """A C-FIND-RSP command set (PS3.7 Table 9.1-2): with a data set (a pending answer),
    or without (the final status)."""
    uid = sop_class_uid.encode("ascii")
    uid += b"\x00" * (len(uid) % 2)
    body = (
        struct.pack("<HHI", 0x0000, 0x0002, len(uid))
        + uid
        + _us(0x00000100, _C_FIND_RSP)
        + _us(0x00000120, message_id)
        + _us(0x00000800, _DATA_SET_PRESENT if data_set else _NO_DATA_SET)
        + _us(0x00000900, status)
    )
    return struct.pack("<HHII", 0x0000, 0x0000, 4, len(body)) + body


def _pdu(context_id: int, control: int, fragment: bytes) -> bytes:
    item_length = len(fragment) + 2
    return struct.pack(">BxIIBB", 0x04, item_length + 4, item_length, context_id, control) + fragment


def p_data(context_id: int, data: bytes, max_pdu: int, *, command: bool) -> bytes:
    """`data` as P-DATA-TF PDUs of at most `max_pdu` bytes each (0: no limit)."""
    room = max_pdu - _PDV_HEADER if max_pdu else len(data) or 1
    last = _COMMAND_LAST if command else _DATA_LAST
    more = last & 0x01
    chunks = [data[at : at + room] for at in range(0, len(data), room)] or [b""]
    return b"".join(
        _pdu(context_id, last if index == len(chunks) - 1 else more, chunk) for index, chunk in enumerate(chunks)
    )
