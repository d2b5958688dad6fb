"""The sandbox's lifetime: cancelled from outside, it still shuts down cleanly."""

from __future__ import annotations

import anyio
import httpx
import pytest

from aio_trader.sandbox import Sandbox


async def test_outside_cancellation_after_serving_shuts_down_cleanly() -> None:
    # the enclosing scope is cancelled once the sandbox served (not on a deadline, which a
    # slow start on a loaded machine could beat)
    with anyio.CancelScope() as scope:
        async with Sandbox() as sb:
            port = sb.port
            async with httpx.AsyncClient() as client:
                answer = await client.get(sb.root_url + "/__sandbox__/ping")
                assert answer.status_code == 200
            scope.cancel()
            await anyio.sleep(30)
    assert scope.cancelled_caught
    with pytest.raises(OSError, match=r"connect|refused"):
        await anyio.connect_tcp("127.0.0.1", port)


async def test_outside_cancellation_with_a_connection_still_open() -> None:
    async with httpx.AsyncClient() as client:
        with anyio.CancelScope() as scope:
            async with Sandbox() as sb:
                answer = await client.get(sb.root_url + "/__sandbox__/ping")
                assert answer.status_code == 200  # keep-alive: the connection stays open
                scope.cancel()
                await anyio.sleep(30)
        assert scope.cancelled_caught
