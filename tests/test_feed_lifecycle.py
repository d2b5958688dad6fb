"""KiteFeed's lifecycle and channel against the sandbox over loopback, on asyncio and trio.

``async with`` returns once connected (so nothing Kite sends afterwards is lost), a first
connection that cannot be made raises out of ``async with`` as itself, configuration
errors come before any I/O, the connection's life is visible (``connection_events``),
reconnect waits are jittered, and every receive is a checkpoint. No test asserts an upper
bound on wall time; ``HANG`` only guards against a hang.
"""

from __future__ import annotations

import logging
import struct
import time
from typing import Any

import anyio
import anyio.abc
import pytest
from _helpers import FAST, HANG, feed_for, sandbox, tradable

from aio_trader.backoff import Backoff
from aio_trader.errors import FeedClosedError, TokenException
from aio_trader.kite import (
    FeedConnected,
    FeedDisconnected,
    Kite,
    KiteFeed,
    LtpTick,
    OrderUpdate,
    RawFrame,
    RawKiteFeed,
    decode_frame,
)


async def market_buy(kite: Kite) -> str:
    return await kite.place_order(
        variety="regular",
        exchange="NSE",
        tradingsymbol="INFY",
        transaction_type="BUY",
        quantity=1,
        product="CNC",
        order_type="MARKET",
        market_protection=-1,
    )


# -- entering connects ------------------------------------------------------------------------


async def test_an_order_placed_right_after_subscribe_always_reaches_async_for() -> None:
    missing = 0
    async with (
        sandbox() as sb,
        Kite(sb.api_key, sb.access_token, root=sb.root_url, token_cache=False) as kite,
    ):
        token = tradable(sb)[0]
        for _ in range(20):
            async with feed_for(sb) as feed:
                await feed.subscribe(instrument_tokens=[token], mode="ltp")  # the seed's name
                order_id = await market_buy(kite)
                with anyio.move_on_after(HANG):
                    async for item in feed:
                        if isinstance(item, OrderUpdate) and item.order_id == order_id:
                            break
                    else:
                        raise AssertionError("the feed ended")
                    continue
                missing += 1
        assert sb.state.stats.ws_connections == 20
    assert missing == 0


async def test_async_with_returns_connected_with_the_constructor_subscriptions() -> None:
    async with sandbox() as sb:
        ltp, quote = tradable(sb)[:2]
        feed = feed_for(sb, subscriptions={ltp: "ltp", quote: "quote"})
        assert feed.subscriptions == {ltp: "ltp", quote: "quote"}
        async with feed:
            assert feed.statistics().connections == 1  # connected on entry
            assert sb.state.stats.ws_connections == 1
            seen: set[int] = set()
            with anyio.fail_after(HANG):
                async for item in feed:
                    assert isinstance(item, LtpTick) == (item.instrument_token == ltp)
                    seen.add(item.instrument_token)
                    if seen == {ltp, quote}:
                        break
        tokens_only = feed_for(sb, subscriptions=[ltp], default_mode="full")
        assert tokens_only.subscriptions == {ltp: "full"}


async def test_a_403_on_the_first_connection_is_raised_by_async_with_itself() -> None:
    async with sandbox() as sb:
        sb.expire_session()
        feed = feed_for(sb, backoff=Backoff(base=0.01, max_attempts=None))
        with pytest.raises(TokenException) as caught:
            async with feed:
                raise AssertionError("entered a feed whose session is refused")
        assert type(caught.value) is TokenException  # not an exception group
        assert sb.access_token not in str(caught.value)
        assert sb.state.stats.ws_connections_refused == 1  # no retry
        with pytest.raises(TokenException):
            await feed.__anext__()  # the failed feed says why
        with pytest.raises(TokenException):
            await feed.batches().__anext__()  # read in batches too


async def test_raw_feed_enters_connected_too() -> None:
    async with (
        sandbox() as sb,
        RawKiteFeed(
            sb.api_key, sb.access_token, root=sb.ticker_url, subscriptions=tradable(sb)[:1]
        ) as raw,
    ):
        assert raw.statistics().connections == 1
        with anyio.fail_after(HANG):
            frame = await raw.__anext__()
        assert isinstance(frame.data, bytes)
        assert frame.connection == 0


async def test_raw_frames_carry_their_connection_and_receive_time() -> None:
    async with sandbox() as sb:
        tokens = tradable(sb)[:2]
        started = time.time()
        async with RawKiteFeed(
            sb.api_key,
            sb.access_token,
            root=sb.ticker_url,
            subscriptions={tokens[0]: "ltp", tokens[1]: "ltp"},
            max_instruments=1,  # one instrument per connection: two connections
        ) as raw:
            assert raw.statistics().connections == 2
            seen: dict[int, set[int]] = {}
            with anyio.fail_after(HANG):
                async for frame in raw:
                    assert isinstance(frame, RawFrame)
                    assert started <= frame.received <= time.time()
                    if isinstance(frame.data, bytes):
                        got = {tick.instrument_token for tick in decode_frame(frame.data)}
                        seen.setdefault(frame.connection, set()).update(got)
                    if len(seen) == 2:
                        break
    assert seen == {0: {tokens[0]}, 1: {tokens[1]}}  # filled in order


async def _answer_404(stream: anyio.abc.SocketStream) -> None:
    async with stream:
        await stream.receive()
        await stream.send(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")


async def test_a_handshake_answered_404_fails_at_once_without_retrying() -> None:
    accepted = 0

    async def handler(stream: anyio.abc.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        await _answer_404(stream)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        feed = KiteFeed("key", "token", root=f"ws://127.0.0.1:{port}/wrong", backoff=FAST)
        with pytest.raises(FeedClosedError, match="HTTP 404"):
            async with feed:
                raise AssertionError("entered")
        tg.cancel_scope.cancel()
    assert accepted == 1


# -- configuration errors before any I/O --------------------------------------------------------


async def test_configuration_errors_are_raised_before_any_connection() -> None:
    async with sandbox() as sb:
        good = {"api_key": sb.api_key, "access_token": sb.access_token, "root": sb.ticker_url}
        http_url = sb.ticker_url.replace("ws://", "http://")
        for options, error in [
            ({"root": http_url}, ValueError),
            ({"root": "127.0.0.1:5000/ws"}, ValueError),
            ({"root": "ws://"}, ValueError),
            ({"root": 5000}, TypeError),
            ({"watchdog": 0}, ValueError),
            ({"connect_timeout": -1}, ValueError),
            ({"send_timeout": 0.0}, ValueError),
            ({"stable_after": -1}, ValueError),
            ({"watchdog": "5"}, TypeError),
            ({"buffer_size": 1.5}, TypeError),
            ({"api_key": 123}, TypeError),
            ({"backoff": 3}, TypeError),
            ({"subscriptions": 408065}, TypeError),
            ({"subscriptions": ["INFY"]}, TypeError),
            ({"subscriptions": {408065: "everything"}}, ValueError),
        ]:
            with pytest.raises(error):
                KiteFeed(**{**good, **options})
        assert sb.state.stats.ws_connections == 0
        assert sb.state.stats.ws_connections_refused == 0


# -- the connection's life ------------------------------------------------------------------


async def test_connection_events_show_connects_drops_and_replays() -> None:
    async with sandbox() as sb:
        tokens = tradable(sb)[:3]
        feed = feed_for(sb, subscriptions=tokens)
        events = feed.connection_events()  # before entry: the first connect is seen too
        async with feed:
            assert events.receive_nowait() == FeedConnected(0, False, 3)
            sb.drop_websockets()
            with anyio.fail_after(HANG):
                dropped = await events.receive()
                assert isinstance(dropped, FeedDisconnected)
                assert dropped.connection == 0
                assert dropped.reason  # e.g. "network error": the sandbox dropped it
                assert dropped.reconnect_in is not None
                assert 0 < dropped.reconnect_in <= FAST.cap
                assert await events.receive() == FeedConnected(0, True, 3)
        with anyio.fail_after(HANG):  # the stream ends with the feed
            assert [event async for event in events] == []


async def test_three_connections_dropped_together_reconnect_after_different_waits() -> None:
    async with sandbox(max_ws_per_api_key=3) as sb:
        backoff = Backoff(base=0.2, factor=2.0, cap=1.0, max_attempts=5, jitter=0.5)
        feed = feed_for(sb, backoff=backoff, max_instruments=1, subscriptions=tradable(sb)[:3])
        events = feed.connection_events()
        async with feed:
            assert feed.statistics().connections == 3
            sb.drop_websockets()
            waits: dict[int, float] = {}
            with anyio.fail_after(HANG):
                async for event in events:
                    if isinstance(event, FeedDisconnected):
                        assert event.reconnect_in is not None
                        waits[event.connection] = event.reconnect_in
                        if len(waits) == 3:
                            break
            assert len(set(waits.values())) == 3  # not in lockstep
            assert all(0.1 <= w <= 0.2 for w in waits.values())


async def test_the_failure_ends_connection_events_with_no_reconnect() -> None:
    async with sandbox() as sb:
        feed = feed_for(sb, subscriptions=tradable(sb)[:1])
        events = feed.connection_events()

        async def expire_while_reading() -> None:
            async with feed:
                sb.expire_session()
                async for _ in feed:
                    pass

        with pytest.raises(TokenException):
            await expire_while_reading()
        seen = [event async for event in events]
        assert isinstance(seen[-1], FeedDisconnected)
        assert seen[-1].reconnect_in is None
        assert "403" in seen[-1].reason


# -- the channel: every receive a checkpoint --------------------------------------------------


async def test_a_busy_loop_over_the_feed_ends_on_cancel_and_the_feed_stays_usable() -> None:
    async with sandbox(tick_interval=0.0) as sb, feed_for(sb, buffer_size=200) as feed:
        await feed.subscribe(tradable(sb)[:20], mode="ltp")
        taken = 0
        with anyio.move_on_after(0.2) as scope:
            async for _ in feed:
                taken += 1
                time.sleep(0.0005)  # noqa: ASYNC251 (a busy body that never awaits)
        assert scope.cancelled_caught
        assert taken > 0
        with anyio.fail_after(HANG):
            assert isinstance(await feed.__anext__(), LtpTick)  # next receive works
        assert feed.statistics().dropped == 0


async def test_batches_are_the_stream_in_lists_lossless_in_order_mixed_with_async_for() -> None:
    async with sandbox(tick_interval=0.0) as sb, feed_for(sb, buffer_size=500) as feed:
        tokens = tradable(sb)[:20]
        await feed.subscribe(tokens, mode="quote")  # every frame: the 20, in one order
        batches = feed.batches(max_items=7)
        items: list[Any] = []
        sizes: list[int] = []
        with anyio.fail_after(HANG):
            while len(items) < 3000:
                if len(items) % 3 == 0:
                    items.append(await feed.__anext__())  # per item and batched, mixed
                    continue
                batch = await batches.__anext__()
                sizes.append(len(batch))
                items.extend(batch)
                if len(sizes) == 50:
                    with anyio.CancelScope() as scope:
                        scope.cancel()
                        await batches.__anext__()  # cancelled: takes nothing
                    assert scope.cancelled_caught
        stats = feed.statistics()
    cycle = [item.instrument_token for item in items[: len(tokens)]]  # the first frame's
    assert sorted(cycle) == sorted(tokens)
    for n, item in enumerate(items):  # nothing lost, nothing out of order, nothing twice
        assert item.instrument_token == cycle[n % len(cycle)], n
    assert stats.dropped == 0
    assert max(sizes) == 7  # what waits is taken at once, up to max_items
    assert min(sizes) >= 1
    with pytest.raises(ValueError, match="max_items"):
        feed.batches(0)


async def test_a_busy_loop_over_batches_ends_on_cancel_and_close_ends_them() -> None:
    async with sandbox(tick_interval=0.0) as sb, feed_for(sb, buffer_size=200) as feed:
        await feed.subscribe(tradable(sb)[:20], mode="ltp")
        taken = 0
        with anyio.move_on_after(0.2) as scope:
            async for batch in feed.batches(max_items=5):
                taken += len(batch)
                time.sleep(0.002)  # noqa: ASYNC251 (a busy body that never awaits)
        assert scope.cancelled_caught
        assert taken > 0
        ended = False

        async def read() -> None:
            nonlocal ended
            async for _ in feed.batches():
                pass
            ended = True

        with anyio.fail_after(HANG):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                await anyio.sleep(0.05)
                await feed.aclose()  # the other task's iteration ends
        assert ended
        assert feed.statistics().dropped == 0


async def test_a_cancelled_wait_loses_nothing_that_comes_later() -> None:
    async with (
        sandbox() as sb,
        Kite(sb.api_key, sb.access_token, root=sb.root_url, token_cache=False) as kite,
        feed_for(sb) as feed,  # nothing subscribed: only heartbeats, the reader waits
    ):
        with anyio.move_on_after(0.1) as scope:
            await feed.__anext__()
        assert scope.cancelled_caught
        order_id = await market_buy(kite)
        with anyio.fail_after(HANG):
            item = await feed.__anext__()
        assert isinstance(item, OrderUpdate)
        assert item.order_id == order_id


# -- malformed input: one warning per frame ------------------------------------------------------


async def test_a_frame_of_many_malformed_packets_logs_one_warning_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with sandbox() as sb, feed_for(sb) as feed:
        frame = struct.pack(">H", 5000) + b"\x00\x00" * 5000  # 5000 empty packets
        send = feed._channel.sender()
        with send:
            await feed._on_binary(frame, send, time.time(), 0)
        assert feed.statistics().malformed == 5000
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and "malformed" in r.message
    ]
    assert len(warnings) == 1
    assert "5000" in warnings[0].getMessage()


async def test_constructor_subscriptions_past_3000_enter_with_every_connection_up() -> None:
    async with sandbox(tick_interval=0.05) as sb:
        fake = range(10_000_000, 10_004_500)  # unknown tokens: subscribed, never tick
        async with feed_for(sb, subscriptions=fake) as feed:
            assert feed.statistics().connections == 2  # both up on entry
            assert sb.state.stats.ws_connections == 2
            assert feed.statistics().subscribed == 4500
