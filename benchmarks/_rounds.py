"""Interleaved rounds, medians and the machine's load: how every benchmark here measures.

A comparison of two (or more) callables runs in rounds; in each round every callable runs
once for a fixed number of calls, in alternating order (A B, then B A, ...), so a change
in the machine's load hits both sides alike. The garbage collector stays on (its cost is
part of what users pay). Each figure is the **median over rounds**, with the spread
(lowest and highest round); a ratio is computed per round (the two sides of one round
ran back to back) and then summarised the same way. Never a best-of.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

__all__ = ["Summary", "calibrate", "header", "interleaved", "ratios", "summary"]


def header(what: str) -> str:
    """One line naming the interpreter, the collector's state and the machine's load."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{what}: Python {sys.version.split()[0]}, gc {'on' if gc.isenabled() else 'OFF'}, "
        f"load average {load} (1/5/15 min) on {os.cpu_count()} CPUs"
    )


class Summary:
    """Median and spread (lowest, highest) of one figure over rounds."""

    def __init__(self, values: Sequence[float]) -> None:
        self.values = list(values)
        self.median = statistics.median(values)
        self.low = min(values)
        self.high = max(values)

    def format(self, digits: int = 3, unit: str = "") -> str:
        return f"{self.median:.{digits}f}{unit} [{self.low:.{digits}f}-{self.high:.{digits}f}]"


def summary(values: Sequence[float]) -> Summary:
    return Summary(values)


def calibrate(call: Callable[[], object], seconds: float) -> int:
    """How many calls of ``call`` take about ``seconds`` (at least 1)."""
    call()
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            call()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 4 or number >= 1 << 20:
            return max(1, round(number * seconds / max(elapsed, 1e-9)))
        number *= 2


def interleaved(
    cases: dict[str, Callable[[], object]], rounds: int, seconds: float
) -> dict[str, list[float]]:
    """Seconds per call of each case, one value per round; cases alternate their order.

    Each case gets its own call count (about ``seconds`` of calls a round), fixed for
    all rounds. The collector is left as it is (on, unless the caller turned it off).
    """
    numbers = {name: calibrate(call, seconds) for name, call in cases.items()}
    names = list(cases)
    out: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        for name in names if index % 2 == 0 else reversed(names):
            call, number = cases[name], numbers[name]
            start = time.perf_counter()
            for _ in range(number):
                call()
            out[name].append((time.perf_counter() - start) / number)
    return out


def ratios(theirs: Sequence[float], ours: Sequence[float]) -> Summary:
    """Per-round ``theirs / ours`` (how many times faster ours is), summarised."""
    return Summary([t / o for t, o in zip(theirs, ours, strict=True)])
