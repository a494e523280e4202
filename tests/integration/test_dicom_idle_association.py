"""A held, idle association costs nothing (issue #17): its threads sleep until the peer
sends something, instead of pynetdicom's 1 ms polling loops (~1,000 wake-ups a second
per thread).

The count is the kernel's: the context switches of the association's threads
(/proc/self/task/<tid>/status), one per wake-up, read before and after they sit idle for
a few seconds. A bound of a few per second is not a timing assertion: it counts events,
and pynetdicom's loops make thousands in that time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import evt
from pynetdicom.association import Association

from broker.config import DicomConfig
from broker.dicom.ae import DicomListener
from support.pdus import associate_rq, c_echo_rq, p_data, read_pdu

IDLE_SECONDS = 3
#: "A few times per second" per idle association, both of its threads together.
MAX_WAKEUPS_PER_SECOND = 3


@pytest.fixture
def listener() -> Iterator[DicomListener]:
    config = DicomConfig(host="127.0.0.1", port=0, network_timeout_seconds=600)
    listener = DicomListener(config, [(evt.EVT_C_ECHO, lambda event: 0x0000, [])])
    listener.start()
    yield listener
    listener.stop()


def _switches(thread: threading.Thread) -> int:
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines())
    return int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])


def _association_threads(peer: socket.socket) -> list[threading.Thread]:
    """The acceptor serving `peer` (found by its address) and its DUL thread."""
    address = peer.getsockname()
    [assoc] = [
        t
        for t in threading.enumerate()
        if isinstance(t, Association) and t.is_acceptor and t.requestor.port == address[1]
    ]
    return [assoc, assoc.dul]


def test_idle_association_wakes_the_broker_at_most_a_few_times_per_second(listener: DicomListener) -> None:
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as peer:
        peer.sendall(associate_rq(calling="MODALITY1"))
        assert read_pdu(peer)[0] == 0x02  # A-ASSOCIATE-AC
        peer.sendall(p_data(0x03, c_echo_rq()))
        assert read_pdu(peer)[0] == 0x04  # served once: both threads are in their loops
        threads = _association_threads(peer)
        before = sum(_switches(t) for t in threads)
        time.sleep(IDLE_SECONDS)
        wakeups = sum(_switches(t) for t in threads) - before
        assert all(t.is_alive() for t in threads)
    assert wakeups <= MAX_WAKEUPS_PER_SECOND * IDLE_SECONDS
