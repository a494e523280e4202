"""The worklist at a million steps (issue #17 item 5): filtered queries flat, the
universal one refused, never a full scan for the usual keys; database size and the
broker's RSS reported.

A million orders through HL7 would take hours at today's ingest rate, and the ingest
is not what is measured here: the tables are filled directly, by bulk Core inserts
(executemany in chunks, one transaction per table) into a migrated SQLite database,
then `broker serve` is started on it with the default `max_worklist_matches`.

Layout: 300 stations (ST001..ST300) over 365 days from FIRST_DAY, items spread evenly
over the days; within a day, item j goes to station j mod 300 at slot j div 300 (every
30 min from 08:00), so a station's day holds about 9 items. The peers are not filled:
writing a million `.wl` files takes over an hour at part A's rate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from sqlalchemy import Table, create_engine, event, text

from bench import servers
from bench.dicom_client import FindClient, Scp
from bench.machine import Load, rss_mib
from bench.procs import Peers
from bench.stats import Repetitions
from bench.worklist import CODE, FIRST_SLOT, MODALITY, PRIORITY, REFERRING, SLOT, Item, query
from bench.worklist_bench import Timing, _counted
from broker.domain.model import Code, StepStatus
from broker.domain.worklist import Key, Pattern, Period, WorklistQuery
from broker.store import tables as t
from broker.store.worklist import statement

STATIONS = 300
DAYS = 365
FIRST_DAY = date(2027, 1, 1)
CHUNK = 20_000
#: The default of config.DicomConfig: what a site runs with.
MAX_MATCHES = 1000


@dataclass(frozen=True)
class Layout:
    size: int

    @property
    def per_day(self) -> int:
        return -(-self.size // DAYS)

    def station(self, index: int) -> str:
        return f"ST{index % self.per_day % STATIONS + 1:03d}"

    def start(self, index: int) -> datetime:
        day = FIRST_DAY + timedelta(days=index // self.per_day)
        return datetime.combine(day, FIRST_SLOT) + (index % self.per_day // STATIONS) * SLOT

    def query_day(self) -> date:
        return FIRST_DAY + timedelta(days=DAYS // 2)

    def expected(self, station: str) -> list[int]:
        """The items the station+date query for `station` returns."""
        first = (self.query_day() - FIRST_DAY).days * self.per_day
        return [i for i in range(first, min(self.size, first + self.per_day)) if self.station(i) == station]


QUERY_STATION = "ST150"


def _rows(layout: Layout, table: Table) -> Iterator[list[dict[str, Any]]]:
    """The rows of `table` for every item, in chunks; ids are the item's number + 1."""
    code = Code(*CODE)
    for first in range(0, layout.size, CHUNK):
        chunk = []
        for i in range(first, min(layout.size, first + CHUNK)):
            item, pk = Item(i), i + 1
            if table is t.patients:
                row = {"id": pk, "patient_id": item.patient_id, "issuer": "HOSPITAL", "name_alphabetic":
                       item.patient_name, "birth_date": "19700101", "sex": "M"}  # fmt: skip
            elif table is t.orders:
                row = {"id": pk, "patient_pk": pk, "placer_order_number": item.placer, "filler_order_number":
                       item.filler, "accession_number": item.accession, "referring_physician": REFERRING}  # fmt: skip
            elif table is t.requested_procedures:
                row = {"id": pk, "order_pk": pk, "requested_procedure_id": item.requested_procedure_id,
                       "study_instance_uid": item.study_uid, "description": CODE[2], "code": code,
                       "priority": PRIORITY}  # fmt: skip
            else:
                row = {"id": pk, "procedure_pk": pk, "sps_id": item.sps_id, "modality": MODALITY,
                       "station_ae": layout.station(i), "start": layout.start(i), "description": CODE[2],
                       "protocol_codes": [code], "status": StepStatus.SCHEDULED}  # fmt: skip
            chunk.append(row)
        yield chunk


def fill(database: Path, layout: Layout) -> float:
    """Bulk-insert the worklist into the migrated, empty `database`; seconds taken."""
    engine = create_engine(f"sqlite:///{database}")

    @event.listens_for(engine, "connect")
    def _fast(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    started = time.perf_counter()
    for table in (t.patients, t.orders, t.requested_procedures, t.scheduled_steps):
        with engine.begin() as conn:
            for chunk in _rows(layout, table):
                conn.execute(table.insert(), chunk)
        _progress(f"[1M] {table.name}: {layout.size:,} rows after {time.perf_counter() - started:.0f} s")
    with engine.begin() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()
    return time.perf_counter() - started


#: The usual keys whose plans are shown (tests/integration/test_worklist_plans.py asserts them).
def plan_queries(layout: Layout) -> dict[str, WorklistQuery]:
    day = layout.query_day()
    period = Period(datetime.combine(day, datetime.min.time()), datetime.combine(day, datetime.max.time()))
    return {
        "station+date": WorklistQuery(patterns={Key.STATION_AE: Pattern(QUERY_STATION)}, period=period),
        "accession": WorklistQuery(patterns={Key.ACCESSION_NUMBER: Pattern(Item(layout.size // 2).accession)}),
        "patient ID": WorklistQuery(patterns={Key.PATIENT_ID: Pattern(Item(layout.size // 2).patient_id)}),
        "universal": WorklistQuery(),
    }


def plans(database: Path, layout: Layout) -> dict[str, list[str]]:
    """SQLite's EXPLAIN QUERY PLAN lines for the usual keys, on the filled database."""
    engine = create_engine(f"sqlite:///{database}")
    found = {}
    with engine.connect() as conn:
        for name, worklist_query in plan_queries(layout).items():
            compiled = statement(worklist_query).compile(engine, compile_kwargs={"literal_binds": True})
            found[name] = [str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
    engine.dispose()
    return found


@dataclass
class MillionResults:
    size: int
    fill_seconds: float = 0.0
    database_mib: float = 0.0
    rss_mib: tuple[float, float] = (0.0, 0.0)
    expected: int = 0
    timings: dict[str, Timing] = field(default_factory=dict)
    plans: dict[str, list[str]] = field(default_factory=dict)
    load: Load | None = None
    error: str = ""


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _key_query(**keys: str) -> Dataset:
    ds = query()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def run(workdir: Path, peers: Peers, size: int, reps: Repetitions) -> MillionResults:
    layout = Layout(size)
    results = MillionResults(size, load=Load(f"{size:,} items").start())
    broker = servers.BrokerServer(workdir / "broker-1m", max_matches=MAX_MATCHES, sqlite_synchronous="NORMAL")
    _progress(f"[1M] filling {size:,} items by bulk insert ...")
    results.fill_seconds = fill(broker.database, layout)
    results.plans = plans(broker.database, layout)
    results.database_mib = sum(p.stat().st_size for p in broker.database.parent.glob("broker.db*")) / 2**20
    expected = {Item(i).accession for i in layout.expected(QUERY_STATION)}
    results.expected = len(expected)
    middle = Item(size // 2)
    series = {
        "station+date, reused": (query(QUERY_STATION, layout.query_day()), expected, False),
        "station+date, fresh": (query(QUERY_STATION, layout.query_day()), expected, True),
        "accession, reused": (_key_query(AccessionNumber=middle.accession), {middle.accession}, False),
        "patient ID, reused": (_key_query(PatientID=middle.patient_id), {middle.accession}, False),
        "universal (refused), reused": (query(), set(), False),
    }
    peer = peers.start(broker.peer)
    client = FindClient()
    try:
        for name, (dataset, accessions, fresh) in series.items():
            _progress(f"[1M] {name} ...")
            results.timings[name] = _measure(client, broker.scp, dataset, accessions, reps, fresh=fresh)
        assert peer.process is not None
        results.rss_mib = rss_mib(peer.process.pid)
    except Exception as exc:  # a measurement, not a test: report and go on
        results.error = f"{type(exc).__name__}: {exc}"[:160]
    finally:
        peers.stop(peer)
        results.load.stop()
    return results


def _measure(
    client: FindClient, scp: Scp, dataset: Dataset, accessions: set[str], reps: Repetitions, *, fresh: bool
) -> Timing:
    timing = Timing()
    with client.association(scp) as assoc:
        client.find(assoc, dataset)  # warm-up: the pages this query reads
        check = client.find(assoc, dataset, collect=True)
        timing.answers, timing.status = check.answers, check.status
        timing.counts.add(check.answers)
        timing.content_ok = set(check.accessions) == accessions
        if not fresh:
            timing.seconds = reps.run(_counted(lambda: client.find(assoc, dataset), timing), first=[check.seconds])
    if fresh:
        timing.seconds = reps.run(_counted(lambda: client.find_fresh(scp, dataset), timing))
    return timing
