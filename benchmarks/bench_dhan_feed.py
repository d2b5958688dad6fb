"""DhanFeed end to end: sustained full-mode packets/s, vs Dhan's official ``MarketFeed``.

    .venv/bin/python benchmarks/bench_dhan_feed.py [--seconds 5] [--instruments 100]
        [--rounds 3]

Setup (the method of ``bench_feed.py``): the sandbox (``broker="dhan"``) runs in its own
process (asyncio) and sends as fast as it can (``tick_interval=0``; TCP flow control paces
it to the reader), ``--instruments`` instruments in full mode, one 162-byte packet per
WebSocket message, as Dhan does. Each client runs in a process of its own, one after the
other, against the same server:

- ``aio_trader asyncio`` / ``trio``: ``DhanFeed`` (lossless) read with ``async for``;
- ``aio_trader asyncio, batches`` / ``trio, batches``: the same feed read with
  ``async for batch in feed.batches()``;
- ``dhanhq MarketFeed (official)``: Dhan's SDK (``websockets`` on its own asyncio loop),
  its ``run()`` loop with an ``on_message`` callback (its fastest documented way; one
  ``recv`` and one ``process_data`` per message), its URL pointed at the sandbox;
- ``dhanhq ... README's loop``: the same SDK read the way its README shows
  (``while True: feed.run_forever(); feed.get_data()``: one event-loop run per message,
  and a ping per message since ``run_forever`` pings an open socket); the ratios are
  against the faster ``run()`` path above;
- ``floor``: ``websockets`` receiving the same messages, decoding nothing: what reading
  one message at a time off the socket costs at least.

Two figures per client: packets/s (bounded by what the sandbox can send, one packet a
message: a client that keeps up waits for it) and the client's CPU time per packet
(``time.process_time`` over the timed window / packets): the cost "per item".

Every client reads, for every full packet, its security id (checked against the set
subscribed: a wrong one counts as ``lost``) and its last price; other packets (previous
close) are skipped. The first 2000 packets are not timed. Rounds are interleaved (their
order reversed every other round); each figure is the median over rounds with the spread
[lowest-highest]; "vs official" is the median of the per-round ratios. GC on; the
machine's load is printed first. (The SDK builds every field of a packet, the depth
included, as strings and dicts; ``DhanFeed``'s ``FullTick`` decodes every field but the
depth levels, which it builds when read.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from _rounds import Summary, header

WARMUP = 2000


# -- the server process ----------------------------------------------------------------------


def serve(instruments: int) -> None:
    """Run a Dhan sandbox flat out; print its address; exit when stdin closes."""
    import anyio

    from aio_trader.sandbox import Sandbox, SandboxConfig

    async def main() -> None:
        config = SandboxConfig(broker="dhan", tick_interval=0.0, market_interval=0.25)
        async with Sandbox(config) as sb:
            chosen = [
                (i.instrument_token >> 32, i.exchange_token)
                for i in sb.state.market.instruments.values()
                if i.segment != "INDICES"
            ][:instruments]
            info = {
                "url": sb.feed_url,
                "client_id": sb.client_id,
                "access_token": sb.access_token,
                "instruments": chosen,
            }
            print(json.dumps(info), flush=True)
            await anyio.to_thread.run_sync(sys.stdin.read)

    anyio.run(main)


class Server:
    def __init__(self, instruments: int) -> None:
        command = [sys.executable, __file__, "--serve", "--instruments", str(instruments)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.info: dict[str, Any] = json.loads(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


# -- our clients -----------------------------------------------------------------------------


def _keys(info: dict[str, Any]) -> list[tuple[str, int]]:
    from aio_trader.dhan import ExchangeSegment

    return [(ExchangeSegment.from_code(code).value, sid) for code, sid in info["instruments"]]


async def ours(info: dict[str, Any], seconds: float, batches: bool) -> dict[str, Any]:
    from aio_trader.dhan import DhanFeed, FullTick

    keys = _keys(info)
    ids = {sid for _, sid in keys}
    feed = DhanFeed(info["client_id"], info["access_token"], root=info["url"], order_root=None)
    count = lost = first = 0
    total = cpu = 0.0
    start = 0.0
    perf_counter, process_time = time.perf_counter, time.process_time
    async with feed:
        await feed.subscribe(keys, "full")
        if batches:
            async for batch in feed.batches():
                for item in batch:
                    if type(item) is FullTick:
                        if item.security_id not in ids:
                            lost += 1
                        total += item.last_price
                        count += 1
                if not start:
                    if count >= WARMUP:
                        start, first, cpu = perf_counter(), count, process_time()
                elif perf_counter() - start >= seconds:
                    break
        else:
            async for item in feed:
                if type(item) is FullTick:
                    if item.security_id not in ids:
                        lost += 1
                    total += item.last_price
                    count += 1
                    if count == WARMUP:
                        start, first, cpu = perf_counter(), count, process_time()
                    elif count % 256 == 0 and start and perf_counter() - start >= seconds:
                        break
        elapsed = perf_counter() - start
        used = process_time() - cpu
        dropped = feed.statistics().dropped
    timed = count - first
    return {
        "packets": timed,
        "seconds": elapsed,
        "per_s": timed / elapsed,
        "cpu_us": used / timed * 1e6,
        "lost": lost + dropped,
    }


# -- Dhan's official SDK ---------------------------------------------------------------------


def official(info: dict[str, Any], seconds: float, loop: bool = False) -> dict[str, Any]:
    from dhanhq import DhanContext, MarketFeed

    MarketFeed.market_feed_wss = info["url"]  # only the base URL points at the sandbox
    ids = {sid for _, sid in info["instruments"]}
    instruments = [(code, str(sid), MarketFeed.Full) for code, sid in info["instruments"]]
    state: dict[str, Any] = {"count": 0, "lost": 0, "start": 0.0, "end": 0.0, "total": 0.0}
    state["cpu"] = state["cpu_end"] = 0.0

    def on_message(feed: Any, data: Any) -> None:
        if not isinstance(data, dict) or data.get("type") != "Full Data":
            return
        if data["security_id"] not in ids:
            state["lost"] += 1
        state["total"] += float(data["LTP"])
        state["count"] += 1
        count = state["count"]
        if count == WARMUP:
            state["start"], state["cpu"] = time.perf_counter(), time.process_time()
        elif count > WARMUP and time.perf_counter() - state["start"] >= seconds:
            state["end"], state["cpu_end"] = time.perf_counter(), time.process_time()
            feed._running = False

    context = DhanContext(info["client_id"], info["access_token"])
    feed = MarketFeed(context, instruments, version="v2", on_message=on_message)
    if loop:  # the README's loop: run_forever() (a ping when connected), then get_data()
        feed._running = True
        while feed._running:
            feed.run_forever()
            on_message(feed, feed.get_data())
    else:
        feed.run()
    timed = state["count"] - WARMUP
    elapsed = state["end"] - state["start"]
    return {
        "packets": timed,
        "seconds": elapsed,
        "per_s": timed / elapsed,
        "cpu_us": (state["cpu_end"] - state["cpu"]) / timed * 1e6,
        "lost": state["lost"],
    }


def floor(info: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The transport's floor: ``websockets`` (the SDK's library) receiving the same
    messages and decoding nothing. No client that reads one message at a time off this
    socket can spend less per packet; it bounds any "per packet vs official" ratio."""
    import asyncio

    import websockets

    from aio_trader.dhan import ExchangeSegment

    query = f"version=2&token={info['access_token']}&clientId={info['client_id']}&authType=2"
    keys = [
        {"ExchangeSegment": ExchangeSegment.from_code(code).value, "SecurityId": str(sid)}
        for code, sid in info["instruments"]
    ]
    request = {"RequestCode": 21, "InstrumentCount": len(keys), "InstrumentList": keys}

    async def main() -> dict[str, Any]:
        async with websockets.connect(f"{info['url']}?{query}") as ws:
            await ws.send(json.dumps(request))
            for _ in range(WARMUP):
                await ws.recv()
            count = 0
            start, cpu = time.perf_counter(), time.process_time()
            while time.perf_counter() - start < seconds:
                await ws.recv()
                count += 1
            elapsed, used = time.perf_counter() - start, time.process_time() - cpu
        return {
            "packets": count,
            "seconds": elapsed,
            "per_s": count / elapsed,
            "cpu_us": used / count * 1e6,
            "lost": 0,
        }

    return asyncio.run(main())


def client(kind: str, info: dict[str, Any], seconds: float) -> dict[str, Any]:
    if kind == "official":
        return official(info, seconds)
    if kind == "official-loop":
        return official(info, seconds, loop=True)
    if kind == "floor":
        return floor(info, seconds)
    import anyio

    backend = kind.split("-")[0]
    result: dict[str, Any] = anyio.run(
        ours, info, seconds, kind.endswith("-batches"), backend=backend
    )
    return result


def run_client(kind: str, server: Server, seconds: float) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--client", kind, "--info", json.dumps(server.info),
        "--seconds", str(seconds),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    if done.returncode:
        raise SystemExit(f"client {kind} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


NAMES = {
    "asyncio": "aio_trader DhanFeed, asyncio",
    "trio": "aio_trader DhanFeed, trio",
    "asyncio-batches": "aio_trader DhanFeed.batches(), asyncio",
    "trio-batches": "aio_trader DhanFeed.batches(), trio",
    "official": "dhanhq MarketFeed (official)",
    "official-loop": "dhanhq MarketFeed, its README's run_forever()/get_data() loop",
    "floor": "floor: websockets recv, nothing decoded",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--instruments", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--info", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.instruments)
        return
    if args.client:
        print(json.dumps(client(args.client, json.loads(args.info), args.seconds)))
        return

    kinds = list(NAMES)
    print(f"# {header('bench_dhan_feed')}")
    print(f"# {args.instruments} instruments in full mode (one packet a message), "
          f"{args.rounds} interleaved rounds of {args.seconds:g} s per client")  # fmt: skip
    server = Server(args.instruments)
    results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    try:
        for index in range(args.rounds):
            for kind in kinds if index % 2 == 0 else reversed(kinds):
                results[kind].append(run_client(kind, server, args.seconds))
    finally:
        server.close()
    theirs = [r["per_s"] for r in results["official"]]
    their_cpu = [r["cpu_us"] for r in results["official"]]
    print("\n## Sustained full-mode packets (sandbox sending as fast as it can, lossless)\n")
    print("| client | packets/s, median [lowest-highest] | vs official, median [range] "
          "| client CPU µs a packet | per packet vs official | packets timed | lost |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in kinds:
        rates = [r["per_s"] for r in results[kind]]
        rate = Summary(rates)
        ratio = Summary([a / b for a, b in zip(rates, theirs, strict=True)])
        cpus = [r["cpu_us"] for r in results[kind]]
        cpu = Summary(cpus)
        cheaper = Summary([b / a for a, b in zip(cpus, their_cpu, strict=True)])
        timed = sum(r["packets"] for r in results[kind])
        lost = sum(r["lost"] for r in results[kind])
        print(f"| {NAMES[kind]} | {rate.median:,.0f} [{rate.low:,.0f}-{rate.high:,.0f}] "
              f"| {ratio.format(2, 'x')} | {cpu.format(1)} | {cheaper.format(2, 'x')} "
              f"| {timed:,} | {lost} |")  # fmt: skip


if __name__ == "__main__":
    main()
