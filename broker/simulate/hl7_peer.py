"""The HL7 side of the simulators: messages from the `hl7/` catalog, an MLLP client
that keeps its connection, and an MLLP server that acknowledges and records."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime
from pathlib import Path

from broker.domain.ports import InboundRecord
from broker.hl7.ack import render_ack
from broker.hl7.header import MessageHeader
from broker.hl7.listener import MllpListener
from broker.hl7.mllp import exchange
from broker.hl7.sender import acknowledgement_code
from broker.mapping.profile import PROFILES_DIR

CATALOG = PROFILES_DIR.parent / "hl7"


def load_message(name: str) -> bytes:
    """A message file as wire bytes (segments ended by CR): a path, or a name in the
    catalog (`rad-2-placer-order/orm_o01_nw.hl7`). Bytes, so ISO-2022-JP stays intact."""
    path = Path(name) if Path(name).exists() else CATALOG / name
    return path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r")


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
        return render_ack(header, record, datetime.now()).encode("utf-8")

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
