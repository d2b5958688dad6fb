# ruff: noqa: F811  (the fixtures are imported from _redis, then requested by name)
"""Symbols where the brokers' keys go (issue 19, §1), against each broker's sandbox over real
loopback sockets: feeds subscribe, unsubscribe and switch modes by ``"EXCHANGE:SYMBOL"``
(given an instrument index), quote calls take symbols and say which instruments the broker
left out; a symbol without exchange, an unknown one, or one without an index raises a
named error before any I/O."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from _helpers import python_blocks
from _redis import RedisServer, prefix, redis  # noqa: F401 (fixtures)

from aio_trader.backoff import Backoff
from aio_trader.dhan import Dhan, DhanDepthFeed, DhanFeed, FullTick, LtpQuote, QuoteTick
from aio_trader.errors import UnknownInstrument
from aio_trader.gateway import Gateway, Recorder, RedisFeed
from aio_trader.kite import FullTick as KiteFullTick
from aio_trader.kite import Kite, KiteFeed, Mode, RawKiteFeed, decode_frame
from aio_trader.kite import LtpQuote as KiteLtpQuote
from aio_trader.replay import ReplayFeed
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.toolkit import Instrument, InstrumentIndex, Quotes

#: Hang guard for waits that must end (never an assertion on speed).
HANG = 30.0
FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)
FEED_BACKOFF = Backoff(base=0.05, factor=2.0, cap=0.2, max_attempts=5)

INFY_TOKEN = 408065
KITE_FUTURE = "NFO:NIFTY26DECFUT"
DHAN_FUTURE = "NFO:NIFTY-Dec2026-FUT"


@contextlib.asynccontextmanager
async def sandbox(broker: str, **config: Any) -> AsyncIterator[Sandbox]:
    config.setdefault("tick_interval", 0.02)
    async with Sandbox(SandboxConfig(broker=broker, rate_limit_scale=50, **config)) as sb:
        yield sb


def kite_client(sb: Sandbox, cache: Path) -> Kite:
    return Kite(
        sb.api_key,
        sb.access_token,
        root=sb.root_url,
        backoff=FAST,
        rate_limit_scale=50,
        instrument_cache=cache,
    )


def dhan_client(sb: Sandbox, cache: Path) -> Dhan:
    return Dhan(
        client_id=sb.client_id,
        access_token=sb.access_token,
        root=sb.root_url,
        backoff=FAST,
        rate_limit_scale=50,
        instrument_cache=cache,
    )


async def read_until(feed: Any, done: Callable[[Any], bool]) -> list[Any]:
    items: list[Any] = []
    with anyio.fail_after(HANG):
        async for item in feed:
            items.append(item)
            if done(item):
                return items
    raise AssertionError("the feed ended")


def index_of(broker: str, *instruments: Instrument) -> InstrumentIndex:
    return InstrumentIndex(instruments, broker=broker)


# -- Kite's feed -----------------------------------------------------------------------------


async def test_kite_feed_by_symbol_receives_ticks(tmp_path: Path) -> None:
    async with sandbox("kite") as sb:
        async with kite_client(sb, tmp_path) as kite:
            index = await kite.instrument_index()
        future = index.get(KITE_FUTURE).key
        feed = KiteFeed(
            sb.api_key,
            sb.access_token,
            root=sb.ticker_url,
            backoff=FEED_BACKOFF,
            instruments=index,
            subscriptions={"NSE:INFY": "ltp"},
        )
        assert feed.subscriptions == {INFY_TOKEN: Mode.LTP}
        async with feed:
            await feed.subscribe([KITE_FUTURE, "NSE:TCS"], "full")
            assert feed.subscriptions[future] == Mode.FULL
            seen: set[int] = set()

            def both(item: Any) -> bool:
                seen.add(getattr(item, "instrument_token", 0))
                return {INFY_TOKEN, future} <= seen

            await read_until(feed, both)
            assert index.by_key(future).symbol == KITE_FUTURE  # a tick's symbol, back
            await feed.set_mode("quote", [KITE_FUTURE])
            assert feed.subscriptions[future] == Mode.QUOTE
            await feed.unsubscribe(["NSE:INFY", "NSE:TCS"])
            assert set(feed.subscriptions) == {future}


async def test_raw_kite_feed_takes_symbols_too(tmp_path: Path) -> None:
    infy = Instrument(exchange="NSE", tradingsymbol="INFY", key=INFY_TOKEN)
    feed = RawKiteFeed("key", "token", instruments=index_of("kite", infy))
    await feed.subscribe(["NSE:INFY"], "full")  # before ``async with``: remembered
    assert feed.subscriptions == {INFY_TOKEN: Mode.FULL}


async def test_kite_feed_symbol_errors_come_before_any_io() -> None:
    infy = Instrument(exchange="NSE", tradingsymbol="INFY", key=INFY_TOKEN)
    without = KiteFeed("key", "token")
    with pytest.raises(TypeError, match="instrument_index") as caught:
        await without.subscribe(["NSE:INFY"])
    assert "'NSE:INFY'" in str(caught.value)
    with pytest.raises(TypeError, match="instrument_index"):
        KiteFeed("key", "token", subscriptions=["NSE:INFY"])
    feed = KiteFeed("key", "token", instruments=index_of("kite", infy))
    with pytest.raises(UnknownInstrument, match=r"'INFY'.*exchange"):
        await feed.subscribe(["INFY"])
    with pytest.raises(UnknownInstrument, match="NSE:NOPE"):
        await feed.subscribe([INFY_TOKEN, "NSE:NOPE"])
    with pytest.raises(UnknownInstrument, match="NSE:NOPE"):
        await feed.unsubscribe(["NSE:NOPE"])
    with pytest.raises(ValueError, match="not subscribed"):
        await feed.set_mode("full", ["NSE:INFY"])
    assert feed.subscriptions == {}  # nothing changed
    with pytest.raises(UnknownInstrument):
        KiteFeed("key", "token", instruments=index_of("kite", infy), subscriptions=["NOPE"])
    with pytest.raises(ValueError, match="dhan's index"):
        KiteFeed("key", "token", instruments=index_of("dhan"))
    with pytest.raises(TypeError, match="InstrumentIndex"):
        KiteFeed("key", "token", instruments={"NSE:INFY": INFY_TOKEN})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ints"):  # tokens alone: as before
        await without.subscribe([408065, "INFY"])


# -- Dhan's feeds ----------------------------------------------------------------------------


async def test_dhan_feed_by_symbol_receives_ticks(tmp_path: Path) -> None:
    async with sandbox("dhan") as sb:
        async with dhan_client(sb, tmp_path) as dhan:
            index = await dhan.instrument_index()
        feed = DhanFeed(
            sb.client_id,
            sb.access_token,
            root=sb.feed_url,
            order_root=sb.order_feed_url,
            backoff=FEED_BACKOFF,
            instruments=index,
        )
        async with feed:
            await feed.subscribe(["NSE:INFY", "NSE:NIFTY", DHAN_FUTURE], "quote")
            infy, nifty, future = ("NSE_EQ", 1594), ("IDX_I", 13), ("NSE_FNO", 35001)
            assert set(feed.subscriptions) == {infy, nifty, future}
            seen: set[Any] = set()

            def all_three(item: Any) -> bool:
                if isinstance(item, QuoteTick):
                    seen.add(item.key)
                return {infy, future} <= seen

            await read_until(feed, all_three)
            assert index.by_key(future).symbol == DHAN_FUTURE  # a tick's symbol, back
            await feed.set_mode("full", ["NSE:INFY"])
            await read_until(feed, lambda item: isinstance(item, FullTick) and item.key == infy)
            await feed.unsubscribe(["NSE:INFY", "NSE:NIFTY"])
            assert set(feed.subscriptions) == {future}


async def test_dhan_feeds_symbol_errors_come_before_any_io() -> None:
    infy = Instrument(exchange="NSE", tradingsymbol="INFY", key=("NSE_EQ", "1594"))
    nifty = Instrument(
        exchange="NSE", tradingsymbol="NIFTY", key=("IDX_I", "13"), instrument_type="INDEX"
    )
    index = index_of("dhan", infy, nifty)
    without = DhanFeed("1100", "token")
    with pytest.raises(TypeError, match="instrument_index"):
        await without.subscribe(["NSE:INFY"])
    with pytest.raises(TypeError, match="wrap one pair"):  # one pair, not a list: as before
        await without.subscribe(("NSE_EQ", 1333))  # type: ignore[arg-type]
    feed = DhanFeed("1100", "token", instruments=index, subscriptions={"NSE:INFY": "full"})
    assert feed.subscriptions == {("NSE_EQ", 1594): "full"}
    with pytest.raises(TypeError, match="wrap one pair"):
        await feed.subscribe(("NSE_EQ", 1333))  # type: ignore[arg-type]
    with pytest.raises(UnknownInstrument, match="'INFY'"):
        await feed.subscribe(["INFY"])
    with pytest.raises(UnknownInstrument, match="NSE:NOPE"):
        await feed.subscribe([("NSE_EQ", 1333), "NSE:NOPE"])
    assert feed.subscriptions == {("NSE_EQ", 1594): "full"}  # nothing changed
    with pytest.raises(ValueError, match="kite's index"):
        DhanFeed("1100", "token", instruments=index_of("kite"))
    depth = DhanDepthFeed("1100", "token", instruments=index)
    await depth.subscribe(["NSE:INFY"])
    assert set(depth.subscriptions) == {("NSE_EQ", 1594)}
    with pytest.raises(ValueError, match="NSE_EQ and NSE_FNO"):  # the depth feed's own rule
        await depth.subscribe(["NSE:NIFTY"])


# -- a recording and the gateway's consumers -------------------------------------------------


async def test_a_replay_subscribes_by_symbol(tmp_path: Path) -> None:
    path = tmp_path / "session.parquet"
    async with sandbox("kite") as sb:
        async with kite_client(sb, tmp_path / "cache") as kite:
            index = await kite.instrument_index()
        tcs = index.get("NSE:TCS").key
        feed = RawKiteFeed(sb.api_key, sb.access_token, root=sb.ticker_url, instruments=index)
        async with feed:
            await feed.subscribe(["NSE:INFY", "NSE:TCS"], "full")
            with Recorder(path) as recorder, anyio.fail_after(HANG):
                async for frame in feed:
                    recorder.write(frame.data, frame.received, frame.connection)
                    tokens = {
                        t.instrument_token
                        for t in (decode_frame(frame.data) if isinstance(frame.data, bytes) else [])
                    }
                    if {INFY_TOKEN, tcs} <= tokens and recorder.frames >= 5:
                        break
    replay = ReplayFeed(path, speed=None, instruments=index, subscriptions={"NSE:TCS": "full"})
    async with replay:
        assert replay.subscriptions == {tcs: "full"}
        ticks = [item async for item in replay]
    assert ticks
    assert {tick.instrument_token for tick in ticks} == {tcs}
    async with ReplayFeed(path, speed=None, instruments=index) as replay:
        await replay.subscribe(["NSE:TCS", "NSE:INFY"], "full")
        await replay.set_mode("quote", ["NSE:TCS"])
        await replay.unsubscribe(["NSE:INFY"])
        assert replay.subscriptions == {tcs: "quote"}
        with pytest.raises(UnknownInstrument, match="NSE:NOPE"):
            await replay.subscribe(["NSE:NOPE"])
    with pytest.raises(ValueError, match="dhan's index"):
        ReplayFeed(path, codec="kite", instruments=index_of("dhan"))
    with pytest.raises(ValueError, match="dhan's index"):  # the recording's codec: on entry
        async with ReplayFeed(path, instruments=index_of("dhan")):
            pass


async def test_a_gateway_consumer_subscribes_by_symbol(
    redis: RedisServer, prefix: str, tmp_path: Path
) -> None:
    async with sandbox("kite") as sb:
        async with kite_client(sb, tmp_path) as kite:
            index = await kite.instrument_index()
        gateway = Gateway(
            sb.api_key,
            sb.access_token,
            root=sb.ticker_url,
            redis=redis.url,
            prefix=prefix,
            poll=0.02,
            refresh=0.2,
        )
        consumer = RedisFeed(
            redis.url,
            "symbols",
            prefix=prefix,
            heartbeat=0.1,
            timeout=1.0,
            block=0.2,
            instruments=index,
        )
        async with gateway, consumer:
            await consumer.subscribe(["NSE:INFY"], "full")
            assert consumer.subscriptions == {INFY_TOKEN: "full"}
            await read_until(
                consumer,
                lambda item: isinstance(item, KiteFullTick) and item.instrument_token == INFY_TOKEN,
            )
            with pytest.raises(UnknownInstrument, match="'INFY'"):
                await consumer.subscribe(["INFY"])
    with pytest.raises(ValueError, match="dhan's index"):
        RedisFeed(redis.url, "other", codec="kite", instruments=index_of("dhan"))
    without = RedisFeed(redis.url, "other", prefix=prefix)
    with pytest.raises(ValueError, match="instrument_index"):  # the codec's ValueError, named
        await without.subscribe(["NSE:INFY"])


# -- quotes ----------------------------------------------------------------------------------


async def test_kite_quotes_name_what_kite_left_out(tmp_path: Path) -> None:
    async with sandbox("kite", market_interval=None) as sb, kite_client(sb, tmp_path) as kite:
        both = await kite.ltp("NSE:INFY", INFY_TOKEN)
        assert isinstance(both, Quotes)
        assert isinstance(both, dict)
        assert both.missing == ()
        assert isinstance(both["NSE:INFY"], KiteLtpQuote)
        partial = await kite.quote(["NSE:INFY", "NSE:NOPE", "NSE:TCS"])
        assert set(partial) == {"NSE:INFY", "NSE:TCS"}
        assert partial.missing == ("NSE:NOPE",)
        ohlc = await kite.ohlc("NSE:NOPE", "NSE:TCS")
        assert ohlc.missing == ("NSE:NOPE",)
        with pytest.raises(UnknownInstrument, match="NSE:NOPE") as caught:
            await kite.ltp("NSE:NOPE")
        assert caught.value.symbols == ("NSE:NOPE",)
        before = sb.state.stats.requests
        for bad in ("INFY", "NSE:", ":INFY", " : "):
            with pytest.raises(UnknownInstrument, match="EXCHANGE:TRADINGSYMBOL"):
                await kite.ltp("NSE:TCS", bad)
        with pytest.raises(UnknownInstrument):
            await kite.trigger_range("BUY", "INFY")
        assert sb.state.stats.requests == before  # nothing was sent


async def test_dhan_quotes_by_symbol_keyed_like_the_request(tmp_path: Path) -> None:
    async with sandbox("dhan", market_interval=None) as sb, dhan_client(sb, tmp_path) as dhan:
        before = sb.state.stats.requests
        with pytest.raises(UnknownInstrument, match="'INFY'"):
            await dhan.ltp(["NSE:TCS", "INFY"])
        assert sb.state.stats.requests == before  # not even the index was fetched
        asked = ["NSE:INFY", ("NSE_EQ", 1333), DHAN_FUTURE, ("NSE_EQ", "999999")]
        prices = await dhan.ltp(asked)
        assert sb.state.stats.requests == before + 2  # the index, then one quote call
        assert list(prices) == ["NSE:INFY", ("NSE_EQ", "1333"), DHAN_FUTURE]
        assert all(isinstance(q, LtpQuote) and q.last_price for q in prices.values())
        assert prices.missing == (("NSE_EQ", "999999"),)
        one = await dhan.ohlc("NSE:NIFTY")  # one symbol alone
        assert list(one) == ["NSE:NIFTY"]
        assert one.missing == ()
        full = await dhan.quote([DHAN_FUTURE, ("NSE_FNO", "35001")])  # the same, twice
        assert set(full) == {DHAN_FUTURE, ("NSE_FNO", "35001")}
        pairs = await dhan.ltp({"NSE_EQ": [1333]})  # pairs alone: as before
        assert list(pairs) == [("NSE_EQ", "1333")]
        before = sb.state.stats.requests
        with pytest.raises(UnknownInstrument, match="NSE:NOPE") as caught:
            await dhan.ltp(["NSE:INFY", "NSE:NOPE"])
        assert "NSE:NOPE" in str(caught.value)
        assert sb.state.stats.requests == before  # unknown to the index: no quote request
        with pytest.raises(UnknownInstrument, match="999999") as caught:
            await dhan.ltp([("NSE_EQ", 999999)])
        assert caught.value.broker == "dhan"


# -- the docs' snippets ----------------------------------------------------------------------


def _symbol_snippets() -> list[str]:
    return [block for block in python_blocks("docs/toolkit.md") if "Sandbox" in block]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_toolkit_pages_symbol_snippets_run(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = _symbol_snippets()
    assert len(blocks) == 3
    for block in blocks:
        assert block.count("anyio.run(main)") == 1
        code = block.replace("anyio.run(main)", f"anyio.run(main, backend={backend!r})")
        exec(compile(code, "docs/toolkit.md", "exec"), {"__name__": "snippet"})
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "408065 1 0.05",
        "NFO:NIFTY26DEC24300CE 75 301.25",
        "['NSE:INFY'] ('NSE:NOPE',)",
        "instrument 'INFY' has no exchange: write it 'EXCHANGE:TRADINGSYMBOL' (e.g. 'NSE:INFY')",
        "['NFO:NIFTY26DECFUT', 'NSE:INFY']",
        "NFO:NIFTY-Dec2026-FUT ('NSE_FNO', '35001')",
        "['NSE:INFY', 'NFO:NIFTY-Dec2026-FUT', ('NSE_EQ', '1333')]",
        "NSE:INFY True",
    ]
