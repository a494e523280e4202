"""How loaded the machine was while the benchmark ran, and by whom.

The benchmark shares 2 cores with other work; its figures mean little without the load
beside them. `Load` reads /proc/loadavg, the machine's busy CPU time (/proc/stat) and
the benchmark's own (this process, its reaped children, and its live descendants with
their reaped children), so the rest is what other processes used meanwhile.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    """The 1-, 5- and 15-minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine_busy_seconds() -> float:
    """CPU time all cores spent on anything but idle and iowait since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / TICK


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """utime + stime of `pid` (all threads), plus its reaped children's if asked; 0 if gone."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def descendants(root: int) -> list[int]:
    """Live processes below `root` (children, their children, ...)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children[int(fields[1])].append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def group_cpu_seconds(pid: int) -> float:
    """A server and what it forked (wlmscpfs: one child per association)."""
    return sum(process_cpu_seconds(p, with_children=True) for p in [pid, *descendants(pid)])


def own_cpu_seconds() -> float:
    """The benchmark's CPU: itself, its reaped children, its live descendants."""
    mine = os.times()
    reaped = mine.user + mine.system + mine.children_user + mine.children_system
    return reaped + sum(process_cpu_seconds(p, with_children=True) for p in descendants(os.getpid()))


def rss_mib(pid: int) -> tuple[float, float]:
    """Resident set size now and at its peak (VmRSS, VmHWM), in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


@dataclass
class Load:
    """The machine between `start()` and `stop()`: load averages at both ends, and the
    CPU (in cores, averaged over the window) used by the benchmark and by everything else."""

    name: str
    before: str = ""
    after: str = ""
    seconds: float = 0.0
    own_cores: float = 0.0
    other_cores: float = 0.0
    _t0: float = 0.0
    _busy0: float = 0.0
    _own0: float = 0.0

    def start(self) -> Load:
        self.before, self._t0 = loadavg(), _uptime()
        self._busy0, self._own0 = machine_busy_seconds(), own_cpu_seconds()
        return self

    def stop(self) -> Load:
        self.after, self.seconds = loadavg(), _uptime() - self._t0
        own = own_cpu_seconds() - self._own0
        busy = machine_busy_seconds() - self._busy0
        if self.seconds > 0:
            self.own_cores = own / self.seconds
            self.other_cores = max(busy - own, 0.0) / self.seconds
        return self


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])
