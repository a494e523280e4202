"""Many Modality Worklist clients at once, from raw sockets (issue #17's scale rows).

A pynetdicom SCU runs two polling threads per association (1 ms loops): 50 or 200 of
them in the benchmark's process would load the 2-core machine more than the SCP being
measured. These clients are plain blocking sockets: an A-ASSOCIATE-RQ, then C-FIND-RQs
(the PDUs of tests/support/pdus.py) and a reader that only looks at each response's
command status. An idle holder sends nothing after its association is accepted.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from bench.dicom_client import PENDING, Scp
from tests.support.pdus import associate_rq, c_find_rq, read_pdu

_STATUS_TAG = struct.pack("<HHI", 0x0000, 0x0900, 2)


def associate(scp: Scp, calling: str, timeout: float) -> socket.socket:
    """An established association (Implicit VR Little Endian) or ConnectionError."""
    sock = socket.create_connection(("127.0.0.1", scp.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(associate_rq(called=scp.ae_title, calling=calling, abstract=ModalityWorklistInformationFind))
    pdu_type, _ = read_pdu(sock)
    if pdu_type != 0x02:
        sock.close()
        raise ConnectionError(f"{scp.name}: association {calling} not accepted (PDU type 0x{pdu_type:02X})")
    return sock


def _statuses(body: bytes) -> Iterator[int]:
    """The Status of each command in one P-DATA-TF (every PDV of it; a command set
    here is small enough to arrive in one fragment)."""
    at = 0
    while at + 6 <= len(body):
        length, control = struct.unpack(">L", body[at : at + 4])[0], body[at + 5]
        value = body[at + 6 : at + 4 + length]
        if control & 0x01:
            found = value.find(_STATUS_TAG)
            if found >= 0:
                yield struct.unpack("<H", value[found + 8 : found + 10])[0]
        at += 4 + length


def find(sock: socket.socket, request: bytes) -> tuple[int, int]:
    """One C-FIND on an open association: (pending answers, final status; -1 if the
    association ended first)."""
    sock.sendall(request)
    answers = 0
    while True:
        pdu_type, body = read_pdu(sock)
        if pdu_type != 0x04:
            return answers, -1
        for status in _statuses(body):
            if status in PENDING:
                answers += 1
            else:
                return answers, status


@contextmanager
def held(scp: Scp, count: int, timeout: float = 30) -> Iterator[list[socket.socket]]:
    """`count` idle associations (fewer if the SCP stops accepting: the list says how
    many), closed on the way out."""
    socks: list[socket.socket] = []
    try:
        for n in range(count):
            try:
                socks.append(associate(scp, f"IDLE{n:04d}", timeout))
            except (OSError, ConnectionError):
                break
        yield socks
    finally:
        for sock in socks:
            sock.close()


@dataclass
class LoadResult:
    """Queries answered by all clients, their latencies, and what went wrong."""

    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    answer_counts: set[int] = field(default_factory=set)
    statuses: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def load(scp: Scp, query: Dataset, clients: int, seconds: float, timeout: float = 120) -> LoadResult:
    """`clients` associations each sending `query` in a loop (next query when the last
    answer is in) until `seconds` have passed."""
    request = c_find_rq(query)
    return run_clients(
        clients, seconds, timeout, lambda n: associate(scp, f"LOAD{n:04d}", timeout), lambda sock: find(sock, request)
    )


def run_clients(
    clients: int,
    seconds: float,
    timeout: float,
    connect: Callable[[int], socket.socket],
    ask: Callable[[socket.socket], tuple[int, int]],
) -> LoadResult:
    """`clients` connections (`connect(n)`), each asking (`ask`: answers, final status)
    in a loop until `seconds` have passed; questions started before then are waited
    for. Rate = questions answered / (first start to last answer)."""
    result, lock = LoadResult(clients), threading.Lock()
    deadline: list[float] = []
    # The action runs once, before any client is released: every one sees the deadline.
    ready = threading.Barrier(clients + 1, action=lambda: deadline.append(time.perf_counter() + seconds))

    def client(n: int) -> None:
        try:
            sock = connect(n)
        except (OSError, ConnectionError) as exc:
            with lock:
                result.errors.append(f"{type(exc).__name__}: {exc}")
            ready.wait()
            return
        with sock:
            ready.wait()
            try:
                while time.perf_counter() < deadline[0]:
                    started = time.perf_counter()
                    answers, status = ask(sock)
                    took = time.perf_counter() - started
                    with lock:
                        result.latencies.append(took)
                        result.answer_counts.add(answers)
                        result.statuses.add(status)
            except (OSError, ValueError) as exc:
                with lock:
                    result.errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = deadline[0] - seconds
    for thread in threads:
        thread.join(timeout + seconds)
    result.seconds = time.perf_counter() - started
    return result
