"""``Kite`` end to end against the sandbox (real sockets on loopback): every endpoint."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import AsyncIterator

import anyio
import pytest

from aio_trader import _redact
from aio_trader._time import IST
from aio_trader.backoff import Backoff
from aio_trader.errors import InputException
from aio_trader.kite import (
    GTT,
    MFSIP,
    Alert,
    AutosliceResponse,
    BasketMargins,
    Candle,
    Holding,
    Instrument,
    Kite,
    LtpQuote,
    Margins,
    MFHolding,
    MFInstrument,
    MFOrder,
    OhlcQuote,
    Order,
    OrderCharges,
    OrderMargins,
    Positions,
    Profile,
    Quote,
    SegmentMargins,
    Trade,
    TriggerRange,
)
from aio_trader.sandbox import Sandbox, SandboxConfig

FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(
        SandboxConfig(seed=1, market_interval=None, rate_limit_scale=20, opening_cash=100_000_000.0)
    ) as sb:
        yield sb


@pytest.fixture
async def kite(sb: Sandbox) -> AsyncIterator[Kite]:
    async with Kite(
        sb.api_key, sb.access_token, root=sb.root_url, backoff=FAST, rate_limit_scale=20
    ) as kite:
        yield kite


async def test_user(kite: Kite, sb: Sandbox) -> None:
    profile = await kite.profile()
    assert isinstance(profile, Profile)
    assert profile.user_id == sb.user_id
    margins = await kite.margins()
    assert isinstance(margins, Margins)
    assert margins.equity is not None
    assert margins.equity.net is not None
    equity = await kite.margins("equity")
    assert isinstance(equity, SegmentMargins)
    assert equity.net == margins.equity.net


async def test_quotes_accept_str_varargs_and_collections(kite: Kite) -> None:
    ltp = await kite.ltp("NSE:INFY")
    assert set(ltp) == {"NSE:INFY"}
    assert isinstance(ltp["NSE:INFY"], LtpQuote)
    assert ltp["NSE:INFY"].instrument_token == 408065
    both = await kite.ltp("NSE:INFY", ["NSE:TCS"])
    assert set(both) == {"NSE:INFY", "NSE:TCS"}
    ohlc = await kite.ohlc({"NSE:INFY", "NSE:TCS"})
    assert all(isinstance(q, OhlcQuote) and q.ohlc is not None for q in ohlc.values())
    quote = await kite.quote(["NSE:INFY"])
    full = quote["NSE:INFY"]
    assert isinstance(full, Quote)
    assert full.depth is not None
    assert full.depth.buy
    assert full.depth.buy[0].price
    assert full.timestamp is not None
    assert full.timestamp.utcoffset() == IST.utcoffset(None)
    ranges = await kite.trigger_range("BUY", "NSE:INFY")
    assert isinstance(ranges["NSE:INFY"], TriggerRange)
    assert ranges["NSE:INFY"].lower is not None
    assert ranges["NSE:INFY"].lower < (ranges["NSE:INFY"].upper or 0)


async def test_quote_limits_raise_before_any_request(kite: Kite, sb: Sandbox) -> None:
    before = sb.state.stats.requests
    with pytest.raises(ValueError, match="at most 1000"):
        await kite.ltp([f"NSE:X{i}" for i in range(1001)])
    with pytest.raises(ValueError, match="at most 1000"):
        await kite.ohlc(*[f"NSE:X{i}" for i in range(1001)])
    with pytest.raises(ValueError, match="at most 500"):
        await kite.quote([f"NSE:X{i}" for i in range(501)])
    with pytest.raises(ValueError, match="at least one"):
        await kite.ltp([])
    assert sb.state.stats.requests == before
    # The limits themselves are allowed (unknown symbols are simply absent).
    assert len(await kite.quote(["NSE:INFY", *[f"NSE:X{i}" for i in range(499)]])) == 1


async def test_instruments_and_historical(kite: Kite) -> None:
    everything = await kite.instruments()
    nse = await kite.instruments("NSE")
    assert all(isinstance(i, Instrument) for i in everything)
    assert 0 < len(nse) < len(everything)
    assert {i.exchange for i in nse} == {"NSE"}
    candles = await kite.historical_data(
        408065, datetime.date(2024, 1, 1), datetime.datetime(2024, 1, 31), "day"
    )
    assert candles
    assert all(isinstance(c, Candle) for c in candles)
    assert candles[0].date.tzinfo is not None
    assert all(a.date < b.date for a, b in itertools.pairwise(candles))
    minutes = await kite.historical_data(
        8960258, "2026-11-02 09:15:00", "2026-11-02 10:15:00", "minute", oi=True
    )
    assert minutes
    assert all(c.oi is not None for c in minutes)
    with pytest.raises(InputException):
        await kite.historical_data(408065, "2024-01-01", "2024-12-31", "minute")


async def test_order_lifecycle(kite: Kite, sb: Sandbox) -> None:
    last = (await kite.ltp("NSE:INFY"))["NSE:INFY"].last_price
    assert last is not None
    low = round(last * 0.8, 1)
    order_id = await kite.place_order(
        "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=low, validity="DAY"
    )
    assert isinstance(order_id, str)
    assert order_id
    (order,) = [o for o in await kite.orders() if o.order_id == order_id]
    assert isinstance(order, Order)
    assert order.status == "OPEN"
    assert order.tag
    assert order.tag.startswith("aio")
    assert len(order.tag) <= 20
    assert await kite.modify_order("regular", order_id, quantity=2, price=low - 1) == order_id
    history = await kite.order_history(order_id)
    assert history[-1].quantity == 2
    assert history[-1].price == low - 1
    assert await kite.cancel_order("regular", order_id) == order_id
    assert (await kite.order_history(order_id))[-1].status == "CANCELLED"
    with pytest.raises(InputException):
        await kite.cancel_order("regular", order_id)

    filled = await kite.place_order(
        "regular", "NSE", "TCS", "BUY", 3, "MIS", "MARKET", market_protection=-1, tag="mytag1"
    )
    assert (await kite.order_history(filled))[-1].status == "COMPLETE"
    trades = await kite.order_trades(filled)
    assert trades
    assert all(isinstance(t, Trade) for t in trades)
    assert {t.order_id for t in await kite.trades()} >= {filled}
    assert [o.tag for o in await kite.orders() if o.order_id == filled] == ["mytag1"]

    positions = await kite.positions()
    assert isinstance(positions, Positions)
    assert any(p.tradingsymbol == "TCS" and p.product == "MIS" for p in positions.net or ())
    assert await kite.convert_position("NSE", "TCS", "BUY", "day", 3, "MIS", "CNC") is True
    positions = await kite.positions()
    assert any(p.tradingsymbol == "TCS" and p.product == "CNC" for p in positions.net or ())


async def test_order_varieties_and_autoslice(kite: Kite) -> None:
    last = (await kite.ltp("NSE:INFY"))["NSE:INFY"].last_price or 0
    low = round(last * 0.8, 1)
    ttl = await kite.place_order(
        "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=low,
        validity="TTL", validity_ttl=5,
    )  # fmt: skip
    iceberg = await kite.place_order(
        "iceberg", "NSE", "INFY", "BUY", 10, "CNC", "LIMIT", price=low,
        iceberg_legs=2, iceberg_quantity=5,
    )  # fmt: skip
    protected = await kite.place_order(
        "regular", "NSE", "INFY", "BUY", 1, "MIS", "MARKET", market_protection=-1
    )
    amo = await kite.place_order("amo", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=low)
    cover = await kite.place_order(
        "co",
        "NSE",
        "INFY",
        "BUY",
        1,
        "MIS",
        "MARKET",
        market_protection=-1,
        trigger_price=round(last * 0.95, 1),
    )
    book = {o.order_id: o for o in await kite.orders()}
    assert book[ttl].validity == "TTL"
    assert book[iceberg].variety == "iceberg"
    assert book[protected].status == "COMPLETE"
    assert book[amo].variety == "amo"
    leg = next(o for o in book.values() if o.parent_order_id == cover)
    assert await kite.exit_order("co", leg.order_id or "", parent_order_id=cover) == leg.order_id

    nifty = await kite.ltp("NFO:NIFTY26DECFUT")
    assert nifty
    sliced = await kite.place_autoslice_order(
        "regular", "NFO", "NIFTY26DECFUT", "BUY", 75 * 30, "NRML", "MARKET", market_protection=-1
    )
    assert isinstance(sliced, AutosliceResponse)
    assert sliced.children is not None
    assert len(sliced.children) == 2
    assert all(child.order_id for child in sliced.children)


async def test_bad_tag_raises_before_any_request(kite: Kite, sb: Sandbox) -> None:
    before = sb.state.stats.requests
    for tag in ("has space", "x" * 21, "dash-dash", ""):
        with pytest.raises(ValueError, match="tag"):
            await kite.place_order(
                "regular", "NSE", "INFY", "BUY", 1, "CNC", "MARKET", market_protection=-1, tag=tag
            )
    assert sb.state.stats.requests == before


async def test_portfolio(kite: Kite) -> None:
    holdings = await kite.holdings()
    assert holdings
    assert all(isinstance(h, Holding) for h in holdings)
    auctions = await kite.get_auction_instruments()
    assert auctions
    assert auctions[0].auction_number


async def test_mutual_funds(kite: Kite) -> None:
    funds = await kite.mf_instruments()
    assert funds
    assert all(isinstance(f, MFInstrument) for f in funds)
    symbol = funds[0].tradingsymbol
    order_id = await kite.place_mf_order(symbol, "BUY", amount=5000, tag="mf1")
    orders = await kite.mf_orders()
    assert isinstance(orders, list)
    assert order_id in {o.order_id for o in orders}
    one = await kite.mf_orders(order_id)
    assert isinstance(one, MFOrder)
    assert one.order_id == order_id
    assert await kite.cancel_mf_order(order_id) == order_id

    sip_id = await kite.place_mf_sip(symbol, 1000, 12, "monthly", instalment_day=5)
    sips = await kite.mf_sips()
    assert isinstance(sips, list)
    assert sip_id in {s.sip_id for s in sips}
    assert await kite.modify_mf_sip(sip_id, amount=2000) == sip_id
    sip = await kite.mf_sips(sip_id)
    assert isinstance(sip, MFSIP)
    assert sip.instalment_amount == 2000
    assert await kite.cancel_mf_sip(sip_id) == sip_id
    holdings = await kite.mf_holdings()
    assert holdings
    assert all(isinstance(h, MFHolding) for h in holdings)


async def test_gtt(kite: Kite) -> None:
    last = (await kite.ltp("NSE:INFY"))["NSE:INFY"].last_price or 0
    leg = {
        "transaction_type": "BUY",
        "quantity": 1,
        "order_type": "LIMIT",
        "product": "CNC",
        "price": round(last * 0.8, 1),
    }
    trigger_id = await kite.place_gtt("single", "INFY", "NSE", [round(last * 0.8, 1)], last, [leg])
    assert isinstance(trigger_id, int)
    gtt = await kite.get_gtt(trigger_id)
    assert isinstance(gtt, GTT)
    assert gtt.id == trigger_id
    assert trigger_id in {g.id for g in await kite.get_gtts()}
    new_value = round(last * 0.7, 1)
    await kite.modify_gtt(trigger_id, "single", "INFY", "NSE", [new_value], last, [leg])
    assert (await kite.get_gtt(trigger_id)).condition.trigger_values == (new_value,)  # type: ignore[union-attr]
    assert await kite.delete_gtt(trigger_id) == trigger_id
    with pytest.raises(ValueError, match="two-leg"):
        await kite.place_gtt("two-leg", "INFY", "NSE", [1.0], last, [leg])
    with pytest.raises(ValueError, match="price"):
        await kite.place_gtt("single", "INFY", "NSE", [1.0], last, [{"quantity": 1}])


async def test_margin_calculators(kite: Kite) -> None:
    order = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "transaction_type": "BUY",
        "variety": "regular",
        "product": "CNC",
        "order_type": "MARKET",
        "quantity": 2,
        "price": 0,
        "trigger_price": 0,
    }
    margins = await kite.order_margins([order])
    assert isinstance(margins[0], OrderMargins)
    assert (margins[0].total or 0) > 0
    basket = await kite.basket_order_margins([order, order], consider_positions=False)
    assert isinstance(basket, BasketMargins)
    assert basket.orders
    compact = await kite.basket_order_margins([order], mode="compact")
    assert compact.orders == ()
    notes = await kite.get_virtual_contract_note(
        [{**order, "order_id": "1", "average_price": 1500.0}]
    )
    assert isinstance(notes[0], OrderCharges)
    assert notes[0].charges is not None


async def test_alerts(kite: Kite) -> None:
    alert = await kite.create_alert(
        "infy up", "simple", "NSE", "INFY", "LastTradedPrice", ">=", "constant", 99999
    )
    assert isinstance(alert, Alert)
    assert alert.uuid
    assert alert.uuid in {a.uuid for a in await kite.get_alerts()}
    assert (await kite.get_alert(alert.uuid)).name == "infy up"
    changed = await kite.modify_alert(
        alert.uuid, "infy up 2", "simple", "NSE", "INFY", "LastTradedPrice", ">=",
        "constant", 88888, status="disabled",
    )  # fmt: skip
    assert changed.name == "infy up 2"
    assert changed.status == "disabled"
    assert [a.uuid for a in await kite.get_alerts(status="disabled")] == [alert.uuid]
    assert await kite.get_alert_history(alert.uuid) == []
    await kite.delete_alert(alert.uuid)
    assert await kite.get_alerts() == []
    with pytest.raises(ValueError, match="uuid"):
        await kite.delete_alert()


async def test_cancellation_abandons_the_call_and_the_client_stays_usable(
    kite: Kite, sb: Sandbox
) -> None:
    sb.faults.latency = 5
    with anyio.move_on_after(0.2) as scope:
        await kite.profile()
    assert scope.cancelled_caught
    sb.faults.latency = 0
    assert (await kite.profile()).user_id == sb.user_id


async def test_repr_and_constructor_checks(sb: Sandbox) -> None:
    kite = Kite(sb.api_key, sb.access_token, root=sb.root_url)
    assert sb.access_token not in repr(kite)
    await kite.close()
    await kite.close()  # idempotent
    with pytest.raises(ValueError, match="api_key"):
        Kite()
    with pytest.raises(ValueError, match="user_id and password"):
        Kite(user_id="AB1234")
    with pytest.raises(ValueError, match="max_connections"):
        Kite(sb.api_key, "never-registered-token", root=sb.root_url, max_connections=0)
    assert "never-registered-token" not in _redact._REDACTOR.secrets  # nothing left masked
    assert Kite(sb.api_key).login_url() == (
        f"https://kite.zerodha.com/connect/login?api_key={sb.api_key}&v=3"
    )


def test_public_names_are_pinned() -> None:
    from aio_trader.kite import _broker as broker
    from aio_trader.kite import _session as session

    assert sorted(broker.__all__) == [
        "DateLike",
        "Kite",
        "ProgressCallback",
        "SessionExpiryHook",
        "historical_chunks",
    ]
    assert sorted(session.__all__) == [
        "KITE_CONNECT_ROOT",
        "KITE_LOGIN_URL",
        "KITE_WEB_ROOT",
        "KiteSession",
        "TokenCache",
        "TwoFactor",
        "checksum",
        "end_of_day_ist",
        "forget",
        "login_url",
        "protect",
        "redaction",
        "web_login",
    ]
    for module in (broker, session):
        for name in module.__all__:
            assert hasattr(module, name), name
