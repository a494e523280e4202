"""Issue #17's scale rows, for every SCP of part A at one size (10k items):

- *idle*: N associations (200) opened and left idle; the SCP's CPU over a window (its
  process and what it forked, from /proc) and the station+date query's p50/p99 on one
  more association while they are held;
- *load*: M clients (50), each on its own association sending the station+date query
  in a loop for a while; queries/s and the latency p50/p99;
- the broker alone, the same load as DICOMweb searches (M keep-alive HTTP clients), and
  half and half: M/2 C-FIND clients and M/2 HTTP clients at once (one line for both,
  broker/gate.py).

The clients are raw sockets (bench/mwl_load.py), so the benchmark's own CPU stays small.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from bench import mwl_load, web_client
from bench.dicom_client import Scp
from bench.machine import Load, group_cpu_seconds
from bench.mwl_load import LoadResult
from bench.procs import Peer
from bench.stats import percentile
from tests.support.pdus import c_find_rq


@dataclass
class Idle:
    held: int = 0
    cpu_percent: float | None = None
    latencies: list[float] = field(default_factory=list)
    answer_counts: set[int] = field(default_factory=set)
    error: str = ""


@dataclass
class ScaleRow:
    """One SCP's figures."""

    name: str
    idle: Idle = field(default_factory=Idle)
    load: LoadResult | None = None


@dataclass
class ScaleResults:
    size: int
    expected: int
    idle_count: int
    clients: int
    idle_seconds: float
    load_seconds: float
    rows: list[ScaleRow] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    #: The broker's DICOMweb search under the same load, and the half-and-half mix.
    web: LoadResult | None = None
    mixed_find: LoadResult | None = None
    mixed_web: LoadResult | None = None


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _queries_while_held(scp: Scp, query: Dataset, idle: Idle, budget: float, most: int, least: int) -> None:
    """The filtered query on one more association: up to `most` runs, fewer (at least
    `least`) once `budget` seconds are spent."""
    request = c_find_rq(query)
    with mwl_load.associate(scp, "HELDQUERY", timeout=60) as sock:
        mwl_load.find(sock, request)  # warm-up, untimed
        started = time.monotonic()
        while len(idle.latencies) < most:
            t0 = time.perf_counter()
            answers, _status = mwl_load.find(sock, request)
            idle.latencies.append(time.perf_counter() - t0)
            idle.answer_counts.add(answers)
            if len(idle.latencies) >= least and time.monotonic() - started > budget:
                break


def measure_idle(scp: Scp, pid: int, query: Dataset, count: int, seconds: float) -> Idle:
    idle = Idle()
    try:
        with mwl_load.held(scp, count, timeout=10) as socks:
            idle.held = len(socks)
            time.sleep(2)  # let the accepting settle
            before = group_cpu_seconds(pid)
            time.sleep(seconds)
            idle.cpu_percent = 100 * (group_cpu_seconds(pid) - before) / seconds
            _queries_while_held(scp, query, idle, budget=15, most=200, least=3)
    except (OSError, ConnectionError) as exc:  # a measurement, not a test: report and go on
        idle.error = f"{type(exc).__name__}: {exc}"[:120]
    return idle


def run(
    servers: list[tuple[Scp, Peer]],
    query: Dataset,
    size: int,
    expected: int,
    *,
    idle_count: int,
    idle_seconds: float,
    clients: int,
    load_seconds: float,
    web: tuple[Scp, int] | None = None,
) -> ScaleResults:
    """`web`: the broker's SCP and web port, for its DICOMweb rows."""
    results = ScaleResults(size, expected, idle_count, clients, idle_seconds, load_seconds)
    for scp, peer in servers:
        assert peer.process is not None
        row = ScaleRow(scp.name)
        _progress(f"[scale] {size} items: {scp.name}, {idle_count} idle associations ...")
        results.loads.append(Load(f"{scp.name}, {idle_count} idle").start())
        row.idle = measure_idle(scp, peer.process.pid, query, idle_count, idle_seconds)
        results.loads[-1].stop()
        _progress(f"[scale] {size} items: {scp.name}, {clients} clients querying ...")
        results.loads.append(Load(f"{scp.name}, {clients} clients").start())
        row.load = mwl_load.load(scp, query, clients, load_seconds)
        results.loads[-1].stop()
        results.rows.append(row)
    if web is not None:
        _measure_web(results, query, *web)
    return results


def _measure_web(results: ScaleResults, query: Dataset, scp: Scp, port: int) -> None:
    clients, seconds = results.clients, results.load_seconds
    _progress(f"[scale] {results.size} items: broker, {clients} DICOMweb clients searching ...")
    results.loads.append(Load(f"broker, {clients} DICOMweb clients").start())
    results.web = web_client.load(port, query, clients, seconds)
    results.loads[-1].stop()
    half = clients // 2
    _progress(f"[scale] {results.size} items: broker, {half} C-FIND and {clients - half} DICOMweb clients ...")
    results.loads.append(Load(f"broker, {half} C-FIND + {clients - half} DICOMweb").start())
    finds: list[LoadResult] = []
    beside = threading.Thread(target=lambda: finds.append(mwl_load.load(scp, query, half, seconds)))
    beside.start()
    results.mixed_web = web_client.load(port, query, clients - half, seconds)
    beside.join()
    results.mixed_find = finds[0] if finds else None
    results.loads[-1].stop()


def p50_p99(values: list[float]) -> tuple[float | None, float | None]:
    return percentile(values, 50), percentile(values, 99)
