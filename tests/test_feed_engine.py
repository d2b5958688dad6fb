"""The feed engine under KiteFeed, against the sandbox over loopback, on asyncio and trio:
credentials read on every (re)connect, ticks in a poorer mode delivered and counted,
``FeedDisconnected``'s attempt and close code, the keyword names, the per-message limit,
and the engine's independence from any broker package.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from _helpers import HANG, feed_for, sandbox, tradable

from aio_trader.backoff import Backoff
from aio_trader.errors import FeedClosedError
from aio_trader.kite import (
    FeedConnected,
    FeedDisconnected,
    FullTick,
    Kite,
    KiteFeed,
    LtpTick,
    QuoteTick,
)
from aio_trader.sandbox import Sandbox


async def until(feed: KiteFeed, done: Callable[[Any], bool]) -> list[Any]:
    items: list[Any] = []
    with anyio.fail_after(HANG):
        async for item in feed:
            items.append(item)
            if done(item):
                return items
    raise AssertionError("the feed ended")


def login(sb: Sandbox) -> Kite:
    return Kite(sb.api_key, sb.access_token, root=sb.root_url, token_cache=False)


def new_login(sb: Sandbox, token: str) -> None:
    """The broker issues a new access token (the sandbox always issues the same one)."""
    sb.state.access_tokens.add(token)


# -- credentials on every (re)connect ---------------------------------------------------------


async def test_a_renewed_access_token_reaches_the_running_feed() -> None:
    async with sandbox() as sb:
        token = tradable(sb)[0]
        feed = feed_for(sb)
        events = feed.connection_events()
        async with feed:
            await feed.subscribe([token], "ltp")
            await until(feed, lambda i: isinstance(i, LtpTick))
            new_login(sb, "renewed-token")
            feed.set_access_token("renewed-token")
            # the old token is invalidated (a logout through the REST API): the sandbox
            # closes the ticker's connection (1008) and refuses the old token from now on
            async with Kite(
                sb.api_key, sb.access_token, root=sb.root_url, token_cache=False
            ) as kite:
                await kite.invalidate_access_token()
            with anyio.fail_after(HANG):
                while True:
                    event = await events.receive()
                    if isinstance(event, FeedConnected) and event.reconnect:
                        break
            await until(feed, lambda i: isinstance(i, LtpTick))  # it goes on
            assert feed.statistics().reconnects >= 1
            assert sb.state.stats.ws_connections_refused == 0  # never tried the old one
        assert "renewed-token" not in repr(feed)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_token_provider_is_asked_on_every_connect(kind: str) -> None:
    async with sandbox() as sb:
        tokens = [sb.access_token]
        calls = 0

        def current() -> str:
            nonlocal calls
            calls += 1
            return tokens[-1]

        async def current_async() -> str:
            await anyio.lowlevel.checkpoint()
            return current()

        provider = current if kind == "sync" else current_async
        feed = feed_for(sb, access_token=provider, subscriptions=tradable(sb)[:1])
        async with feed:
            assert calls == 1
            new_login(sb, "next-day-token")
            tokens.append("next-day-token")
            sb.state.access_tokens.discard(sb.access_token)  # the old one expired
            sb.drop_websockets()
            await until(feed, lambda i: isinstance(i, QuoteTick))
            await anyio.lowlevel.checkpoint()
            with anyio.fail_after(HANG):
                while feed.statistics().connections != 1 or calls < 2:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            await until(feed, lambda i: isinstance(i, QuoteTick))
        assert calls >= 2
        assert sb.state.stats.ws_connections_refused == 0


async def test_bad_credentials_arguments_are_refused_before_any_io() -> None:
    with pytest.raises(TypeError, match="access_token"):
        KiteFeed("key", 42)  # type: ignore[arg-type]
    feed = KiteFeed("key", "token")
    with pytest.raises(ValueError, match="non-empty"):
        feed.set_access_token("")
    with pytest.raises(TypeError):
        feed.set_access_token(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="set_access_token"):
        feed.set_enctoken("enc")
    web = KiteFeed(user_id="AB1234", enctoken="enc")
    with pytest.raises(ValueError, match="set_enctoken"):
        web.set_access_token("token")


# -- modes: a poorer tick is delivered, counted -----------------------------------------------


async def test_ticks_in_a_poorer_mode_than_asked_are_delivered_and_counted() -> None:
    # a still market: the sandbox sends one frame per subscription change and then one per
    # tick_interval; Kite's protocol starts a subscription in quote mode
    async with sandbox(tick_interval=0.05) as sb, feed_for(sb) as feed:
        token = tradable(sb)[0]
        await feed.subscribe([token], "full")
        items = await until(feed, lambda i: isinstance(i, FullTick))
        quotes = [i for i in items if type(i) is QuoteTick]
        assert feed.statistics().poorer_mode == len(quotes)
        assert feed.statistics().stale_mode == 0
        # after the first full tick, only full ones
        later: list[Any] = []
        with anyio.fail_after(HANG):
            async for item in feed:
                later.append(item)
                if len(later) == 5:
                    break
        assert all(isinstance(i, FullTick) for i in later)


async def test_a_switch_down_drops_the_richer_ticks_until_it_takes_effect() -> None:
    async with sandbox(tick_interval=0.0) as sb, feed_for(sb, buffer_size=20) as feed:
        tokens = tradable(sb)[:3]
        await feed.subscribe(tokens, "full")
        await until(feed, lambda i: isinstance(i, FullTick))
        # the socket is full of full frames (flat out, lossless) when the switch is sent
        poorer = feed.statistics().poorer_mode  # quote ticks before full took effect
        await feed.set_mode("ltp", tokens)
        waiting = feed.statistics().buffered  # read before the switch: still delivered
        items = await until(feed, lambda i: isinstance(i, LtpTick))
        assert all(isinstance(i, FullTick) for i in items[:-1])
        assert len(items) - 1 >= waiting
        later: list[Any] = []
        with anyio.fail_after(HANG):
            async for item in feed:
                later.append(item)
                if len(later) == 50:
                    break
        assert all(type(i) is LtpTick for i in later)
        assert feed.statistics().stale_mode > 0  # the full ones sent after the switch
        assert feed.statistics().poorer_mode == poorer  # a switch down: nothing poorer


# -- FeedDisconnected: attempt and close code -------------------------------------------------


async def test_feed_disconnected_carries_the_close_code_and_the_attempt() -> None:
    async with sandbox() as sb:
        feed = feed_for(sb, subscriptions=tradable(sb)[:1])
        events = feed.connection_events()
        async with feed:
            new_login(sb, "renewed-token")
            feed.set_access_token("renewed-token")
            async with Kite(
                sb.api_key, sb.access_token, root=sb.root_url, token_cache=False
            ) as kite:
                await kite.invalidate_access_token()  # the sandbox closes with 1008
            with anyio.fail_after(HANG):
                assert await events.receive() == FeedConnected(0, False, 1)
                dropped = await events.receive()
        assert isinstance(dropped, FeedDisconnected)
        assert dropped.code == 1008
        assert dropped.attempt == 1
        assert "1008" in dropped.reason


async def test_refused_reconnects_count_their_attempts_with_the_status() -> None:
    # one connection per api_key: a second feed is refused with 429 (retried) until it
    # gives up; each refusal is an event with its attempt number and the status
    async with sandbox(max_ws_per_api_key=1) as sb, feed_for(sb):
        backoff = Backoff(base=0.01, factor=1.0, cap=0.01, max_attempts=3)
        second = feed_for(sb, backoff=backoff)
        events = second.connection_events()
        with pytest.raises(FeedClosedError):
            async with second:
                pass
        seen = [event async for event in events]
    assert [(e.attempt, e.code) for e in seen[:-1]] == [(1, 429), (2, 429)]  # type: ignore[union-attr]
    last = seen[-1]
    assert isinstance(last, FeedDisconnected)
    assert last.reconnect_in is None
    assert last.attempt == 0


# -- names -----------------------------------------------------------------------------------


async def test_keys_and_the_former_instrument_tokens_keyword() -> None:
    async with sandbox() as sb, feed_for(sb) as feed:
        a, b = tradable(sb)[:2]
        await feed.subscribe(keys=[a], mode="ltp")
        await feed.subscribe(instrument_tokens=[b], mode="ltp")
        assert feed.subscriptions == {a: "ltp", b: "ltp"}
        await feed.set_mode("quote", instrument_tokens=[a])
        await feed.set_mode(mode="full", keys=[b])
        assert feed.subscriptions == {a: "quote", b: "full"}
        await feed.unsubscribe(instrument_tokens=[a])
        await feed.unsubscribe(keys=[b])
        assert feed.subscriptions == {}
        with pytest.raises(TypeError, match="both"):
            await feed.subscribe(keys=[a], instrument_tokens=[a])
        with pytest.raises(TypeError, match="missing"):
            await feed.unsubscribe()


async def test_messages_are_split_at_the_protocols_per_message_limit() -> None:
    async with sandbox() as sb, feed_for(sb) as feed:
        feed._protocol.max_per_message = 2  # as a broker limit of 2 instruments per message
        tokens = tradable(sb)[:5]
        messages: list[str | bytes] = []
        original = feed._protocol.subscribe

        def spy(mode: str, keys: list[int]) -> list[str | bytes]:
            out = original(mode, keys)
            messages.extend(out)
            return out

        feed._protocol.subscribe = spy  # type: ignore[method-assign]
        await feed.subscribe(tokens, "ltp")
        seen: set[int] = set()
        with anyio.fail_after(HANG):
            async for item in feed:
                seen.add(item.instrument_token)
                if seen == set(tokens):
                    break
        sent = [json.loads(m) for m in messages]
        assert [len(m["v"]) for m in sent if m["a"] == "subscribe"] == [2, 2, 1]


# -- broker-neutral --------------------------------------------------------------------------
