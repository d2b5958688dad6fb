"""Kite's official ``KiteTicker`` (twisted + autobahn), pointed at the sandbox, works unchanged.

Twisted's reactor can start only once per process, so the official client runs in a
subprocess (the script below) that prints what it receives as JSON lines and ends itself
after it has seen every (token, mode) it asked for and an order postback, or after a
deadline.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.sandbox._kite._quotes import snapshot

pytest.importorskip("kiteconnect")

#: The subprocess gives up after this many seconds (it then reports what it missed).
CLIENT_DEADLINE = 30.0

CLIENT = r"""
import json, os, sys, threading
from kiteconnect import KiteTicker

url, api_key, access_token, plan = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
wanted = {(token, mode) for mode, tokens in plan["modes"].items() for token in tokens}
seen, order_seen, done, lock = set(), threading.Event(), threading.Event(), threading.Lock()
connects = []  # callbacks all run on the reactor's thread

def emit(kind, data):
    line = json.dumps({"kind": kind, "data": data}, default=lambda d: d.timestamp())
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

def check():
    if len(connects) >= plan["connects"] and wanted <= seen and order_seen.is_set():
        done.set()

def on_connect(ws, response):
    connects.append(1)
    seen.clear()  # what counts is what arrives on the latest connection
    if len(connects) == 1:  # after a reconnect, KiteTicker resubscribes by itself
        for mode, tokens in plan["modes"].items():
            ws.subscribe(tokens)
            ws.set_mode(mode, tokens)
    emit("connected", len(connects))

def on_ticks(ws, ticks):
    for tick in ticks:
        emit("tick", tick)
        seen.add((tick["instrument_token"], tick["mode"]))
    check()

def on_order_update(ws, data):
    emit("order", data)
    order_seen.set()
    check()

def on_error(ws, code, reason):
    emit("error", [code, str(reason)])

ticker = KiteTicker(api_key, access_token, root=url, reconnect=plan["connects"] > 1)
ticker.on_connect, ticker.on_ticks = on_connect, on_ticks
ticker.on_order_update, ticker.on_error = on_order_update, on_error
ticker.connect(threaded=True)
done.wait(plan["deadline"])
missing = sorted(wanted - seen)
emit("end", {"complete": done.is_set(), "connects": len(connects), "missing": missing})
os._exit(0)
"""


def plain(value: Any) -> Any:
    """A tick dict in JSON terms: datetimes as epoch seconds, tuples as lists."""
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def assert_same(got: Any, expected: Any, path: str = "tick") -> None:
    """Equal, with floats compared to the wire's precision."""
    if isinstance(expected, float) or isinstance(got, float):
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-7), (path, got, expected)
    elif isinstance(expected, dict):
        assert got.keys() == expected.keys(), path
        for key in expected:
            assert_same(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), path
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_same(a, b, f"{path}[{i}]")
    else:
        assert got == expected, (path, got, expected)


async def test_official_kite_ticker_receives_all_modes_and_postbacks_and_reconnects(
    tmp_path: Path,
) -> None:
    """Ticks in every mode (index kinds too) equal to the sandbox's state, an order postback,
    and after a dropped connection KiteTicker's own reconnect and resubscription."""
    config = SandboxConfig(tick_interval=0.05, market_interval=None)  # a still market
    async with Sandbox(config) as sb:
        segments: dict[str, int] = {}
        for token, instrument in sb.state.market.instruments.items():
            segments.setdefault(instrument.segment, token)
        indices = [t for t, i in sb.state.market.instruments.items() if i.segment == "INDICES"]
        modes = {
            "ltp": [segments["NSE"], segments["BCD-FUT"]],
            "quote": [segments["MCX-FUT"], indices[0]],
            "full": [segments["NFO-OPT"], segments["CDS-FUT"], indices[1]],
        }
        plan = {"modes": modes, "deadline": CLIENT_DEADLINE, "connects": 2}
        command = [
            sys.executable, "-c", CLIENT, sb.ticker_url, sb.api_key, sb.access_token,
            json.dumps(plan),
        ]  # fmt: skip
        lines: list[dict[str, Any]] = []
        errors = tmp_path / "stderr.txt"
        with errors.open("wb") as stderr:
            async with await anyio.open_process(command, stderr=stderr) as process:
                assert process.stdout is not None
                stdout = BufferedByteReceiveStream(process.stdout)
                dropped_at = None
                with contextlib.suppress(anyio.EndOfStream, anyio.IncompleteRead):
                    while True:
                        lines.append(json.loads(await stdout.receive_until(b"\n", 1 << 22)))
                        if lines[-1] == {"kind": "connected", "data": 1}:
                            await place_order(sb)
                        elif lines[-1]["kind"] == "order" and dropped_at is None:
                            dropped_at = len(lines)
                            sb.drop_websockets()  # KiteTicker must reconnect by itself
                await process.wait()
        end = {"kind": "end", "data": {"complete": True, "connects": 2, "missing": []}}
        assert lines[-1:] == [end], (lines[-3:], errors.read_text()[-3000:])
        assert sb.state.stats.ws_connections == 2

        ticks = [line["data"] for line in lines if line["kind"] == "tick"]
        for token, mode in [(t, m) for m, ts in modes.items() for t in ts]:
            received = [t for t in ticks if t["instrument_token"] == token and t["mode"] == mode]
            assert received, (token, mode)
            expected = plain(snapshot(sb.state.market, token, mode).to_dict())
            assert_same(received[-1], expected, f"{token}/{mode}")
            assert received[-1]["tradable"] == (token not in indices)

        orders = [line["data"] for line in lines if line["kind"] == "order"]
        assert orders
        assert {o["tradingsymbol"] for o in orders} == {"INFY"}
        # the drop is a network failure to autobahn: an unclean close, code 1006, nothing else
        assert dropped_at is not None
        failures = [(i, line["data"][0]) for i, line in enumerate(lines) if line["kind"] == "error"]
        assert failures
        assert all(i >= dropped_at and code == 1006 for i, code in failures), failures


async def place_order(sb: Sandbox) -> None:
    headers = {"X-Kite-Version": "3", "Authorization": f"token {sb.api_key}:{sb.access_token}"}
    order = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "transaction_type": "BUY",
        "quantity": "1",
        "product": "CNC",
        "order_type": "MARKET",
        "market_protection": "-1",
        "validity": "DAY",
    }
    async with httpx.AsyncClient(base_url=sb.root_url) as rest:
        reply = await rest.post("/orders/regular", data=order, headers=headers)
    assert reply.status_code == 200, reply.text
