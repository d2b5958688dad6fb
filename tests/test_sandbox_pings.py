"""The sandbox's WebSocket pings (Dhan's server pings its feed sockets every 10 s): sent by
a task of the sandbox core that ends with its connection, so a sandbox with Dhan feed
connections open shuts down at once, on both backends, with no traceback on stderr and no
error logged (hypercorn's own ping task slept a whole interval past the close: asyncio
logged a CancelledError for every connection at the end of the grace period)."""

from __future__ import annotations

import contextlib
import json
import logging

import anyio
import anyio.abc
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request, TextMessage

from aio_trader.dhan import DhanFeed
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.sandbox._dhan import DhanDialect

HANG = 30.0  # a bound on waits that end in milliseconds, not a timing assertion


def no_errors(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "CancelledError" not in err
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


async def open_socket(sb: Sandbox, target: str, first: str | None = None) -> anyio.abc.SocketStream:
    """A raw WebSocket client connection (wsproto over TCP), handshake done, ``first``
    sent; no task or cancel scope of its own, so it can stay open past the sandbox."""
    client = WSConnection(ConnectionType.CLIENT)
    stream = await anyio.connect_tcp(sb.host, sb.port)
    await stream.send(client.send(Request(host=sb.host, target=target)))
    while not any(isinstance(event, AcceptConnection) for event in client.events()):
        client.receive_data(await stream.receive())
    if first is not None:
        await stream.send(client.send(TextMessage(first)))
    return stream


async def test_a_sandbox_with_dhan_feed_connections_open_stops_cleanly(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with contextlib.AsyncExitStack() as clients:  # outlives the sandbox
        async with Sandbox(SandboxConfig(broker="dhan", tick_interval=0.02)) as sb:
            token, client_id = sb.access_token, sb.client_id
            subscribe = {
                "RequestCode": 21,
                "InstrumentCount": 1,
                "InstrumentList": [{"ExchangeSegment": "NSE_EQ", "SecurityId": "1333"}],
            }
            login = {"LoginReq": {"MsgCode": 42, "ClientId": client_id, "Token": token}}
            with anyio.fail_after(HANG):
                feed = await open_socket(
                    sb,
                    f"/feed?version=2&token={token}&clientId={client_id}&authType=2",
                    json.dumps(subscribe),
                )
                clients.push_async_callback(feed.aclose)
                orders = await open_socket(
                    sb, "/order-update", json.dumps({**login, "UserType": "SELF"})
                )
                clients.push_async_callback(orders.aclose)
                await feed.receive()  # the feed is serving
                while sb.state.stats.ws_pings_sent < 2:  # noqa: ASYNC110 - polls a counter
                    await anyio.sleep(0.01)  # each socket is pinged once accepted
            stats = sb.state.stats
            assert stats.ws_pinged_sockets == 2  # the market feed and the order updates
        # the sandbox is gone; it dropped the sockets, still open on the client's side
        assert stats.ws_pinged_sockets == 0  # every ping task ended with its connection
    no_errors(capfd, caplog)


async def test_a_closed_feed_leaves_no_ping_task_behind(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    async with Sandbox(SandboxConfig(broker="dhan", tick_interval=0.02)) as sb:
        async with DhanFeed(
            sb.client_id, sb.access_token, root=sb.feed_url, order_root=sb.order_feed_url
        ) as feed:
            await feed.subscribe([("NSE_EQ", "1333")])
            with anyio.fail_after(HANG):
                async for _item in feed:
                    break
        with anyio.fail_after(HANG):
            while sb.state.stats.ws_pinged_sockets:  # noqa: ASYNC110 - polls a counter
                await anyio.sleep(0.01)
    no_errors(capfd, caplog)


async def test_pings_come_every_interval_until_the_socket_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dhan's SDK sees a ping every ``ws_ping_interval`` (10 s; shortened here)."""
    monkeypatch.setattr(DhanDialect, "ws_ping_interval", 0.02)
    async with Sandbox(SandboxConfig(broker="dhan")) as sb:
        client = WSConnection(ConnectionType.CLIENT)
        target = f"/feed?version=2&token={sb.access_token}&clientId={sb.client_id}&authType=2"
        with anyio.fail_after(HANG):
            async with await anyio.connect_tcp(sb.host, sb.port) as stream:
                await stream.send(client.send(Request(host=sb.host, target=target)))
                accepted, pings = False, 0
                while pings < 3:  # the first at once, then one per interval
                    client.receive_data(await stream.receive())
                    for event in client.events():
                        if isinstance(event, AcceptConnection):
                            accepted = True
                        elif isinstance(event, Ping):
                            pings += 1
                            await stream.send(client.send(event.response()))
                assert accepted
                assert sb.state.stats.ws_pinged_sockets == 1
                await stream.send(client.send(CloseConnection(code=1000)))
                while sb.state.stats.ws_pinged_sockets:  # noqa: ASYNC110 - polls a counter
                    await anyio.sleep(0.01)
        assert sb.state.stats.ws_pings_sent >= 3


async def test_kite_sockets_are_not_pinged() -> None:
    """Kite's ticker has its own heartbeat (1-byte frames): its dialect sets no interval."""
    async with Sandbox(SandboxConfig(tick_interval=0.02)) as sb:
        client = WSConnection(ConnectionType.CLIENT)
        target = f"/ws?api_key={sb.api_key}&access_token={sb.access_token}"
        with anyio.fail_after(HANG):
            async with await anyio.connect_tcp(sb.host, sb.port) as stream:
                await stream.send(client.send(Request(host=sb.host, target=target)))
                accepted = False
                while not accepted:
                    client.receive_data(await stream.receive())
                    accepted = any(isinstance(e, AcceptConnection) for e in client.events())
                await stream.send(client.send(CloseConnection(code=1000)))
        assert sb.state.stats.ws_pings_sent == 0
        assert sb.state.stats.ws_pinged_sockets == 0
