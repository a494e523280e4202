"""RELIABILITY.md D4, the leak soak: connect / C-ECHO / release over and over, and bare
TCP connect / close, against `broker serve`; the broker's resident size grows less than
20 MB and its threads come back to their baseline (pynetdicom #328, #669: a thread or
an association kept per connection). CI runs a few hundred; `make soak` runs
D4_ECHOES=100000 D4_BARE=10000 and prints the figures."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from support.measure import size, status, steady_threads
from support.net import free_port
from support.processes import BrokerProcess

pytestmark = pytest.mark.e2e

ECHOES = size("D4_ECHOES", 300)
BARE = size("D4_BARE", 100)
WARM_UP = 50
MAX_GROWTH_KIB = 20 * 1024


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[BrokerProcess]:
    # A bare connection holds its thread until ARTIM closes it: 2 s here, not 30.
    process = BrokerProcess(
        tmp_path, free_port(), f"sqlite:///{tmp_path / 'broker.db'}", dicom={"acse_timeout_seconds": 2}
    ).start()
    yield process
    process.stop()


def _echoes(port: int, count: int) -> None:
    ae = AE(ae_title="ECHOSCU")
    ae.add_requested_context(Verification)
    for n in range(count):
        assoc = ae.associate("127.0.0.1", port, ae_title="BROKER")
        assert assoc.is_established, f"association {n} refused"
        assert int(assoc.send_c_echo().Status) == 0x0000
        assoc.release()


def _bare(port: int, count: int) -> None:
    for _ in range(count):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def _settled_threads(pid: int, baseline: int) -> int:
    """Thread count once the last associations have ended (their threads exit on their own)."""
    deadline = time.monotonic() + 30
    while (threads := status("Threads", pid)) > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    return threads


@pytest.mark.timeout(max(120, ECHOES * 0.1))
def test_connect_echo_release_leaks_neither_memory_nor_threads(serving: BrokerProcess) -> None:
    assert serving.process is not None
    pid, port = serving.process.pid, serving.dicom_port
    _echoes(port, WARM_UP)  # pools, caches and lazily started threads, once
    baseline_threads = steady_threads(pid)
    baseline_rss = status("VmRSS", pid)
    started = time.monotonic()
    _echoes(port, ECHOES)
    _bare(port, BARE)
    elapsed = time.monotonic() - started
    threads = _settled_threads(pid, baseline_threads)
    growth = status("VmRSS", pid) - baseline_rss
    print(
        f"\nD4: {ECHOES} connect/echo/release + {BARE} bare connect/close in {elapsed:.1f} s; "
        f"RSS {baseline_rss} KiB → +{growth} KiB; threads {baseline_threads} → {threads}"
    )
    assert growth < MAX_GROWTH_KIB
    assert threads <= baseline_threads
