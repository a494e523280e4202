"""`make bench`: measure the broker next to DCMTK wlmscpfs, Orthanc and do-nothing floors.

    .venv/bin/python -m bench.run [--sizes 1000,10000,100000] [--messages 2000] ...

Writes bench/results/<timestamp>-<hostname>.md and prints the same Markdown. Every
server runs as its own process on free ports in a temp dir, and every one is stopped
on the way out, whether the run ends, fails or is interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from types import FrameType

from bench import ingest_bench, million, report, status_bench, worklist_bench
from bench.machine import Load
from bench.procs import Peers
from bench.servers import orthanc_binary
from bench.stats import Repetitions

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 200:
        raise argparse.ArgumentTypeError("sizes are item counts of at least 200 (one day of the layout)")
    return sizes


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=[1000, 10000], help="worklist sizes (default 1000,10000)")
    parser.add_argument(
        "--universal-max",
        type=int,
        default=10000,
        help="largest size the universal query is timed at (default 10000: a 100k-answer query per SCP and "
        "association kind takes an hour; the 100k targets are for the filtered query)",
    )
    parser.add_argument("--reps", type=int, default=7, help="timed runs per cell (default 7)")
    parser.add_argument("--min-reps", type=int, default=2, help="runs made even past the budget (default 2)")
    parser.add_argument(
        "--budget", type=float, default=10, help="seconds per series after which it stops at --min-reps (default 10)"
    )
    parser.add_argument("--messages", type=int, default=2000, help="HL7 messages per ingest run (default 2000)")
    parser.add_argument("--connections", type=_counts, default=[1, 4], help="ingest connection counts (default 1,4)")
    parser.add_argument(
        "--ingest-runs",
        type=int,
        default=3,
        help="runs of each server per ingest row, the median reported (default 3: one run is a second or two)",
    )
    parser.add_argument("--warmup-messages", type=int, default=50)
    parser.add_argument("--sqlite-synchronous", choices=["NORMAL", "FULL"], default="NORMAL")
    parser.add_argument(
        "--scale-size",
        type=int,
        default=10000,
        help="size (one of --sizes) of the idle and many-clients rows (default 10000; 0: skip)",
    )
    parser.add_argument("--idle", type=int, default=200, help="idle associations held (default 200)")
    parser.add_argument("--idle-seconds", type=float, default=10, help="idle CPU window (default 10 s)")
    parser.add_argument("--clients", type=int, default=50, help="clients querying at once (default 50)")
    parser.add_argument("--load-seconds", type=float, default=20, help="seconds they query (default 20)")
    parser.add_argument(
        "--million",
        nargs="?",
        type=int,
        const=1_000_000,
        default=0,
        metavar="ITEMS",
        help="also the broker at a million items (or ITEMS), filled by bulk insert: ~5 min",
    )
    parser.add_argument("--skip-worklist", action="store_true", help="run part B only")
    parser.add_argument("--web-only", action="store_true", help="part A: the broker's C-FIND beside its DICOMweb only")
    parser.add_argument("--skip-ingest", action="store_true", help="skip part B")
    parser.add_argument("--skip-status", action="store_true", help="skip part C")
    parser.add_argument("--procedures", type=int, default=100, help="MPPS completions timed in part C (default 100)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the Markdown file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (configs, logs, databases)")
    return parser


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def environment(args: argparse.Namespace) -> list[str]:
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "broker", "profiles", "pyproject.toml"],
        capture_output=True,
        check=False,
    )
    if changed.returncode == 1:
        commit += " + uncommitted changes in broker/"
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("pynetdicom", "pydicom", "SQLAlchemy")
    )
    return [
        f"- host: {socket.gethostname()}, {os.cpu_count()} CPUs ({_cpu_model()}), {platform.platform()}",
        f"- broker: commit {commit}, Python {platform.python_version()}, {versions}",
        f"- DCMTK: {_first_line(['wlmscpfs', '--version'])}; Orthanc: {_first_line([orthanc_binary(), '--version'])}",
        f"- sizes {', '.join(f'{s:,}' for s in args.sizes)} (universal query up to {args.universal_max:,}); "
        f"runs per cell {args.reps} (at least {args.min_reps}, "
        f"budget {args.budget:g} s); ingest {args.messages:,} messages over {', '.join(map(str, args.connections))} "
        f"connection(s), {args.ingest_runs} run(s) of each server per row; "
        f"SQLite synchronous={args.sqlite_synchronous}",
        "- every server in its own process; clients: pynetdicom in the benchmark process, and DCMTK findscu; "
        "TCP_NODELAY on every socket (TCP_NODELAY=1 for the DCMTK-based peers)",
    ]


def _stop_on_signals() -> None:
    """SIGTERM and SIGINT end the run through the `finally` blocks that stop every peer
    (SIGINT too when started in the background, where the shell had it ignored)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def _worklist(args: argparse.Namespace, workdir: Path, peers: Peers, reps: Repetitions, loads: list[Load]) -> list[str]:
    """Part A, the scale rows at --scale-size, and the optional million items."""
    scale = None
    if args.scale_size in args.sizes:
        scale = worklist_bench.ScaleOptions(
            args.scale_size, args.idle, args.idle_seconds, args.clients, args.load_seconds
        )
    loads.append(Load("A. worklist C-FIND (and scale rows)").start())
    worklist = worklist_bench.run(
        workdir, peers, args.sizes, reps, args.sqlite_synchronous, args.universal_max, scale, web_only=args.web_only
    )
    loads[-1].stop()
    sections = ["", *report.worklist_section(worklist, args.reps)]
    if worklist.scale is not None:
        sections += ["", *report.scale_section(worklist.scale)]
        loads += worklist.scale.loads
    if args.million:
        result = million.run(workdir, peers, args.million, reps)
        ten_k = next(
            (row.timings[worklist_bench.BROKER].median for row in worklist.rows
             if (row.size, row.query, row.association) == (10000, worklist_bench.FILTERED, worklist_bench.REUSED)
             and worklist_bench.BROKER in row.timings),
            None,
        )  # fmt: skip
        sections += ["", *report.million_section(result, ten_k)]
        if result.load is not None:
            loads.append(result.load)
    return sections


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    _stop_on_signals()
    started = datetime.now()
    clock = time.monotonic()
    reps = Repetitions(args.reps, min(args.min_reps, args.reps), args.budget)
    workdir = Path(tempfile.mkdtemp(prefix="swf-bench-"))
    sections: list[str] = []
    loads = [Load("whole run").start()]
    try:
        with Peers().session() as peers:
            if not args.skip_ingest:
                loads.append(Load("B. HL7 ingest").start())
                ingest = ingest_bench.run(
                    workdir,
                    peers,
                    args.messages,
                    args.connections,
                    args.warmup_messages,
                    args.sqlite_synchronous,
                    args.ingest_runs,
                )
                loads[-1].stop()
                sections += ["", *report.ingest_section(ingest)]
            if not args.skip_status:
                loads.append(Load("C. status to the RIS").start())
                status = status_bench.run(workdir, peers, args.procedures, args.sqlite_synchronous)
                loads[-1].stop()
                sections += ["", *report.status_section(status)]
            if not args.skip_worklist:
                sections = [*_worklist(args, workdir, peers, reps, loads), *sections]
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    loads[0].stop()
    minutes = (time.monotonic() - clock) / 60
    lines = [
        f"# swf broker benchmark — {started:%Y-%m-%d %H:%M} on {socket.gethostname()}",
        "",
        *environment(args),
        f"- run time: {minutes:.1f} min",
        *sections,
        "",
        *report.load_section(loads),
        "",
    ]
    text = "\n".join(lines)
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"{started:%Y%m%d-%H%M%S}-{socket.gethostname()}.md"
    path.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
