"""Paper trading (``aio_trader.paper.Paper``) on Kite and Dhan, end to end over real loopback
sockets: a "real" broker is a sandbox whose prices the test sets (its clock off), read by
the broker's own feed; ``Paper`` fills the orders of its own sandbox at that feed's ticks.
A recording (``ReplayFeed``) drives paper fills too."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from _helpers import python_blocks

from aio_trader.backoff import Backoff
from aio_trader.dhan import Dhan, DhanFeed
from aio_trader.dhan.ticks import OrderUpdate as DhanOrderUpdate
from aio_trader.errors import ClientClosedError, InvalidInput, TokenException
from aio_trader.kite import Kite, KiteFeed, OrderUpdate, Tick
from aio_trader.kite.ticks import Ohlc, QuoteTick, encode_frame
from aio_trader.paper import Paper
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.sandbox._dhan._instruments import token_of
from aio_trader.toolkit import Instrument, InstrumentIndex

#: Only against a hang (a bug): no test waits for a time to pass.
HANG_GUARD = 60.0
INFY, TCS = 408065, 2953217
HDFC = ("NSE_EQ", 1333)
HDFC_TOKEN = token_of("NSE_EQ", 1333)
FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)


async def read_until(paper: Paper, done: Callable[[Any], bool]) -> list[Any]:
    """The items of ``paper`` up to and including the first one ``done`` accepts."""
    seen: list[Any] = []
    with anyio.fail_after(HANG_GUARD):
        async for item in paper:
            seen.append(item)
            if done(item):
                return seen
    raise AssertionError(f"paper ended before the item looked for; read {seen!r}")


def kite_tick(token: int, price: float) -> Callable[[Any], bool]:
    return lambda item: (
        isinstance(item, Tick) and item.instrument_token == token and item.last_price == price
    )


def kite_update(order_id: str, status: str) -> Callable[[Any], bool]:
    return lambda item: (
        isinstance(item, OrderUpdate) and item.order_id == order_id and item.status == status
    )


# -- Kite ------------------------------------------------------------------------------------


@pytest.fixture
async def kite_real() -> AsyncIterator[Sandbox]:
    """The "real" Kite: prices only move when the test sets them."""
    async with Sandbox(SandboxConfig(seed=1, market_interval=None, tick_interval=0.01)) as sb:
        sb.state.market.set_quote(INFY, 1500.0)
        sb.state.market.set_quote(TCS, 3300.0)
        yield sb


@pytest.fixture
async def kite_feed(kite_real: Sandbox) -> AsyncIterator[KiteFeed]:
    async with KiteFeed(kite_real.api_key, kite_real.access_token, root=kite_real.ticker_url) as f:
        yield f


async def test_kite_paper_fills_orders_at_the_feeds_ticks(
    kite_real: Sandbox, kite_feed: KiteFeed
) -> None:
    async with Paper(kite_feed, cash=100_000, client_options={"backoff": FAST}) as paper:
        kite: Kite = paper.broker
        assert isinstance(kite, Kite)
        assert paper.sandbox.config.broker == "kite"
        assert await kite.holdings() == []  # a paper account starts with cash only
        await paper.subscribe([INFY], "full")
        await read_until(paper, kite_tick(INFY, 1500.0))

        # a BUY LIMIT at the tick's price fills at once, at that price
        first = await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=1500
        )
        done = await kite.wait_for_order(first, feed=paper)
        assert (done.status, done.average_price) == ("COMPLETE", 1500.0)

        # one below rests until a tick crosses it; its update comes after that tick
        resting = await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=1490
        )
        assert (await kite.order_history(resting))[-1].status == "OPEN"
        kite_real.state.market.set_quote(INFY, 1485.0)
        seen = await read_until(paper, kite_update(resting, "COMPLETE"))
        assert kite_tick(INFY, 1485.0)(seen[-2])  # right after the tick that filled it
        assert not any(kite_tick(INFY, 1485.0)(item) for item in seen[:-2])
        assert seen[-1].average_price == 1485.0
        assert (await kite.wait_for_order(resting, feed=paper)).average_price == 1485.0

        # a MARKET order fills at the last tick
        market = await kite.place_order(
            "regular", "NSE", "INFY", "SELL", 1, "MIS", "MARKET", market_protection=-1
        )
        done = await kite.wait_for_order(market, feed=paper)
        assert (done.status, done.average_price) == ("COMPLETE", 1485.0)

        # cancelling works, and its update reaches the same async for
        far = await kite.place_order("regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=1000)
        await kite.cancel_order("regular", far)
        await read_until(paper, kite_update(far, "CANCELLED"))
        assert (await kite.wait_for_order(far)).status == "CANCELLED"

        positions = {(p.product, p.quantity, p.average_price) for p in (await kite.positions()).net}
        assert positions == {("CNC", 2, 1492.5), ("MIS", -1, 1485.0)}
        (holding,) = await kite.holdings()
        assert (holding.tradingsymbol, holding.t1_quantity) == ("INFY", 2)
        funds = await kite.margins("equity")
        assert funds.available.opening_balance == 100_000
        assert funds.net is not None
        assert funds.net < 100_000 - 2985 + 1  # bought 2, sold 1 MIS
        stats = paper.statistics()
        assert stats.order_updates >= 6
        assert stats.ticks >= 2  # the feed's own counts
        # the "real" broker saw no order: every one went to the paper sandbox
        assert kite_real.state.book.orders == {}


async def test_kite_paper_instruments_and_prices(kite_real: Sandbox, kite_feed: KiteFeed) -> None:
    async with Paper(kite_feed, broker="kite") as paper:
        kite: Kite = paper.broker
        # no tick of TCS yet: a MARKET order has no price to fill at; a LIMIT order waits
        with pytest.raises(InvalidInput, match="No price yet for NSE:TCS"):
            await kite.place_order(
                "regular", "NSE", "TCS", "BUY", 1, "MIS", "MARKET", market_protection=-1
            )
        waiting = await kite.place_order(
            "regular", "NSE", "TCS", "BUY", 1, "MIS", "LIMIT", price=3400
        )
        assert (await kite.order_history(waiting))[-1].status == "OPEN"
        # instruments by symbol; unknown ones are refused before anything is sent
        with pytest.raises(ValueError, match=r"'NSE:NOPE', 123"):
            await paper.subscribe(["NSE:INFY", "NSE:NOPE", 123])
        assert kite_feed.subscriptions == {}
        await paper.subscribe(["NSE:TCS"], "ltp")
        assert kite_feed.subscriptions == {TCS: "ltp"}
        await read_until(paper, kite_update(waiting, "COMPLETE"))
        assert (await kite.order_history(waiting))[-1].average_price == 3300.0
        await paper.set_mode("quote", ["NSE:TCS"])
        await paper.unsubscribe([TCS])
        assert kite_feed.subscriptions == {}


async def test_kite_paper_closes_everything_and_leaves_the_feed(
    kite_real: Sandbox, kite_feed: KiteFeed
) -> None:
    names = {task.name for task in anyio.get_running_tasks()}
    async with Paper(kite_feed) as paper:
        port = paper.sandbox.port
        assert {task.name for task in anyio.get_running_tasks()} - names
        await paper.subscribe([INFY], "ltp")
        await read_until(paper, kite_tick(INFY, 1500.0))
    assert {task.name for task in anyio.get_running_tasks()} - names == set()
    with pytest.raises(OSError):  # noqa: PT011 - refused: the errno's text varies
        await anyio.connect_tcp("127.0.0.1", port)
    with pytest.raises(ClientClosedError):
        paper.broker  # noqa: B018
    with pytest.raises(ClientClosedError):
        async for _ in paper:
            pass
    with pytest.raises(ClientClosedError):
        await paper.subscribe([INFY])
    # the feed is the caller's: still open, still ticking
    with anyio.fail_after(HANG_GUARD):
        async for item in kite_feed:
            if isinstance(item, Tick):
                break


async def test_paper_cancellation(kite_real: Sandbox, kite_feed: KiteFeed) -> None:
    # a cancelled wait for the next item loses nothing
    async with Paper(kite_feed) as paper:
        kite: Kite = paper.broker
        order_id = await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=900
        )
        for _ in range(20):
            with anyio.CancelScope() as scope:
                scope.cancel()
                await paper.__anext__()
            assert scope.cancelled_caught
        await read_until(paper, kite_update(order_id, "OPEN"))

    # cancelling the scope around the account closes it: no task left, sandbox stopped
    names = {task.name for task in anyio.get_running_tasks()}
    with anyio.CancelScope() as outer:
        async with Paper(kite_feed) as paper:
            port = paper.sandbox.port
            outer.cancel()
            await anyio.sleep_forever()
    assert outer.cancelled_caught
    assert {task.name for task in anyio.get_running_tasks()} - names == set()
    with pytest.raises(OSError):  # noqa: PT011 - refused: the errno's text varies
        await anyio.connect_tcp("127.0.0.1", port)

    # aclose() in the body, inside a scope of its own: reading ends, the client is closed
    async with Paper(kite_feed) as paper:
        with anyio.move_on_after(HANG_GUARD):
            await paper.aclose()
        assert [item async for item in paper] == []
        with pytest.raises(ClientClosedError):
            paper.broker  # noqa: B018
        with pytest.raises(ClientClosedError):
            await paper.subscribe([INFY])
        assert paper.sandbox.port  # stopped when the block is left

    # an error in the body comes out as itself
    with pytest.raises(KeyError, match="mine"):
        async with Paper(kite_feed):
            raise KeyError("mine")


async def test_a_feed_error_comes_out_of_paper_as_itself(kite_real: Sandbox) -> None:
    feed = KiteFeed(kite_real.api_key, kite_real.access_token, root=kite_real.ticker_url)
    with pytest.raises(TokenException):  # noqa: PT012 - the feed's own exit raises it too
        async with feed, Paper(feed) as paper:
            await paper.subscribe([INFY], "ltp")
            await read_until(paper, kite_tick(INFY, 1500.0))
            kite_real.expire_session()
            kite_real.drop_websockets()
            with pytest.raises(TokenException), anyio.fail_after(HANG_GUARD):
                async for _ in paper:
                    pass
            raise TokenException("the feed's", status_code=403)


async def test_paper_misuse(kite_real: Sandbox, kite_feed: KiteFeed) -> None:
    with pytest.raises(TypeError, match="feeder"):
        Paper(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="market_interval"):
        Paper(kite_feed, market_interval=1.0)
    with pytest.raises(ValueError, match="unknown broker"):
        Paper(kite_feed, broker="nope")
    with pytest.raises(ValueError, match="the feed speaks kite's protocol, not dhan's"):
        Paper(kite_feed, broker="dhan")
    with pytest.raises(ValueError, match="cash"):
        Paper(kite_feed, cash=0)
    with pytest.raises(ValueError, match="buffer_size"):
        Paper(kite_feed, buffer_size=0)
    with pytest.raises(ValueError, match="rules"):
        Paper(kite_feed, rules="someday")
    paper = Paper(kite_feed)
    with pytest.raises(ClientClosedError):
        paper.__aiter__()
    with pytest.raises(ClientClosedError):
        paper.broker  # noqa: B018
    unentered = KiteFeed(kite_real.api_key, kite_real.access_token, root=kite_real.ticker_url)
    with pytest.raises(ClientClosedError):
        async with Paper(unentered):
            pass
    async with paper:
        with pytest.raises(RuntimeError, match="once"):
            await paper.__aenter__()
        with pytest.raises(ValueError, match="max_items"):
            paper.batches(0)


async def test_paper_batches_yield_ticks_and_updates(
    kite_real: Sandbox, kite_feed: KiteFeed
) -> None:
    async with Paper(kite_feed, overflow="conflate", buffer_size=100) as paper:
        kite: Kite = paper.broker
        await paper.subscribe([INFY], "quote")
        order_id = await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=1480
        )
        kite_real.state.market.set_quote(INFY, 1479.0)
        kinds: set[type] = set()
        with anyio.fail_after(HANG_GUARD):
            async for batch in paper.batches():
                assert batch
                kinds.update(type(item) for item in batch)
                if any(kite_update(order_id, "COMPLETE")(item) for item in batch):
                    break
        assert OrderUpdate in kinds
        assert kinds - {OrderUpdate}  # ticks too


# -- a recording drives paper fills -------------------------------------------------------------


def quote(price: float) -> QuoteTick:
    return QuoteTick(
        instrument_token=INFY,
        last_price=price,
        last_traded_quantity=1,
        average_traded_price=price,
        volume_traded=100,
        total_buy_quantity=10,
        total_sell_quantity=10,
        ohlc=Ohlc(open=1500.0, high=1500.0, low=price, close=1495.0),
    )


def make_recording(path: Path) -> None:
    """INFY at 1500, 1490, 1480 and 1470, one second apart."""
    from aio_trader.gateway import Recorder

    start = time.time()
    with Recorder(path) as recorder:
        for second, price in enumerate([1500.0, 1490.0, 1480.0, 1470.0]):
            recorder.write(encode_frame([quote(price)]), start + second)


async def test_a_recording_drives_paper_fills(tmp_path: Path) -> None:
    from aio_trader.replay import ReplayFeed

    path = tmp_path / "session.parquet"
    make_recording(path)
    # the first frame plays at once, the next one a billion seconds later: until the test
    # lets the rest play (speed None), the replay waits after the first tick
    async with ReplayFeed(path, speed=1e-9) as replay, Paper(replay) as paper:
        kite: Kite = paper.broker
        await read_until(paper, kite_tick(INFY, 1500.0))
        order_id = await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 2, "CNC", "LIMIT", price=1485
        )
        await read_until(paper, kite_update(order_id, "OPEN"))
        replay.speed = None
        seen = await read_until(paper, kite_update(order_id, "COMPLETE"))
        # the fill's update comes right after the tick that filled it
        assert [item.last_price for item in seen[:-1]] == [1490.0, 1480.0]
        assert seen[-1].average_price == 1480.0
        with anyio.fail_after(HANG_GUARD):
            rest = [item async for item in paper]  # the recording's end ends it
        assert [item.last_price for item in rest if isinstance(item, Tick)] == [1470.0]
        (position,) = (await kite.positions()).net
        assert (position.quantity, position.average_price, position.last_price) == (
            2,
            1480.0,
            1470.0,
        )


# -- the docs page's snippets run --------------------------------------------------------------


def page_blocks() -> list[str]:
    return python_blocks("docs/paper.md")


def page_namespace(containing: str) -> dict[str, Any]:
    (block,) = [block for block in page_blocks() if containing in block]
    namespace: dict[str, Any] = {"__name__": "docs_paper"}
    exec(compile(block, "docs/paper.md", "exec"), namespace)
    return namespace


async def test_the_docs_strategy_runs_on_paper_and_live(capsys: pytest.CaptureFixture[str]) -> None:
    main = page_namespace("async def strategy")["main"]
    with anyio.fail_after(HANG_GUARD):
        await main()
        await main(live=True)
    assert capsys.readouterr().out.splitlines() == ["COMPLETE True", "COMPLETE True"]


async def test_the_docs_replay_snippet_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "session.parquet"
    make_recording(path)
    replay_paper = page_namespace("async def replay_paper")["replay_paper"]
    with anyio.fail_after(HANG_GUARD):
        await replay_paper(str(path))
    assert capsys.readouterr().out.strip() == "Positions(net=(), day=())"


# -- Dhan ----------------------------------------------------------------------------------------


@pytest.fixture
async def dhan_real() -> AsyncIterator[Sandbox]:
    """The "real" Dhan: prices only move when the test sets them."""
    config = SandboxConfig(broker="dhan", seed=4, market_interval=None, tick_interval=0.01)
    async with Sandbox(config) as sb:
        sb.state.market.set_quote(HDFC_TOKEN, 1600.0)
        yield sb


def dhan_tick(price: float) -> Callable[[Any], bool]:
    return lambda item: (
        getattr(item, "key", None) == HDFC and getattr(item, "last_price", 0) == price
    )


def dhan_update(order_id: str, status: str) -> Callable[[Any], bool]:
    return lambda item: (
        isinstance(item, DhanOrderUpdate) and item.order_id == order_id and item.status == status
    )


async def test_dhan_paper_fills_orders_at_the_feeds_ticks(dhan_real: Sandbox) -> None:
    feed = DhanFeed(
        dhan_real.client_id, dhan_real.access_token, root=dhan_real.feed_url, order_root=None
    )
    async with feed, Paper(feed, cash=100_000, client_options={"backoff": FAST}) as paper:
        dhan: Dhan = paper.broker
        assert isinstance(dhan, Dhan)
        assert paper.sandbox.config.broker == "dhan"
        await paper.subscribe([("NSE_EQ", "1333")], "quote")
        await read_until(paper, dhan_tick(1600.0))

        first = await dhan.place_order("1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=1600.0)
        done = await dhan.wait_for_order(first, feed=paper)
        assert (done.order_status, done.average_traded_price) == ("TRADED", 1600.0)

        resting = await dhan.place_order("1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=1590.0)
        assert (await dhan.order(resting)).order_status == "PENDING"
        dhan_real.state.market.set_quote(HDFC_TOKEN, 1585.0)
        seen = await read_until(paper, dhan_update(resting, "TRADED"))
        assert dhan_tick(1585.0)(seen[-2])  # right after the tick that filled it
        assert not any(dhan_tick(1585.0)(item) for item in seen[:-2])
        assert seen[-1].average_traded_price == 1585.0

        market = await dhan.place_order(
            "1333", "NSE_EQ", "SELL", 1, "MARKET", "INTRADAY", market_protection=-1
        )
        done = await dhan.wait_for_order(market, feed=paper)
        assert (done.order_status, done.average_traded_price) == ("TRADED", 1585.0)

        far = await dhan.place_order("1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=1000.0)
        await dhan.cancel_order(far)
        await read_until(paper, dhan_update(far, "CANCELLED"))

        nets = {(p.product_type, p.net_qty) for p in await dhan.positions()}
        assert nets == {("CNC", 2), ("INTRADAY", -1)}
        funds = await dhan.fund_limits()
        assert funds.available_balance is not None
        assert funds.available_balance < 100_000
        assert dhan_real.state.book.orders == {}
        with pytest.raises(ValueError, match="NSE_EQ"):
            await paper.subscribe([("NSE_EQ", 999999)])


# -- a real account's instruments (``Paper(feed, instruments=index)``) ---------------------------

#: An instrument neither sandbox's shipped list has: the "real" broker below knows it.
IREDA_KITE = Instrument("NSE", "IREDA", 5331201, name="IREDA", lot_size=1, tick_size=0.01)
IREDA_DHAN = Instrument("NSE", "IREDA", ("NSE_EQ", "20825"), name="IREDA", tick_size=0.01)
IREDA_DHAN_TOKEN = token_of("NSE_EQ", 20825)


async def shipped_index(broker: str) -> InstrumentIndex:
    """The index a client of a default sandbox builds (its shipped instrument list)."""
    async with Sandbox(SandboxConfig(broker=broker, market_interval=None)) as sb:
        client: Kite | Dhan
        if broker == "kite":
            client = Kite(sb.api_key, sb.access_token, root=sb.root_url, token_cache=False)
        else:
            client = Dhan(sb.client_id, sb.access_token, root=sb.root_url)
        async with client:
            return await client.instrument_index()


async def real_with(extra: Instrument) -> Sandbox:
    """A "real" broker that knows ``extra`` besides the shipped list (not entered yet)."""
    index = await shipped_index("kite" if isinstance(extra.key, int) else "dhan")
    assert extra.symbol not in index
    assert index.find(extra.symbol) is None
    extended = InstrumentIndex([*index, extra], broker=index.broker, day=index.day)
    return Sandbox(
        SandboxConfig(
            broker=index.broker,
            seed=5,
            market_interval=None,
            tick_interval=0.01,
            instruments=extended,
        )
    )


async def test_kite_paper_trades_an_instrument_of_the_real_accounts_index(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with await real_with(IREDA_KITE) as real:
        real.state.market.set_quote(IREDA_KITE.key, 180.0)
        async with (
            # no disk cache: a sandbox's port may be an earlier one's
            Kite(
                real.api_key, real.access_token, root=real.root_url, instrument_cache=False
            ) as kite,
            KiteFeed(real.api_key, real.access_token, root=real.ticker_url) as feed,
        ):
            index = await kite.instrument_index()  # the "real" account's: IREDA in it
            assert index.get("NSE:IREDA").key == IREDA_KITE.key

            # without it, the paper sandbox's own list lacks IREDA
            async with Paper(feed) as paper:
                with pytest.raises(ValueError, match="NSE:IREDA"):
                    await paper.subscribe(["NSE:IREDA"])
                with pytest.raises(ValueError, match="5331201"):
                    await paper.subscribe([IREDA_KITE.key])

            # with it, IREDA trades to COMPLETE (the docs' snippet, then by token)
            paper_any_instrument = page_namespace("async def paper_any_instrument")
            with anyio.fail_after(HANG_GUARD):
                await paper_any_instrument["paper_any_instrument"](kite, feed, "NSE:IREDA")
            assert capsys.readouterr().out.splitlines() == ["NSE:IREDA COMPLETE"]

            async with Paper(feed, instruments=index) as paper:
                paper_kite: Kite = paper.broker
                known = paper.sandbox.state.market.instruments
                assert set(known) == {instrument.key for instrument in index}
                assert known[IREDA_KITE.key].segment == "NSE"
                await paper.subscribe([IREDA_KITE.key], "full")
                await read_until(paper, kite_tick(IREDA_KITE.key, 180.0))
                order_id = await paper_kite.place_order(
                    "regular", "NSE", "IREDA", "BUY", 10, "CNC", "LIMIT", price=179.5
                )
                real.state.market.set_quote(IREDA_KITE.key, 179.25)
                seen = await read_until(paper, kite_update(order_id, "COMPLETE"))
                assert kite_tick(IREDA_KITE.key, 179.25)(seen[-2])
                assert seen[-1].average_price == 179.25
                (position,) = (await paper_kite.positions()).net
                assert (position.tradingsymbol, position.quantity) == ("IREDA", 10)
                # instruments of the index only: INFY is in it, from the shipped list
                await paper.subscribe(["NSE:INFY"])
            assert real.state.book.orders == {}


async def test_dhan_paper_trades_an_instrument_of_the_real_accounts_index() -> None:
    async with await real_with(IREDA_DHAN) as real:
        real.state.market.set_quote(IREDA_DHAN_TOKEN, 180.0)
        # no disk cache: a sandbox's port may be an earlier one's
        async with Dhan(
            real.client_id, real.access_token, root=real.root_url, instrument_cache=False
        ) as real_dhan:
            index = await real_dhan.instrument_index()  # the "real" account's: IREDA in it
        assert index.get("NSE:IREDA") == IREDA_DHAN
        feed = DhanFeed(real.client_id, real.access_token, root=real.feed_url, order_root=None)
        async with feed:
            async with Paper(feed) as paper:
                with pytest.raises(ValueError, match="20825"):
                    await paper.subscribe([IREDA_DHAN.key])
            async with Paper(feed, cash=100_000, instruments=index) as paper:
                dhan: Dhan = paper.broker
                await paper.subscribe(["NSE:IREDA"], "quote")
                await read_until(
                    paper,
                    lambda item: (
                        getattr(item, "key", None) == ("NSE_EQ", 20825)
                        and getattr(item, "last_price", 0) == 180.0
                    ),
                )
                order_id = await dhan.place_order(
                    "20825", "NSE_EQ", "BUY", 10, "LIMIT", "CNC", price=179.5
                )
                assert (await dhan.order(order_id)).order_status == "PENDING"
                real.state.market.set_quote(IREDA_DHAN_TOKEN, 179.25)
                done = await dhan.wait_for_order(order_id, feed=paper)
                assert (done.order_status, done.average_traded_price) == ("TRADED", 179.25)
                (position,) = await dhan.positions()
                assert (position.trading_symbol, position.net_qty) == ("IREDA", 10)
            assert real.state.book.orders == {}


async def test_a_recording_drives_paper_fills_of_an_index_without_its_brokers_name(
    tmp_path: Path,
) -> None:
    from aio_trader.replay import ReplayFeed

    path = tmp_path / "session.parquet"
    make_recording(path)
    infy = Instrument("NSE", "INFY", INFY, name="INFOSYS", tick_size=0.05)
    replay = ReplayFeed(path, speed=1e-9)  # the first tick at once, the next much later
    # the broker is known once the replay is entered: the keys are checked then
    wrong = Paper(replay, instruments=InstrumentIndex([IREDA_DHAN]))
    paper = Paper(replay, instruments=InstrumentIndex([infy]))
    async with replay:
        with pytest.raises(ValueError, match="not kite's instrument keys: NSE:IREDA"):
            await wrong.__aenter__()
        async with paper:
            assert list(paper.sandbox.state.market.instruments) == [INFY]
            kite: Kite = paper.broker
            await read_until(paper, kite_tick(INFY, 1500.0))
            order_id = await kite.place_order(
                "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=1500
            )
            done = await kite.wait_for_order(order_id, feed=paper)
            assert (done.status, done.average_price) == ("COMPLETE", 1500.0)


@pytest.mark.parametrize("broker", ["kite", "dhan"])
async def test_a_sandbox_on_its_own_index_has_its_shipped_list(broker: str) -> None:
    """The per-dialect conversion gives the shipped instruments back, field for field."""
    index = await shipped_index(broker)
    config = SandboxConfig(broker=broker, market_interval=None, instruments=index)
    async with (
        Sandbox(SandboxConfig(broker=broker, market_interval=None)) as shipped,
        Sandbox(config) as converted,
    ):
        assert converted.state.market.instruments == shipped.state.market.instruments


async def test_paper_instruments_must_be_the_feeds_brokers(
    kite_real: Sandbox, kite_feed: KiteFeed
) -> None:
    dhan_index = InstrumentIndex([IREDA_DHAN], broker="dhan")
    with pytest.raises(ValueError, match="instruments is dhan's index"):
        Paper(kite_feed, instruments=dhan_index)
    with pytest.raises(TypeError, match="InstrumentIndex"):
        Paper(kite_feed, instruments=[IREDA_KITE])  # type: ignore[arg-type]
    # an index without its broker's name: its keys are checked
    with pytest.raises(ValueError, match="not kite's instrument keys: NSE:IREDA"):
        Paper(kite_feed, instruments=InstrumentIndex([IREDA_DHAN]))
    with pytest.raises(ValueError, match="is empty"):
        Paper(kite_feed, instruments=InstrumentIndex([], broker="kite"))
    # nothing was started: the "real" broker's feed is as it was
    assert kite_feed.statistics().subscribed == 0
    # the config alone checks the same (a sandbox of another broker's index)
    with pytest.raises(ValueError, match="a dhan sandbox needs"):
        SandboxConfig(broker="dhan", instruments=InstrumentIndex([IREDA_KITE], broker="kite"))
    with pytest.raises(ValueError, match="not dhan's instrument keys"):
        SandboxConfig(broker="dhan", instruments=[IREDA_KITE])
    with pytest.raises(TypeError, match="Instruments"):
        SandboxConfig(instruments=["NSE:INFY"])
    with pytest.raises(TypeError, match="InstrumentIndex or Instruments"):
        SandboxConfig(instruments="NSE:INFY")
    assert "instruments=<1 instruments>" in repr(SandboxConfig(instruments=[IREDA_KITE]))


def test_importing_paper_without_the_sandbox_extra_names_it() -> None:
    code = "import sys\nsys.modules['sniffio'] = None\nimport aio_trader.paper\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "ModuleNotFoundError: aio_trader.paper needs the `sandbox` extra (sniffio is not "
        "installed): pip install 'aio-trader[sandbox]'"
    )
