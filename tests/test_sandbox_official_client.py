"""Kite's official Python client (``kiteconnect``), unchanged, against the sandbox's REST side.

The client is synchronous (requests), so it runs in a worker thread while the sandbox serves
from the event loop.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio.to_thread
import httpx
import pytest

from aio_trader.sandbox import Sandbox, SandboxConfig

kiteconnect = pytest.importorskip("kiteconnect")
from kiteconnect import exceptions as kite_exceptions  # noqa: E402

T = TypeVar("T")


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    # cash for the two slices of a NIFTY future autoslice order (short slices are refused)
    config = SandboxConfig(
        seed=3, market_interval=None, rate_limit_scale=1000, opening_cash=20_000_000
    )
    async with Sandbox(config) as s:
        yield s


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))


async def logged_in(sb: Sandbox) -> Any:
    """A KiteConnect session made through the sandbox's login redirect and generate_session."""
    async with httpx.AsyncClient(base_url=sb.root_url) as c:
        response = await c.get("/connect/login", params={"api_key": sb.api_key, "v": "3"})
    request_token = httpx.URL(response.headers["location"]).params["request_token"]
    kite = kiteconnect.KiteConnect(api_key=sb.api_key, root=sb.root_url)
    session = await in_thread(kite.generate_session, request_token, api_secret=sb.api_secret)
    assert session["access_token"] == sb.access_token
    assert isinstance(session["login_time"], datetime.datetime)
    return kite


async def test_official_client_login_profile_orders_and_market_data(sb: Sandbox) -> None:
    kite = await logged_in(sb)
    try:
        profile = await in_thread(kite.profile)
        assert profile["user_id"] == sb.user_id

        price = round(sb.state.market.last_price(408065) * 0.5, 1)
        order_id = await in_thread(
            kite.place_order,
            variety=kite.VARIETY_REGULAR,
            exchange=kite.EXCHANGE_NSE,
            tradingsymbol="INFY",
            transaction_type=kite.TRANSACTION_TYPE_BUY,
            quantity=1,
            product=kite.PRODUCT_CNC,
            order_type=kite.ORDER_TYPE_LIMIT,
            price=price,
            tag="official1",
        )
        history = await in_thread(kite.order_history, order_id)
        assert history[-1]["status"] == "OPEN"
        assert history[-1]["tag"] == "official1"
        await in_thread(kite.modify_order, kite.VARIETY_REGULAR, order_id, price=price + 1)
        cancelled = await in_thread(kite.cancel_order, kite.VARIETY_REGULAR, order_id)
        assert cancelled == order_id
        orders = await in_thread(kite.orders)
        assert [(o["order_id"], o["status"]) for o in orders] == [(order_id, "CANCELLED")]
        assert isinstance(orders[0]["order_timestamp"], datetime.datetime)

        market_id = await in_thread(
            kite.place_order,
            variety="regular",
            exchange="NSE",
            tradingsymbol="SBIN",
            transaction_type="BUY",
            quantity=1,
            product="MIS",
            order_type="MARKET",
            market_protection=-1,
        )
        assert (await in_thread(kite.order_trades, market_id))[0]["quantity"] == 1
        positions = await in_thread(kite.positions)
        assert positions["net"][0]["tradingsymbol"] == "SBIN"
        assert await in_thread(kite.holdings)
        assert (await in_thread(kite.margins, "equity"))["enabled"] is True

        quote = await in_thread(kite.quote, ["NSE:INFY", "NSE:NIFTY 50"])
        assert quote["NSE:INFY"]["instrument_token"] == 408065
        assert isinstance(quote["NSE:INFY"]["timestamp"], datetime.datetime)
        ltp = await in_thread(kite.ltp, "NSE:INFY")
        assert ltp["NSE:INFY"]["last_price"] == sb.state.market.last_price(408065)
        assert "ohlc" in (await in_thread(kite.ohlc, "NSE:INFY"))["NSE:INFY"]

        instruments = await in_thread(kite.instruments, "NSE")
        infy = next(i for i in instruments if i["tradingsymbol"] == "INFY")
        assert infy["instrument_token"] == 408065
        assert {i["exchange"] for i in await in_thread(kite.instruments)} >= {"NSE", "NFO", "MCX"}

        candles = await in_thread(
            kite.historical_data,
            408065,
            datetime.datetime(2024, 3, 4, 9, 15),
            datetime.datetime(2024, 3, 4, 10, 15),
            "minute",
            oi=True,
        )
        assert len(candles) == 61
        assert set(candles[0]) == {"date", "open", "high", "low", "close", "volume", "oi"}

        trigger = await in_thread(
            kite.place_gtt,
            kite.GTT_TYPE_SINGLE,
            "INFY",
            "NSE",
            [price],
            sb.state.market.last_price(408065),
            [
                {
                    "transaction_type": "BUY",
                    "quantity": 1,
                    "order_type": "LIMIT",
                    "product": "CNC",
                    "price": price,
                }
            ],
        )
        assert (await in_thread(kite.get_gtt, trigger["trigger_id"]))["status"] == "active"
        await in_thread(kite.delete_gtt, trigger["trigger_id"])
        assert await in_thread(kite.get_gtts) == []
        assert await in_thread(kite.mf_instruments)
    finally:
        kite.reqsession.close()


async def test_official_client_sees_kite_exceptions(sb: Sandbox) -> None:
    kite = await logged_in(sb)
    try:
        with pytest.raises(kite_exceptions.InputException):
            await in_thread(
                kite.place_order,
                variety="regular",
                exchange="NSE",
                tradingsymbol="INFY",
                transaction_type="BUY",
                quantity=1,
                product="CNC",
                order_type="LIMIT",
            )
        sb.expire_session()
        with pytest.raises(kite_exceptions.TokenException):
            await in_thread(kite.profile)
    finally:
        kite.reqsession.close()


async def test_official_client_portfolio_margins_mf_and_sessions(sb: Sandbox) -> None:
    kite = await logged_in(sb)
    try:
        order_id = await in_thread(
            kite.place_order,
            variety="regular",
            exchange="NSE",
            tradingsymbol="INFY",
            transaction_type="BUY",
            quantity=2,
            product="MIS",
            order_type="MARKET",
            market_protection=-1,
        )
        assert [t["order_id"] for t in await in_thread(kite.trades)] == [order_id]
        converted = await in_thread(
            kite.convert_position,
            exchange="NSE",
            tradingsymbol="INFY",
            transaction_type="BUY",
            position_type="day",
            quantity=1,
            old_product="MIS",
            new_product="NRML",
        )
        assert converted is True
        sliced = await in_thread(
            kite.place_autoslice_order,
            variety="regular",
            exchange="NFO",
            tradingsymbol="NIFTY26DECFUT",
            transaction_type="BUY",
            quantity=75 * 30,
            product="NRML",
            order_type="MARKET",
            market_protection=-1,
        )
        assert len(sliced["children"]) == 2
        basket = [
            {
                "exchange": "NSE",
                "tradingsymbol": "INFY",
                "transaction_type": "BUY",
                "variety": "regular",
                "product": "CNC",
                "order_type": "LIMIT",
                "quantity": 1,
                "price": 1500,
                "trigger_price": 0,
            }
        ]
        assert (await in_thread(kite.order_margins, basket))[0]["total"] > 0
        assert (await in_thread(kite.basket_order_margins, basket))["initial"]["total"] > 0
        assert (await in_thread(kite.get_virtual_contract_note, basket))[0]["charges"]["total"] > 0
        ranges = await in_thread(kite.trigger_range, "BUY", "NSE:INFY")
        assert ranges["NSE:INFY"]["lower"] < ranges["NSE:INFY"]["upper"]
        assert await in_thread(kite.get_auction_instruments)

        mf_id = await in_thread(
            kite.place_mf_order, tradingsymbol="INF179K01VY8", transaction_type="BUY", amount=5000
        )
        assert (await in_thread(kite.mf_orders, mf_id["order_id"]))["status"] == "OPEN"
        await in_thread(kite.cancel_mf_order, mf_id["order_id"])
        sip = await in_thread(
            kite.place_mf_sip,
            tradingsymbol="INF179K01VY8",
            amount=1000,
            instalments=12,
            frequency="monthly",
        )
        await in_thread(kite.modify_mf_sip, sip["sip_id"], amount=2000)
        assert (await in_thread(kite.mf_sips, sip["sip_id"]))["instalment_amount"] == 2000
        await in_thread(kite.cancel_mf_sip, sip["sip_id"])
        assert len(await in_thread(kite.mf_holdings)) == 3

        session = await in_thread(kite.renew_access_token, sb.config.refresh_token, sb.api_secret)
        assert session["access_token"] == sb.access_token
        assert await in_thread(kite.invalidate_access_token) is True
        with pytest.raises(kite_exceptions.TokenException):
            await in_thread(kite.profile)
    finally:
        kite.reqsession.close()


async def test_official_client_meets_kites_2026_order_rules(sb: Sandbox) -> None:
    kite = await logged_in(sb)
    order = {
        "variety": "regular",
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "transaction_type": "BUY",
        "quantity": 1,
        "product": "CNC",
        "order_type": "MARKET",
    }
    try:
        for protection in (None, 0):
            with pytest.raises(kite_exceptions.InputException) as refused:
                await in_thread(kite.place_order, **order, market_protection=protection)
            assert str(refused.value) == (
                "Market orders without market protection are not allowed via API. "
                "Please set market protection or use a Limit order."
            )
        assert sb.state.book.orders == {}
        order_id = await in_thread(kite.place_order, **order, market_protection=-1, algo_id="A1")
        (row,) = await in_thread(kite.orders)
        assert (row["order_id"], row["order_type"], row["tags"]) == (
            order_id,
            "LIMIT",
            ["mktp", "mktp:2.00"],
        )
        with pytest.raises(kite_exceptions.InputException, match="tag"):
            await in_thread(kite.place_order, **order, market_protection=-1, tag="x" * 21)
        with pytest.raises(kite_exceptions.InputException, match="10 slices"):
            await in_thread(
                kite.place_autoslice_order,
                **{
                    **order,
                    "exchange": "NFO",
                    "tradingsymbol": "NIFTY26DECFUT",
                    "quantity": 75 * 24 * 11,
                    "product": "NRML",
                },
                market_protection=-1,
            )
        limit = {**order, "order_type": "LIMIT", "price": 100}
        open_id = await in_thread(kite.place_order, **limit)
        for step in range(25):
            await in_thread(kite.modify_order, "regular", open_id, price=101 + step)
        with pytest.raises(kite_exceptions.InputException, match="modifications exceeded"):
            await in_thread(kite.modify_order, "regular", open_id, price=200)
        # the dumps are exactly text/csv, which the client parses into records
        instruments = await in_thread(kite.instruments, "NSE")
        assert any(i["tradingsymbol"] == "INFY" for i in instruments)
    finally:
        kite.reqsession.close()


async def test_official_client_meets_the_static_ip_rule() -> None:
    from requests.adapters import HTTPAdapter

    class FromRegisteredAddress(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["source_address"] = ("127.0.0.2", 0)
            super().init_poolmanager(*args, **kwargs)

    config = SandboxConfig(seed=3, market_interval=None, order_ips=("127.0.0.2",))
    async with Sandbox(config) as sb:
        kite = await logged_in(sb)
        order = {
            "variety": "regular",
            "exchange": "NSE",
            "tradingsymbol": "INFY",
            "transaction_type": "BUY",
            "quantity": 1,
            "product": "CNC",
            "order_type": "LIMIT",
            "price": 100,
        }
        try:
            with pytest.raises(kite_exceptions.PermissionException, match="static IP"):
                await in_thread(kite.place_order, **order)
            assert sb.state.book.orders == {}
            assert (await in_thread(kite.profile))["user_id"] == sb.user_id  # reads stay open
            kite.reqsession.mount("http://", FromRegisteredAddress())
            order_id = await in_thread(kite.place_order, **order)
            assert await in_thread(kite.cancel_order, "regular", order_id) == order_id
        finally:
            kite.reqsession.close()
