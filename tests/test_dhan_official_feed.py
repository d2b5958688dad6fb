"""Dhan's official SDK (``dhanhq``) against the sandbox's Dhan sockets, unchanged but for
its base URLs: ``MarketFeed`` in ticker, quote and full mode (and its disconnect: a JSON
``RequestCode 12`` then a binary v1 header, which the sandbox tolerates) and
``OrderUpdate``. The SDK runs its own asyncio loop: it runs in a worker thread, every wait
bounded, while the sandbox serves from the test's event loop (asyncio or trio)."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import httpx
import pytest

from aio_trader.sandbox import Sandbox, SandboxConfig

dhanhq = pytest.importorskip("dhanhq")

BOUND = 20.0  # seconds: every wait of the SDK's loop is bounded by it


class _Done(Exception):
    """Raised from the SDK's callback to leave its endless loop."""


def _market_feed(url: str, client_id: str, token: str, request_code: int) -> list[dict[str, Any]]:
    """Connect Dhan's MarketFeed, read until its mode's packets came, disconnect."""
    from dhanhq import DhanContext, MarketFeed

    MarketFeed.market_feed_wss = url
    instruments = [(MarketFeed.NSE, "1333", request_code), (MarketFeed.IDX, "13", request_code)]
    feed = MarketFeed(DhanContext(client_id, token), instruments, version="v2")
    got: list[dict[str, Any]] = []
    try:
        feed.loop.run_until_complete(asyncio.wait_for(feed.connect(), BOUND))
        kinds = {15: "Ticker Data", 17: "Quote Data", 21: "Full Data"}
        wanted = kinds[request_code]
        while sum(1 for item in got if item.get("type") == wanted) < 4:
            data = feed.loop.run_until_complete(asyncio.wait_for(feed.get_instrument_data(), BOUND))
            if isinstance(data, dict):
                got.append(data)
        feed.close_connection()  # RequestCode 12, then the v1 binary header, then close
    finally:
        feed.loop.close()
    return got


@pytest.mark.parametrize(("request_code", "kind"), [(15, "Ticker"), (17, "Quote"), (21, "Full")])
async def test_sdk_market_feed(request_code: int, kind: str) -> None:
    async with Sandbox(SandboxConfig(broker="dhan", tick_interval=0.02)) as sb:
        original = dhanhq.MarketFeed.market_feed_wss
        try:
            got = await anyio.to_thread.run_sync(
                _market_feed, sb.feed_url, sb.client_id, sb.access_token, request_code
            )
        finally:
            dhanhq.MarketFeed.market_feed_wss = original
        ticks = [item for item in got if item["type"] == f"{kind} Data"]
        assert {item["security_id"] for item in ticks} <= {1333, 13}
        assert {item["exchange_segment"] for item in got} <= {0, 1}
        assert all(float(item["LTP"]) > 0 for item in ticks)
        closes = [item for item in got if item["type"] == "Previous Close"]
        assert {item["security_id"] for item in closes} == {1333, 13}
        if kind == "Full":
            assert all(len(item["depth"]) == 5 for item in ticks)
        # the SDK's disconnect left the sandbox serving: a new connection is answered
        again = await anyio.to_thread.run_sync(
            _market_feed, sb.feed_url, sb.client_id, sb.access_token, 15
        )
        assert any(item["type"] == "Ticker Data" for item in again)


def _order_updates(url: str, client_id: str, token: str, count: int) -> list[dict[str, Any]]:
    from dhanhq import DhanContext, OrderUpdate

    socket = OrderUpdate(DhanContext(client_id, token))
    socket.order_feed_wss = url
    got: list[dict[str, Any]] = []

    def on_update(message: dict[str, Any]) -> None:
        got.append(message)
        if len(got) >= count:
            raise _Done

    socket.on_update = on_update
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(socket.connect_order_update(), BOUND))
    except _Done:
        pass
    finally:
        loop.close()
    return got


async def test_sdk_order_update() -> None:
    async with Sandbox(SandboxConfig(broker="dhan", tick_interval=0.02)) as sb:
        before = sb.state.stats.ws_connections
        async with anyio.create_task_group() as tg:
            result: list[list[dict[str, Any]]] = []

            async def listen() -> None:
                result.append(
                    await anyio.to_thread.run_sync(
                        _order_updates, sb.order_feed_url, sb.client_id, sb.access_token, 1
                    )
                )

            tg.start_soon(listen)
            with anyio.fail_after(BOUND):
                while sb.state.stats.ws_connections == before:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            body = {
                "dhanClientId": sb.client_id,
                "transactionType": "BUY",
                "exchangeSegment": "NSE_EQ",
                "productType": "CNC",
                "orderType": "LIMIT",
                "validity": "DAY",
                "securityId": "1333",
                "quantity": 1,
                "price": sb.state.market.last_price((1 << 32) | 1333),
            }
            headers = {"access-token": sb.access_token, "client-id": sb.client_id}
            async with httpx.AsyncClient() as client:
                answer = await client.post(f"{sb.root_url}/orders", json=body, headers=headers)
            order_id = answer.json()["orderId"]
        (message,) = result[0]
        assert message["Type"] == "order_alert"
        assert message["Data"]["orderNo"] == order_id
        assert message["Data"]["securityId"] == "1333"
