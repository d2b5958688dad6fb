"""Kite's official Node client (``kiteconnect`` on npm), unchanged, against the sandbox: the
login exchange, REST (quotes, the instrument CSV, candles, orders, a refusal) and the ticker
(full ticks, an order postback).

Runs ``tests/node/official_client.js`` with Node. Skipped when ``node`` is not installed or
the client is not: ``scripts/test.sh`` installs it with ``npm install`` in ``tests/node``
when npm is there (by hand: ``cd tests/node && npm install``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.sandbox.orders import MARKET_PROTECTION_REQUIRED

NODE_DIR = Path(__file__).parent / "node"
SCRIPT = NODE_DIR / "official_client.js"


@pytest.fixture
def node() -> str:
    """The node executable, once the Kite client resolves from ``tests/node``; else skip."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    found = subprocess.run(
        [node, "-e", "require.resolve('kiteconnect')"],
        cwd=NODE_DIR,
        capture_output=True,
        check=False,
        timeout=60,
    )
    if found.returncode != 0:
        pytest.skip("Kite's Node client is not installed: cd tests/node && npm install")
    return node


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(seed=4, rate_limit_scale=1000, tick_interval=0.05)) as s:
        yield s


async def run_client(sb: Sandbox, node: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sb.root_url) as http:
        login = await http.get("/connect/login", params={"api_key": sb.api_key, "v": "3"})
    request_token = httpx.URL(login.headers["location"]).params["request_token"]
    env = {
        **os.environ,
        "SANDBOX_ROOT": sb.root_url,
        "SANDBOX_TICKER": sb.ticker_url,
        "API_KEY": sb.api_key,
        "API_SECRET": sb.api_secret,
        "REQUEST_TOKEN": request_token,
    }
    # the sandbox serves from this event loop while the client runs in its own process
    done = await anyio.run_process([node, str(SCRIPT)], cwd=NODE_DIR, env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def test_official_node_client_rest_and_ticker(node: str, sb: Sandbox) -> None:
    out = await run_client(sb, node)

    assert out["session"] == {"user_id": sb.user_id, "access_token": sb.access_token}
    assert out["profile"] == sb.user_id
    assert out["ltp"] > 0
    assert out["quote"] == {"buy_levels": 5, "has_ohlc": True}
    # the dump parsed as CSV (the client does so only for `Content-Type: text/csv`)
    nse = [i for i in sb.state.market.instruments.values() if i.exchange == "NSE"]
    assert out["instruments"] == {"count": len(nse), "infy": "408065"}  # the client's str
    assert out["candles"] == {"count": 5, "date_is_date": True}
    order_id = out["order"]["order_id"]
    assert sb.state.book.orders[order_id].tag == "node"
    assert out["order"]["statuses"][-1] == "COMPLETE"
    assert out["refused"] == {"error_type": "InputException", "message": MARKET_PROTECTION_REQUIRED}

    ticker = out["ticker"]
    assert ticker["stock"]["last_price"] > 0
    assert ticker["stock"]["buy_levels"] == ticker["stock"]["sell_levels"] == 5
    assert ticker["stock"]["has_timestamp"] is True
    assert ticker["stock"]["tradable"] is True
    assert ticker["index"]["last_price"] > 0
    assert ticker["index"]["tradable"] is False
    update = ticker["update"]
    assert update["tag"] == "nodews"
    assert sb.state.book.orders[update["order_id"]].tag == "nodews"
