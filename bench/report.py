"""The results as Markdown: one table per part, plus what the run ran on.

Ratios are the columns to read: this machine is shared and small, so absolute times
move from run to run while broker/peer ratios measured in the same run hold better.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.ingest_bench import BROKER, FLOOR, IngestResults
from bench.machine import Load
from bench.million import MAX_MATCHES, MillionResults
from bench.mwl_load import LoadResult
from bench.scale_bench import ScaleResults, ScaleRow
from bench.stats import percentile, ratio
from bench.status_bench import StatusResult
from bench.web_client import JSON, XML
from bench.worklist_bench import FILTERED, UNIVERSAL, Row, Timing, WorklistResults

BROKER_SCP = "broker"


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    value = seconds * 1000
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def times(value: float | None) -> str:
    """A ratio to about three significant digits: 0.0123x, 0.85x, 12.3x, 110x."""
    if value is None:
        return "—"
    decimals = 0 if value >= 100 else 1 if value >= 10 else 2 if value >= 0.1 else 4
    return f"{value:.{decimals}f}x"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _answers(row: Row, scps: Sequence[str]) -> tuple[str, list[str]]:
    """`10/10/10/10` in SCP order, marked ≠ when one differs from the expected count
    or returned other items; the notes say which."""
    counts, notes = [], []
    for name in scps:
        timing = row.timings.get(name, Timing())
        if timing.error or timing.answers is None:
            counts.append("✗")
            notes.append(f"{name}: {timing.error or 'not measured'}")
            continue
        counts.append(str(timing.answers))
        if timing.answers != row.expected:
            notes.append(f"{name} returned {timing.answers:,} of {row.expected:,} items")
        elif timing.content_ok is False:
            notes.append(f"{name} returned {timing.answers:,} items, not the expected ones")
        if len(timing.counts) > 1:
            notes.append(f"{name}'s answer count varied between runs: {sorted(timing.counts)}")
        if timing.status not in (0x0000, None):
            notes.append(f"{name} ended with status 0x{timing.status:04X}")
    cell = "/".join(counts) + (" **≠**" if notes else "")
    return cell, notes


def worklist_section(results: WorklistResults, reps_target: int) -> list[str]:
    if not results.rows:  # --web-only: the broker's C-FIND is in the DICOMweb table
        return ["## A. Modality Worklist: C-FIND beside DICOMweb (--web-only)", "", *web_section(results)]
    scps = results.scps
    peers = [name for name in scps if name != BROKER_SCP]
    header = ["items", "query", "association", "answers " + "/".join(scps)]
    header += [f"{name} ms" for name in scps]
    header += [f"broker/{name}" for name in peers]
    header += ["runs"]
    rows, notes = [], []
    for row in results.rows:
        cell, row_notes = _answers(row, scps)
        notes += [f"{row.size:,} items, {row.query}, {row.association}: {note}" for note in row_notes]
        broker = row.timings.get(BROKER_SCP, Timing()).median
        medians = [row.timings.get(name, Timing()).median for name in scps]
        runs = [len(row.timings.get(name, Timing()).seconds) for name in scps]
        line = [f"{row.size:,}", row.query, row.association, cell]
        line += [ms(m) for m in medians]
        line += [times(ratio(broker, row.timings.get(name, Timing()).median)) for name in peers]
        line += [str(min(runs)) if min(runs) == max(runs) else f"{min(runs)}-{max(runs)}"]
        rows.append(line)
    lines = [
        "## A. Modality Worklist C-FIND",
        "",
        f"Median time per query in ms, of up to {reps_target} timed runs (fewer once a series' time budget ran",
        "out: see `runs`), after one untimed warm-up query per SCP and size; answers are checked on the first",
        "timed run. *station+date*: ScheduledStationAETitle=CT07 and one SPS Start Date (10 answers at every",
        "size); *universal*: every item. *reused*: all runs on one association; *fresh*: associate + query +",
        "release per run (client: pynetdicom); *fresh, findscu*: the same with DCMTK findscu as the client",
        "(one process per query, start-up included), whose per-answer cost is far below pynetdicom's.",
        "Ratios > 1 mean the broker is slower.",
        "",
        *table(header, rows),
    ]
    if notes:
        lines += ["", "**Answer mismatches:**", *(f"- {note}" for note in notes)]
    if results.skipped:
        lines += ["", *(f"- {name} not measured: {why}" for name, why in results.skipped.items())]
    lines += ["", *per_answer_section(results)]
    lines += ["", *web_section(results)]
    lines += ["", "Setup per size (not a benchmark result, for context):", ""]
    lines += table(
        [
            "items",
            "broker ingest while filling (msg/s, 4 connections)",
            "not AA",
            ".wl files written (s)",
        ],
        [
            [f"{s.size:,}", f"{s.ingest_rate:,.0f}", str(s.ingest_refused), f"{s.files_seconds:.1f}"]
            for s in results.setups
        ],
    )
    return lines


def web_section(results: WorklistResults) -> list[str]:
    """The broker's DICOMweb search (PS3.18 14.4) beside its own C-FIND, same query."""
    rows = []
    for row in results.web_rows:
        json_t, xml_t = row.web.get(JSON, Timing()), row.web.get(XML, Timing())
        checks = [t.error or ("" if t.answers == row.expected and t.content_ok is not False else f"{t.answers} answers")
                  for t in (json_t, xml_t)]  # fmt: skip
        rows.append([
            f"{row.size:,}", row.query, ms(row.dimse.median), ms(json_t.median), ms(xml_t.median),
            times(ratio(json_t.median, row.dimse.median)), times(ratio(xml_t.median, row.dimse.median)),
            "; ".join(c for c in checks if c) or "ok",
        ])  # fmt: skip
    header = ["items", "query", "C-FIND reused ms", "web JSON ms", "web XML ms", "JSON/C-FIND", "XML/C-FIND",
              "answers"]  # fmt: skip
    return [
        "The same queries through the broker's DICOMweb search (one kept-alive HTTP connection, httpx; the",
        "JSON parsed by the client, the XML parts counted), beside its C-FIND on a reused association:",
        "",
        *table(header, rows),
    ]


def per_answer_section(results: WorklistResults) -> list[str]:
    """(universal - filtered) / (answers - 10): what one more answer costs each SCP,
    with the fixed costs (association, query parsing, the search) taken out."""
    scps = results.scps
    by_key = {(r.size, r.query, r.association): r for r in results.rows}
    rows = []
    for (size, query, association), universal in by_key.items():
        filtered = by_key.get((size, FILTERED, association))
        if query != UNIVERSAL or filtered is None or universal.expected <= filtered.expected:
            continue
        extra = universal.expected - filtered.expected
        costs = []
        for name in scps:
            u, f = universal.timings.get(name, Timing()).median, filtered.timings.get(name, Timing()).median
            costs.append(None if u is None or f is None else (u - f) / extra)
        broker = costs[scps.index(BROKER_SCP)] if BROKER_SCP in scps else None
        null = costs[scps.index("null SCP")] if "null SCP" in scps else None
        line = [f"{size:,}", association, *(f"{c * 1e6:,.0f}" if c is not None else "—" for c in costs)]
        line.append(f"{(broker - null) * 1e6:,.0f}" if broker is not None and null is not None else "—")
        rows.append(line)
    header = ["items", "association", *(f"{name} µs/answer" for name in scps), "broker - null SCP µs/answer"]
    return [
        "Cost of one more answer, (universal - station+date) / (extra answers), in µs:",
        "",
        *table(header, rows),
    ]


def ingest_section(results: IngestResults) -> list[str]:
    header = [
        "backend",
        "messages",
        "connections",
        "broker processes",
        "broker msg/s",
        "broker msg/s, each run",
        "floor msg/s",
        "broker/floor msg/s",
        "broker ACK p50 ms",
        "floor ACK p50 ms",
        "broker ACK p99 ms",
        "floor ACK p99 ms",
        "broker/floor p99",
        "broker answers",
        "load 1 min",
    ]
    rows = []
    for row in results.rows:
        b, f = row.median_run(BROKER), row.median_run(FLOOR)
        b99, f99 = percentile(b.latencies, 99), percentile(f.latencies, 99)
        rows.append(
            [
                row.backend,
                f"{b.messages:,} {row.kind}",
                str(row.connections),
                str(row.processes),
                f"{b.rate:,.0f}",
                " / ".join(f"{run.rate:,.0f}" for run in row.results[BROKER]),
                f"{f.rate:,.0f}",
                times(ratio(b.rate, f.rate)),
                ms(percentile(b.latencies, 50)),
                ms(percentile(f.latencies, 50)),
                ms(b99),
                ms(f99),
                times(ratio(b99, f99)),
                " ".join(f"{code or '—'} {n:,}" for code, n in sorted(b.codes.items())),
                f"{row.load[0]:.1f}→{row.load[1]:.1f}",
            ]
        )
    return [
        "## B. HL7 ingest (ORM^O01 NW; ADT^A08 for patients the broker does not hold)",
        "",
        f"{results.messages:,} new messages per run, after {results.warmup} untimed ones of each kind; "
        f"{results.runs} run(s) of each server per row, the broker and the floor in turn, and the columns "
        "give each server's median run (by msg/s; its latencies and answers), the broker's every run "
        "beside it. Each connection waits for each ACK before sending on. The broker ACKs after its commit "
        "(SQLite WAL, "
        f"synchronous={results.sqlite_synchronous}; PostgreSQL with fsync and synchronous_commit on); the floor "
        "answers AA at once and stores nothing. An A08 for an unknown patient is answered AE 204 (profile "
        "`unknown_patient_update: refuse`) and stored with the raw message. msg/s: messages ÷ wall time; "
        "load: the machine's 1-minute load average before the broker's first run → after its last (2 cores, shared). "
        "broker processes: `hl7.processes`, the processes serving the HL7 connections (over 1: intake "
        "processes beside the broker's own, on the same database).",
        *(f"\n{note}" for note in results.notes),
        "",
        *table(header, rows),
    ]


def status_section(result: StatusResult) -> list[str]:
    values = result.latencies
    return [
        "## C. MPPS COMPLETED → HL7 status at the RIS (RAD-3)",
        "",
        f"{result.procedures:,} procedures one after the other: from the N-SET COMPLETED response at the",
        "modality to the order's ORC-5 `CM` arriving at a live MLLP RIS (outbox poll every 0.2 s). Target: p99 < 1 s.",
        "",
        *table(
            ["procedures", "p50 ms", "p99 ms", "max ms"],
            [[f"{len(values):,}", ms(percentile(values, 50)), ms(percentile(values, 99)), ms(max(values))]],
        ),
    ]


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def scale_section(results: ScaleResults) -> list[str]:
    """Issue #17's held-associations and many-clients rows, every SCP in one table."""
    names = [row.name for row in results.rows]
    peers = [name for name in names if name != BROKER_SCP]
    by_name = {row.name: row for row in results.rows}
    broker = by_name.get(BROKER_SCP)

    def line(label: str, target: str, value: Callable[[ScaleRow], float | None], fmt: str) -> list[str]:
        values = {name: value(by_name[name]) for name in names}
        ours = values.get(BROKER_SCP) if broker else None
        return [label, target, *(_cell(values[n], fmt) for n in names), *(times(ratio(ours, values[n])) for n in peers)]

    idle_p = lambda p: lambda row: percentile(row.idle.latencies, p)  # noqa: E731
    load_p = lambda p: lambda row: percentile(row.load.latencies, p) if row.load else None  # noqa: E731
    n, c = results.idle_count, results.clients
    rows = [
        line(f"{n} idle held: associations accepted", f"{n}", lambda r: r.idle.held, ",.0f"),
        line(f"{n} idle held: CPU, % of one core", "≤ 5 %", lambda r: r.idle.cpu_percent, ".1f"),
        line(f"{n} idle held: station+date p50 ms", "", lambda r: _ms(idle_p(50)(r)), ",.1f"),
        line(f"{n} idle held: station+date p99 ms", "≤ 50 ms", lambda r: _ms(idle_p(99)(r)), ",.1f"),
        line(f"{c} clients: queries/s", "≥ 300", lambda r: r.load.rate if r.load else None, ",.1f"),
        line(f"{c} clients: p50 ms", "", lambda r: _ms(load_p(50)(r)), ",.1f"),
        line(f"{c} clients: p99 ms", "≤ 250 ms", lambda r: _ms(load_p(99)(r)), ",.1f"),
        line(f"{c} clients: queries answered", "", lambda r: len(r.load.latencies) if r.load else None, ",.0f"),
    ]
    header = ["row", "target", *names, *(f"broker/{name}" for name in peers)]
    notes = []
    for row in results.rows:
        counts = row.idle.answer_counts | (row.load.answer_counts if row.load else set())
        if counts - {results.expected}:
            notes.append(f"{row.name}: answer counts {sorted(counts)} (expected {results.expected})")
        if row.load and row.load.statuses - {0x0000}:
            notes.append(f"{row.name}: final statuses {sorted(f'0x{s:04X}' for s in row.load.statuses)}")
        if row.idle.error:
            notes.append(f"{row.name}, idle: {row.idle.error}")
        if row.load and row.load.errors:
            notes.append(f"{row.name}, {c} clients: {len(row.load.errors)} client(s) failed, e.g. {row.load.errors[0]}")
    lines = [
        f"## Scale ({results.size:,} items; issue #17 targets)",
        "",
        f"*idle*: {n} associations opened from raw sockets and left idle; the SCP's CPU (its process and",
        f"what it forked, /proc utime+stime) over {results.idle_seconds:g} s, then the station+date query",
        f"({results.expected} answers) repeated on one more association while they are held (up to 200 runs;",
        f"after 15 s, at least 3). *clients*: {c} raw-socket clients, each on its own association,",
        f"sending the station+date query in a loop for {results.load_seconds:g} s;",
        "queries/s = answered ÷ (start to last answer).",
        "Ratios: broker/peer of the value in that row (> 1: the broker's value is higher; for queries/s",
        "higher is better, for the rest lower is).",
        "",
        *table(header, rows),
    ]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return lines + _web_load_lines(results)


def _web_load_lines(results: ScaleResults) -> list[str]:
    """The broker's DICOMweb search under the scale rows' load, alone and half and half
    with C-FIND clients (one line for both: broker/gate.py)."""
    c, half = results.clients, results.clients // 2
    loads = [
        (f"{c} DICOMweb clients", results.web),
        (f"{half} C-FIND clients, beside {c - half} DICOMweb clients", results.mixed_find),
        (f"{c - half} DICOMweb clients, beside {half} C-FIND clients", results.mixed_web),
    ]
    rows = [_load_row(label, load, results.expected) for label, load in loads if load is not None]
    if not rows:
        return []
    return [
        "",
        "The broker's DICOMweb worklist search (PS3.18 14.4, JSON) under the same load: raw keep-alive HTTP/1.1",
        f"clients sending the station+date search in a loop for {results.load_seconds:g} s, alone, then half of",
        "the clients C-FIND and half DICOMweb at once (both faces share one line: `dicom.concurrent_queries`).",
        "",
        *table(["clients", "answered/s", "p50 ms", "p99 ms", "answered", "answers each", "failures"], rows),
    ]


def _load_row(label: str, load: LoadResult, expected: int) -> list[str]:
    counts = ", ".join(str(n) for n in sorted(load.answer_counts)) + (
        "" if load.answer_counts == {expected} else " **≠**"
    )
    failures = len(load.errors) + sum(status != 0 for status in load.statuses)
    return [
        label,
        f"{load.rate:,.1f}",
        _cell(_ms(percentile(load.latencies, 50)), ",.1f"),
        _cell(_ms(percentile(load.latencies, 99)), ",.1f"),
        f"{len(load.latencies):,}",
        counts,
        str(failures),
    ]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def million_section(results: MillionResults, ten_k: float | None) -> list[str]:
    """The broker alone at a million steps: queries, plans, size, memory."""
    rows = []
    for name, timing in results.timings.items():
        status = "—" if timing.status is None else f"0x{timing.status:04X}"
        check = timing.error or ("ok" if timing.content_ok else f"**≠** {timing.answers} answers")
        target = "≤ 30 ms" if name == "station+date, reused" else ""
        rows.append([name, str(timing.answers), status, check, ms(timing.median), target, str(len(timing.seconds))])
    rss, peak = results.rss_mib
    filtered = results.timings.get("station+date, reused")
    flat = times(ratio(filtered.median if filtered else None, ten_k))
    lines = [
        f"## {results.size:,} worklist items (broker only)",
        "",
        f"Filled by bulk insert (not HL7) in {results.fill_seconds:.0f} s: 300 stations over 365 days, about",
        f"{results.expected} steps per station and day; `max_worklist_matches` at its default ({MAX_MATCHES:,}).",
        "pynetdicom client, as in part A; *reused*: one association for every run.",
        f"Database {results.database_mib:,.0f} MiB; broker RSS after the queries {rss:,.0f} MiB"
        f" (peak {peak:,.0f} MiB).",
        f"station+date at {results.size:,} items / at 10,000 items (part A, reused): {flat}.",
        "",
        *table(["query", "answers", "final status", "check", "median ms", "target", "runs"], rows),
        "",
        "SQLite's plan for the usual keys on this database (EXPLAIN QUERY PLAN; *SCAN* would be a full scan):",
        "",
    ]
    for name, plan in results.plans.items():
        lines.append(f"- {name}: " + "; ".join(plan))
    if results.error:
        lines += ["", f"- failed: {results.error}"]
    return lines


def load_section(loads: Sequence[Load]) -> list[str]:
    """The machine during each part: the benchmark shares 2 cores with other work."""
    rows = [
        [load.name, f"{load.seconds:,.0f}", load.before, load.after, f"{load.own_cores:.2f}", f"{load.other_cores:.2f}"]
        for load in loads
    ]
    header = ["part", "s", "loadavg before (1/5/15 min)", "loadavg after", "benchmark cores", "other processes cores"]
    return [
        "## Machine load during the run",
        "",
        "CPU in cores averaged over each part (2 cores in all): *benchmark* = this process, its servers and",
        "clients; *other processes* = the machine's busy time (/proc/stat) minus the benchmark's.",
        "",
        *table(header, rows),
    ]
