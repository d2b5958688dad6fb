"""The order's whole life (find_order, wait_for_order, cancel_all) on Kite and Dhan,
end to end against each broker's sandbox over real loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from aio_trader.backoff import Backoff
from aio_trader.dhan import Dhan, DhanFeed
from aio_trader.dhan import Order as DhanOrder
from aio_trader.kite import Kite, KiteFeed, Order
from aio_trader.sandbox import Sandbox, SandboxConfig

FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)


# -- Kite ----------------------------------------------------------------------------------


@pytest.fixture
async def kite_sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(
        seed=1, market_interval=None, rate_limit_scale=20, opening_cash=100_000_000.0
    )
    async with Sandbox(config) as sb:
        yield sb


@pytest.fixture
async def kite(kite_sb: Sandbox) -> AsyncIterator[Kite]:
    async with Kite(
        kite_sb.api_key,
        kite_sb.access_token,
        root=kite_sb.root_url,
        backoff=FAST,
        rate_limit_scale=20,
    ) as kite:
        yield kite


async def kite_resting(kite: Kite, symbol: str = "INFY", tag: str | None = None) -> str:
    """A BUY LIMIT far below the market: it stays OPEN."""
    last = (await kite.ltp(f"NSE:{symbol}"))[f"NSE:{symbol}"].last_price
    assert last is not None
    return await kite.place_order(
        "regular", "NSE", symbol, "BUY", 1, "CNC", "LIMIT", price=round(last * 0.8, 1), tag=tag
    )


async def test_kite_find_order_by_tag(kite: Kite) -> None:
    tag = Kite.new_tag()
    order_id = await kite_resting(kite, tag=tag)
    (found,) = await kite.find_order(tag)
    assert found.order_id == order_id
    assert found.status == "OPEN"
    assert await kite.find_order(Kite.new_tag()) == []
    with pytest.raises(ValueError, match="tag"):
        await kite.find_order("not a tag!")


async def test_kite_wait_for_order_by_polling(kite: Kite) -> None:
    filled = await kite.place_order(
        "regular", "NSE", "TCS", "BUY", 1, "MIS", "MARKET", market_protection=-1
    )
    done = await kite.wait_for_order(filled)
    assert (done.order_id, done.status) == (filled, "COMPLETE")

    order_id = await kite_resting(kite)
    finals = []

    async def wait() -> None:
        finals.append(await kite.wait_for_order(order_id))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await kite.cancel_order("regular", order_id)
    (final,) = finals
    assert (final.order_id, final.status) == (order_id, "CANCELLED")


async def test_kite_wait_for_order_timeout_and_cancellation(kite: Kite) -> None:
    order_id = await kite_resting(kite)
    with pytest.raises(TimeoutError):
        await kite.wait_for_order(order_id, timeout=0.05)
    with anyio.move_on_after(0.05) as scope:
        await kite.wait_for_order(order_id)
    assert scope.cancelled_caught
    assert (await kite.order_history(order_id))[-1].status == "OPEN"  # nothing changed
    with pytest.raises(ValueError, match="timeout"):
        await kite.wait_for_order(order_id, timeout=-1)


async def test_kite_cancel_all_with_filters(kite: Kite) -> None:
    infy = {await kite_resting(kite, "INFY"), await kite_resting(kite, "INFY")}
    tcs = await kite_resting(kite, "TCS")
    sbin = await kite_resting(kite, "SBIN")
    cancelled = await kite.cancel_all("NSE:INFY")
    assert {o.order_id for o in cancelled} == infy
    assert [o.order_id for o in await kite.cancel_all(lambda o: o.order_id == tcs)] == [tcs]
    assert [o.order_id for o in await kite.cancel_all()] == [sbin]
    statuses = {o.order_id: o.status for o in await kite.orders()}
    assert {statuses[i] for i in (*infy, tcs, sbin)} == {"CANCELLED"}
    assert await kite.cancel_all() == []
    with pytest.raises(ValueError, match="exchange"):
        await kite.cancel_all("INFY")


async def test_kite_square_off(kite: Kite) -> None:
    async def market(symbol: str, side: str, quantity: int) -> None:
        await kite.place_order(
            "regular", "NSE", symbol, side, quantity, "MIS", "MARKET", market_protection=-1
        )

    async def net() -> dict[str, int]:
        positions = (await kite.positions()).net or ()
        return {str(p.tradingsymbol): p.quantity or 0 for p in positions}

    await market("INFY", "BUY", 2)
    await market("TCS", "BUY", 3)
    await market("SBIN", "SELL", 1)
    assert await net() == {"INFY": 2, "TCS": 3, "SBIN": -1}
    (infy_exit,) = await kite.square_off("NSE:INFY")
    done = await kite.wait_for_order(infy_exit)
    assert (done.status, done.transaction_type, done.quantity) == ("COMPLETE", "SELL", 2)
    assert await net() == {"INFY": 0, "TCS": 3, "SBIN": -1}
    exits = await kite.square_off(lambda p: p.tradingsymbol != "TCS")
    (sbin_exit,) = exits
    done = await kite.wait_for_order(sbin_exit)
    assert (done.transaction_type, done.quantity) == ("BUY", 1)
    assert len(await kite.square_off()) == 1
    assert set((await net()).values()) == {0}
    assert await kite.square_off() == []
    with pytest.raises(ValueError, match="market_protection"):
        await kite.square_off(market_protection=500)


async def test_kite_wait_for_order_via_feed(kite: Kite, kite_sb: Sandbox) -> None:
    feed = KiteFeed(kite_sb.api_key, kite_sb.access_token, root=kite_sb.ticker_url)
    async with feed:
        await feed.subscribe([408065], "ltp")
        order_id = await kite_resting(kite)
        reads = kite_sb.state.stats.requests
        finals = []

        async def wait() -> None:
            finals.append(await kite.wait_for_order(order_id, feed=feed))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await kite.cancel_order("regular", order_id)
    (final,) = finals
    assert (final.order_id, final.status) == (order_id, "CANCELLED")
    # the feed told: one read before, the cancellation, at most a read or two after
    assert kite_sb.state.stats.requests - reads <= 4
    assert feed.statistics().order_updates >= 1


async def test_kite_cancel_all_skips_an_order_finished_meanwhile(
    kite: Kite, kite_sb: Sandbox
) -> None:
    gone, other = await kite_resting(kite), await kite_resting(kite, "TCS")

    def chosen(order: Order) -> bool:
        # between the order book's read and the cancellations, the first order ends
        if order.order_id == gone:
            kite_sb.state.book.cancel("regular", gone)
        return True

    assert [o.order_id for o in await kite.cancel_all(chosen)] == [other]
    assert (await kite.wait_for_order(gone)).status == "CANCELLED"


# -- Dhan ----------------------------------------------------------------------------------

SCALE = 50


@pytest.fixture
async def dhan_sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(
        broker="dhan", seed=4, market_interval=None, rate_limit_scale=SCALE, opening_cash=1e8
    )
    async with Sandbox(config) as sb:
        yield sb


@pytest.fixture
async def dhan(dhan_sb: Sandbox) -> AsyncIterator[Dhan]:
    async with Dhan(
        client_id=dhan_sb.client_id,
        access_token=dhan_sb.access_token,
        root=dhan_sb.root_url,
        backoff=FAST,
        rate_limit_scale=SCALE,
        reconcile_delay=0.01,
    ) as dhan:
        yield dhan


def below(sb: Sandbox, security: str) -> float:
    """A price half the last one (a BUY LIMIT that rests), on the tick grid."""
    from aio_trader.sandbox._dhan._instruments import token_of

    token = token_of("NSE_EQ", int(security))
    return sb.state.market.instruments[token].round_price(sb.state.market.last_price(token) * 0.5)


async def dhan_resting(
    dhan: Dhan, sb: Sandbox, security: str = "1333", correlation_id: str | None = None
) -> str:
    """A BUY LIMIT at half the last price: it stays PENDING."""
    price = below(sb, security)
    return await dhan.place_order(
        security, "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=price, correlation_id=correlation_id
    )


async def test_dhan_find_order_by_tag(dhan: Dhan, dhan_sb: Sandbox) -> None:
    tag = Dhan.new_correlation_id()
    order_id = await dhan_resting(dhan, dhan_sb, correlation_id=tag)
    (found,) = await dhan.find_order(tag)
    assert found.order_id == order_id
    assert found.order_status == "PENDING"
    assert await dhan.find_order(Dhan.new_correlation_id()) == []
    with pytest.raises(ValueError, match="correlation_id"):
        await dhan.find_order("not/valid")


async def test_dhan_wait_for_order_by_polling(dhan: Dhan, dhan_sb: Sandbox) -> None:
    filled = await dhan.place_order(
        "1333", "NSE_EQ", "BUY", 1, "MARKET", "INTRADAY", market_protection=-1
    )
    done = await dhan.wait_for_order(filled)
    assert (done.order_id, done.order_status) == (filled, "TRADED")

    order_id = await dhan_resting(dhan, dhan_sb)
    finals = []

    async def wait() -> None:
        finals.append(await dhan.wait_for_order(order_id))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await dhan.cancel_order(order_id)
    (final,) = finals
    assert (final.order_id, final.order_status) == (order_id, "CANCELLED")


async def test_dhan_wait_for_order_timeout_and_cancellation(dhan: Dhan, dhan_sb: Sandbox) -> None:
    order_id = await dhan_resting(dhan, dhan_sb)
    with pytest.raises(TimeoutError):
        await dhan.wait_for_order(order_id, timeout=0.05)
    with anyio.move_on_after(0.05) as scope:
        await dhan.wait_for_order(order_id)
    assert scope.cancelled_caught
    assert (await dhan.order(order_id)).order_status == "PENDING"  # nothing changed


async def test_dhan_cancel_all_with_filters(dhan: Dhan, dhan_sb: Sandbox) -> None:
    reliance = {
        await dhan_resting(dhan, dhan_sb, "2885"),
        await dhan_resting(dhan, dhan_sb, "2885"),
    }
    infy = await dhan_resting(dhan, dhan_sb, "1594")
    hdfc = await dhan_resting(dhan, dhan_sb, "1333")
    cancelled = await dhan.cancel_all("2885")
    assert {o.order_id for o in cancelled} == reliance
    assert [o.order_id for o in await dhan.cancel_all(lambda o: o.order_id == infy)] == [infy]
    assert [o.order_id for o in await dhan.cancel_all()] == [hdfc]
    statuses = {o.order_id: o.order_status for o in await dhan.orders()}
    assert {statuses[i] for i in (*reliance, infy, hdfc)} == {"CANCELLED"}
    assert await dhan.cancel_all() == []


async def test_dhan_square_off(dhan: Dhan) -> None:
    async def market(security: str, side: str, quantity: int) -> None:
        await dhan.place_order(
            security, "NSE_EQ", side, quantity, "MARKET", "INTRADAY", market_protection=-1
        )

    async def net() -> dict[str, int]:
        return {str(p.security_id): p.net_qty or 0 for p in await dhan.positions()}

    await market("2885", "BUY", 2)
    await market("1594", "BUY", 3)
    await market("1333", "SELL", 1)
    assert await net() == {"2885": 2, "1594": 3, "1333": -1}
    (first,) = await dhan.square_off("2885")
    done = await dhan.wait_for_order(first)
    assert (done.order_status, done.transaction_type, done.quantity) == ("TRADED", "SELL", 2)
    assert (await net())["2885"] == 0
    (second,) = await dhan.square_off(lambda p: p.security_id == "1333")
    done = await dhan.wait_for_order(second)
    assert (done.transaction_type, done.quantity) == ("BUY", 1)
    assert len(await dhan.square_off()) == 1
    assert set((await net()).values()) == {0}
    assert await dhan.square_off() == []
    with pytest.raises(ValueError, match="market_protection"):
        await dhan.square_off(market_protection=500)


async def test_dhan_wait_for_order_via_feed(dhan: Dhan, dhan_sb: Sandbox) -> None:
    feed = DhanFeed(
        dhan_sb.client_id,
        dhan_sb.access_token,
        root=dhan_sb.feed_url,
        order_root=dhan_sb.order_feed_url,
    )
    async with feed:
        await feed.subscribe([("NSE_EQ", "1333")], "ticker")
        order_id = await dhan_resting(dhan, dhan_sb)
        reads = dhan_sb.state.stats.requests
        finals = []

        async def wait() -> None:
            finals.append(await dhan.wait_for_order(order_id, feed=feed))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await dhan.cancel_order(order_id)
    (final,) = finals
    assert (final.order_id, final.order_status) == (order_id, "CANCELLED")
    assert dhan_sb.state.stats.requests - reads <= 4
    assert feed.statistics().order_updates >= 1


async def test_dhan_cancel_all_skips_an_order_finished_meanwhile(
    dhan: Dhan, dhan_sb: Sandbox
) -> None:
    gone, other = await dhan_resting(dhan, dhan_sb), await dhan_resting(dhan, dhan_sb, "1594")

    def chosen(order: DhanOrder) -> bool:
        # between the order book's read and the cancellations, the first order ends
        if order.order_id == gone:
            dhan_sb.state.book.cancel("regular", gone)
        return True

    assert [o.order_id for o in await dhan.cancel_all(chosen)] == [other]
    assert (await dhan.wait_for_order(gone)).order_status == "CANCELLED"
