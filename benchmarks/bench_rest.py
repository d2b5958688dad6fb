"""REST client benchmarks against a sandbox running in its own process (``aio-trader sandbox``).

Two measurements (the instruments parse rate is ``bench_instruments.py``):

- ``historical``: ``Kite.historical_bulk`` for ``--instruments`` instruments (one request
  each) against the sandbox at ``--scale`` times Kite's limits (default 1: Kite's own
  3 requests/s, so 300 instruments take about 100 s). Prints the wall time, the floor the
  rate limit sets (requests / (3 * scale) seconds), the achieved fraction of the limit's
  throughput (floor / wall; target >= 0.95) and the 429s the sandbox refused (target 0).
- ``ltp``: per-call cost of ``ltp`` through our client vs Kite's official ``KiteConnect``
  (sync, requests) on the same sandbox in the same run, with limits lifted (scale 1e5, so
  only the clients' cost and the server's are measured): sequential, then 50 concurrent
  callers (ours: 50 tasks on one event loop; theirs: a 50-thread pool). ``--rounds``
  interleaved rounds (ours, theirs, ours, theirs...; one warm client each), and the
  figures are the **medians** over the rounds, never the best.

    .venv/bin/python benchmarks/bench_rest.py [historical|ltp|all] [--instruments 300]
        [--scale 1] [--calls 2000] [--rounds 5] [--backend asyncio|trio]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.to_thread
import attrs
from _rounds import header, ratios

from aio_trader.kite import Kite

API_KEY, ACCESS_TOKEN = "sandbox_api_key", "sandbox_access_token"


@attrs.frozen
class Timing:
    """Wall and CPU seconds (CPU of this process: the client's work, the sandbox runs apart)."""

    wall: float
    cpu: float

    @classmethod
    def now(cls) -> Timing:
        return cls(time.perf_counter(), time.process_time())

    def __sub__(self, other: Timing) -> Timing:
        return Timing(self.wall - other.wall, self.cpu - other.cpu)


@contextlib.contextmanager
def sandbox(scale: float) -> Iterator[str]:
    """A sandbox in a child process; yields its REST root URL."""
    command = [
        sys.executable,
        "-c",
        "from aio_trader._cli.group import main; main()",
        "sandbox",
        "--port",
        "0",
        "--rate-limit-scale",
        str(scale),
        "--market-interval",
        "3600",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("REST root:"):
                yield line.split()[-1]
                break
        else:
            raise RuntimeError("the sandbox did not start")
    finally:
        process.terminate()
        process.wait(10)


def stats(root: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{root}/__sandbox__/stats") as answer:
        data: dict[str, object] = json.load(answer)["data"]
        return data


def bench_historical(instruments: int, scale: float, backend: str) -> None:
    with sandbox(scale) as root:

        async def run() -> tuple[float, int]:
            async with Kite(API_KEY, ACCESS_TOKEN, root=root, rate_limit_scale=scale) as kite:
                tokens = [i.instrument_token for i in await kite.instruments()][:instruments]
                if len(tokens) < instruments:
                    raise SystemExit(f"the sandbox has only {len(tokens)} instruments")
                done = 0

                def progress(finished: int, total: int) -> None:
                    nonlocal done
                    done = finished
                    if finished % 50 == 0 or finished == total:
                        print(f"  {finished}/{total}", file=sys.stderr)

                started = time.perf_counter()
                result = await kite.historical_bulk(
                    tokens, "2024-01-01", "2024-01-31", "day", on_progress=progress
                )
                wall = time.perf_counter() - started
                return wall, sum(len(candles) for candles in result.values())

        wall, candles = anyio.run(run, backend=backend)
        refused = stats(root)["refused_429"]
    limit = 3 * scale
    floor = instruments / limit
    print(
        f"historical_bulk ({backend}): {instruments} instruments, {candles} candles, "
        f"wall {wall:.2f} s; rate-limit floor {floor:.2f} s ({limit:g} req/s); "
        f"achieved {instruments / wall:.3f} req/s = {floor / wall:.3f} of the limit; "
        f"429s: {refused}"
    )


def _median(timings: list[Timing]) -> Timing:
    return Timing(
        statistics.median(t.wall for t in timings), statistics.median(t.cpu for t in timings)
    )


def bench_ltp(calls: int, rounds: int, backend: str) -> None:
    from kiteconnect import KiteConnect

    scale = 100_000.0
    concurrent = calls // 50 * 50
    with sandbox(scale) as root:
        official = KiteConnect(API_KEY, access_token=ACCESS_TOKEN, root=root)
        official.ltp("NSE:INFY")  # warm the connection
        pool = ThreadPoolExecutor(50)
        list(pool.map(lambda _: official.ltp("NSE:INFY"), range(100)))  # warm the threads

        def theirs_sequential() -> Timing:
            started = Timing.now()
            for _ in range(calls):
                official.ltp("NSE:INFY")
            return Timing.now() - started

        def theirs_pool() -> Timing:
            started = Timing.now()
            list(pool.map(lambda _: official.ltp("NSE:INFY"), range(concurrent)))
            return Timing.now() - started

        async def ours() -> list[tuple[Timing, Timing, Timing, Timing]]:
            results = []
            async with Kite(API_KEY, ACCESS_TOKEN, root=root, rate_limit_scale=scale) as kite:
                await kite.ltp("NSE:INFY")

                async def caller() -> None:
                    for _ in range(calls // 50):
                        await kite.ltp("NSE:INFY")

                async def our_sequential() -> Timing:
                    started = Timing.now()
                    for _ in range(calls):
                        await kite.ltp("NSE:INFY")
                    return Timing.now() - started

                async def our_concurrent() -> Timing:
                    started = Timing.now()
                    async with anyio.create_task_group() as group:
                        for _ in range(50):
                            group.start_soon(caller)
                    return Timing.now() - started

                for index in range(rounds):
                    # A B in even rounds, B A in odd ones: a change in load hits both alike.
                    if index % 2 == 0:
                        sequential = await our_sequential()
                        their_seq = await anyio.to_thread.run_sync(theirs_sequential)
                        concurrent_ours = await our_concurrent()
                        their_pool = await anyio.to_thread.run_sync(theirs_pool)
                    else:
                        their_seq = await anyio.to_thread.run_sync(theirs_sequential)
                        sequential = await our_sequential()
                        their_pool = await anyio.to_thread.run_sync(theirs_pool)
                        concurrent_ours = await our_concurrent()
                    results.append((sequential, their_seq, concurrent_ours, their_pool))
            return results

        measured = anyio.run(ours, backend=backend)
        pool.shutdown()
        refused = stats(root)["refused_429"]

    our_seq, their_seq, our_conc, their_conc = (_median([m[i] for m in measured]) for i in range(4))
    print(header(f"ltp, our client on {backend}"))
    print(
        f"  {calls} calls per measurement, medians of {rounds} interleaved rounds (A B, B A, ...);"
        " one sandbox process (apart from this one) for both clients, limits x1e5"
    )
    print("  wall: what the caller waits (the server's time included); cpu: this process's")
    print("  CPU (the client's work: ours on the event loop, theirs in its threads, never both")
    print("  at once); ours includes its client-side rate limiter, theirs has none")
    rows = [
        ("sequential", "ours", our_seq, calls),
        ("sequential", "theirs", their_seq, calls),
        ("50 callers", "ours (50 tasks)", our_conc, concurrent),
        ("50 callers", "theirs (50 threads)", their_conc, concurrent),
    ]
    for mode, who, timing, n in rows:
        print(
            f"  {mode}  {who:20} wall {timing.wall / n * 1e6:6.0f} us/call "
            f"({n / timing.wall:5.0f} calls/s)  cpu {timing.cpu / n * 1e6:5.0f} us/call"
        )
    for mode, ours_i, theirs_i in (("sequential", 0, 1), ("50 callers", 2, 3)):
        # Per-round ratios (the two sides of a round ran back to back), then median [spread].
        wall = ratios([m[theirs_i].wall for m in measured], [m[ours_i].wall for m in measured])
        cpu = ratios([m[theirs_i].cpu for m in measured], [m[ours_i].cpu for m in measured])
        print(
            f"  {mode}: theirs/ours per call (>1: ours is faster): "
            f"wall {wall.format(2, 'x')}, cpu {cpu.format(2, 'x')}"
        )
    print(f"  429s: {refused}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", default="all", choices=["historical", "ltp", "all"])
    parser.add_argument("--instruments", type=int, default=300)
    parser.add_argument("--scale", type=float, default=1.0, help="rate-limit scale (historical)")
    parser.add_argument("--calls", type=int, default=2000, help="ltp calls per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved ltp rounds")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    if args.which in ("ltp", "all"):
        bench_ltp(args.calls, args.rounds, args.backend)
    if args.which in ("historical", "all"):
        bench_historical(args.instruments, args.scale, args.backend)


if __name__ == "__main__":
    main()
