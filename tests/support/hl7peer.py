"""The HL7 side of the tests: samples from `hl7/`, an MLLP client, and a real MLLP
listener standing in for the RIS that records what it receives."""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from broker.hl7.mllp import END, exchange
from broker.hl7.sender import acknowledgement_code
from support.net import stop_serving
from support.recorder import Recorder

CATALOG = Path(__file__).resolve().parents[2] / "hl7"


def sample(name: str, **replace: str) -> bytes:
    """A catalog message as wire bytes (segments ended by CR), with ASCII substitutions.

    Bytes, not text: some samples are ISO-2022-JP, and they must reach the broker as
    the sender wrote them."""
    raw = (CATALOG / name).read_bytes()
    for old, new in replace.items():
        raw = raw.replace(old.encode("ascii"), new.encode("ascii"))
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r")


def scheduled_order(tag: str, uid_suffix: int) -> bytes:
    """The catalog's scheduled CT order (orm_o01_nw.hl7) with each identifier made its
    own by `tag` (ORM<tag>, PO<tag>, ACC<tag>, ...) and the study UID by `uid_suffix`."""
    return sample(
        "rad-2-placer-order/orm_o01_nw.hl7",
        ORM0001=f"ORM{tag}",
        PO1001=f"PO{tag}",
        FO1001=f"FO{tag}",
        ACC1001=f"ACC{tag}",
        RP1001=f"RP{tag}",
        SPS1001=f"SPS{tag}",
        **{"9999.1.1001": f"9999.1.{uid_suffix}"},
    )


def send(port: int, *payloads: bytes, timeout: float = 10.0, tls: ssl.SSLContext | None = None) -> list[bytes]:
    """Send messages on one connection (TLS when given a client context); return each raw ACK."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as plain:
        sock = tls.wrap_socket(plain, server_hostname="localhost") if tls else plain
        return [exchange(sock, p) for p in payloads]


def ack_code(reply: bytes) -> str:
    return acknowledgement_code(reply)[0]


def segment(message: bytes, name: str, encoding: str = "utf-8") -> list[str]:
    """The fields of the first `name` segment (index = HL7 field number; MSH shifted)."""
    for line in message.decode(encoding).split("\r"):
        if line.startswith(name):
            fields = line.split("|")
            return ["MSH", "|", *fields[1:]] if name == "MSH" else fields
    raise AssertionError(f"no {name} segment in {message!r}")


#: A scripted answer that is no answer: the stand-in reads the message and stays silent.
NO_ANSWER = "none"
#: MSH fields a strict receiver requires (HL7 v2.3.1 / v2.5: MSH-3..7, MSH-9..12).
REQUIRED_MSH = (3, 4, 5, 6, 7, 9, 10, 11, 12)


@dataclass
class _Rule:
    answer: str
    when: Callable[[bytes], bool]


class RisListener(Recorder[bytes]):
    """A real MLLP server on a free port, as strict as a RIS. Keeps every message it
    received, in arrival order, and answers each with the first matching scripted
    answer (`script`: each used once), else `answer` (AA by default). An answer is an
    MSA-1 code; AE/CE/AR/CR come with MSA-3 and an ERR segment, and `NO_ANSWER` sends
    nothing back. With `strict_header` (the default) a message with any of MSH-3..MSH-7, MSH-9..MSH-12
    empty is answered AE, ERR 101 (required field missing) at that field, as strict
    receivers do. With `tls` (a server context) it speaks MLLP over TLS. With `gate` it
    is a slow peer: each answer waits until the gate is set (the message is recorded
    on arrival). With `numbering` (a prefix) it numbers the orders made at the broker
    as an Order Placer does (RAD-3): an accepted SN is answered ORR^O02 with ORC-1 NA,
    ORC-2 its own number (the prefix and a count, namespace RIS), ORC-3 as received."""

    def __init__(
        self,
        port: int,
        answer: str = "AA",
        tls: ssl.SSLContext | None = None,
        strict_header: bool = True,
        gate: threading.Event | None = None,
    ) -> None:
        super().__init__("HL7 messages")
        self.port = port
        self.answer = answer
        self.strict_header = strict_header
        self.gate = gate
        self.numbering: str | None = None
        self.numbered: list[str] = []
        self._rules: list[_Rule] = []
        self._rules_lock = threading.Lock()
        listener = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                buffer = b""
                while chunk := self.request.recv(65536):
                    buffer += chunk
                    while END in buffer:
                        frame, buffer = buffer.split(END, 1)
                        reply = listener._reply(frame.lstrip(b"\x0b"))
                        if listener.gate is not None:
                            listener.gate.wait()
                        if reply:
                            self.request.sendall(reply)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def script(self, *answers: str, when: Callable[[bytes], bool] = lambda message: True) -> RisListener:
        """The next messages for which `when` holds get these answers, one each, in turn."""
        with self._rules_lock:
            self._rules.extend(_Rule(answer, when) for answer in answers)
        return self

    def _answer_for(self, message: bytes) -> str:
        with self._rules_lock:
            for rule in self._rules:
                if rule.when(message):
                    self._rules.remove(rule)
                    return rule.answer
        return self.answer

    def _reply(self, message: bytes) -> bytes:
        self.record(message)
        header = segment(message, "MSH", "latin-1")
        control_id = header[10] if len(header) > 10 else ""
        missing = [n for n in REQUIRED_MSH if len(header) <= n or not header[n]] if self.strict_header else []
        answer = "AE" if missing else self._answer_for(message)
        if answer == NO_ANSWER:
            return b""
        order = segment(message, "ORC", "latin-1") if b"\rORC|" in message else []
        numbering = answer == "AA" and self.numbering is not None and order[1:2] == ["SN"]
        kind = "ORR^O02^ORR_O02" if numbering else "ACK"
        ack = f"MSH|^~\\&|RIS|HOSPITAL|BROKER|RADIOLOGY|20261123000000||{kind}|R{control_id[:15]}|P|2.3.1\r"
        if answer in ("AA", "CA"):
            ack += f"MSA|{answer}|{control_id}\r"
            if numbering:
                self.numbered.append(f"{self.numbering}{len(self.numbered) + 1}")
                ack += f"ORC|NA|{self.numbered[-1]}^RIS|{order[3] if len(order) > 3 else ''}\r"
        elif missing:
            ack += f"MSA|AE|{control_id}|Required field missing: MSH-{missing[0]}\r"
            ack += f"ERR|MSH^1^{missing[0]}^101&Required field missing&HL70357\r"
        else:
            ack += f"MSA|{answer}|{control_id}|Refused by the RIS stand-in ({answer})\r"
            ack += "ERR|^^^207&Application internal error&HL70357\r"
        return b"\x0b" + ack.encode("ascii") + END

    def start(self) -> RisListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Also for a listener never started (shutdown would wait for it forever)."""
        if self._thread.is_alive():
            stop_serving(self._server)
        self._server.server_close()
