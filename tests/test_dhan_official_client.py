"""Dhan's official Python SDK (``dhanhq``), unchanged but for its base URLs, against the
sandbox's Dhan REST side. The SDK is synchronous (requests): it runs in a worker thread
while the sandbox serves from the event loop."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio.to_thread
import pytest

from aio_trader.sandbox import Sandbox, SandboxConfig

dhanhq_module = pytest.importorskip("dhanhq")

T = TypeVar("T")


@pytest.fixture
async def sb(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sandbox]:
    config = SandboxConfig(
        broker="dhan", seed=6, market_interval=None, rate_limit_scale=1000, opening_cash=1e8
    )
    async with Sandbox(config) as sandbox:
        # the SDK's base URLs, and nothing else, point at the sandbox
        from dhanhq.auth import DhanLogin
        from dhanhq.dhan_http import DhanHTTP

        monkeypatch.setattr(DhanHTTP, "API_BASE_URL", sandbox.root_url)
        monkeypatch.setattr(DhanLogin, "API_BASE_URL", sandbox.root_url)
        monkeypatch.setattr(DhanLogin, "AUTH_BASE_URL", sandbox.origin)
        yield sandbox


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))


def sdk(sb: Sandbox) -> Any:
    from dhanhq import DhanContext, dhanhq

    return dhanhq(DhanContext(sb.client_id, sb.access_token))


def ok(response: dict[str, Any]) -> Any:
    assert response["status"] == "success", response
    return response["data"]


async def test_official_sdk_orders_and_portfolio(sb: Sandbox) -> None:
    dhan = sdk(sb)
    placed = ok(
        await in_thread(
            dhan.place_order,
            security_id="1333",
            exchange_segment=dhan.NSE,
            transaction_type=dhan.BUY,
            quantity=1,
            order_type=dhan.LIMIT,
            product_type=dhan.CNC,
            price=500.0,
            tag="sdk-1",
        )
    )
    order_id = placed["orderId"]
    assert placed["orderStatus"] == "PENDING"
    assert ok(await in_thread(dhan.get_order_by_id, order_id))["price"] == 500.0
    assert ok(await in_thread(dhan.get_order_by_correlationID, "sdk-1"))["orderId"] == order_id
    modified = await in_thread(
        dhan.modify_order,
        order_id=order_id,
        order_type=dhan.LIMIT,
        leg_name=None,
        quantity=2,
        price=500.5,
        trigger_price=0,
        disclosed_quantity=0,
        validity=dhan.DAY,
    )
    assert ok(modified)["orderId"] == order_id
    assert ok(await in_thread(dhan.cancel_order, order_id))["orderStatus"] == "CANCELLED"
    (listed,) = ok(await in_thread(dhan.get_order_list))
    assert (listed["orderId"], listed["quantity"]) == (order_id, 2)

    filled = ok(
        await in_thread(dhan.place_order, "2885", dhan.NSE, dhan.BUY, 2, dhan.MARKET, dhan.INTRA, 0)
    )["orderId"]
    assert ok(await in_thread(dhan.get_trade_book, filled))[0]["tradedQuantity"] == 2
    assert ok(await in_thread(dhan.get_trade_book))[0]["orderId"] == filled
    today = datetime.date.today()
    history = await in_thread(
        dhan.get_trade_history,
        str(today - datetime.timedelta(days=1)),
        str(today + datetime.timedelta(days=1)),
    )
    assert ok(history)[0]["orderId"] == filled
    positions = ok(await in_thread(dhan.get_positions))
    assert (positions[0]["securityId"], positions[0]["netQty"]) == ("2885", 2)
    converted = await in_thread(
        dhan.convert_position, "INTRADAY", dhan.NSE, "LONG", "2885", 2, "CNC"
    )
    ok(converted)
    assert {h["tradingSymbol"] for h in ok(await in_thread(dhan.get_holdings))} >= {"INFY"}
    funds = ok(await in_thread(dhan.get_fund_limits))
    assert funds["availabelBalance"] > 0
    margin = ok(
        await in_thread(dhan.margin_calculator, "1333", dhan.NSE, dhan.BUY, 1, dhan.CNC, 900)
    )
    assert margin["totalMargin"] > 0
    multi = await in_thread(
        dhan.margin_calculator_multi,
        [
            {
                "securityId": "1333",
                "exchangeSegment": "NSE_EQ",
                "transactionType": "BUY",
                "quantity": 1,
                "productType": "CNC",
                "price": 900,
            }
        ],
    )
    assert float(ok(multi)["total_margin"]) > 0
    assert ok(await in_thread(dhan.ledger_report, "2026-01-01", "2026-12-31"))
    sliced = ok(
        await in_thread(
            dhan.place_slice_order,
            "35001",
            dhan.FNO,
            dhan.BUY,
            75 * 30,
            dhan.LIMIT,
            dhan.MARGIN,
            100.0,
        )
    )
    assert len(sliced) == 2
    ok(await in_thread(dhan.exit_all_positions))


async def test_official_sdk_super_forever_conditional_and_controls(sb: Sandbox) -> None:
    dhan = sdk(sb)
    entry = ok(
        await in_thread(
            dhan.place_super_order,
            "1333",
            dhan.NSE,
            dhan.BUY,
            1,
            dhan.LIMIT,
            dhan.INTRA,
            500.0,
            targetPrice=600.0,
            stopLossPrice=450.0,
            trailingJump=1.0,
            tag="sdk-super",
        )
    )["orderId"]
    (listed,) = ok(await in_thread(dhan.get_super_order_list))
    assert listed["orderId"] == entry
    ok(await in_thread(dhan.modify_super_order, entry, dhan.LIMIT, "TARGET_LEG", targetPrice=650.0))
    ok(await in_thread(dhan.cancel_super_order, entry, "ENTRY_LEG"))

    forever = ok(
        await in_thread(
            dhan.place_forever, "1333", dhan.NSE, dhan.BUY, dhan.CNC, dhan.LIMIT, 1, 500.0, 501.0
        )
    )["orderId"]
    assert ok(await in_thread(dhan.get_forever))[0]["orderId"] == forever
    ok(
        await in_thread(
            dhan.modify_forever,
            forever,
            "SINGLE",
            dhan.LIMIT,
            "TARGET_LEG",
            2,
            500.0,
            502.0,
            0,
            dhan.DAY,
        )
    )
    ok(await in_thread(dhan.cancel_forever, forever))

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
        "price": 500,
    }
    alert = ok(await in_thread(dhan.place_conditional_order, condition, [leg]))["alertId"]
    assert ok(await in_thread(dhan.get_conditional_order, alert))["alertId"] == alert
    assert len(ok(await in_thread(dhan.get_conditional_orders))) == 1
    ok(await in_thread(dhan.modify_conditional_order, alert, condition, [leg]))
    ok(await in_thread(dhan.cancel_conditional_order, alert))

    ok(await in_thread(dhan.kill_switch, "activate"))
    assert ok(await in_thread(dhan.status_kill_switch))["killSwitchStatus"] == "ACTIVATE"
    ok(await in_thread(dhan.kill_switch, "deactivate"))
    ok(await in_thread(dhan.set_pnl_exit, 1000, 500, ["INTRADAY"]))
    assert ok(await in_thread(dhan.get_pnl_exit))["pnlExitStatus"] == "ACTIVE"
    ok(await in_thread(dhan.stop_pnl_exit))
    assert (await in_thread(dhan.generate_tpin))["status"] == "success"
    assert ok(await in_thread(dhan.edis_inquiry, "INE009A01021"))["totalQty"] == 10


async def test_official_sdk_market_data(sb: Sandbox) -> None:
    dhan = sdk(sb)
    ltp = ok(await in_thread(dhan.ticker_data, {"NSE_EQ": [1333, 11536], "IDX_I": [13]}))
    assert set(ltp["data"]["NSE_EQ"]) == {"1333", "11536"}
    assert ok(await in_thread(dhan.ohlc_data, {"NSE_EQ": [1333]}))["data"]["NSE_EQ"]["1333"]["ohlc"]
    depth = ok(await in_thread(dhan.quote_data, {"NSE_FNO": [35001]}))["data"]["NSE_FNO"]["35001"]
    assert len(depth["depth"]["buy"]) == 5
    daily = ok(
        await in_thread(
            dhan.historical_daily_data, "1333", dhan.NSE, "EQUITY", "2026-11-02", "2026-11-07"
        )
    )
    assert len(daily["timestamp"]) == 5
    minutes = ok(
        await in_thread(
            dhan.intraday_minute_data, "1333", dhan.NSE, "EQUITY", "2026-11-02", "2026-11-03", 15
        )
    )
    assert len(minutes["close"]) == 2 * 25
    expiries = ok(await in_thread(dhan.expiry_list, 13, dhan.INDEX))["data"]
    chain = ok(await in_thread(dhan.option_chain, 13, dhan.INDEX, expiries[0]))["data"]
    assert chain["last_price"] > 0
    assert chain["oc"]


async def test_official_sdk_login_helpers(sb: Sandbox) -> None:
    from dhanhq.auth import DhanLogin

    login = DhanLogin(sb.client_id)
    profile = await in_thread(login.user_profile, sb.access_token)
    assert profile["dhanClientId"] == sb.client_id
    assert ok(await in_thread(login.set_ip, sb.access_token, "203.0.113.1", "PRIMARY"))
    assert ok(await in_thread(login.get_ip, sb.access_token))["primaryIP"] == "203.0.113.1"
    renewed = await in_thread(login.renew_token, sb.access_token)
    assert renewed["accessToken"] != sb.access_token
    pyotp = pytest.importorskip("pyotp")
    token = await in_thread(
        login.generate_token, sb.config.pin, pyotp.TOTP(sb.config.totp_secret).now()
    )
    assert token["dhanClientId"] == sb.client_id
    with pytest.raises(Exception, match="Failed"):
        await in_thread(login.generate_token, "000000", "000000")
