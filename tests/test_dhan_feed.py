"""DhanFeed end to end against the sandbox's Dhan sockets (real loopback sockets), on both
backends: ticks of each mode, order updates in arrival order, sharding, reconnects, Dhan's
disconnect reasons, credentials read on every reconnect, the 20-level depth feed; and the
protocol's messages and checks without I/O."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest

from aio_trader.backoff import Backoff
from aio_trader.dhan import (
    DhanDepthFeed,
    DhanFeed,
    ExchangeSegment,
    FeedMessage,
    FullTick,
    OpenInterest,
    OrderUpdate,
    PrevClose,
    QuoteTick,
    TickerTick,
    TwentyDepth,
)
from aio_trader.dhan._protocol import DhanProtocol, check_instruments, disconnect_error
from aio_trader.errors import ConnectionLost, PermissionDenied, SessionExpired
from aio_trader.feed import FeedConnected, FeedDisconnected
from aio_trader.sandbox import Sandbox, SandboxConfig

HANG = 30.0
FAST = Backoff(base=0.05, factor=2.0, cap=0.2, max_attempts=5)
HDFC, TCS, RELIANCE, INFY = ("NSE_EQ", 1333), ("NSE_EQ", 11536), ("NSE_EQ", 2885), ("NSE_EQ", 1594)
NIFTY = ("IDX_I", 13)


# -- helpers ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def dhan_sandbox(**config: Any) -> AsyncIterator[Sandbox]:
    config.setdefault("tick_interval", 0.02)
    async with Sandbox(SandboxConfig(broker="dhan", **config)) as sb:
        yield sb


def make_feed(sb: Sandbox, **kwargs: Any) -> DhanFeed:
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("stable_after", 0.5)
    kwargs.setdefault("watchdog", 2.0)
    return DhanFeed(
        kwargs.pop("client_id", sb.client_id),
        kwargs.pop("access_token", sb.access_token),
        root=sb.feed_url,
        order_root=kwargs.pop("order_root", sb.order_feed_url),
        **kwargs,
    )


async def place_order(sb: Sandbox, security_id: str = "1594", quantity: int = 1) -> str:
    """An order placed through the sandbox's Dhan REST (a LIMIT at the last price)."""
    token = (1 << 32) | int(security_id)
    price = sb.state.market.last_price(token)
    body = {
        "dhanClientId": sb.client_id,
        "transactionType": "BUY",
        "exchangeSegment": "NSE_EQ",
        "productType": "CNC",
        "orderType": "LIMIT",
        "validity": "DAY",
        "securityId": security_id,
        "quantity": quantity,
        "price": price,
    }
    headers = {"access-token": sb.access_token, "client-id": sb.client_id}
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{sb.root_url}/orders", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["orderId"])


async def admin(sb: Sandbox, route: str) -> None:
    """POST one of the sandbox's admin routes (under Dhan's /v2 root)."""
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{sb.root_url}/__sandbox__/{route}")
    assert answer.status_code == 200, answer.text


async def read_until(feed: DhanFeed | DhanDepthFeed, done: Callable[[Any], bool]) -> list[Any]:
    items: list[Any] = []
    with anyio.fail_after(HANG):
        async for item in feed:
            items.append(item)
            if done(item):
                return items
    raise AssertionError("the feed ended")


async def drain(feed: DhanFeed) -> None:
    """Read until the feed ends (it raises its error)."""
    with anyio.fail_after(HANG):
        async for _ in feed:
            pass


# -- the protocol, without I/O ---------------------------------------------------------------


def test_keys_are_normalised() -> None:
    keys = check_instruments(
        [("NSE_EQ", "1333"), (ExchangeSegment.NSE_EQ, 1333), ["nse_fno", 35001], ("IDX_I", 13)]
    )
    assert keys == [("NSE_EQ", 1333), ("NSE_FNO", 35001), ("IDX_I", 13)]
    assert all(type(segment) is str for segment, _ in keys)


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        (("NSE_EQ", 1333), TypeError),  # one pair, not a list of pairs
        ("NSE_EQ", TypeError),
        ([("NSE_EQ",)], TypeError),
        ([("NSE", 1333)], ValueError),
        ([("NSE_EQ", "13a")], ValueError),
        ([("NSE_EQ", 0)], ValueError),
        ([("NSE_EQ", 2**32)], ValueError),
        ([("NSE_EQ", 1.5)], TypeError),
        ([(1, 1333)], TypeError),
    ],
)
def test_bad_keys_are_refused_before_any_io(keys: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_instruments(keys)


def test_subscribe_messages_by_request_code() -> None:
    protocol = DhanProtocol(client_id="1", access_token="t", root="wss://x", order_root=None)
    (message,) = protocol.subscribe("full", [HDFC, NIFTY])
    assert json.loads(message) == {
        "RequestCode": 21,
        "InstrumentCount": 2,
        "InstrumentList": [
            {"ExchangeSegment": "NSE_EQ", "SecurityId": "1333"},
            {"ExchangeSegment": "IDX_I", "SecurityId": "13"},
        ],
    }
    assert json.loads(protocol.unsubscribe("ticker", [HDFC])[0])["RequestCode"] == 16
    switch = [json.loads(m)["RequestCode"] for m in protocol.set_mode("full", [HDFC], "quote")]
    assert switch == [18, 21]
    assert protocol.check_mode("ltp") == "ticker"
    assert protocol.max_per_message == 100
    assert (protocol.max_instruments, protocol.max_connections) == (5000, 5)
    with pytest.raises(ValueError, match="ticker"):
        protocol.check_mode("depth")


@pytest.mark.parametrize("reason", [807, 808, 809, 810])
def test_session_reasons_end_the_feed(reason: int) -> None:
    error = disconnect_error(reason)
    assert isinstance(error, SessionExpired)
    assert error.code == str(reason)


def test_other_reasons() -> None:
    assert isinstance(disconnect_error(806), PermissionDenied)
    assert "Data APIs not subscribed" in str(disconnect_error(806))
    too_many = disconnect_error(805)
    assert isinstance(too_many, ConnectionLost)
    assert "Too many requests or connections" in str(too_many)
    assert "Access token is invalid" in str(disconnect_error(809))  # the annexure's label
    assert "Client ID is invalid" in str(disconnect_error(810))


async def test_bad_settings_raise_before_any_io() -> None:
    with pytest.raises(ValueError, match="client_id"):
        DhanFeed("", "token")
    with pytest.raises(TypeError):
        DhanFeed("1", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="root"):
        DhanFeed("1", "token", root="https://api-feed.dhan.co")
    with pytest.raises(ValueError, match="mode"):
        DhanFeed("1", "token", default_mode="depth")
    with pytest.raises(ValueError, match="NSE_EQ and NSE_FNO"):
        DhanDepthFeed("1", "token", subscriptions=[NIFTY])


async def test_repr_shows_no_secret() -> None:
    feed = DhanFeed("1100", "eyJ-secret-token", subscriptions=[HDFC])
    assert "eyJ-secret-token" not in repr(feed)
    assert "1100" in repr(feed)
    assert feed.subscriptions == {HDFC: "quote"}


# -- end to end ------------------------------------------------------------------------------


async def test_ticks_of_each_mode() -> None:
    async with dhan_sandbox() as sb, make_feed(sb) as feed:
        await feed.subscribe([HDFC], "ticker")
        await feed.subscribe([TCS], "quote")
        await feed.subscribe([RELIANCE, NIFTY], "full")
        seen: dict[Any, set[type]] = {}

        def done(item: Any) -> bool:
            seen.setdefault(item.key, set()).add(type(item))
            return all(
                {PrevClose, kind} <= seen.get(key, set())
                for key, kind in (
                    (HDFC, TickerTick),
                    (TCS, QuoteTick),
                    (RELIANCE, FullTick),
                    (NIFTY, FullTick),
                )
            )

        items = await read_until(feed, done)
    ticks = [item for item in items if isinstance(item, TickerTick | QuoteTick | FullTick)]
    assert all(item.last_price > 0 for item in ticks)
    assert all(item.last_trade_time is not None for item in ticks)
    full = next(item for item in ticks if isinstance(item, FullTick) and item.key == RELIANCE)
    assert len(full.depth.buy) == len(full.depth.sell) == 5
    assert full.depth.buy[0].price < full.depth.sell[0].price
    quote = next(item for item in ticks if isinstance(item, QuoteTick))
    assert quote.volume_traded >= 0
    assert quote.ohlc.high >= quote.ohlc.low
    assert feed.statistics().malformed == 0


async def test_mode_switch_and_unsubscribe() -> None:
    async with dhan_sandbox() as sb, make_feed(sb) as feed:
        await feed.subscribe([HDFC], "ticker")
        await read_until(feed, lambda item: isinstance(item, TickerTick))
        await feed.set_mode("full", [HDFC])
        await read_until(feed, lambda item: isinstance(item, FullTick))
        assert feed.subscriptions == {HDFC: "full"}
        await feed.subscribe([HDFC, TCS], "ltp")  # HDFC switches back, TCS is new
        assert feed.subscriptions == {HDFC: "ticker", TCS: "ticker"}
        await read_until(feed, lambda item: isinstance(item, TickerTick) and item.key == TCS)
        await feed.unsubscribe([HDFC])
        assert feed.subscriptions == {TCS: "ticker"}


async def test_oi_comes_with_quotes_of_derivatives() -> None:
    async with dhan_sandbox() as sb:
        futures = [
            (instrument.instrument_token >> 32, instrument.exchange_token)
            for instrument in sb.state.market.instruments.values()
            if instrument.instrument_type == "FUT"
        ]
        key = (ExchangeSegment.from_code(futures[0][0]).value, futures[0][1])
        async with make_feed(sb) as feed:
            await feed.subscribe([key], "quote")
            items = await read_until(feed, lambda item: isinstance(item, OpenInterest))
    assert any(isinstance(item, QuoteTick) and item.key == key for item in items)
    assert items[-1].oi > 0


async def test_order_updates_in_arrival_order() -> None:
    async with dhan_sandbox() as sb, make_feed(sb) as feed:
        await feed.subscribe([HDFC], "ticker")
        placed = [await place_order(sb, sid) for sid in ("1594", "2885", "11536")]
        updates: list[OrderUpdate] = []

        def done(item: Any) -> bool:
            if isinstance(item, OrderUpdate):
                updates.append(item)
            return {update.order_id for update in updates} >= set(placed)

        await read_until(feed, done)
    first_seen = list(dict.fromkeys(update.order_id for update in updates))
    assert first_seen[: len(placed)] == placed
    assert all(update.status for update in updates)
    assert updates[0].security_id == "1594"
    assert updates[0].transaction_type == "BUY"
    assert feed.statistics().order_updates >= 3


async def test_sharding_beyond_one_connection() -> None:
    # the sandbox disconnects (804) a connection holding more than 2: the feed must shard
    async with dhan_sandbox(max_tokens_per_ws=2) as sb:
        keys = [HDFC, TCS, RELIANCE, INFY, NIFTY]
        events = (feed := make_feed(sb, max_instruments=2)).connection_events()
        async with feed:
            await feed.subscribe(keys, "ticker")
            seen: set[Any] = set()
            await read_until(
                feed, lambda item: seen.add(getattr(item, "key", None)) or seen >= set(keys)
            )
            assert feed.statistics().connections == 3 + 1  # and the order-update socket
            assert feed.statistics().reconnects == 0
        connected = []
        async for event in events:
            if isinstance(event, FeedConnected):
                connected.append(event.connection)
    assert sorted(connected) == [0, 1, 2, 1000]


async def test_reconnect_and_resubscribe_on_drop() -> None:
    async with dhan_sandbox() as sb:
        events = (feed := make_feed(sb)).connection_events()
        async with feed:
            await feed.subscribe([HDFC], "full")
            await read_until(feed, lambda item: isinstance(item, FullTick))
            await admin(sb, "drop_websockets")  # the admin route, over HTTP
            reconnected = []
            with anyio.fail_after(HANG):
                async for event in events:
                    if isinstance(event, FeedConnected) and event.reconnect:
                        reconnected.append(event.connection)
                        if sorted(reconnected) == [0, 1000]:
                            break
            await read_until(feed, lambda item: isinstance(item, FullTick))
            placed = await place_order(sb)
            await read_until(
                feed, lambda item: isinstance(item, OrderUpdate) and item.order_id == placed
            )
            assert feed.statistics().reconnects >= 2


async def test_session_expiry_ends_the_feed_with_807_and_no_retry() -> None:
    async with dhan_sandbox() as sb:
        events = (feed := make_feed(sb, order_root=None)).connection_events()
        opened: list[int] = []

        async def run() -> None:
            async with feed:
                await feed.subscribe([HDFC], "ticker")
                await read_until(feed, lambda item: isinstance(item, TickerTick))
                opened.append(sb.state.stats.ws_connections)
                await admin(sb, "expire_session")  # the admin route, over HTTP
                await drain(feed)

        with pytest.raises(SessionExpired) as caught:
            await run()
        assert caught.value.code == "807"
        assert "Access token is expired" in str(caught.value)
        assert sb.state.stats.ws_connections == opened[0]  # never reconnected
        last = [event async for event in events][-1]
        assert isinstance(last, FeedDisconnected)
        assert last.reconnect_in is None


@pytest.mark.parametrize(
    ("client_id", "token", "reason"), [("1000000001", "wrong", "809"), ("999", None, "810")]
)
async def test_bad_credentials_are_a_session_error(
    client_id: str, token: str | None, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with dhan_sandbox() as sb:
        secret = token or sb.access_token
        feed = make_feed(sb, client_id=client_id, access_token=secret, order_root=None)

        async def run() -> None:
            async with feed:
                await feed.subscribe([HDFC], "ticker")
                await drain(feed)

        with pytest.raises(SessionExpired) as caught:
            await run()
    assert caught.value.code == reason
    for text in (str(caught.value), repr(feed), caplog.text):
        assert secret not in text


async def test_credentials_are_read_on_every_reconnect(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with dhan_sandbox() as sb:
        renewed = "renewed-secret-token"
        sb.state.access_tokens.add(renewed)
        calls: list[str] = []

        async def provider() -> str:
            calls.append("called")
            return sb.access_token if len(calls) <= 2 else renewed

        async with make_feed(sb, access_token=provider) as feed:
            await feed.subscribe([HDFC], "ticker")
            await read_until(feed, lambda item: isinstance(item, TickerTick))
            assert len(calls) == 2  # the market feed and the order-update socket
            sb.drop_websockets()
            await wait_for(lambda: feed.statistics().reconnects >= 2)
            await wait_for(lambda: feed.statistics().connections == 2)
            # the reconnected market feed sent the renewed token
            await wait_for(lambda: len(_feed_connections(sb)) == 1)  # the old one gone
            (connection,) = _feed_connections(sb)
            assert connection.token == renewed
            sb.state.access_tokens.discard(sb.access_token)  # the old one may die now
            await read_until(feed, lambda item: isinstance(item, TickerTick))
            assert len(calls) >= 4
            feed.set_access_token(renewed)
        assert renewed not in caplog.text
        assert sb.access_token not in caplog.text
        assert "token=" not in caplog.text


def _feed_connections(sb: Sandbox) -> list[Any]:
    """The sandbox's open market-feed connections (its own bookkeeping)."""
    from aio_trader.sandbox._dhan import _feed as sandbox_feed

    return list(sandbox_feed._OPEN.get(sb.state, []))


async def wait_for(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(HANG):
        while not condition():  # noqa: ASYNC110 (polling counters)
            await anyio.sleep(0.01)


async def test_twenty_level_depth() -> None:
    async with dhan_sandbox() as sb:
        feed = DhanDepthFeed(
            sb.client_id,
            sb.access_token,
            root=sb.feed_url.replace("/feed", "/twentydepth"),
            backoff=FAST,
        )
        async with feed:
            await feed.subscribe([HDFC, ("NSE_EQ", "2885")])
            sides: set[Any] = set()
            items = await read_until(
                feed,
                lambda item: sides.add((item.key, item.side)) or len(sides) == 4,
            )
    depth = [item for item in items if isinstance(item, TwentyDepth)]
    assert all(len(item.levels) == 20 for item in depth)
    bids = next(item for item in depth if item.side == "buy")
    assert [level.price for level in bids.levels] == sorted(
        (level.price for level in bids.levels), reverse=True
    )
    assert not any(isinstance(item, FeedMessage) for item in items)


# -- the sandbox's sockets, raw ----------------------------------------------------------------


def _query(sb: Sandbox) -> str:
    return f"version=2&token={sb.access_token}&clientId={sb.client_id}&authType=2"


async def test_a_connection_past_the_limit_disconnects_the_oldest_with_805() -> None:
    from httpx_ws import aconnect_ws

    from aio_trader.dhan import Disconnect, decode_message

    async with dhan_sandbox(max_ws_per_api_key=1) as sb, httpx.AsyncClient() as client:
        url = f"{sb.feed_url}?{_query(sb)}"
        async with aconnect_ws(url, client) as first, aconnect_ws(url, client) as second:
            with anyio.fail_after(HANG):
                data = await first.receive_bytes()
            (packet,) = decode_message(data)
            assert isinstance(packet, Disconnect)
            assert packet.reason == 805
            await second.send_text(json.dumps(request(15, [HDFC])))
            with anyio.fail_after(HANG):
                assert decode_message(await second.receive_bytes())  # the newest one serves


def request(code: int, keys: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "RequestCode": code,
        "InstrumentCount": len(keys),
        "InstrumentList": [{"ExchangeSegment": s, "SecurityId": i} for s, i in keys],
    }


async def test_one_packet_per_message_and_more_than_100_a_message_is_refused() -> None:
    from httpx_ws import aconnect_ws

    from aio_trader.dhan import Disconnect, decode_message

    async with dhan_sandbox() as sb, httpx.AsyncClient() as client:
        url = f"{sb.feed_url}?{_query(sb)}"
        async with aconnect_ws(url, client) as ws:
            await ws.send_text(json.dumps(request(17, [HDFC, TCS])))  # int security ids
            with anyio.fail_after(HANG):
                for _ in range(10):
                    assert len(decode_message(await ws.receive_bytes())) == 1
            too_many = [("NSE_EQ", n) for n in range(1, 102)]
            await ws.send_text(json.dumps(request(15, too_many)))
            with anyio.fail_after(HANG):
                while True:
                    (packet,) = decode_message(await ws.receive_bytes())
                    if isinstance(packet, Disconnect):
                        break
            assert packet.reason == 804


async def test_the_order_socket_refuses_a_bad_login() -> None:
    from httpx_ws import WebSocketDisconnect, aconnect_ws

    async with dhan_sandbox() as sb, httpx.AsyncClient() as client:
        async with aconnect_ws(sb.order_feed_url, client) as ws:
            login = {"LoginReq": {"MsgCode": 42, "ClientId": sb.client_id, "Token": "bad"}}
            await ws.send_text(json.dumps({**login, "UserType": "SELF"}))
            with pytest.raises(WebSocketDisconnect) as caught, anyio.fail_after(HANG):
                await ws.receive_text()
        assert caught.value.code == 1008
