"""The feed engine with a second, Dhan-shaped protocol, over real loopback sockets.

The sandbox speaks Kite only, so this file serves a small WebSocket server of its own
(anyio TCP + wsproto) that talks the shape of Dhan's feed (``/work/shared/dhan-api.md``):
credentials in the query string, JSON requests with a request code and at most 100
instruments each, little-endian binary packets keyed by ``(segment, security_id)``, a
disconnect packet (code 50) with a reason inside the stream, WebSocket ping/pong as the
heartbeat, and order updates on a second socket that logs in with a message. It checks
that the engine serves that shape without a line of broker code in it: tuple keys, the
per-message limit, a side socket merged into the one stream, in-stream refusals (fatal and
healing), credentials read on each connect.
"""

from __future__ import annotations

import contextlib
import json
import struct
import urllib.parse
from collections.abc import AsyncIterator, Iterable
from typing import Any, ClassVar, Literal

import anyio
import anyio.abc
import attrs
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from aio_trader.backoff import Backoff
from aio_trader.errors import AioTraderError, ConnectionLost
from aio_trader.feed import (
    FeedConnected,
    FeedDisconnected,
    FeedEngine,
    FeedProtocol,
    Handshake,
    Message,
    Sender,
)

HANG = 30.0
FAST = Backoff(base=0.05, factor=2.0, cap=0.2, max_attempts=5)
Key = tuple[str, str]
SEGMENTS = {"NSE_EQ": 1, "NSE_FNO": 2}
CODES = {"ticker": (15, 16), "quote": (17, 18)}


# -- the server --------------------------------------------------------------------------------


@attrs.define
class Server:
    """A Dhan-shaped feed on loopback: ``/feed`` ticks, ``/orders`` order updates."""

    token: str = "jwt-1"
    port: int = 0
    requests: list[dict[str, Any]] = attrs.Factory(list)
    logins: list[dict[str, Any]] = attrs.Factory(list)
    subscribed: dict[Key, str] = attrs.Factory(dict)
    feeds: list[Any] = attrs.Factory(list)  # open feed connections' send functions
    orders: list[Any] = attrs.Factory(list)
    connects: int = 0
    pong: bool = True  # answer the client's pings

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener:
            task_status.started()
            await listener.serve(self._connection)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        lock = anyio.Lock()

        async def send(event: Any) -> None:
            async with lock:
                with contextlib.suppress(
                    anyio.BrokenResourceError, anyio.ClosedResourceError, LocalProtocolError
                ):
                    await stream.send(ws.send(event))

        path = ""
        async with stream:
            while True:
                try:
                    data = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        url = urllib.parse.urlsplit(event.target)
                        path = url.path
                        query = dict(urllib.parse.parse_qsl(url.query))
                        if path == "/feed" and query.get("token") != self.token:
                            await send(RejectConnection(status_code=401))
                            return
                        self.connects += 1
                        await send(AcceptConnection())
                        (self.feeds if path == "/feed" else self.orders).append(send)
                    elif isinstance(event, Ping):
                        if self.pong:
                            await send(event.response())
                    elif isinstance(event, TextMessage):
                        message = json.loads(event.data)
                        if path == "/orders":
                            self.logins.append(message)
                        else:
                            self.requests.append(message)
                            self._apply(message)
                    elif isinstance(event, CloseConnection):
                        await send(event.response())
                        return

    def _apply(self, message: dict[str, Any]) -> None:
        code = message["RequestCode"]
        for item in message["InstrumentList"]:
            key = (item["ExchangeSegment"], item["SecurityId"])
            for mode, (subscribe, unsubscribe) in CODES.items():
                if code == subscribe:
                    self.subscribed[key] = mode
                elif code == unsubscribe:
                    self.subscribed.pop(key, None)

    async def tick(self) -> None:
        """One binary message: a ticker packet per subscribed instrument, little-endian."""
        packets = b"".join(
            struct.pack("<BhBifi", 2, 16, SEGMENTS[seg], int(sid), 100.5, 1_700_000_000)
            for (seg, sid) in self.subscribed
        )
        for send in list(self.feeds):
            await send(BytesMessage(packets))

    async def disconnect(self, reason: int) -> None:
        """Dhan's disconnect packet (code 50, 10 bytes) with a reason code, then close."""
        for send in list(self.feeds):
            await send(BytesMessage(struct.pack("<BhBih", 50, 10, 1, 0, reason)))
            await send(CloseConnection(code=1000))
        self.feeds.clear()

    async def order_update(self, number: str) -> None:
        for send in list(self.orders):
            await send(
                TextMessage(json.dumps({"Type": "order_alert", "Data": {"OrderNo": number}}))
            )


# -- the protocol and the feed: what a broker package writes -------------------------------------


class TokenExpired(AioTraderError):
    pass


@attrs.frozen
class Tick:
    key: Key
    ltp: float
    mode: str = "ticker"


@attrs.frozen
class Order:
    number: str


class DhanShaped(FeedProtocol[Key]):
    name: ClassVar[str] = "dhan-shaped"
    modes: ClassVar[tuple[str, ...]] = ("ticker", "quote")
    heartbeat: ClassVar[Literal["frames", "ping"]] = "ping"
    ping_interval: ClassVar[float] = 0.5
    side_sockets: ClassVar[tuple[str, ...]] = ("orders",)

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.max_instruments = 5000
        self.max_connections = 5
        self.max_per_message = 100

    def check_keys(self, keys: object) -> list[Key]:
        out = list(dict.fromkeys(keys))  # type: ignore[call-overload]
        for key in out:
            if not (isinstance(key, tuple) and len(key) == 2 and key[0] in SEGMENTS):
                raise ValueError(f"a key is (segment, security_id), got {key!r}")
        return out

    async def handshake(self, socket: str | None) -> Handshake:
        if socket == "orders":
            return Handshake(f"ws://127.0.0.1:{self.port}/orders")
        params = {"version": "2", "token": self.token, "clientId": "C1", "authType": "2"}
        return Handshake(f"ws://127.0.0.1:{self.port}/feed", params)

    def secrets(self) -> Iterable[str]:
        return [self.token]

    def login(self, socket: str | None) -> list[Message]:
        if socket != "orders":
            return []
        login = {"LoginReq": {"MsgCode": 42, "ClientId": "C1", "Token": self.token}}
        return [json.dumps({**login, "UserType": "SELF"})]

    def _request(self, code: int, keys: list[Key]) -> Message:
        instruments = [{"ExchangeSegment": seg, "SecurityId": sid} for seg, sid in keys]
        return json.dumps(
            {"RequestCode": code, "InstrumentCount": len(keys), "InstrumentList": instruments}
        )

    def subscribe(self, mode: str, keys: list[Key]) -> list[Message]:
        return [self._request(CODES[mode][0], keys)]

    def unsubscribe(self, mode: str, keys: list[Key]) -> list[Message]:
        return [self._request(CODES[mode][1], keys)]

    def set_mode(self, mode: str, keys: list[Key], previous: str) -> list[Message]:
        return [*self.unsubscribe(previous, keys), *self.subscribe(mode, keys)]

    def refusal(self, status: int) -> AioTraderError | None:
        return TokenExpired(f"refused with HTTP {status}") if status == 401 else None


class DhanShapedFeed(FeedEngine[Key, Any]):
    @staticmethod
    def _is_record(item: object) -> bool:
        return isinstance(item, Order)

    @staticmethod
    def _key_of(item: Any) -> Key:
        return item.key  # type: ignore[no-any-return]

    async def _on_binary(
        self, data: bytes | bytearray, send: Sender, received: float, connection: int
    ) -> None:
        ticks: list[Tick] = []
        names = {v: k for k, v in SEGMENTS.items()}
        offset = 0
        while offset + 8 <= len(data):
            code, length, segment, sid = struct.unpack_from("<BhBi", data, offset)
            if code == 50:
                (reason,) = struct.unpack_from("<h", data, offset + 8)
                if reason == 807:
                    raise TokenExpired("the server disconnected: access token expired (807)")
                raise ConnectionLost(f"the server disconnected (reason {reason})")
            if code == 2:
                (ltp,) = struct.unpack_from("<f", data, offset + 8)
                ticks.append(Tick((names[segment], str(sid)), ltp))
            offset += length
        self._counters.ticks += len(ticks)
        if self._switching:
            ticks = self._in_asked_mode(ticks)
        await self._channel.put_items(send, ticks)

    async def _on_text(self, data: str, send: Sender, received: float, connection: int) -> None:
        message = json.loads(data)
        self._counters.order_updates += 1
        await self._channel.put_record(send, Order(message["Data"]["OrderNo"]))


@contextlib.asynccontextmanager
async def server() -> AsyncIterator[Server]:
    srv = Server()
    async with anyio.create_task_group() as tg:
        await tg.start(srv.serve)
        yield srv
        tg.cancel_scope.cancel()


def feed_for(srv: Server, **options: Any) -> DhanShapedFeed:
    options.setdefault("backoff", FAST)
    options.setdefault("stable_after", 0.5)
    return DhanShapedFeed(
        DhanShaped(srv.port, srv.token), default_mode="ticker", watchdog=2.0, **options
    )


async def until(condition: Any) -> None:
    with anyio.fail_after(HANG):
        while not condition():  # noqa: ASYNC110 (the server's state, nothing to wait on)
            await anyio.sleep(0.005)


async def next_item(feed: DhanShapedFeed) -> Any:
    with anyio.fail_after(HANG):
        return await anext(aiter(feed))


# -- the tests ---------------------------------------------------------------------------------


async def test_tuple_keys_messages_split_at_100_and_a_side_socket_merged() -> None:
    async with server() as srv:
        keys = [("NSE_EQ", str(n)) for n in range(1, 151)]
        feed = feed_for(srv)
        events = feed.connection_events()
        async with feed:
            # the order socket logged in with its message, the first thing it sent
            await until(lambda: len(srv.logins) == 1)
            login = {"LoginReq": {"MsgCode": 42, "ClientId": "C1", "Token": "jwt-1"}}
            assert srv.logins == [{**login, "UserType": "SELF"}]
            await feed.subscribe(keys, "ticker")
            await until(lambda: len(srv.subscribed) == 150)
            assert [r["InstrumentCount"] for r in srv.requests] == [100, 50]
            await srv.tick()
            await srv.order_update("O-1")
            first = await next_item(feed)
            assert first == Tick(("NSE_EQ", "1"), 100.5)
            items = [first]
            while not isinstance(items[-1], Order):
                items.append(await next_item(feed))
            assert len(items) == 151  # the ticks of the frame, then the update
            assert items[-1] == Order("O-1")
            await feed.set_mode("quote", keys[:2])  # unsubscribe ticker, subscribe quote
            await until(lambda: len(srv.requests) == 4)
            assert [r["RequestCode"] for r in srv.requests[-2:]] == [16, 17]
            await feed.unsubscribe(keys[:2])
            await until(lambda: len(srv.requests) == 5)
            assert srv.requests[-1]["RequestCode"] == 18  # by the mode they were in
            assert feed.statistics().order_updates == 1
        seen = [event async for event in events]
        assert {e.connection for e in seen if isinstance(e, FeedConnected)} == {0, 1000}


async def test_an_in_stream_disconnect_that_heals_reconnects_with_the_new_token() -> None:
    async with server() as srv:
        feed = feed_for(srv)
        events = feed.connection_events()
        async with feed:
            await feed.subscribe([("NSE_FNO", "42")])
            await until(lambda: len(srv.subscribed) == 1)
            srv.token = "jwt-2"  # the server now wants the renewed token
            feed._protocol.token = "jwt-2"  # type: ignore[attr-defined]  # as a provider would
            await srv.disconnect(805)  # too many connections: heals
            with anyio.fail_after(HANG):
                async for event in events:
                    if isinstance(event, FeedDisconnected) and event.connection == 0:
                        assert "805" in event.reason
                        assert event.attempt == 1
                    if isinstance(event, FeedConnected) and event.reconnect:
                        break
            await srv.tick()
            assert await next_item(feed) == Tick(("NSE_FNO", "42"), 100.5)


async def test_an_in_stream_fatal_disconnect_comes_out_of_async_with_as_itself() -> None:
    async with server() as srv:

        async def run() -> None:
            async with feed_for(srv) as feed:
                await feed.subscribe([("NSE_EQ", "7")])
                await until(lambda: len(srv.subscribed) == 1)
                await srv.disconnect(807)
                async for _ in feed:
                    pass

        with pytest.raises(TokenExpired, match="807"):
            await run()


async def test_a_refused_handshake_is_the_protocols_fatal_error() -> None:
    async with server() as srv:
        feed = feed_for(srv)
        srv.token = "someone-else"  # the feed's token is refused
        with pytest.raises(TokenExpired, match="401"):
            async with feed:
                pass
        assert srv.connects == 0  # refused at once, never retried (the side never started)


async def test_a_server_that_stops_answering_pings_is_dropped_and_reconnected() -> None:
    async with server() as srv:
        feed = feed_for(srv)
        events = feed.connection_events()
        async with feed:
            await feed.subscribe([("NSE_EQ", "9")])
            srv.pong = False  # the connection looks open, but the server is gone
            with anyio.fail_after(HANG):
                async for event in events:
                    if isinstance(event, FeedDisconnected) and event.connection == 0:
                        srv.pong = True
                    up = isinstance(event, FeedConnected) and event.reconnect
                    if up and srv.pong and event.connection == 0:  # the feed socket
                        break
            assert feed.statistics().reconnects >= 1
            await until(lambda: srv.connects >= 3)
            await srv.tick()
            assert await next_item(feed) == Tick(("NSE_EQ", "9"), 100.5)
