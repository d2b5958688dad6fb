"""How fast the sandbox ticker sends: frames and ticks per second on one connection.

    .venv/bin/python benchmarks/bench_sandbox_ticker.py [--tokens 200] [--mode full]
        [--seconds 5] [--backend asyncio|trio]

The sandbox runs in this process with ``tick_interval=0`` (frames back to back, paced by
the socket). The client is a separate process (a plain socket + wsproto, counting frames
without decoding their packets), so the figure is what the server can send, not what a
Python tick decoder can take in. The first frame is not timed. Meanwhile this process calls
``GET /user/profile`` five times a second: its latency shows the server stays responsive.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time
from typing import Any

import anyio
import httpx
import wsproto
import wsproto.events as ws_events

from aio_trader.sandbox import Sandbox, SandboxConfig


def client(url: str, tokens: list[int], mode: str, seconds: float) -> dict[str, float]:
    """Subscribe ``tokens`` in ``mode`` and count tick frames for ``seconds``."""
    hostport, _, rest = url.removeprefix("ws://").partition("/")
    host, port = hostport.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    sock.sendall(ws.send(ws_events.Request(host=hostport, target="/" + rest)))
    frames = ticks = size = 0
    message = bytearray()
    start: float | None = None
    while start is None or time.perf_counter() - start < seconds:
        data = sock.recv(1 << 20)
        if not data:
            raise SystemExit("the sandbox closed the connection")
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, ws_events.AcceptConnection):
                for action, value in (("subscribe", tokens), ("mode", [mode, tokens])):
                    text = json.dumps({"a": action, "v": value})
                    sock.sendall(ws.send(ws_events.TextMessage(data=text)))
            elif isinstance(event, ws_events.RejectConnection):
                raise SystemExit(f"handshake refused: HTTP {event.status_code}")
            elif isinstance(event, ws_events.BytesMessage):
                # wsproto hands a large message over in pieces as they arrive
                message += event.data
                if not event.message_finished:
                    continue
                if len(message) > 2 and start is None:
                    start = time.perf_counter()  # the first frame is not timed
                elif len(message) > 2:
                    frames += 1
                    ticks += int.from_bytes(message[:2], "big")
                    size += len(message)
                message = bytearray()
            elif isinstance(event, ws_events.Ping):
                sock.sendall(ws.send(event.response()))
    elapsed = time.perf_counter() - start
    sock.close()
    return {
        "frames_per_s": round(frames / elapsed),
        "ticks_per_s": round(ticks / elapsed),
        "mbytes_per_s": round(size / elapsed / 1e6, 1),
        "ticks_per_frame": ticks / frames if frames else 0.0,
    }


async def rest_latencies(sb: Sandbox, latencies: list[float]) -> None:
    """GET /user/profile five times a second while the ticker sends flat out (until cancelled)."""
    headers = {"X-Kite-Version": "3", "Authorization": f"token {sb.api_key}:{sb.access_token}"}
    async with httpx.AsyncClient(base_url=sb.root_url, headers=headers) as rest:
        while True:
            start = time.perf_counter()
            reply = await rest.get("/user/profile")
            reply.raise_for_status()
            latencies.append(time.perf_counter() - start)
            await anyio.sleep(0.2)


async def serve_and_measure(args: argparse.Namespace) -> dict[str, Any]:
    async with Sandbox(SandboxConfig(tick_interval=0.0)) as sb:
        instruments = sb.state.market.instruments
        tokens = [t for t, i in instruments.items() if i.segment != "INDICES"][: args.tokens]
        if len(tokens) < args.tokens:
            raise SystemExit(f"the sandbox has only {len(tokens)} tradable instruments")
        url = f"{sb.ticker_url}?api_key={sb.api_key}&access_token={sb.access_token}"
        command = [
            sys.executable, __file__, "--client", url, "--mode", args.mode,
            "--seconds", str(args.seconds), "--token-list", json.dumps(tokens),
        ]  # fmt: skip
        latencies: list[float] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(rest_latencies, sb, latencies)
            result = await anyio.run_process(command, check=False)
            tg.cancel_scope.cancel()
        if result.returncode:
            raise SystemExit(f"the client failed:\n{result.stderr.decode()}")
        measured: dict[str, Any] = json.loads(result.stdout)
        stats = sb.state.stats
        measured.update(
            backend=args.backend,
            mode=args.mode,
            tokens=args.tokens,
            server_frames_sent=stats.ws_frames_sent,
            server_ticks_sent=stats.ws_ticks_sent,
            rest_calls_meanwhile=len(latencies),
            rest_latency_ms_median=round(statistics.median(latencies) * 1000, 2),
            rest_latency_ms_max=round(max(latencies) * 1000, 2),
        )
        return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--mode", choices=("ltp", "quote", "full"), default="full")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--token-list", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        tokens = json.loads(args.token_list)
        print(json.dumps(client(args.client, tokens, args.mode, args.seconds)))
        return
    print(json.dumps(anyio.run(serve_and_measure, args, backend=args.backend)))


if __name__ == "__main__":
    main()
