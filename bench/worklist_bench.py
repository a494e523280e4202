"""Part A: the same worklist from the broker, wlmscpfs, Orthanc and a null SCP.

For each size (ascending, so each size only adds items to the last): the broker is
filled over MLLP with ORM^O01 NW messages, the `.wl` folder gets the same items, and
each SCP is asked the filtered and the universal query, on one kept-open association
and on a fresh association per query. Each SCP gets one untimed warm-up query per size;
the first timed run of each query is checked (count, and the Accession Numbers).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from pydicom.dataset import Dataset

from bench import hl7_load, scale_bench, servers
from bench.dicom_client import FindClient, FindResult, FindscuClient, Scp
from bench.procs import Peer, Peers
from bench.stats import Repetitions, median
from bench.web_client import JSON, XML, WebClient
from bench.wlfiles import WorklistFolder
from bench.worklist import (
    FIRST_DAY,
    ITEMS_PER_DAY,
    QUERY_STATION,
    Item,
    expected_filtered,
    filtered_query,
    order_message,
    query_day,
    universal_query,
)

log = logging.getLogger(__name__)

REUSED, FRESH, FINDSCU = "reused", "fresh", "fresh, findscu"
BROKER = "broker"
FILTERED, UNIVERSAL = "station+date", "universal"
POPULATE_CONNECTIONS = 4


@dataclass
class Timing:
    """One SCP's times for one query on one kind of association."""

    seconds: list[float] = field(default_factory=list)
    answers: int | None = None  # from the checked run
    counts: set[int] = field(default_factory=set)  # answer counts of every timed run
    content_ok: bool | None = None  # None: not checked (the null SCP's canned answers)
    status: int | None = None
    error: str = ""

    @property
    def median(self) -> float | None:
        return median(self.seconds)


@dataclass
class Row:
    size: int
    query: str
    association: str
    expected: int
    timings: dict[str, Timing] = field(default_factory=dict)


@dataclass
class Setup:
    """How each size was prepared: broker ingest over MLLP, and the .wl files."""

    size: int
    ingest_rate: float = 0.0
    ingest_refused: int = 0
    files_seconds: float = 0.0


@dataclass
class WebRow:
    """The broker's own C-FIND (reused association) beside its DICOMweb search."""

    size: int
    query: str
    expected: int
    dimse: Timing
    web: dict[str, Timing] = field(default_factory=dict)


@dataclass
class WorklistResults:
    rows: list[Row] = field(default_factory=list)
    web_rows: list[WebRow] = field(default_factory=list)
    setups: list[Setup] = field(default_factory=list)
    scps: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    scale: scale_bench.ScaleResults | None = None


@dataclass(frozen=True)
class ScaleOptions:
    """Issue #17's idle and many-clients rows, measured at `size` (a size of the run)."""

    size: int
    idle: int
    idle_seconds: float
    clients: int
    load_seconds: float


def expected_accessions(size: int, query: str) -> set[str]:
    if query == UNIVERSAL:
        return {Item(i).accession for i in range(size)}
    first = (query_day(size) - FIRST_DAY).days * ITEMS_PER_DAY
    items = (Item(i) for i in range(first, min(size, first + ITEMS_PER_DAY)))
    return {item.accession for item in items if item.station == QUERY_STATION}


def _measure_findscu(
    client: FindscuClient, scp: Scp, query: Dataset, expected: set[str] | None, reps: Repetitions
) -> Timing:
    """Fresh associations from DCMTK findscu: the first run checked, then timed quietly."""
    timing = Timing()
    try:
        check = client.find_fresh(scp, query, collect=True)
        timing.answers, timing.status = check.answers, check.status
        timing.counts.add(check.answers)
        timing.content_ok = None if expected is None else set(check.accessions) == expected
        timing.seconds = reps.run(_counted(lambda: client.find_fresh(scp, query), timing), first=[check.seconds])
    except Exception as exc:  # a measurement, not a test: report and go on
        log.exception("%s (findscu) failed", scp.name)
        timing.error = f"{type(exc).__name__}: {exc}"[:120]
    return timing


def _measure(
    client: FindClient,
    scp: Scp,
    query: Dataset,
    expected: set[str] | None,
    reps: Repetitions,
    *,
    warm_up: bool,
    fresh_too: bool = True,
) -> dict[str, Timing]:
    """The reused runs on one association, then the fresh-association runs. The first
    reused run is also the check (collecting Accession Numbers costs a few µs per
    answer, against ~1 ms for receiving it). `warm_up` adds an untimed query first:
    the first query of an SCP at each size; the next query finds it warm, and skipping
    its own warm-up saves a 10k-answer query per SCP."""
    reused, fresh = Timing(), Timing()
    try:
        with client.association(scp) as assoc:
            if warm_up:
                client.find(assoc, query)
            check = client.find(assoc, query, collect=expected is not None)
            for timing in (reused, fresh):
                timing.answers, timing.status = check.answers, check.status
                timing.content_ok = None if expected is None else set(check.accessions) == expected
            reused.counts.add(check.answers)
            reused.seconds = reps.run(_counted(lambda: client.find(assoc, query), reused), first=[check.seconds])
        if fresh_too:
            fresh.seconds = reps.run(_counted(lambda: client.find_fresh(scp, query), fresh))
    except Exception as exc:  # a measurement, not a test: report and go on
        log.exception("%s failed", scp.name)
        for timing in (reused, fresh):
            timing.error = f"{type(exc).__name__}: {exc}"[:120]
    return {REUSED: reused, FRESH: fresh}


def _counted(find: Callable[[], FindResult], timing: Timing) -> Callable[[], float]:
    """`find` as a timed run for `Repetitions`, noting each run's answer count."""

    def once() -> float:
        result = find()
        if result.answers >= 0:  # findscu's quiet runs do not count
            timing.counts.add(result.answers)
        return result.seconds

    return once


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    workdir: Path,
    peers: Peers,
    sizes: list[int],
    reps: Repetitions,
    sqlite_synchronous: str,
    universal_max: int,
    scale: ScaleOptions | None = None,
    web_only: bool = False,
) -> WorklistResults:
    """`web_only`: the broker's C-FIND (reused association) beside its DICOMweb search,
    no other SCP and no `.wl` files (what makes a 100k run take hours)."""
    if web_only:
        return _run_web_only(workdir, peers, sizes, reps, sqlite_synchronous, universal_max)
    results = WorklistResults()
    broker = servers.BrokerServer(workdir / "broker-a", max_matches=max(sizes), sqlite_synchronous=sqlite_synchronous)
    peers.start(broker.peer)
    folder = WorklistFolder(workdir / "worklists", servers.WLMSCPFS_AE)
    scps: list[Scp] = [broker.scp]
    running: list[tuple[Scp, Peer]] = [(broker.scp, broker.peer)]
    starters: list[tuple[str, Callable[[], tuple[Peer, Scp]]]] = [
        ("wlmscpfs", lambda: servers.wlmscpfs(workdir, folder.root)),
        ("Orthanc", lambda: servers.orthanc(workdir, folder.folder)),
    ]
    for name, start in starters:
        try:
            peer, scp = start()
            peers.start(peer)
            scps.append(scp)
            running.append((scp, peer))
        except Exception as exc:
            results.skipped[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
            _progress(f"  {name} not measured: {results.skipped[name]}")
    results.scps = [scp.name for scp in scps] + ["null SCP"]
    client, findscu, web = FindClient(), FindscuClient(), WebClient(broker.web_port)

    populated = 0
    for size in sorted(sizes):
        # One after the other: on 2 cores, running both at once made neither faster.
        setup, populated = _fill(broker, populated, size), size
        _progress(f"[A] {size} items: writing .wl files with dump2dcm ...")
        setup.files_seconds = _timed(partial(folder.fill, size))
        results.setups.append(setup)

        null_peer, null = servers.null_scp(workdir, folder.path(Item(0)), expected_filtered(size), size)
        peers.start(null_peer)
        try:
            for query_name, query, expected in _queries(size, universal_max):
                rows = {mode: Row(size, query_name, mode, expected) for mode in (REUSED, FRESH, FINDSCU)}
                accessions = expected_accessions(size, query_name)
                for scp in [*scps, null]:
                    _progress(f"[A] {size} items, {query_name} query: {scp.name} ...")
                    expected_items = None if scp is null else accessions
                    timings = _measure(client, scp, query, expected_items, reps, warm_up=query_name == FILTERED)
                    timings[FINDSCU] = _measure_findscu(findscu, scp, query, expected_items, reps)
                    for mode, timing in timings.items():
                        rows[mode].timings[scp.name] = timing
                results.rows.extend(rows.values())
                results.web_rows.append(_measure_web(web, rows[REUSED], accessions, query, reps))
            if scale is not None and scale.size == size:
                results.scale = scale_bench.run(
                    [*running, (null, null_peer)], filtered_query(size), size, expected_filtered(size),
                    idle_count=scale.idle, idle_seconds=scale.idle_seconds,
                    clients=scale.clients, load_seconds=scale.load_seconds, web=(broker.scp, broker.web_port),
                )  # fmt: skip
        finally:
            peers.stop(null_peer)
    return results


def _fill(broker: servers.BrokerServer, populated: int, size: int) -> Setup:
    """The broker filled over MLLP from `populated` items to `size`."""
    setup = Setup(size)
    _progress(f"[A] {size} items: sending {size - populated} ORM^O01 to the broker ...")
    messages = [order_message(Item(i), f"W{i:08d}") for i in range(populated, size)]
    load = hl7_load.send(broker.hl7_port, messages, POPULATE_CONNECTIONS)
    setup.ingest_rate, setup.ingest_refused = load.rate, load.not_accepted
    return setup


def _queries(size: int, universal_max: int) -> list[tuple[str, Dataset, int]]:
    """(name, identifier, expected answers): the filtered query, and the universal one up to `universal_max`."""
    queries = [(FILTERED, filtered_query(size), expected_filtered(size))]
    if size <= universal_max:
        queries.append((UNIVERSAL, universal_query(), size))
    return queries


def _run_web_only(
    workdir: Path, peers: Peers, sizes: list[int], reps: Repetitions, sqlite_synchronous: str, universal_max: int
) -> WorklistResults:
    results = WorklistResults(scps=[BROKER])
    broker = servers.BrokerServer(workdir / "broker-a", max_matches=max(sizes), sqlite_synchronous=sqlite_synchronous)
    peers.start(broker.peer)
    client, web = FindClient(), WebClient(broker.web_port)
    populated = 0
    for size in sorted(sizes):
        results.setups.append(_fill(broker, populated, size))
        populated = size
        for query_name, query, expected in _queries(size, universal_max):
            _progress(f"[A] {size} items, {query_name} query: broker C-FIND ...")
            row = Row(size, query_name, REUSED, expected)
            accessions = expected_accessions(size, query_name)
            warm_up = query_name == FILTERED  # the universal query finds the broker warm
            timings = _measure(client, broker.scp, query, accessions, reps, warm_up=warm_up, fresh_too=False)
            row.timings[BROKER] = timings[REUSED]
            results.web_rows.append(_measure_web(web, row, accessions, query, reps))
    return results


def _measure_web(web: WebClient, dimse: Row, accessions: set[str], query: Dataset, reps: Repetitions) -> WebRow:
    """The same query as DICOMweb search, JSON then XML, on one kept-alive connection;
    the JSON answer checked like the C-FIND one."""
    row = WebRow(dimse.size, dimse.query, dimse.expected, dimse.timings[BROKER])
    for media in (JSON, XML):
        _progress(f"[A] {dimse.size} items, {dimse.query} query: broker DICOMweb {media} ...")
        timing = Timing()
        try:
            check = web.search(query, media, collect=media == JSON)
            timing.answers, timing.status = check.answers, check.status
            timing.counts.add(check.answers)
            timing.content_ok = set(check.accessions) == accessions if media == JSON else None
            timing.seconds = reps.run(_counted(lambda m=media: web.search(query, m), timing), first=[check.seconds])
        except Exception as exc:  # a measurement, not a test: report and go on
            log.exception("DICOMweb %s failed", media)
            timing.error = f"{type(exc).__name__}: {exc}"[:120]
        row.web[media] = timing
    return row


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
