"""KiteFeed end to end against the sandbox over loopback, on asyncio and trio.

Every test talks to a real ``Sandbox`` through real sockets; faults (drops, silence,
malformed frames, an expired session) are the sandbox's own. Waits are bounded only by a
generous hang guard (``HANG``); no test asserts an upper bound on wall time.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

import anyio
import attrs
import pytest
from _helpers import HANG, feed_for, sandbox, tradable

from aio_trader.backoff import Backoff
from aio_trader.errors import ClientClosedError, FeedClosedError, TokenException
from aio_trader.kite import (
    FeedError,
    FeedStatistics,
    FullTick,
    IndexFullTick,
    Kite,
    KiteFeed,
    LtpTick,
    OrderUpdate,
    Overflow,
    QuoteTick,
    RawFrame,
    RawKiteFeed,
    Tick,
    decode_frame,
    decode_text,
)
from aio_trader.kite._feed import FeedItem
from aio_trader.sandbox import Sandbox
from aio_trader.sandbox._kite._quotes import snapshot


async def until(
    feed: KiteFeed, done: Callable[[FeedItem], bool], limit: int = 1_000_000
) -> list[FeedItem]:
    """Read the feed until ``done(item)`` holds; the items read, the last one included."""
    items: list[FeedItem] = []
    with anyio.fail_after(HANG):
        async for item in feed:
            items.append(item)
            if done(item) or len(items) >= limit:
                return items
    raise AssertionError("the feed ended")


async def wait_for(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(HANG):
        while not condition():  # noqa: ASYNC110 (polling counters, nothing to wait on)
            await anyio.sleep(0.01)


def modes_seen(items: list[FeedItem]) -> dict[int, set[type]]:
    seen: dict[int, set[type]] = {}
    for item in items:
        token = getattr(item, "instrument_token", None)
        if token is not None and not isinstance(item, OrderUpdate):
            seen.setdefault(token, set()).add(type(item))
    return seen


async def place_order(sb: Sandbox) -> str:
    """Place a market order through ``Kite`` (the REST client) on the sandbox; its order_id."""
    async with Kite(sb.api_key, sb.access_token, root=sb.root_url, token_cache=False) as kite:
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


# -- ticks, modes, order updates -------------------------------------------------------------


async def test_ticks_in_all_three_modes_and_set_mode() -> None:
    async with sandbox() as sb:
        nse = tradable(sb)
        index = tradable(sb, "INDICES")[0]
        async with feed_for(sb) as feed:
            # queued before the connection is up, sent on connect
            await feed.subscribe(nse[:2], mode="ltp")
            await feed.subscribe(nse[2:4])  # default mode: quote
            await feed.subscribe([nse[4], index], mode="full")
            wanted = {
                nse[0]: LtpTick,
                nse[1]: LtpTick,
                nse[2]: QuoteTick,
                nse[3]: QuoteTick,
                nse[4]: FullTick,
                index: IndexFullTick,
            }
            seen: dict[int, set[type]] = {}

            def all_modes_seen(item: FeedItem) -> bool:
                for token, kinds in modes_seen([item]).items():
                    seen.setdefault(token, set()).update(kinds)
                return all(kind in seen.get(token, ()) for token, kind in wanted.items())

            items = await until(feed, all_modes_seen)
            assert all(isinstance(i, Tick) for i in items)
            assert feed.subscriptions[nse[4]] == "full"

            await feed.set_mode("full", [nse[0]])
            await until(feed, lambda i: isinstance(i, FullTick) and i.instrument_token == nse[0])
            await feed.unsubscribe(nse[:4])
            assert feed.statistics().subscribed == 2

            stats = feed.statistics()
            assert isinstance(stats, FeedStatistics)
            assert stats.frames > 0
            assert stats.ticks >= len(wanted)
            assert stats.bytes > 0
            assert (stats.connections, stats.reconnects, stats.malformed) == (1, 0, 0)
            assert stats.last_message_time is not None
            assert stats.last_message_time.utcoffset() is not None
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                stats.frames = 0  # type: ignore[misc]


async def test_ticks_received_after_subscribe_or_set_mode_come_in_the_asked_mode() -> None:
    async with sandbox(tick_interval=0.0) as sb, feed_for(sb, buffer_size=50) as feed:
        tokens = tradable(sb)[:5]
        # Kite starts a subscription in quote mode: those ticks are delivered as quote
        # (poorer than asked, counted) until the instrument's first full tick; none after
        await feed.subscribe(tokens, mode="full")
        items = await until(feed, lambda _: False, limit=200)
        poorer = 0
        for token in tokens:
            kinds = [type(i) for i in items if i.instrument_token == token]  # type: ignore[union-attr]
            full = kinds.index(FullTick) if FullTick in kinds else len(kinds)
            assert all(kind is QuoteTick for kind in kinds[:full])
            assert all(kind is FullTick for kind in kinds[full:])
            poorer += full
        assert any(isinstance(item, FullTick) for item in items)
        assert feed.statistics().poorer_mode >= poorer
        # changed in issue 17: before, the quote ticks were dropped (stale_mode)
        # a switch down: the socket is full of richer frames (flat out, lossless): dropped
        await feed.set_mode("quote", tokens)
        await feed.set_mode("ltp", tokens)
        waiting = feed.statistics().buffered + len(tokens)  # + one frame waiting for room
        items = await until(feed, lambda _: False, limit=waiting + 500)
        assert all(isinstance(item, LtpTick) for item in items[waiting:])
        assert feed.statistics().stale_mode > 0
        assert feed.statistics().dropped == 0


async def test_order_postbacks_arrive_as_order_updates() -> None:
    async with sandbox() as sb, feed_for(sb) as feed:
        await feed.subscribe(tradable(sb)[:1], mode="ltp")
        await until(feed, lambda i: isinstance(i, LtpTick))  # connected
        order_id = await place_order(sb)
        items = await until(feed, lambda i: isinstance(i, OrderUpdate) and i.status == "COMPLETE")
        updates = [i for i in items if isinstance(i, OrderUpdate)]
        assert {u.order_id for u in updates} == {order_id}
        assert (updates[-1].tradingsymbol, updates[-1].filled_quantity) == ("INFY", 1)
        assert feed.statistics().order_updates == len(updates)


async def test_kite_web_variant_connects_with_enctoken() -> None:
    async with sandbox() as sb:
        feed = KiteFeed(user_id=sb.user_id, enctoken=sb.enctoken, root=sb.ticker_url)
        assert sb.enctoken not in repr(feed)
        handshake = await feed._protocol.handshake(None)  # the web client's parameters
        params = handshake.params
        assert params["api_key"] == "kitefront"
        assert {"user_id", "enctoken", "uid", "user-agent", "version"} <= set(params)
        async with feed:
            await feed.subscribe(tradable(sb)[:1], mode="quote")
            item = (await until(feed, lambda i: isinstance(i, QuoteTick)))[-1]
            assert isinstance(item, QuoteTick)


async def test_raw_mode_yields_undecoded_frames() -> None:
    async with sandbox() as sb, RawKiteFeed(sb.api_key, sb.access_token, root=sb.ticker_url) as raw:
        token = tradable(sb)[0]
        await raw.subscribe([token], mode="full")
        with anyio.fail_after(HANG):
            async for frame in raw:
                assert isinstance(frame, RawFrame)
                assert isinstance(frame.data, bytes)
                assert frame.connection == 0
                assert abs(frame.received - time.time()) < 60  # time.time()'s clock
                ticks = decode_frame(frame.data)
                if ticks and isinstance(ticks[0], FullTick):
                    break
        order_id = await place_order(sb)
        with anyio.fail_after(HANG):
            async for frame in raw:
                if isinstance(frame.data, str):
                    update = decode_text(frame.data)
                    assert isinstance(update, OrderUpdate)
                    assert update.order_id == order_id
                    break
        assert raw.statistics().ticks >= 1
        assert raw.statistics().text_frames >= 1


# -- reconnects, watchdog, malformed frames, expired sessions ----------------------------------


async def test_drop_mid_stream_reconnects_and_resumes_the_same_subscriptions() -> None:
    async with sandbox() as sb, feed_for(sb) as feed:
        nse = tradable(sb)
        plan: dict[int, type[LtpTick | QuoteTick | FullTick]]
        plan = {nse[0]: LtpTick, nse[1]: QuoteTick, nse[2]: FullTick}
        for token, kind in plan.items():
            await feed.subscribe([token], mode=kind.mode)
        await until(feed, lambda _: feed.statistics().ticks > 10)
        sb.drop_websockets()
        await wait_for(lambda: feed.statistics().reconnects >= 1)
        await wait_for(lambda: feed.statistics().connections == 1)
        # after the reconnect: every instrument in its own mode, without asking again
        frames = feed.statistics().frames
        await until(feed, lambda _: feed.statistics().frames > frames + 5)
        recent = modes_seen(await until(feed, lambda _: False, limit=30))
        for token, kind in plan.items():
            assert recent.get(token) == {kind}, (token, recent.get(token))
        assert feed.subscriptions == {t: k.mode for t, k in plan.items()}
        assert sb.state.stats.ws_connections == 2


async def test_silence_trips_the_watchdog_and_reconnects(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aio_trader.kite._feed")
    async with sandbox() as sb, feed_for(sb, watchdog=0.3) as feed:
        token = tradable(sb)[0]
        await feed.subscribe([token], mode="ltp")
        await until(feed, lambda i: isinstance(i, LtpTick))
        sb.faults.ws_silence = True
        silent_since = anyio.current_time()
        await wait_for(lambda: feed.statistics().reconnects >= 1)
        assert anyio.current_time() - silent_since >= 0.3  # a lower bound only
        assert "heartbeat watchdog" in caplog.text
        sb.faults.ws_silence = False
        ticks = feed.statistics().ticks
        await until(feed, lambda _: feed.statistics().ticks > ticks)


async def test_idle_connection_counts_heartbeats_and_stays_up() -> None:
    async with sandbox() as sb, feed_for(sb, watchdog=3.0) as feed:
        await wait_for(lambda: feed.statistics().heartbeats >= 2)
        assert feed.statistics().reconnects == 0
        assert feed.statistics().frames == 0


async def test_malformed_frames_are_counted_and_the_stream_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="aio_trader.kite._feed")
    async with sandbox() as sb, feed_for(sb) as feed:
        nse = tradable(sb)
        await feed.subscribe(nse[:3], mode="quote")
        sb.faults.ws_malformed_binary = True
        sb.faults.ws_malformed_text = True
        await until(feed, lambda _: feed.statistics().malformed >= 6)
        ticks = feed.statistics().ticks
        items = await until(feed, lambda _: feed.statistics().ticks > ticks + 10)
        assert any(isinstance(i, QuoteTick) for i in items)
        stats = feed.statistics()
        assert (stats.reconnects, stats.connections) == (0, 1)
        assert "malformed" in caplog.text


async def test_session_expired_raises_token_exception_without_retrying() -> None:
    async with sandbox() as sb:
        feed = feed_for(sb, backoff=Backoff(base=0.01, cap=0.01, max_attempts=None))

        async def expire_while_iterating() -> None:
            async with feed:
                await feed.subscribe(tradable(sb)[:1], mode="ltp")
                await until(feed, lambda i: isinstance(i, LtpTick))
                sb.expire_session()  # closes the connection; the reconnect gets a 403
                async for _ in feed:
                    pass

        with pytest.raises(TokenException) as caught:
            await expire_while_iterating()
        assert caught.value.status_code == 403
        assert "log in again" in str(caught.value)
        assert sb.access_token not in str(caught.value)
        await anyio.sleep(0.2)  # a retry loop would have made more attempts by now
        assert sb.state.stats.ws_connections_refused == 1
        assert (feed.statistics().reconnects, feed.statistics().connections) == (1, 0)
        # iterating a failed feed raises the same error
        with pytest.raises(TokenException):
            await feed.__anext__()


async def test_token_exception_interrupts_a_block_that_is_not_iterating() -> None:
    async with sandbox() as sb:
        sb.expire_session()
        with pytest.raises(TokenException):
            await sleep_in(feed_for(sb))
        assert sb.state.stats.ws_connections_refused == 1


async def sleep_in(feed: KiteFeed) -> None:
    async with feed:
        await anyio.sleep(HANG)


async def test_reconnect_attempts_exhausted_raise_feed_closed_error() -> None:
    with socket_nobody_listens() as root:
        feed = KiteFeed("key", "secret-token", root=root, backoff=Backoff(0.01, 2, 0.02, 3))
        with pytest.raises(FeedClosedError) as caught:
            await sleep_in(feed)
        assert "gave up after 3" in str(caught.value)
        assert "secret-token" not in str(caught.value)
        assert feed.statistics().reconnects == 2


class socket_nobody_listens:
    """A ws:// URL on loopback that refuses connections, or (``listen``) accepts the TCP
    connection and never answers."""

    def __init__(self, listen: bool = False) -> None:
        self.listen = listen

    def __enter__(self) -> str:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        if self.listen:
            self.sock.listen()
        return f"ws://127.0.0.1:{self.sock.getsockname()[1]}/ws"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# -- structured concurrency: nothing left behind ----------------------------------------------


def open_sockets() -> int:
    """Sockets this process holds (client and server halves)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize(
    "stage", ["entered", "handshaking", "connected", "iterating", "backing-off"]
)
async def test_outside_cancellation_leaves_no_task_or_socket(stage: str) -> None:
    async with sandbox() as sb:
        token = tradable(sb)[0]
        tasks_before = len(anyio.get_running_tasks())
        sockets_before = open_sockets()
        with socket_nobody_listens(listen=True) as silent:  # accepts TCP, never answers
            root = silent if stage == "handshaking" else sb.ticker_url
            slow = Backoff(base=HANG, max_attempts=None)  # a reconnect waits HANG seconds
            feed = KiteFeed(sb.api_key, sb.access_token, root=root, backoff=slow)
            with anyio.CancelScope() as outside:
                if stage == "handshaking":  # entering waits for the handshake: cancel that
                    outside.deadline = anyio.current_time() + 0.2
                async with feed:
                    assert stage != "handshaking", "entered without a handshake"
                    await feed.subscribe([token], mode="ltp")
                    if stage != "entered":
                        await wait_for(lambda: feed.statistics().connections == 1)
                    if stage == "iterating":
                        async for _ in feed:
                            outside.cancel()
                    if stage == "backing-off":
                        sb.drop_websockets()
                        await wait_for(lambda: feed.statistics().reconnects == 1)
                    outside.cancel()
                    await anyio.sleep(HANG)
        assert outside.cancelled_caught
        # at once: none of the feed's tasks is left, its sockets are closed
        assert not [t for t in anyio.get_running_tasks() if "kite-feed" in (t.name or "")]
        assert feed.statistics().connections == 0
        with pytest.raises(ClientClosedError):  # issue 17: was StopAsyncIteration
            await feed.__anext__()
        # and the server, seeing the close, ends its half: back to where we started
        await wait_for(lambda: len(anyio.get_running_tasks()) <= tasks_before)
        await wait_for(lambda: open_sockets() <= sockets_before)


async def test_cancelled_subscribe_is_remembered_and_close_ends_iteration() -> None:
    async with sandbox() as sb, feed_for(sb) as feed:
        token = tradable(sb)[0]
        with anyio.CancelScope() as scope:
            scope.cancel()
            await feed.subscribe([token], mode="full")
        assert feed.subscriptions == {token: "full"}
        await until(feed, lambda i: isinstance(i, FullTick))
        await feed.close()
        await feed.close()  # idempotent
        with anyio.fail_after(HANG):
            async for _ in feed:
                raise AssertionError("a closed feed yields nothing")
        assert feed.statistics().connections == 0


async def test_error_frames_from_kite_arrive_as_feed_errors() -> None:
    # a ticker that takes only 3 instruments per connection answers the 4th with an error
    async with sandbox(max_tokens_per_ws=3) as sb, feed_for(sb) as feed:
        await feed.subscribe(tradable(sb)[:4], mode="ltp")
        item = (await until(feed, lambda i: isinstance(i, FeedError)))[-1]
        assert isinstance(item, FeedError)
        assert "too many instruments" in item.message
        assert feed.statistics().text_frames >= 1


# -- slow consumers -------------------------------------------------------------------------


async def test_lossless_slow_consumer_loses_nothing() -> None:
    async with sandbox(tick_interval=0.0) as sb, feed_for(sb, buffer_size=50) as feed:
        tokens = tradable(sb)[:20]  # every frame: these 20, in this order
        await feed.subscribe(tokens, mode="full")
        received: list[int] = []
        with anyio.fail_after(HANG):
            async for tick in feed:
                assert isinstance(tick, QuoteTick | FullTick)
                received.append(tick.instrument_token)
                if len(received) % 200 == 0:
                    await anyio.sleep(0.05)  # a slow consumer: the sandbox is held back
                    assert feed.statistics().buffered <= 50
                if len(received) == 1000:
                    # a long pause: once the socket buffers are full, the sandbox is blocked
                    await anyio.sleep(0.3)
                    sent = sb.state.stats.ws_frames_sent
                    await anyio.sleep(0.3)
                    assert sb.state.stats.ws_frames_sent - sent <= 2  # TCP pushed back
                if len(received) >= 2000:
                    break
        assert received == tokens * 100  # no tick missing, none out of order
        stats = feed.statistics()
        assert stats.dropped == 0
        assert stats.reconnects == 0
        # decoded = delivered + buffered + stale (quote, before full took effect)
        # + at most one frame waiting for room
        assert 0 <= stats.ticks - len(received) - stats.buffered - stats.stale_mode <= len(tokens)


async def test_drop_oldest_keeps_the_newest_and_counts_drops() -> None:
    async with (
        sandbox(tick_interval=0.005) as sb,
        feed_for(sb, overflow="drop_oldest", buffer_size=10) as feed,
    ):
        tokens = tradable(sb)[:5]
        await feed.subscribe(tokens, mode="ltp")
        await wait_for(lambda: feed.statistics().ticks >= 100)  # not reading meanwhile
        stats = feed.statistics()
        assert stats.buffered == 10
        # the first quote ticks of the subscription are stale, the rest dropped but 10
        assert stats.dropped == stats.ticks - stats.stale_mode - 10
        assert feed.overflow is Overflow.DROP_OLDEST


async def test_conflate_delivers_the_newest_tick_per_instrument() -> None:
    # a still market: prices change only when the test steps it
    async with (
        sandbox(tick_interval=0.01, market_interval=None) as sb,
        feed_for(sb, overflow="conflate", buffer_size=5) as feed,
    ):
        tokens = tradable(sb)[:8]
        await feed.subscribe(tokens, mode="quote")
        await wait_for(lambda: feed.statistics().ticks >= 8)
        for _ in range(5):  # the consumer sleeps through several price changes
            sb.step_market()
            await frames_later(feed, 2)
        await frames_later(feed, 2)  # the newest state was read
        stats = feed.statistics()
        assert stats.buffered == len(tokens)  # one per instrument, whatever the buffer size
        assert stats.dropped == stats.ticks - len(tokens)
        newest = {t: snapshot(sb.state.market, t, "quote") for t in tokens}
        seen = {}
        for _ in range(len(tokens)):
            tick = await feed.__anext__()
            assert isinstance(tick, QuoteTick)
            seen[tick.instrument_token] = tick
        assert seen == newest


async def frames_later(feed: KiteFeed, count: int) -> None:
    frames = feed.statistics().frames
    await wait_for(lambda: feed.statistics().frames >= frames + count)


# -- sharding over connections ----------------------------------------------------------------


async def test_4500_instruments_use_two_connections_and_one_stream_9000_three() -> None:
    async with sandbox(tick_interval=0.05) as sb:
        real = [t for t, i in sb.state.market.instruments.items() if i.segment != "INDICES"]
        fake = iter(range(10_000_000, 20_000_000))  # unknown tokens: subscribed, never tick
        first = real[:5] + [next(fake) for _ in range(2995)]  # fills connection 0
        second = real[5:10] + [next(fake) for _ in range(1495)]  # goes to connection 1
        async with feed_for(sb) as feed:
            await feed.subscribe(first, mode="ltp")
            await feed.subscribe(second, mode="ltp")
            assert feed.statistics().subscribed == 4500
            wanted, seen = set(real[:10]), set()

            def all_seen(item: FeedItem) -> bool:
                seen.add(getattr(item, "instrument_token", 0))
                return wanted <= seen

            await until(feed, all_seen)
            assert feed.statistics().connections == 2
            assert sb.state.stats.ws_connections == 2
            # up to Kite's limit, 9000: a third connection; one more is refused up front
            await feed.subscribe(range(30_000_000, 30_004_500), mode="ltp")
            await wait_for(lambda: feed.statistics().connections == 3)
            with pytest.raises(ValueError, match="too many instruments"):
                await feed.subscribe([40_000_000, real[0]])
            assert feed.statistics().subscribed == 9000
            assert sb.state.stats.ws_connections_refused == 0


# -- arguments, secrets ---------------------------------------------------------------------


def test_bad_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="api_key and access_token"):
        KiteFeed("key")
    with pytest.raises(ValueError, match="not both"):
        KiteFeed("key", "token", user_id="AB1234", enctoken="x")
    with pytest.raises(ValueError, match="sometimes"):
        KiteFeed("key", "token", overflow="sometimes")
    with pytest.raises(ValueError, match="cannot conflate"):
        RawKiteFeed("key", "token", overflow="conflate")
    with pytest.raises(ValueError, match="buffer_size"):
        KiteFeed("key", "token", buffer_size=0)


async def test_bad_subscriptions_raise_value_error_and_change_nothing() -> None:
    feed = KiteFeed("key", "secret-token")
    with pytest.raises(ValueError, match="everything"):
        await feed.subscribe([408065], mode="everything")
    with pytest.raises(TypeError, match="ints"):
        await feed.subscribe([408065, "INFY"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="iterable"):
        await feed.subscribe(408065)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32-bit"):
        await feed.subscribe([408065, 2**32])
    with pytest.raises(ValueError, match="not subscribed"):
        await feed.set_mode("full", [408065])
    assert feed.subscriptions == {}
    await feed.subscribe([408065, 408065])
    assert feed.subscriptions == {408065: "quote"}
    with pytest.raises(RuntimeError, match="async with"):
        await feed.__anext__()  # not entered: it would wait forever
    assert "secret-token" not in repr(feed)


async def test_secrets_stay_out_of_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with sandbox() as sb, feed_for(sb) as feed:
        await feed.subscribe(tradable(sb)[:1], mode="ltp")
        await until(feed, lambda i: isinstance(i, LtpTick))
        sb.drop_websockets()
        await wait_for(lambda: feed.statistics().reconnects >= 1)
    assert sb.access_token not in caplog.text
