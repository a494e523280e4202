"""The guards the broker adds to pynetdicom's accepted sockets (RELIABILITY.md D2, D3;
broker/dicom/guard.py), against a real listener on a free port: silent and slow-loris
connections are closed within the ARTIM/network timeout (+1 s), oversize PDUs and
unterminated DIMSE messages get an A-ABORT within 1 s, and a legitimate C-ECHO keeps
working meanwhile. No database: only the DICOM listener runs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from pynetdicom import evt

from broker.config import DicomConfig
from broker.dicom.ae import DicomListener
from support.measure import PeakRss, no_hang, size
from support.net import free_port
from support.pdus import COMMAND_LAST, DATASET_MORE, associate_rq, c_echo_rq, p_data, pdu, pdv, read_pdu
from support.senders import echo

TIMEOUT = 1.0  # ARTIM and network timeout of the listener under test
SILENT = size("D2_CONNECTIONS", 60)  # more than max_associations (50); `make soak`: 500
A_ASSOCIATE_AC, A_ABORT = 0x02, 0x07


def _echo(event: evt.Event) -> int:
    return 0x0000


OPEN: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


@pytest.fixture
def listener() -> Iterator[DicomListener]:
    config = DicomConfig(
        host="127.0.0.1",
        port=free_port(),
        acse_timeout_seconds=TIMEOUT,
        network_timeout_seconds=TIMEOUT,
        max_message_bytes=64 * 1024,
    )
    server = DicomListener(config, [(evt.EVT_C_ECHO, _echo, [])])
    server.start()
    yield server
    server.stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT + 5)
    OPEN.append(sock)
    return sock


def closed_after(sock: socket.socket) -> float:
    """Seconds until the broker closes `sock` (reads and drops whatever it sends)."""
    started = time.monotonic()
    while read_pdu(sock) != (0, b""):
        pass
    return time.monotonic() - started


def established(port: int) -> socket.socket:
    sock = connect(port)
    sock.sendall(associate_rq())
    assert read_pdu(sock)[0] == A_ASSOCIATE_AC
    return sock


def test_silent_connections_closed_within_artim_and_take_no_association_slot(listener: DicomListener) -> None:
    sockets = [connect(listener.port) for _ in range(SILENT)]
    time.sleep(0.2)
    no_hang(echo(listener.port), f"D2 C-ECHO during {SILENT} silent connections")
    slowest = max(closed_after(s) for s in sockets)
    print(f"D2 {SILENT} silent connections: the last closed after {slowest:.2f} s (ARTIM {TIMEOUT} s)")
    assert slowest <= TIMEOUT + 1


def test_slow_loris_closed_while_a_c_echo_still_succeeds(listener: DicomListener) -> None:
    sock = connect(listener.port)
    request = associate_rq()
    sock.sendall(request[:6])  # the header, then one byte at a time: never a whole PDU in time
    started = time.monotonic()

    def trickle() -> None:
        for byte in request[6:40]:
            time.sleep(0.2)
            try:
                sock.send(bytes([byte]))
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    no_hang(echo(listener.port), "D2 C-ECHO during a slow loris")
    closed_after(sock)
    assert time.monotonic() - started <= TIMEOUT + 1


def test_idle_established_association_closed_within_network_timeout(listener: DicomListener) -> None:
    sock = established(listener.port)
    assert closed_after(sock) <= TIMEOUT + 1


@pytest.mark.parametrize("pdu_type", [0x01, 0x04], ids=["associate-rq", "p-data"])
def test_pdu_length_ffffffff_aborted_without_allocating(listener: DicomListener, pdu_type: int) -> None:
    sock = established(listener.port) if pdu_type == 0x04 else connect(listener.port)
    with PeakRss() as rss:  # the listener runs in this process: its peak during this test
        started = time.monotonic()
        sock.sendall(bytes([pdu_type, 0]) + b"\xff\xff\xff\xff" + bytes(4096))
        assert read_pdu(sock)[0] == A_ABORT
        no_hang(time.monotonic() - started, "D3 A-ABORT of a 4 GiB PDU")
    print(f"D3 peak RSS growth: {rss.growth_kib} KiB")
    assert rss.growth_kib < 50 * 1024  # KiB: < 50 MB
    no_hang(echo(listener.port), "C-ECHO after it")


def test_p_data_over_the_negotiated_maximum_aborted(listener: DicomListener) -> None:
    sock = established(listener.port)
    echoes = b"".join(pdv(COMMAND_LAST, c_echo_rq(n)) for n in range(1, 240))
    assert len(echoes) > 16382  # valid C-ECHOs, but in a PDU longer than the broker offered
    sock.sendall(pdu(0x04, echoes))
    assert read_pdu(sock)[0] == A_ABORT


def test_dimse_message_without_last_fragment_aborted_at_the_cap(listener: DicomListener) -> None:
    sock = established(listener.port)
    started = time.monotonic()
    for _ in range(10):  # 10 x 16 KiB fragments, none the last: past the 64 KiB cap
        try:
            sock.sendall(p_data(DATASET_MORE, bytes(16000)))
        except OSError:
            break
    assert read_pdu(sock)[0] == A_ABORT
    no_hang(time.monotonic() - started, "D3 A-ABORT at the DIMSE cap")


def test_c_echo_over_raw_pdus_answered(listener: DicomListener) -> None:
    """The hand-built PDUs the fuzzer mutates are valid to begin with."""
    sock = established(listener.port)
    sock.sendall(p_data(COMMAND_LAST, c_echo_rq()))
    pdu_type, body = read_pdu(sock)
    assert pdu_type == 0x04
    assert b"\x00\x00\x00\x09\x02\x00\x00\x00\x00\x00" in body  # (0000,0900) Status 0x0000
    sock.sendall(pdu(0x05, bytes(4)))  # A-RELEASE-RQ
    assert read_pdu(sock)[0] == 0x06
