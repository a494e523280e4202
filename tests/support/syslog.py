"""Real syslog collectors for the audit tests: RFC 5426 (UDP) and RFC 5425 (TLS with
octet counting, client certificate required), each parsing RFC 5424 as it receives."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import BinaryIO

from support.certs import Pki
from support.recorder import Recorder

_RFC5424 = re.compile(
    rb"<(?P<pri>\d{1,3})>(?P<version>[1-9]\d{0,2}) (?P<timestamp>\S+) (?P<host>\S{1,255}) (?P<app>\S{1,48}) "
    rb"(?P<procid>\S{1,128}) (?P<msgid>\S{1,32}) (?P<sd>-|\[.*?\])(?: (?P<msg>.*))?\Z",
    re.S,
)
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class SyslogMessage:
    pri: int
    timestamp: str
    host: str
    app: str
    msgid: str
    xml: bytes


def parse_rfc5424(raw: bytes) -> SyslogMessage:
    """The header fields, and the MSG (the XML) after its UTF-8 BOM; AssertionError if
    the frame is not RFC 5424 with a BOM-marked UTF-8 MSG."""
    match = _RFC5424.match(raw)
    assert match is not None, f"not RFC 5424: {raw[:120]!r}"
    assert match["version"] == b"1"
    msg = match["msg"] or b""
    assert msg.startswith(_BOM), "MSG must be UTF-8 with its BOM"
    fields = (match["timestamp"], match["host"], match["app"], match["msgid"])
    timestamp, host, app, msgid = (f.decode("ascii") for f in fields)
    return SyslogMessage(int(match["pri"]), timestamp, host, app, msgid, msg[len(_BOM) :])


class UdpSyslogReceiver(Recorder[SyslogMessage]):
    def __init__(self, port: int) -> None:
        super().__init__("syslog messages")
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", port))
        self._sock.settimeout(0.1)
        self._stopped = threading.Event()
        self.port = port
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> UdpSyslogReceiver:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                datagram = self._sock.recv(65535)
            except TimeoutError:
                continue
            self.record(parse_rfc5424(datagram))

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._sock.close()


class TlsSyslogReceiver(Recorder[SyslogMessage]):
    """Stops like a crashed collector would: listening socket and every connection closed."""

    def __init__(self, port: int, pki: Pki) -> None:
        super().__init__("syslog messages")
        self.port = port
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(pki.server.cert, pki.server.key)
        self._context.load_verify_locations(pki.ca)
        self._context.verify_mode = ssl.CERT_REQUIRED
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen()
        self._listener.settimeout(0.1)
        self._stopped = threading.Event()
        self._connections: list[ssl.SSLSocket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> TlsSyslogReceiver:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(None)
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            with self._context.wrap_socket(raw, server_side=True) as conn:
                self._connections.append(conn)
                reader: BinaryIO = conn.makefile("rb")
                while (frame := _read_octet_counted(reader)) is not None:
                    self.record(parse_rfc5424(frame))
        except (OSError, ValueError):
            return

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


def _read_octet_counted(reader: BinaryIO) -> bytes | None:
    """RFC 5425 / RFC 6587 octet counting: MSG-LEN SP SYSLOG-MSG."""
    digits = b""
    while (char := reader.read(1)) != b" ":
        if not char:
            return None
        assert char.isdigit() and len(digits) < 9, f"bad frame length {digits + char!r}"
        digits += char
    frame = reader.read(int(digits))
    assert len(frame) == int(digits), "truncated frame"
    return frame
