"""``Dhan`` against the Dhan sandbox over real sockets: every endpoint round trip, errors by
``DH-9xx`` code, the checks made before any request, sessions and the token store."""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from aio_trader._time import IST
from aio_trader.backoff import Backoff
from aio_trader.dhan import (
    Dhan,
    ExchangeSegment,
    FundLimits,
    Order,
    OrderType,
    ProductType,
    TokenStore,
    TransactionType,
)
from aio_trader.dhan._broker import intraday_chunks
from aio_trader.dhan._errors import dhan_error_from_response
from aio_trader.errors import (
    BrokerUnavailable,
    ClientClosedError,
    InsufficientFunds,
    InvalidInput,
    OrderRejected,
    PermissionDenied,
    RateLimited,
    SessionExpired,
)
from aio_trader.sandbox import Sandbox, SandboxConfig

FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)
SCALE = 50


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(
        broker="dhan", seed=4, market_interval=None, rate_limit_scale=SCALE, opening_cash=1e8
    )
    async with Sandbox(config) as sandbox:
        yield sandbox


def client(sb: Sandbox, **options: Any) -> Dhan:
    options.setdefault("rate_limit_scale", SCALE)
    options.setdefault("access_token", sb.access_token)
    return Dhan(
        client_id=sb.client_id,
        root=sb.root_url,
        backoff=FAST,
        reconcile_delay=0.01,
        **options,
    )


def below(sb: Sandbox, security: str = "1333", segment: str = "NSE_EQ") -> float:
    """A price half the last one (a BUY LIMIT that rests), on the tick grid."""
    from aio_trader.sandbox._dhan._instruments import token_of

    token = token_of(segment, int(security))
    return sb.state.market.instruments[token].round_price(sb.state.market.last_price(token) * 0.5)


# -- round trips ------------------------------------------------------------------------------


async def test_the_sandbox_speaks_dhan(dhan_sandbox: Sandbox) -> None:
    assert dhan_sandbox.root_url.endswith("/v2")
    assert "order" in dhan_sandbox.order_feed_url
    assert "order" not in dhan_sandbox.feed_url
    assert dhan_sandbox.client_id
    assert dhan_sandbox.access_token
    async with Dhan(
        client_id=dhan_sandbox.client_id,
        access_token=dhan_sandbox.access_token,
        root=dhan_sandbox.root_url,
    ) as dhan:
        quotes = await dhan.ltp({"NSE_EQ": [1333, 11536, 2885, 1594], "IDX_I": [13, 25]})
    assert set(quotes) == {
        ("NSE_EQ", "1333"),
        ("NSE_EQ", "11536"),
        ("NSE_EQ", "2885"),
        ("NSE_EQ", "1594"),
        ("IDX_I", "13"),
        ("IDX_I", "25"),
    }
    symbols = {
        (i.segment, i.exchange_token): i.tradingsymbol
        for i in dhan_sandbox.state.market.instruments.values()
    }
    assert symbols[("NSE", 1333)] == "HDFCBANK"
    assert symbols[("INDICES", 13)] == "NIFTY"
    assert any(segment.startswith("NFO-OPT") for segment, _ in symbols)


async def test_orders_round_trip(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        price = below(sb)
        order_id = await dhan.place_order(
            security_id="1333",
            exchange_segment=ExchangeSegment.NSE_EQ,
            transaction_type=TransactionType.BUY,
            quantity=1,
            order_type=OrderType.LIMIT,
            product_type=ProductType.CNC,
            price=price,
            correlation_id="round-trip_1",
        )
        assert isinstance(order_id, str)
        order = await dhan.order(order_id)
        assert isinstance(order, Order)
        assert (order.order_status, order.price, order.security_id) == ("PENDING", price, "1333")
        assert order.orderStatus == order.status == "PENDING"  # Dhan's name reads the field
        assert order.create_time is not None
        assert order.create_time.tzinfo is not None
        assert order.create_time.utcoffset() == datetime.timedelta(hours=5, minutes=30)
        assert (await dhan.order_by_correlation_id("round-trip_1")).order_id == order_id
        assert (
            await dhan.modify_order(order_id, "LIMIT", quantity=2, price=price + 0.05) == order_id
        )
        assert (await dhan.order(order_id)).quantity == 2
        assert await dhan.cancel_order(order_id) == order_id
        assert [(o.order_id, o.order_status) for o in await dhan.orders()] == [
            (order_id, "CANCELLED")
        ]
        filled = await dhan.place_order(
            2885, "NSE_EQ", "BUY", 3, "MARKET", "INTRADAY", market_protection=-1
        )
        trades = await dhan.order_trades(filled)
        assert [(t.order_id, t.traded_quantity, t.security_id) for t in trades] == [
            (filled, 3, "2885")
        ]
        assert [t.order_id for t in await dhan.trades()] == [filled]
        today = datetime.datetime.now(IST).date()
        history = await dhan.trade_history(today, today + datetime.timedelta(days=1))
        assert [t.order_id for t in history] == [filled]
        slices = await dhan.place_slice_order(
            "35001",
            "NSE_FNO",
            "BUY",
            75 * 30,
            "LIMIT",
            "MARGIN",
            price=below(sb, "35001", "NSE_FNO"),
        )
        assert len(slices) == 2
        assert {(await dhan.order(s)).correlation_id for s in slices} != {None}


async def test_portfolio_funds_and_statements(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        await dhan.place_order(1594, "NSE_EQ", "BUY", 4, "MARKET", "INTRADAY", market_protection=-1)
        positions = await dhan.positions()
        assert [(p.security_id, p.net_qty, p.position_type) for p in positions] == [
            ("1594", 4, "LONG")
        ]
        await dhan.convert_position("INTRADAY", "NSE_EQ", "LONG", 1594, 4, "CNC")
        converted = {p.product_type: p.net_qty for p in await dhan.positions()}
        assert converted == {"INTRADAY": 0, "CNC": 4}
        holdings = await dhan.holdings()
        assert {h.trading_symbol for h in holdings} >= {"INFY", "TCS"}
        funds = await dhan.fund_limits()
        assert isinstance(funds, FundLimits)
        assert funds.availabelBalance == funds.available_balance == funds.availabel_balance
        assert funds.sod_limit == 1e8
        margin = await dhan.margin_calculator("1333", "NSE_EQ", "BUY", 10, "CNC", 900.0)
        assert margin.total_margin == pytest.approx(9000.0)
        multi = await dhan.margin_calculator_multi(
            [
                {
                    "securityId": "1333",
                    "exchangeSegment": "NSE_EQ",
                    "transactionType": "BUY",
                    "quantity": 1,
                    "productType": "CNC",
                    "price": 900,
                }
            ]
        )
        assert multi.total_margin == pytest.approx(900.0)
        ledger = await dhan.ledger("2026-01-01", datetime.date(2026, 12, 1))
        assert ledger[0].credit == 1e8
        exited = await dhan.exit_positions()
        assert exited.status == "SUCCESS"
        assert all(p.net_qty == 0 for p in await dhan.positions())


async def test_super_forever_and_conditional_orders(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        price = below(sb)
        entry = await dhan.place_super_order(
            "1333",
            "NSE_EQ",
            "BUY",
            1,
            "LIMIT",
            "INTRADAY",
            price,
            target_price=price * 3,
            stop_loss_price=price - 1,
        )
        (listed,) = await dhan.super_orders()
        assert listed.order_id == entry
        assert [leg.leg_name for leg in listed.leg_details or ()] == ["TARGET_LEG", "STOP_LOSS_LEG"]
        assert listed.leg_details
        assert listed.leg_details[0].totalQuatity == 1
        assert await dhan.modify_super_order(entry, "LIMIT", "TARGET_LEG", target_price=price * 4)
        assert await dhan.cancel_super_order(entry, "STOP_LOSS_LEG") == entry
        assert await dhan.cancel_super_order(entry) == entry
        assert (await dhan.order(entry)).order_status == "CANCELLED"

        forever = await dhan.place_forever_order(
            "1333", "NSE_EQ", "BUY", "CNC", "LIMIT", 1, price, price + 1
        )
        assert [f.order_id for f in await dhan.forever_orders()] == [forever]
        assert (
            await dhan.modify_forever_order(
                forever, "SINGLE", "LIMIT", "TARGET_LEG", 2, price, price + 2
            )
            == forever
        )
        assert (await dhan.forever_orders())[0].quantity == 2
        assert await dhan.cancel_forever_order(forever) == forever

        condition = {
            "securityId": "13",
            "exchangeSegment": "IDX_I",
            "comparisonType": "PRICE_WITH_VALUE",
            "operator": "CROSSING_UP",
            "comparingValue": 30000,
        }
        leg = {
            "transactionType": "BUY",
            "exchangeSegment": "NSE_EQ",
            "productType": "CNC",
            "orderType": "LIMIT",
            "securityId": "1333",
            "quantity": 1,
            "price": price,
        }
        created = await dhan.place_conditional_trigger(condition, [leg])
        assert created.alert_status == "ACTIVE"
        assert created.alert_id
        assert (await dhan.conditional_trigger(created.alert_id)).condition == condition
        assert [t.alert_id for t in await dhan.conditional_triggers()] == [created.alert_id]
        changed = await dhan.modify_conditional_trigger(
            created.alert_id, {**condition, "comparingValue": 31000}
        )
        assert changed.alert_id == created.alert_id
        assert (await dhan.cancel_conditional_trigger(created.alert_id)).alert_status == "CANCELLED"
        assert await dhan.conditional_triggers() == []


async def test_controls_profile_ip_and_edis(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        assert (await dhan.profile()).dhan_client_id == sb.client_id
        assert "activated" in str((await dhan.kill_switch("ACTIVATE")).kill_switch_status)
        assert (await dhan.kill_switch_status()).kill_switch_status == "ACTIVATE"
        with pytest.raises(OrderRejected) as refused:
            await dhan.place_order("1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=below(sb))
        assert refused.value.code == "DH-906"
        await dhan.kill_switch("DEACTIVATE")
        assert (await dhan.kill_switch_status()).kill_switch_status == "DEACTIVATE"
        assert (await dhan.set_pnl_exit(1000, 500, ["INTRADAY"])).pnl_exit_status == "ACTIVE"
        state = await dhan.pnl_exit()
        assert (state.profit, state.loss, state.product_type) == (1000.0, 500.0, ("INTRADAY",))
        assert (await dhan.stop_pnl_exit()).pnl_exit_status == "DISABLED"
        assert (await dhan.set_ip("203.0.113.7")).status == "SUCCESS"
        assert (await dhan.modify_ip("203.0.113.8", "SECONDARY")).status == "SUCCESS"
        ips = await dhan.get_ip()
        assert (ips.primary_ip, ips.secondaryIP) == ("203.0.113.7", "203.0.113.8")
        await dhan.generate_tpin()
        form = await dhan.edis_form("INE009A01021", 1, "NSE")
        assert form.edis_form_html
        assert "INE009A01021" in form.edis_form_html
        assert (await dhan.edis_inquiry("INE009A01021")).total_qty == 10


async def test_market_data(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        ltp = await dhan.ltp([("NSE_EQ", "1333"), ("NSE_FNO", 35001), ("NSE_EQ", 999999)])
        assert set(ltp) == {("NSE_EQ", "1333"), ("NSE_FNO", "35001")}  # unknown left out
        ohlc = await dhan.ohlc({"IDX_I": [13]})
        assert ohlc[("IDX_I", "13")].ohlc is not None
        quote = (await dhan.quote({ExchangeSegment.NSE_FNO: ["35001"]}))[("NSE_FNO", "35001")]
        assert quote.depth is not None
        assert len(quote.depth.buy or ()) == 5
        assert quote.oi
        assert quote.last_trade_time is not None

        daily = await dhan.daily_candles(
            "1333", "NSE_EQ", "EQUITY", datetime.date(2026, 11, 2), datetime.date(2026, 11, 7)
        )
        assert [c.date.date() for c in daily] == [
            datetime.date(2026, 11, 2) + datetime.timedelta(days=d) for d in range(5)
        ]
        assert all(c.date.tzinfo is not None for c in daily)
        start = datetime.datetime(2026, 11, 2, 9, 15)
        minutes = await dhan.intraday_candles(
            "1333", "NSE_EQ", "EQUITY", start, start + datetime.timedelta(minutes=30), interval=5
        )
        assert [c.date.minute for c in minutes] == [15, 20, 25, 30, 35, 40, 45]
        days = await dhan.intraday_candles(
            1333, "NSE_EQ", "EQUITY", "2026-06-01", "2026-11-20", interval=60
        )
        assert len(intraday_chunks("2026-06-01", "2026-11-20")) == 2
        assert [c.date for c in days] == sorted({c.date for c in days})
        assert days[0].date.date() == datetime.date(2026, 6, 1)
        assert days[-1].date.date() == datetime.date(2026, 11, 20)
        bulk = await dhan.intraday_bulk(
            [("NSE_EQ", "1333", "EQUITY"), ("NSE_EQ", 11536, "EQUITY")],
            "2026-06-01",
            "2026-11-20",
            60,
        )
        assert bulk[("NSE_EQ", "1333")] == days
        assert len(bulk[("NSE_EQ", "11536")]) == len(days)

        expiries = await dhan.expiry_list(13, "IDX_I")
        assert expiries == sorted(expiries)
        assert all(isinstance(e, datetime.date) for e in expiries)
        chain = await dhan.option_chain(13, "IDX_I", expiries[0])
        assert chain.last_price
        assert chain.strikes
        strike = next(iter(chain.strikes.values()))
        assert strike.ce is not None
        assert strike.ce.last_price is not None

        segment = await dhan.instruments("NSE_EQ")
        assert {i.trading_symbol for i in segment} >= {"HDFCBANK", "TCS", "RELIANCE", "INFY"}
        compact = await dhan.scrip_master()
        assert any(i.security_id == "13" and i.trading_symbol == "NIFTY" for i in compact)
        detailed = await dhan.scrip_master(detailed=True)
        assert len(detailed) == len(compact)


async def test_quote_calls_over_1000_instruments_are_split_and_merged(sb: Sandbox) -> None:
    ids = [i.exchange_token for i in sb.state.market.instruments.values() if i.segment == "NSE"]
    wanted = {"NSE_EQ": ids + list(range(900_000, 901_500))}  # 1500 unknown ids added
    async with client(sb, rate_limit_scale=1) as dhan:
        before = sb.state.stats.requests
        ltp = await dhan.ltp(wanted)
    assert sb.state.stats.requests - before == 2  # two calls of at most 1000
    assert set(ltp) == {("NSE_EQ", str(i)) for i in ids}
    assert sb.state.stats.refused_429["quote"] == 0


# -- errors by code ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "category"),
    [
        ("DH-901", 401, SessionExpired),
        ("DH-902", 403, PermissionDenied),
        ("DH-903", 400, PermissionDenied),
        ("DH-904", 429, RateLimited),
        ("DH-905", 400, InvalidInput),
        ("DH-906", 400, OrderRejected),
        ("DH-907", 400, InvalidInput),
        ("DH-908", 500, BrokerUnavailable),
        ("DH-909", 502, BrokerUnavailable),
        ("DH-910", 500, BrokerUnavailable),
        ("DH-911", 403, PermissionDenied),
        ("806", 400, PermissionDenied),
        ("808", 400, SessionExpired),
    ],
)
def test_error_mapping_by_code(code: str, status: int, category: type[Exception]) -> None:
    body = json.dumps({"errorType": "X", "errorCode": code, "errorMessage": "why"}).encode()
    error = dhan_error_from_response(status, body)
    assert type(error) is category
    assert (error.code, error.status_code, error.broker, error.message) == (
        code,
        status,
        "dhan",
        "why",
    )


def test_error_mapping_without_a_code() -> None:
    assert type(dhan_error_from_response(401, b"")) is SessionExpired
    assert type(dhan_error_from_response(503, b"<html>")) is BrokerUnavailable
    funds = b'{"errorCode": "DH-906", "errorMessage": "Insufficient funds for the order"}'
    assert type(dhan_error_from_response(400, funds)) is InsufficientFunds


async def test_errors_from_the_sandbox_by_code(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        with pytest.raises(InvalidInput) as bad:
            await dhan.place_order("424242", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=10.0)
        assert (bad.value.code, bad.value.status_code) == ("DH-905", 400)
        with pytest.raises(OrderRejected) as unknown:
            await dhan.order("999999")
        assert unknown.value.code == "DH-906"
        sb.expire_session()
        with pytest.raises(SessionExpired) as expired:
            await dhan.profile()
        assert expired.value.code == "DH-901"
        assert sb.access_token not in str(expired.value)
    sb.state.start_session()
    ip_config = SandboxConfig(broker="dhan", market_interval=None, order_ips=("203.0.113.9",))
    async with Sandbox(ip_config) as fenced, client(fenced) as dhan:
        with pytest.raises(PermissionDenied) as refused:
            await dhan.place_order("1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=500.0)
        assert (refused.value.code, refused.value.status_code) == ("DH-911", 403)
        assert await dhan.orders() == []  # reads need no static IP


# -- checks before any request ----------------------------------------------------------------


async def test_market_orders_need_protection_before_any_request(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        before = sb.state.stats.requests
        for order_type in ("MARKET", "STOP_LOSS_MARKET"):
            with pytest.raises(ValueError, match="market_protection"):
                await dhan.place_order(
                    "1333", "NSE_EQ", "BUY", 1, order_type, "CNC", trigger_price=900.0
                )
        order_id = await dhan.place_order(
            "1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=below(sb)
        )
        with pytest.raises(ValueError, match="market_protection"):
            await dhan.modify_order(order_id, "MARKET")
        for bad in (0, 101, -2, True, "1"):
            with pytest.raises((ValueError, TypeError)):
                await dhan.place_order(
                    "1333", "NSE_EQ", "BUY", 1, "MARKET", "CNC", market_protection=bad
                )
        assert sb.state.stats.requests - before == 1  # the LIMIT order only
        # a percentage: a LIMIT order that far from the last price, on the tick grid
        sold = await dhan.place_order(
            "1333", "NSE_EQ", "SELL", 1, "MARKET", "CNC", market_protection=5
        )
        order = await dhan.order(sold)
        last = (await dhan.ltp({"NSE_EQ": [1333]}))[("NSE_EQ", "1333")].last_price
        assert order.order_type == "LIMIT"
        assert last is not None
        assert order.price is not None
        assert last * 0.95 <= order.price < last * 0.95 + 0.05
    async with client(sb, market_protection=-1) as dhan:
        assert await dhan.place_order("1333", "NSE_EQ", "BUY", 1, "MARKET", "INTRADAY")


async def test_modification_cap_before_any_request(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        price = below(sb)
        order_id = await dhan.place_order("1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=price)
        for step in range(25):
            await dhan.modify_order(order_id, "LIMIT", price=price + 0.05 * (step % 2))
        before = sb.state.stats.requests
        with pytest.raises(ValueError, match="25"):
            await dhan.modify_order(order_id, "LIMIT", price=price)
        assert sb.state.stats.requests == before
    async with client(sb) as fresh:  # another client: the sandbox enforces it too
        with pytest.raises(OrderRejected) as capped:
            await fresh.modify_order(order_id, "LIMIT", price=price)
        assert capped.value.code == "DH-906"


async def test_bad_arguments_raise_before_any_request(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        before = sb.state.stats.requests
        calls = [
            dhan.place_order("13a", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=1.0),
            dhan.place_order("1333", "NSE", "BUY", 1, "LIMIT", "CNC", price=1.0),
            dhan.place_order("1333", "NSE_EQ", "buy", 1, "LIMIT", "CNC", price=1.0),
            dhan.place_order("1333", "NSE_EQ", "BUY", 0, "LIMIT", "CNC", price=1.0),
            dhan.place_order("1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC"),
            dhan.place_order(
                "1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=1.0, correlation_id="x" * 31
            ),
            dhan.order("../orders"),
            dhan.ltp({}),
            dhan.intraday_candles("1333", "NSE_EQ", "EQUITY", "2026-01-02", "2026-01-01"),
            dhan.intraday_candles("1333", "NSE_EQ", "EQUITY", "2026-01-01", "2026-01-02", 3),
            dhan.kill_switch("ON"),
        ]
        for call in calls:
            with pytest.raises((ValueError, TypeError)):
                await call
        assert sb.state.stats.requests == before


async def test_lifecycle_and_repr(sb: Sandbox) -> None:
    dhan = client(sb)
    with pytest.raises(ClientClosedError):
        await dhan.profile()
    async with dhan:
        assert dhan.is_open
    with pytest.raises(ClientClosedError):
        await dhan.profile()
    assert sb.access_token not in repr(dhan)
    with pytest.raises(ValueError, match="client_id"):
        Dhan(client_id="")
    assert (dhan.auth_root, dhan.scrip_root) == (sb.origin, sb.origin + "/api-data")
    default = Dhan(client_id="1")
    assert (default.root, default.auth_root, default.scrip_root) == (
        "https://api.dhan.co/v2",
        "https://auth.dhan.co",
        "https://images.dhan.co/api-data",
    )


# -- sessions -----------------------------------------------------------------------------------


async def test_renew_token(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        old = dhan.access_token
        info = await dhan.renew_token()
        assert info.access_token
        assert info.access_token != old
        assert dhan.access_token == info.access_token
        assert info.expiry_time is not None
        assert info.expiry_time > datetime.datetime.now(IST)
        assert info.access_token not in repr(info)
        assert (await dhan.profile()).dhan_client_id == sb.client_id
    async with client(sb, access_token=old) as stale:
        with pytest.raises(SessionExpired):
            await stale.profile()


async def test_token_from_pin_and_totp_and_the_store(sb: Sandbox, tmp_path: Path) -> None:
    pytest.importorskip("pyotp")
    store = TokenStore(tmp_path / "tokens")
    dhan = client(
        sb,
        access_token=None,
        pin=sb.config.pin,
        totp_secret=sb.config.totp_secret,
        token_store=store,
    )
    async with dhan:
        assert dhan.access_token
        assert dhan.access_token != sb.access_token
        assert (await dhan.profile()).dhan_client_id == sb.client_id
        stored = dhan.access_token
    path = store.path(sb.client_id)
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["client_id"] == sb.client_id
    async with client(sb, access_token=None, token_store=store) as again:
        assert again.access_token == stored
    async with client(sb, access_token=None) as plain:
        with pytest.raises(SessionExpired):
            await plain.generate_access_token("000000", "123456")
        with pytest.raises(ValueError, match="access_token"):
            await plain.authorise()
    os.chmod(path, 0o644)
    assert store.load(sb.client_id) is None  # readable by others: ignored
    store.save(sb.client_id, "t", datetime.datetime.now(IST) - datetime.timedelta(seconds=1))
    assert store.load(sb.client_id) is None  # expired
    store.clear(sb.client_id)
    assert not path.exists()


async def test_api_key_consent_flow(sb: Sandbox) -> None:
    import httpx

    async with client(sb, access_token=None) as dhan:
        consent = await dhan.generate_consent(sb.api_key, sb.api_secret)
        assert consent.consent_app_id
        url = dhan.consent_login_url(consent.consent_app_id)
        assert url.startswith(sb.origin + "/login/consentApp-login?consentAppId=")
        async with httpx.AsyncClient() as browser:
            redirect = await browser.get(url)
        token_id = httpx.URL(redirect.headers["location"]).params["tokenId"]
        info = await dhan.consume_consent(token_id, sb.api_key, sb.api_secret)
        assert dhan.access_token == info.access_token
        assert (await dhan.profile()).dhan_client_id == sb.client_id
        with pytest.raises(SessionExpired):  # a token id works once
            await dhan.consume_consent(token_id, sb.api_key, sb.api_secret)
        with pytest.raises(SessionExpired):
            await dhan.generate_consent(sb.api_key, "wrong")


async def test_secrets_never_reach_logs_reprs_or_errors(
    sb: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("pyotp")
    import pyotp

    caplog.set_level(logging.DEBUG)
    totp = pyotp.TOTP(sb.config.totp_secret).now()
    seen: list[str] = []
    async with client(sb, token_store=TokenStore(tmp_path)) as dhan:
        seen.append(repr(dhan))
        await dhan.profile()
        seen.append(repr(await dhan.generate_access_token(sb.config.pin, totp)))
        seen.append(repr(await dhan.renew_token()))
        order_id = await dhan.place_order(
            "1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=below(sb)
        )
        await dhan.cancel_order(order_id)
        consent = await dhan.generate_consent(sb.api_key, sb.api_secret)
        seen.append(repr(consent))
        sb.expire_session()
        try:
            await dhan.fund_limits()
        except SessionExpired as error:
            seen.append(str(error))
        tokens = set(sb.state.access_tokens)
    text = "\n".join([*seen, *(record.getMessage() for record in caplog.records)])
    assert caplog.records, "the session should have logged something"
    for secret in [*tokens, sb.config.pin, totp, sb.api_secret, sb.config.totp_secret]:
        assert secret not in text


# -- limits ------------------------------------------------------------------------------------


async def test_a_burst_at_dhans_limits_earns_no_429() -> None:
    config = SandboxConfig(broker="dhan", market_interval=None, opening_cash=1e9)
    async with Sandbox(config) as sb:
        async with Dhan(
            client_id=sb.client_id, access_token=sb.access_token, root=sb.root_url
        ) as dhan:
            price = below(sb)

            async def burst() -> None:
                async with anyio.create_task_group() as tg:
                    for _ in range(15):  # 1.5 s of orders at 10/s
                        tg.start_soon(
                            lambda: dhan.place_order(
                                "1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=price
                            )
                        )
                    for _ in range(8):  # data: 5/s
                        tg.start_soon(dhan.expiry_list, 13, "IDX_I")
                    for _ in range(2):  # quotes: 1/s
                        tg.start_soon(dhan.ltp, {"NSE_EQ": [1333]})
                    for _ in range(30):  # the rest: 20/s
                        tg.start_soon(dhan.fund_limits)

            await burst()
        assert sb.state.stats.refused_429 == {"order": 0, "data": 0, "quote": 0, "other": 0}
        assert len(sb.state.book.orders) == 15
