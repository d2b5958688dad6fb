"""RateLimiter: does a saturated limiter run AT its rate (not below it), and what does it cost?

    .venv/bin/python benchmarks/bench_ratelimit.py [--rate 200] [--period 1] [--calls 1000]
        [--tasks 50] [--backend asyncio|trio]

1. Saturated: ``--tasks`` tasks share ``--calls`` acquisitions of ``Rate(rate, period)``;
   prints the achieved rate beyond the first window (whose burst is free) as a
   fraction of the limit (100% = exactly at the limit), and the most calls found in
   any window of ``period`` (never above the limit).
2. Uncontended: the cost of one ``acquire()`` on a limiter that never has to wait.
"""

from __future__ import annotations

import argparse
import time

import anyio

from aio_trader.ratelimit import Rate, RateLimiter


async def saturated(rate: Rate, calls: int, tasks: int) -> None:
    limiter = RateLimiter(rate)
    stamps: list[float] = []
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            stamps.append(await limiter.acquire())

    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(worker)
    stamps.sort()
    # Saturated at exactly the limit, the calls after the first window's burst take one
    # period per ``count`` calls: that ratio is the achieved rate.
    achieved = (len(stamps) - rate.count) / (stamps[-1] - stamps[0]) * rate.period
    worst = max(
        sum(1 for t in stamps[i : i + rate.count + 1] if t - stamps[i] < rate.period)
        for i in range(len(stamps))
    )
    print(
        f"saturated {rate}: {len(stamps)} calls, rate {achieved:.1f} per "
        f"{rate.period:g}s = {achieved / rate.count:.1%} of the limit; "
        f"most calls in any window: {worst} (limit {rate.count})"
    )


async def uncontended(n: int) -> None:
    limiter = RateLimiter(Rate(10**9, 1.0))
    start = time.perf_counter()
    for _ in range(n):
        await limiter.acquire()
    per_call = (time.perf_counter() - start) / n
    print(f"uncontended acquire(): {per_call * 1e6:.1f} µs per call ({n} calls)")


async def main(args: argparse.Namespace) -> None:
    await saturated(Rate(args.rate, args.period), args.calls, args.tasks)
    await uncontended(100_000)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    arguments = parser.parse_args()
    anyio.run(main, arguments, backend=arguments.backend)
