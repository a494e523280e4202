"""The HL7 side of the simulators: messages from the `hl7/` catalog, an MLLP client
that keeps its connection, and an MLLP server that acknowledges and records."""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from broker.domain.ports import InboundRecord
from broker.hl7.ack import render_ack
from broker.hl7.header import MessageHeader
from broker.hl7.listener import MllpListener
from broker.hl7.mllp import exchange
from broker.hl7.sender import acknowledgement_code
from broker.mapping.hl7_out import Hl7Writer
from broker.resources import resource_dir

CATALOG = resource_dir("hl7")


def load_message(name: str) -> bytes:
    """A message file as wire bytes (segments ended by CR): a path, or a name in the
    catalog (`rad-2-placer-order/orm_o01_nw.hl7`). Bytes, so ISO-2022-JP stays intact."""
    path = Path(name) if Path(name).exists() else CATALOG / name
    return path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r")


#: A DTM's date part, at the start of a field or component (HL7 DTM: YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]).
_DATE = re.compile(rb"(?<=[|^])(\d{8})(?=(?:\d{2}){0,3}(?:\.\d{1,4})?(?:[+-]\d{4})?[|^~&\r])")
#: ISO 2022 runs whose bytes are not ASCII (JIS X 0208/0212, JIS X 0201 katakana): digits there are
#: halves of characters, not dates.
_NOT_ASCII = re.compile(rb"(\x1b(?:\$[@B]|\$\(D|\(I).*?(?=\x1b\([BJ]|\r|$))", re.S)
#: Dates further than this from MSH-7 (birth dates) are left as they are.
_NEAR = timedelta(days=7)


def on_day(message: bytes, day: date) -> bytes:
    """The message moved to `day`, so that the samples fill today's worklist: every date
    within a week of its MSH-7 moves by as many days as MSH-7 does."""
    sent = _day(field(message, "MSH-7")[:8].encode("ascii", errors="replace"))
    if sent is None:
        return message
    shift = day - sent

    def moved(match: re.Match[bytes]) -> bytes:
        found = _day(match.group(1))
        if found is None or abs(found - sent) > _NEAR:
            return match.group(1)
        return (found + shift).strftime("%Y%m%d").encode("ascii")

    parts = _NOT_ASCII.split(message)
    return b"".join(part if index % 2 else _DATE.sub(moved, part) for index, part in enumerate(parts))


def _day(text: bytes) -> date | None:
    try:
        return datetime.strptime(text.decode("ascii"), "%Y%m%d").date()
    except (UnicodeDecodeError, ValueError):
        return None


def field(message: bytes, location: str) -> str:
    """`SEG-n` (first such segment, HL7 numbering; MSH-n counts the separator as MSH-1)."""
    name, _, number = location.partition("-")
    for line in message.decode("latin-1").split("\r"):
        if line.startswith(name):
            fields = line.split("|")
            index = int(number) - 1 if name == "MSH" else int(number)
            return fields[index] if index < len(fields) else ""
    return ""


class Hl7Client:
    """Sends messages to an Order Filler on one kept-open connection."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)

    def send(self, payload: bytes) -> tuple[str, str]:
        """(MSA-1, MSA-3) of the answer."""
        return acknowledgement_code(exchange(self._sock, payload))

    def close(self) -> None:
        self._sock.close()


class Hl7Receiver:
    """An MLLP server that answers every message AA and keeps it, in arrival order."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[bytes] = []
        self._arrived = threading.Condition()
        self._listener = MllpListener(host, port, self._handle, max_frame_bytes=1 << 22, idle_timeout=3600)

    @property
    def port(self) -> int:
        return self._listener.port

    def _handle(self, raw: bytes) -> bytes:
        header = MessageHeader.read(raw)
        record = InboundRecord(header.sender, header.control_id, header.message_type, raw)
        with self._arrived:
            self.received.append(raw)
            self._arrived.notify_all()
        addressed = (header.receiving_application, header.receiving_facility)
        return render_ack(header, record, datetime.now(), addressed, Hl7Writer()).encode("utf-8")

    def wait_for(self, count: int, timeout: float) -> list[bytes]:
        """The messages received once `count` have arrived, or all by the timeout."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count and (left := deadline - time.monotonic()) > 0:
                self._arrived.wait(left)
            return list(self.received)

    def start(self) -> Hl7Receiver:
        self._listener.start()
        return self

    def stop(self) -> None:
        self._listener.stop()
