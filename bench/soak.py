"""`make soak`: the reliability matrix at the sizes RELIABILITY.md sets (issue #15,
deliver 7), hours of work; not part of `make test`.

Each part runs the suite's own test (or the atheris harness) with its size knobs from
the environment, so the soak and CI exercise the same code:

  r1      R1 kill -9 mid-stream, 10,000 ORM: 20 runs (seeds) per backend
  fuzz    F1/F2 live listeners: 100,000 mutated inputs per listener (MLLP, DICOM)
  atheris coverage-guided, 30 minutes each: HL7 decoder, C-FIND identifier, MPPS dataset
  d2      D2: 500 silent connections
  d4      D4: 100,000 connect/echo/release + 10,000 bare connect/close, RSS and threads
  s4      S4: syslog collector down 5 minutes (both backends)
  scale   issue 7: two `broker serve` processes on one PostgreSQL, 1,000 orders

`--tiny` runs every part once at a small size (to check the harness, minutes);
`--parts r1,d4` picks parts. Writes bench/results/soak-<timestamp>-<host>.md (a table:
part, size, seconds, result, the figures the tests print) and the full output of each
part under bench/results/soak-<timestamp>-<host>/.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", "-rN"]
#: Lines the tests (and libFuzzer) print with their figures.
FIGURES = re.compile(
    r"^(R1 |MLLP: |DICOM: |D2 \d|D4: |S4: |\d+ orders on 2 brokers|FUZZ_SEED=|CRASH_SEED=|#\d+\s+DONE|Done \d+ runs)"
)


@dataclass(frozen=True)
class Run:
    """One command of a part, with the environment that sizes it."""

    label: str
    command: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Part:
    name: str
    size: str
    runs: list[Run]


def _r1(tiny: bool) -> Part:
    runs, orders, kills = (1, 200, 1) if tiny else (20, 10_000, 3)
    return Part(
        "r1",
        f"{runs} runs x {orders} ORM x {kills} kills per backend",
        [
            Run(
                f"{backend} seed {n}",
                [*PYTEST, "tests/e2e/test_crash_safety.py", "-k", f"order_stream and {backend}"],
                {
                    "CRASH_SEED": str(20261202 + n),
                    "CRASH_KILLS": str(kills),
                    "CRASH_SQLITE_ORDERS": str(orders),
                    "CRASH_POSTGRESQL_ORDERS": str(orders),
                },
            )
            for backend in ("sqlite", "postgresql")
            for n in range(runs)
        ],
    )


def _fuzz(tiny: bool) -> Part:
    inputs = 200 if tiny else 100_000
    test = [*PYTEST, "tests/e2e/test_fuzz_listeners.py", "-k", "survives"]
    return Part("fuzz", f"{inputs} inputs per listener", [Run("MLLP and DICOM", test, {"FUZZ_INPUTS": str(inputs)})])


def _atheris(tiny: bool) -> Part:
    seconds = 10 if tiny else 1800
    options = [f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"]
    return Part(
        "atheris",
        f"{seconds} s per decoder",
        [Run(t, [sys.executable, "-m", "bench.fuzz", t, *options], {}) for t in ("hl7", "cfind", "mpps")],
    )


def _d2(tiny: bool) -> Part:
    connections = 60 if tiny else 500
    test = [*PYTEST, "tests/integration/test_dicom_guards.py", "-k", "silent"]
    return Part("d2", f"{connections} silent connections", [Run("silent", test, {"D2_CONNECTIONS": str(connections)})])


def _d4(tiny: bool) -> Part:
    echoes, bare = (200, 50) if tiny else (100_000, 10_000)
    env = {"D4_ECHOES": str(echoes), "D4_BARE": str(bare)}
    return Part("d4", f"{echoes} echoes + {bare} bare", [Run("leak", [*PYTEST, "tests/e2e/test_leak_soak.py"], env)])


def _s4(tiny: bool) -> Part:
    seconds = 5 if tiny else 300
    test = [*PYTEST, "tests/integration/test_audit_trail.py", "-k", "outage"]
    return Part("s4", f"collector down {seconds} s", [Run("both backends", test, {"S4_OUTAGE_SECONDS": str(seconds)})])


def _scale(tiny: bool) -> Part:
    orders = 100 if tiny else 1000
    test = [*PYTEST, "tests/e2e/test_scale_out_processes.py"]
    return Part("scale", f"{orders} orders on 2 brokers", [Run("postgresql", test, {"SCALE_ORDERS": str(orders)})])


PARTS = {"r1": _r1, "fuzz": _fuzz, "atheris": _atheris, "d2": _d2, "d4": _d4, "s4": _s4, "scale": _scale}


@dataclass(frozen=True)
class Outcome:
    part: Part
    seconds: float
    failed: list[str]
    figures: list[str]


def _run_part(part: Part, logs: Path) -> Outcome:
    started, failed, figures = time.monotonic(), [], []
    for run in part.runs:
        log = logs / f"{part.name}-{re.sub(r'[^A-Za-z0-9]+', '-', run.label)}.log"
        print(f"[{part.name}] {run.label}: {' '.join(run.command[2:])}", flush=True)
        with log.open("w", encoding="utf-8") as out:
            code = subprocess.run(
                run.command, cwd=ROOT, env={**os.environ, **run.env}, stdout=out, stderr=subprocess.STDOUT
            ).returncode
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        figures += [f"{run.label}: {line.strip()}" for line in lines if FIGURES.match(line.strip())]
        if code != 0:
            failed.append(f"{run.label} (exit {code}, see {log.relative_to(ROOT)})")
    return Outcome(part, time.monotonic() - started, failed, figures)


def _report(outcomes: list[Outcome], tiny: bool) -> str:
    lines = [
        f"# Soak {'(tiny sizes: a harness check, not the matrix) ' if tiny else ''}"
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z} on {socket.gethostname()}",
        "",
        "| part | size | seconds | result |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        result = "pass" if not o.failed else "FAIL: " + "; ".join(o.failed)
        lines.append(f"| {o.part.name} | {o.part.size} | {o.seconds:.0f} | {result} |")
    for o in outcomes:
        lines += ["", f"## {o.part.name}", "", "```", *o.figures, "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="every part once at a small size")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    args = parser.parse_args(argv)
    names = [n for n in args.parts.split(",") if n]
    unknown = set(names) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    stamp = f"soak-{datetime.now():%Y%m%d-%H%M%S}-{socket.gethostname()}"
    logs = RESULTS / stamp
    logs.mkdir(parents=True, exist_ok=True)
    outcomes = [_run_part(PARTS[name](args.tiny), logs) for name in names]
    report = _report(outcomes, args.tiny)
    (RESULTS / f"{stamp}.md").write_text(report, encoding="utf-8")
    print(report)
    return 1 if any(o.failed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
