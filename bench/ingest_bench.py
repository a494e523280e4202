"""Part B: HL7 ingest. New ORM^O01 NW orders, and ADT^A08 updates for patients the
broker does not hold (most of a hospital's ADT feed), over MLLP to a fresh broker that
ACKs each only after its commit, on SQLite and on PostgreSQL, next to a do-nothing
MLLP server, with the same client and the same messages, over 1 and over several
concurrent connections.

The two servers take turns (broker, floor, for each cell) so a noisy moment of the
machine is less likely to land on one of them only; the 1-minute load average is
taken around each broker run, since the machine is shared.

PostgreSQL runs as a throwaway cluster (tests/support/postgres.py) made durable again
(fsync, synchronous_commit and full_page_writes on: the test cluster turns them off),
so its ACK-after-commit means what SQLite's does; it is skipped, and said so, when the
server programs are not installed.

Each backend is measured with the HL7 connections served in the broker's own process
and, over several connections, by `INTAKE_PROCESSES` intake processes (`hl7.processes`,
issue #17): one process serves its connections with one core at most.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import hl7_load, servers
from bench.hl7_load import LoadResult
from bench.procs import Peers
from bench.worklist import ROOT, Item, order_message

BROKER, FLOOR = "broker", "floor"
SQLITE, POSTGRESQL = "SQLite", "PostgreSQL"
ORM, ADT_UNKNOWN = "ORM^O01 NW", "ADT^A08 unknown patient"
#: Item numbers far from part A's, so every order is new to the broker.
FIRST_INDEX = 10_000_000
A08_SAMPLE = ROOT / "hl7" / "rad-12-patient-update" / "adt_a08.hl7"
#: `hl7.processes` of the second broker of each backend (one per core here).
INTAKE_PROCESSES = 2


@dataclass
class IngestRow:
    backend: str
    kind: str
    connections: int
    #: The broker's `hl7.processes`.
    processes: int = 1
    #: Each run of each server, in the order made (broker and floor in turn).
    results: dict[str, list[LoadResult]] = field(default_factory=dict)
    #: 1-minute load average before the broker's first run and after its last.
    load: tuple[float, float] = (0.0, 0.0)

    def median_run(self, name: str) -> LoadResult:
        """The run of `name` whose rate is the median (the lower one of an even count):
        one second of a noisy machine moves a single run by a fifth, in either direction."""
        runs = sorted(self.results[name], key=lambda run: run.rate)
        return runs[(len(runs) - 1) // 2]


@dataclass
class IngestResults:
    messages: int
    warmup: int
    sqlite_synchronous: str
    #: Runs of each server in each row.
    runs: int = 1
    rows: list[IngestRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Messages:
    """Distinct messages, handed out in batches: a resent control ID, placer number or
    patient would be answered from the duplicate check or found known, not measured."""

    def __init__(self) -> None:
        self._next = FIRST_INDEX
        self._a08 = A08_SAMPLE.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\n", "\r")

    def take(self, kind: str, count: int) -> list[bytes]:
        first, self._next = self._next, self._next + count
        make = self._order if kind == ORM else self._update
        return [make(i) for i in range(first, first + count)]

    @staticmethod
    def _order(i: int) -> bytes:
        return order_message(Item(i), f"B{i:08d}")

    def _update(self, i: int) -> bytes:
        return self._a08.replace("ADT0002", f"U{i:08d}").replace("PAT001", f"UNKNOWN{i:08d}").encode("ascii")


def run(
    workdir: Path,
    peers: Peers,
    messages: int,
    connections: list[int],
    warmup: int,
    sqlite_synchronous: str,
    runs: int = 1,
) -> IngestResults:
    results = IngestResults(messages, warmup, sqlite_synchronous, runs)
    supply = _Messages()
    with ExitStack() as stack:
        for backend, url in _backends(workdir, stack, results.notes):
            for processes in (1, INTAKE_PROCESSES):
                counts = connections if processes == 1 else [count for count in connections if count > 1]
                broker = servers.BrokerServer(
                    workdir / f"broker-b-{backend.lower()}-{processes}",
                    max_matches=1000,
                    sqlite_synchronous=sqlite_synchronous,
                    database_url=url,
                    hl7_processes=processes,
                )
                _measure(backend, broker, peers, supply, counts, results)
    return results


def _measure(
    backend: str,
    broker: servers.BrokerServer,
    peers: Peers,
    supply: _Messages,
    connections: list[int],
    results: IngestResults,
) -> None:
    floor, floor_port = servers.mllp_floor(broker.config.parent)
    peers.start(broker.peer)
    peers.start(floor)
    ports = {BROKER: broker.hl7_port, FLOOR: floor_port}
    try:
        for kind in (ORM, ADT_UNKNOWN):
            for port in ports.values():
                hl7_load.send(port, supply.take(kind, results.warmup), 1)
            for count in connections:
                row = IngestRow(backend, kind, count, broker.hl7_processes)
                for n in range(1, results.runs + 1):
                    for name, port in ports.items():
                        _say(
                            f"[B] {backend} {kind}: {results.messages} over {count} connection(s) to the {name} "
                            f"({broker.hl7_processes} process(es)), run {n} of {results.runs} ..."
                        )
                        before = os.getloadavg()[0]
                        row.results.setdefault(name, []).append(
                            hl7_load.send(port, supply.take(kind, results.messages), count)
                        )
                        if name == BROKER:
                            row.load = (row.load[0] if n > 1 else before, os.getloadavg()[0])
                results.rows.append(row)
    finally:
        peers.stop(floor)
        peers.stop(broker.peer)


def _backends(workdir: Path, stack: ExitStack, notes: list[str]) -> Iterator[tuple[str, str | None]]:
    yield SQLITE, None
    try:
        url = stack.enter_context(_durable_postgresql())
    except Exception as exc:  # no server programs, or it did not start: said in the report
        notes.append(f"PostgreSQL not measured: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return
    yield POSTGRESQL, url


@contextmanager
def _durable_postgresql() -> Iterator[str]:
    sys.path.insert(0, str(ROOT / "tests"))  # tests/support is a top-level package there
    from support.postgres import PostgresServer  # imported only when PostgreSQL is measured

    server = PostgresServer().start()
    try:
        _durable(server._admin)  # the test helper's admin connection
        with server.database() as url:
            yield url
    finally:
        server.stop()


def _durable(admin: Callable[..., None]) -> None:
    """Undo the test cluster's speed settings: a commit is on disk before the ACK."""
    from psycopg import sql

    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        admin(sql.SQL("ALTER SYSTEM SET {} = on").format(sql.Identifier(setting)))
    admin(sql.SQL("SELECT pg_reload_conf()"))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
