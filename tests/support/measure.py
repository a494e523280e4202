"""Figures a test measures, and the knobs that size and seed it.

Wall-clock time on a shared machine is a measurement, not a verdict: a latency the
RELIABILITY.md bar puts at ~1 s is printed, and asserted only against a generous
deadline that a hang exceeds and a slow machine does not (`no_hang`). Benchmarks
(bench/) hold the figures to their bars.

Memory growth is this test's own: the kernel's peak-RSS mark (VmHWM) is reset before
and read after (`PeakRss`), where the process-wide `ru_maxrss` could not fail once any
earlier test had set a higher peak.

Random inputs are seeded: fixed by default (CI reproduces every run), `NAME_SEED=random`
for a fresh seed (printed), `NAME_SEED=1234` to replay one. Sizes come from the
environment too, so `make soak` runs the same tests at full size.
"""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path
from types import TracebackType

#: Seconds after which a wait the bar puts at about one second counts as a hang.
HANG_SECONDS = float(os.environ.get("TEST_HANG_SECONDS", "10"))


def no_hang(seconds: float, what: str, limit: float = HANG_SECONDS) -> float:
    """Print the measured figure; fail only past `limit`."""
    print(f"\n{what}: {seconds * 1000:.0f} ms")
    assert seconds < limit, f"{what}: {seconds:.2f} s (a hang: more than {limit:.0f} s)"
    return seconds


def seed(name: str, default: int) -> int:
    """The seed for `name` (FUZZ → FUZZ_SEED): `default`, a given one, or `random`."""
    value = os.environ.get(f"{name}_SEED", "")
    chosen = random.SystemRandom().randrange(1_000_000) if value == "random" else int(value or default)
    print(f"\n{name}_SEED={chosen}")
    return chosen


def size(name: str, default: int) -> int:
    """A test's size knob (e.g. FUZZ_INPUTS=100000 in `make soak`)."""
    return int(os.environ.get(name, default))


def status(field: str, pid: int | str = "self") -> int:
    """A figure from /proc/PID/status: VmRSS and VmHWM in KiB, Threads as a count."""
    match = re.search(rf"^{field}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert match, f"{field} not in /proc/{pid}/status"
    return int(match.group(1))


def steady_threads(pid: int, seconds: float = 3.0) -> int:
    """The process's thread count once it has not changed for `seconds`: a broker just
    started is still starting threads (its scheduler's job threads come up after
    `serve` is ready), and a baseline read then makes them look like a leak later."""
    samples = [status("Threads", pid)]
    stable = int(seconds / 0.2)
    while len(samples) < stable or len(set(samples[-stable:])) > 1:
        time.sleep(0.2)
        samples.append(status("Threads", pid))
    return samples[-1]


class PeakRss:
    """`with PeakRss() as rss: ...`, then `rss.growth_kib`: the peak resident size
    reached inside the block above the resident size at its start."""

    def __enter__(self) -> PeakRss:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        self._start = status("VmRSS")
        self.growth_kib = 0
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.growth_kib = status("VmHWM") - self._start
