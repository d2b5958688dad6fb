"""KiteFeed end to end: sustained ticks/s and send-to-receive latency, vs Kite's KiteTicker.

    .venv/bin/python benchmarks/bench_feed.py [--seconds 5] [--tokens 200]
        [--latency-interval 0.01] [--latency-seconds 5] [--rounds 3]

Setup: the sandbox runs in its own process (asyncio), full mode, ``--tokens`` instruments,
so every frame holds 200 packets. Each client runs in a process of its own, one after the
other, against the same server:

- ``aio_trader asyncio`` / ``aio_trader trio``: ``KiteFeed`` (lossless policy) read with
  ``async for``; the loop checks every tick's instrument token against the expected order,
  so a lost or reordered tick would show (``lost``);
- ``aio_trader asyncio, batches`` / ``trio, batches``: the same ``KiteFeed`` read with
  ``async for batch in feed.batches()`` (one checkpoint per list of the ticks already
  waiting, instead of one per tick), the same per-tick check inside;
- ``aio_trader raw``: ``RawKiteFeed`` on asyncio (frames, no decoding): the transport's
  ceiling;
- ``floor asyncio`` / ``floor trio``: what a checkpoint per tick allows, no socket. The
  client first takes ``FLOOR_FRAMES`` full-mode frames from the same sandbox (through
  ``RawKiteFeed``, untimed), then a producer task decodes them (``decode_frame``, round
  and round) into an anyio memory object stream, up to the feed's default size (10,000
  ticks; when full it sleeps until half was read: one wake per 5,000 ticks, not one per
  tick), and the loop takes each tick with one ``await receive()`` and runs the same
  per-tick check. The
  per-item ``async for`` rows show their fraction of this floor (``of floor``: per-round
  ratio, same backend, same round);
- ``KiteTicker (official)``: Kite's official Python client (twisted + autobahn) with its
  ``root`` pointed at the sandbox, counting the ticks ``on_ticks`` receives (same check).

Throughput: the sandbox sends as fast as it can (``tick_interval=0``; TCP flow control
paces it to the reader). The first 2000 ticks are not timed. The clients run in
interleaved rounds (their order reversed every other round); each figure is the median
over rounds with the spread [lowest-highest], and "vs official" is the median of the
per-round ratios. The garbage collector is on; the machine's load is printed first.

Latency: a second sandbox sends one frame every ``--latency-interval`` seconds. The server
notes the monotonic clock just before handing each tick frame to its WebSocket (a wrapper
around the sandbox ticker's frame send, benchmark only); the client notes it when the
frame's first tick reaches user code (``async for`` / ``on_ticks``). ``time.perf_counter``
is CLOCK_MONOTONIC on Linux, shared by all processes, so the two compare.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from _rounds import Summary, header

WARMUP_TICKS = 2000


# -- the server process ----------------------------------------------------------------------


def serve(tick_interval: float, tokens: int) -> None:
    """Run a sandbox; print its address; answer ``times`` on stdin with the frame send times."""
    import anyio

    from aio_trader.sandbox import Sandbox, SandboxConfig
    from aio_trader.sandbox._kite import _ticker as sandbox_ticker

    sent: list[int] = []
    connection = getattr(sandbox_ticker, "_Connection", None)
    original = getattr(connection, "_send_bytes", None)
    if connection is not None and original is not None:

        async def timed(self: Any, data: bytes) -> bool:
            if len(data) > 1:
                sent.append(time.perf_counter_ns())
            return bool(await original(self, data))

        connection._send_bytes = timed

    async def main() -> None:
        config = SandboxConfig(tick_interval=tick_interval, market_interval=0.25)
        async with Sandbox(config) as sb:
            instruments = sb.state.market.instruments
            chosen = [t for t, i in instruments.items() if i.segment != "INDICES"][:tokens]
            info = {
                "url": sb.ticker_url,
                "api_key": sb.api_key,
                "access_token": sb.access_token,
                "tokens": chosen,
                "timed": original is not None,
            }
            print(json.dumps(info), flush=True)
            while True:
                line = await anyio.to_thread.run_sync(sys.stdin.readline)
                if not line:
                    return
                print(json.dumps(sent), flush=True)
                sent.clear()

    anyio.run(main)


class Server:
    """A sandbox in a subprocess (see ``serve``)."""

    def __init__(self, tick_interval: float, tokens: int) -> None:
        command = [sys.executable, __file__, "--serve", str(tick_interval), "--tokens", str(tokens)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.info: dict[str, Any] = json.loads(self.process.stdout.readline())

    def send_times(self) -> list[int]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("times\n")
        self.process.stdin.flush()
        times: list[int] = json.loads(self.process.stdout.readline())
        return times

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


# -- our clients ---------------------------------------------------------------------------


FLOOR_FRAMES = 50


async def floor_client(info: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The floor: the sandbox's frames decoded into a memory object stream, one
    ``await receive()`` per tick, the same per-tick check; no socket while timed."""
    import anyio

    from aio_trader.kite import RawKiteFeed, decode_frame

    tokens: list[int] = info["tokens"]
    per_frame = len(tokens)
    frames: list[bytes] = []
    async with RawKiteFeed(info["api_key"], info["access_token"], root=info["url"]) as raw:
        await raw.subscribe(tokens, mode="full")
        async for frame in raw:
            if not isinstance(frame.data, bytes):
                continue
            ticks = decode_frame(frame.data)
            if len(ticks) == per_frame and all(t.mode == "full" for t in ticks):
                frames.append(frame.data)
                if len(frames) == FLOOR_FRAMES:
                    break
    size = 10_000  # KiteFeed's default buffer_size
    send, receive = anyio.create_memory_object_stream[Any](math.inf)
    waiting = 0
    room: list[anyio.Event] = []  # the producer waits on it when ``size`` ticks wait

    async def produce() -> None:
        # the best a producer can do: it fills the stream up to ``size`` and then sleeps
        # until half was read (a producer woken for every tick costs about a tick)
        nonlocal waiting
        with send:
            while True:
                for frame in frames:
                    for tick in decode_frame(frame):
                        if waiting >= size:
                            room.append(anyio.Event())
                            await room[-1].wait()
                        send.send_nowait(tick)
                        waiting += 1

    count = lost = 0
    start = 0.0
    perf_counter = time.perf_counter
    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        while True:
            item = await receive.receive()
            waiting -= 1
            if room and waiting <= size // 2:
                room.pop().set()
            if item.instrument_token != tokens[count % per_frame]:
                lost += 1
            count += 1
            if count % per_frame:
                continue
            if count == WARMUP_TICKS:
                start = perf_counter()
            elif count > WARMUP_TICKS and perf_counter() - start >= seconds:
                break
        elapsed = perf_counter() - start
        tg.cancel_scope.cancel()
    receive.close()
    timed = count - WARMUP_TICKS
    return {
        "ticks": timed,
        "seconds": elapsed,
        "ticks_per_s": timed / elapsed,
        "lost": lost,
        "arrivals": [],
    }


async def batched_client(info: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``feed.batches()``: ticks/s over the same check as ``feed_client``'s."""
    from aio_trader.kite import KiteFeed

    tokens: list[int] = info["tokens"]
    per_frame = len(tokens)
    feed = KiteFeed(info["api_key"], info["access_token"], root=info["url"], overflow="lossless")
    count = lost = first = 0
    start = 0.0
    perf_counter = time.perf_counter
    async with feed:
        await feed.subscribe(tokens, mode="full")
        async for batch in feed.batches():
            for item in batch:
                if item.instrument_token != tokens[count % per_frame]:  # type: ignore[union-attr]
                    lost += 1
                count += 1
            if not first:
                if count >= WARMUP_TICKS:
                    first, start = count, perf_counter()
            elif perf_counter() - start >= seconds:
                break
        elapsed = perf_counter() - start
        stats = feed.statistics()
    timed = count - first
    return {
        "ticks": timed,
        "seconds": elapsed,
        "ticks_per_s": timed / elapsed,
        "lost": lost + stats.dropped,
        "arrivals": [],
    }


async def feed_client(
    info: dict[str, Any], seconds: float, raw: bool, latency: bool
) -> dict[str, Any]:
    """Read the feed for ``seconds`` after the warm-up; ticks/s, or frame arrival times."""
    from aio_trader.kite import KiteFeed, RawKiteFeed

    tokens: list[int] = info["tokens"]
    per_frame = len(tokens)
    cls = RawKiteFeed if raw else KiteFeed
    feed = cls(info["api_key"], info["access_token"], root=info["url"], overflow="lossless")
    arrivals: list[int] = []
    count = lost = 0
    start = 0.0
    perf_counter, perf_counter_ns = time.perf_counter, time.perf_counter_ns
    async with feed:
        await feed.subscribe(tokens, mode="full")
        async for item in feed:
            if raw:
                count += per_frame  # every frame carries all of them
            else:
                if count % per_frame == 0 and latency:
                    arrivals.append(perf_counter_ns())
                if item.instrument_token != tokens[count % per_frame]:  # type: ignore[union-attr]
                    lost += 1
                count += 1
            if count % per_frame:
                continue
            if count == WARMUP_TICKS:
                start = perf_counter()
            elif count > WARMUP_TICKS and perf_counter() - start >= seconds:
                break
        elapsed = perf_counter() - start
        stats = feed.statistics()
    timed = count - WARMUP_TICKS
    return {
        "ticks": timed,
        "seconds": elapsed,
        "ticks_per_s": timed / elapsed,
        "lost": lost + getattr(stats, "dropped", 0),
        "arrivals": arrivals,
        # whole frames the feed dropped as sent before the mode switch took effect: they
        # were sent, never received, so the k-th arrival matches the (k + this)-th send
        "frames_not_delivered": getattr(stats, "stale_mode", 0) // per_frame,
    }


# -- Kite's official client ------------------------------------------------------------------


def official_client(info: dict[str, Any], seconds: float, latency: bool) -> dict[str, Any]:
    """KiteTicker (twisted reactor in a thread), counting what ``on_ticks`` gets."""
    from kiteconnect import KiteTicker

    tokens: list[int] = info["tokens"]
    per_frame = len(tokens)
    done = threading.Event()
    state: dict[str, Any] = {"count": 0, "lost": 0, "start": 0.0, "end": 0.0, "arrivals": []}

    def on_connect(ws: Any, response: Any) -> None:
        ws.subscribe(tokens)
        ws.set_mode(ws.MODE_FULL, tokens)

    def on_ticks(ws: Any, ticks: list[dict[str, Any]]) -> None:
        if latency:
            state["arrivals"].append(time.perf_counter_ns())
        count = state["count"]
        for tick in ticks:  # the same per-tick check as our loop
            if tick["instrument_token"] != tokens[count % per_frame]:
                state["lost"] += 1
            count += 1
        state["count"] = count
        if count == WARMUP_TICKS:
            state["start"] = time.perf_counter()
        elif count > WARMUP_TICKS and time.perf_counter() - state["start"] >= seconds:
            state["end"] = time.perf_counter()
            done.set()

    ticker = KiteTicker(info["api_key"], info["access_token"], root=info["url"], reconnect=False)
    ticker.on_connect, ticker.on_ticks = on_connect, on_ticks
    ticker.connect(threaded=True)
    if not done.wait(seconds + 60):
        raise SystemExit("KiteTicker: no complete run")
    timed = state["count"] - WARMUP_TICKS
    elapsed = state["end"] - state["start"]
    return {
        "ticks": timed,
        "seconds": elapsed,
        "ticks_per_s": timed / elapsed,
        "lost": state["lost"],
        "arrivals": state["arrivals"],
    }


def client(kind: str, info: dict[str, Any], seconds: float, latency: bool) -> dict[str, Any]:
    if kind == "official":
        return official_client(info, seconds, latency)
    import anyio

    result: dict[str, Any]
    if kind.startswith("floor-"):
        result = anyio.run(floor_client, info, seconds, backend=kind.split("-")[1])
        return result
    if kind.endswith("-batches"):
        result = anyio.run(batched_client, info, seconds, backend=kind.split("-")[0])
        return result
    backend, raw = ("asyncio", True) if kind == "raw" else (kind, False)
    result = anyio.run(feed_client, info, seconds, raw, latency, backend=backend)
    return result


def run_client(kind: str, server: Server, seconds: float, latency: bool) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--client", kind, "--info", json.dumps(server.info),
        "--seconds", str(seconds),
    ] + (["--latency"] if latency else [])  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"client {kind} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- the report ----------------------------------------------------------------------------

NAMES = {
    "asyncio": "aio_trader KiteFeed, asyncio",
    "trio": "aio_trader KiteFeed, trio",
    "asyncio-batches": "aio_trader KiteFeed.batches(), asyncio",
    "trio-batches": "aio_trader KiteFeed.batches(), trio",
    "raw": "aio_trader RawKiteFeed (no decoding), asyncio",
    "floor-asyncio": "floor: decode + memory stream, asyncio (no socket)",
    "floor-trio": "floor: decode + memory stream, trio (no socket)",
    "official": "KiteTicker (official, twisted)",
}


def latencies_ms(sent: list[int], arrivals: list[int]) -> tuple[float, float, int]:
    """Median and p99 of arrival - send over matched frames (k-th sent <-> k-th received)."""
    pairs = list(zip(sent, arrivals, strict=False))[10:]  # skip the connection's start
    delays = sorted((a - s) / 1e6 for s, a in pairs)
    if not delays:
        return float("nan"), float("nan"), 0
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return statistics.median(delays), p99, len(delays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--latency-interval", type=float, default=0.01)
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs per client")
    parser.add_argument("--only", help="comma-separated clients (official always runs)")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency part")
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--info", help=argparse.SUPPRESS)
    parser.add_argument("--latency", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.tokens)
        return
    if args.client:
        print(json.dumps(client(args.client, json.loads(args.info), args.seconds, args.latency)))
        return

    all_kinds = ["asyncio", "trio", "floor-asyncio", "floor-trio", "asyncio-batches",
                 "trio-batches", "raw", "official"]  # fmt: skip
    kinds = [k for k in all_kinds if k in args.only.split(",")] if args.only else all_kinds
    if "official" not in kinds:
        kinds.append("official")
    print(f"# {header('bench_feed')}")
    print(f"# {args.tokens} instruments in full mode ({args.tokens} packets a frame), "
          f"{args.rounds} interleaved rounds of {args.seconds:g} s per client")  # fmt: skip
    server = Server(0.0, args.tokens)
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    try:
        for index in range(args.rounds):
            for kind in kinds if index % 2 == 0 else reversed(kinds):
                results[kind].append(run_client(kind, server, args.seconds, latency=False))
    finally:
        server.close()

    official = [r["ticks_per_s"] for r in results["official"]]
    print("\n## Sustained throughput (sandbox sending as fast as it can, lossless)\n")
    print("| client | ticks/s, median [lowest-highest] | vs official, median [range] "
          "| of floor, median [range] | ticks timed | lost |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for kind in kinds:
        rates = [r["ticks_per_s"] for r in results[kind]]
        rate = Summary(rates)
        ratio = Summary([ours / theirs for ours, theirs in zip(rates, official, strict=True)])
        floor = f"floor-{kind}"
        of_floor = "-"
        if results.get(floor):
            floors = [r["ticks_per_s"] for r in results[floor]]
            per_round = [ours / f for ours, f in zip(rates, floors, strict=True)]
            of_floor = Summary(per_round).format(2)
        timed = sum(r["ticks"] for r in results[kind])
        lost = sum(r["lost"] for r in results[kind])
        print(f"| {NAMES[kind]} | {rate.median:,.0f} [{rate.low:,.0f}-{rate.high:,.0f}] "
              f"| {ratio.format(2, 'x')} | {of_floor} | {timed:,} | {lost} |")  # fmt: skip

    if args.no_latency:
        return
    server = Server(args.latency_interval, args.tokens)
    rows = []
    try:
        if not server.info["timed"]:
            print("\n(latency skipped: the sandbox ticker's frame send could not be wrapped)")
            return
        for kind in ["asyncio", "trio", "official"]:
            server.send_times()  # forget frames sent before this client
            result = run_client(kind, server, args.latency_seconds, latency=True)
            sent = server.send_times()[result.get("frames_not_delivered", 0) :]
            median, p99, n = latencies_ms(sent, result["arrivals"])
            rows.append((kind, median, p99, n))
    finally:
        server.close()
    rate = args.tokens / args.latency_interval
    print(f"\n## Send-to-receive latency ({1 / args.latency_interval:.0f} frames/s, "
          f"{rate:,.0f} ticks/s)\n")  # fmt: skip
    print("| client | median ms | p99 ms | frames |")
    print("|---|---:|---:|---:|")
    for kind, median, p99, n in rows:
        print(f"| {NAMES[kind]} | {median:.2f} | {p99:.2f} | {n:,} |")


if __name__ == "__main__":
    main()
