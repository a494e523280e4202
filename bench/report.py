"""The results as Markdown: one table per part, plus what the run ran on.

Ratios are the columns to read: this machine is shared and small, so absolute times
move from run to run while broker/peer ratios measured in the same run hold better.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.ingest_bench import BROKER, FLOOR, IngestResults
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
        "broker msg/s",
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
        b, f = row.results[BROKER], row.results[FLOOR]
        b99, f99 = percentile(b.latencies, 99), percentile(f.latencies, 99)
        rows.append(
            [
                row.backend,
                f"{b.messages:,} {row.kind}",
                str(row.connections),
                f"{b.rate:,.0f}",
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
        f"{results.messages:,} new messages per run, after {results.warmup} untimed ones of each kind; each "
        "connection waits for each ACK before sending on. The broker ACKs after its commit (SQLite WAL, "
        f"synchronous={results.sqlite_synchronous}; PostgreSQL with fsync and synchronous_commit on); the floor "
        "answers AA at once and stores nothing. An A08 for an unknown patient is answered AE 204 (profile "
        "`unknown_patient_update: refuse`) and stored with the raw message. msg/s: messages ÷ wall time; "
        "load: the machine's 1-minute load average before → after the broker's run (2 cores, shared).",
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
