"""Small statistics: medians and nearest-rank percentiles, and the repetition rule."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: a value that was actually observed (p99 of 2,000 ACKs
    is the 1,980th smallest), never an interpolation between two."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


@dataclass(frozen=True)
class Repetitions:
    """How often to repeat a timed operation: `target` times, but stop early once
    `budget` seconds are spent and at least `minimum` runs exist, so that one slow
    cell (10k answers from a slow SCP) cannot take the whole run's time."""

    target: int = 7
    minimum: int = 2
    budget: float = 10.0

    def run(self, once: Callable[[], float], first: Sequence[float] = ()) -> list[float]:
        """Times of `once()` runs, after the `first` ones already made (they count)."""
        times: list[float] = list(first)
        started = time.monotonic() - sum(first)
        while len(times) < self.target:
            times.append(once())
            if len(times) >= self.minimum and time.monotonic() - started >= self.budget:
                break
        return times
