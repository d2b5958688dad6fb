"""The sandbox's REST side over real loopback HTTP: auth, login, orders, market, portfolio."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio
import httpx
import pyotp
import pytest

from aio_trader.kite.constants import EndpointGroup
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.sandbox._kite import DIALECT
from aio_trader.sandbox._kite._instruments import load_instruments
from aio_trader.sandbox._kite._quotes import snapshot
from aio_trader.sandbox._kite._state import kite_state
from aio_trader.sandbox.state import RATE_LIMIT_TOLERANCE, RateLimiter

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    """A sandbox whose market moves only when the test steps it."""
    async with Sandbox(SandboxConfig(seed=7, market_interval=None, rate_limit_scale=1000)) as s:
        yield s


def auth(sb: Sandbox) -> dict[str, str]:
    return {"Authorization": f"token {sb.api_key}:{sb.access_token}", "X-Kite-Version": "3"}


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sb.root_url, headers=auth(sb)) as c:
        yield c


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "success"
    return body["data"]


def error(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    assert body["error_type"] == error_type
    assert isinstance(body["message"], str)
    return str(body["message"])


QUOTE, ORDER, OTHER = EndpointGroup.QUOTE, EndpointGroup.ORDER, EndpointGroup.OTHER
MARKET_BUY = {
    "exchange": "NSE",
    "tradingsymbol": "INFY",
    "transaction_type": "BUY",
    "quantity": "2",
    "product": "CNC",
    "order_type": "MARKET",
    "market_protection": "-1",
}


async def place(client: httpx.AsyncClient, **changes: str) -> str:
    response = await client.post("/orders/regular", data={**MARKET_BUY, **changes})
    return str(data(response)["order_id"])


async def refused(port: int) -> bool:
    """True when nothing accepts connections on the port any more."""
    try:
        stream = await anyio.connect_tcp("127.0.0.1", port)
    except OSError:
        return True
    await stream.aclose()
    return False


# -- lifecycle ------------------------------------------------------------------------------------


async def test_starts_on_a_free_port_and_stops_cleanly() -> None:
    async with Sandbox() as sb:
        assert sb.root_url.startswith("http://127.0.0.1:")
        assert sb.ticker_url == sb.root_url.replace("http://", "ws://") + "/ws"
        port = sb.port
        async with httpx.AsyncClient() as c:
            assert data(await c.get(f"{sb.root_url}/__sandbox__/ping")) == "pong"
    assert await refused(port)


async def test_cancellation_while_running_stops_the_server() -> None:
    with anyio.CancelScope() as scope:
        async with Sandbox() as sb:
            port = sb.port
            scope.cancel()  # from outside the sandbox, once it runs (no deadline to beat)
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert await refused(port)


async def test_cancelled_while_starting_leaves_nothing_running() -> None:
    entered = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        async with Sandbox():
            entered = True
    assert scope.cancelled_caught
    assert not entered


async def test_a_running_sandbox_cannot_be_entered_twice() -> None:
    sandbox = Sandbox(market_interval=None)
    with pytest.raises(RuntimeError, match="not running"):
        sandbox.state  # noqa: B018
    async with sandbox:
        with pytest.raises(RuntimeError, match="already running"):
            await sandbox.__aenter__()
    # the state stays readable after the sandbox stopped, for assertions
    assert sandbox.state.stats.requests == 0


async def test_a_fixed_port_in_use_fails_clearly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            async with Sandbox(port=taken.getsockname()[1]):
                pass


async def test_the_pytest_fixture_gives_a_running_sandbox(kite_sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=kite_sandbox.root_url) as c:
        profile = data(await c.get("/user/profile", headers=auth(kite_sandbox)))
    assert profile["user_id"] == kite_sandbox.user_id


def test_secrets_stay_out_of_reprs() -> None:
    config = SandboxConfig()
    text = repr(config) + repr(Sandbox(config))
    for secret in (config.api_secret, config.access_token, config.password, config.enctoken):
        assert secret not in text


# -- auth and login -------------------------------------------------------------------------------


async def test_every_call_needs_a_valid_session(sb: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sb.root_url) as c:
        error(await c.get("/user/profile"), 403, "TokenException")
        bad = {"Authorization": f"token {sb.api_key}:wrong"}
        error(await c.get("/orders", headers=bad), 403, "TokenException")
        error(await c.get("/quote", params={"i": "NSE:INFY"}, headers=bad), 403, "TokenException")
        assert data(await c.get("/user/profile", headers=auth(sb)))["user_id"] == sb.user_id
    assert sb.state.stats.refused_403 == 3


async def test_connect_login_and_session_exchange(sb: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sb.root_url) as c:
        response = await c.get("/connect/login", params={"api_key": sb.api_key, "v": "3"})
        assert response.status_code == 302
        location = httpx.URL(response.headers["location"])
        assert location.params["status"] == "success"
        assert location.params["action"] == "login"
        request_token = location.params["request_token"]
        checksum = hashlib.sha256((sb.api_key + request_token + sb.api_secret).encode()).hexdigest()
        form = {"api_key": sb.api_key, "request_token": request_token, "checksum": "0" * 64}
        error(await c.post("/session/token", data=form), 400, "InputException")
        form["checksum"] = checksum
        session = data(await c.post("/session/token", data=form))
        assert session["access_token"] == sb.access_token
        assert session["user_id"] == sb.user_id
        # a request token is single use
        error(await c.post("/session/token", data=form), 403, "TokenException")
        headers = {"Authorization": f"token {sb.api_key}:{session['access_token']}"}
        assert data(await c.get("/user/profile", headers=headers))["user_id"] == sb.user_id
        # renew with the refresh token, then log out
        refresh = session["refresh_token"]
        renew = hashlib.sha256((sb.api_key + refresh + sb.api_secret).encode()).hexdigest()
        renewed = await c.post(
            "/session/refresh_token",
            data={"api_key": sb.api_key, "refresh_token": refresh, "checksum": renew},
        )
        assert data(renewed)["access_token"] == sb.access_token
        params = {"api_key": sb.api_key, "access_token": sb.access_token}
        assert data(await c.delete("/session/token", params=params)) is True
        error(await c.get("/user/profile", headers=headers), 403, "TokenException")
    error(
        await httpx.AsyncClient(base_url=sb.root_url).get(
            "/connect/login", params={"api_key": "other"}
        ),
        400,
        "InputException",
    )


async def test_kite_web_logins_get_distinct_request_ids(sb: Sandbox) -> None:
    credentials = {"user_id": sb.user_id, "password": sb.password}
    async with httpx.AsyncClient(base_url=sb.root_url) as c:

        async def login() -> str:
            return str(data(await c.post("/api/login", data=credentials))["request_id"])

        first, second = await login(), await login()
        totp = pyotp.TOTP(sb.config.totp_secret).now()
        form = {"user_id": sb.user_id, "request_id": first, "twofa_value": totp}
        data(await c.post("/api/twofa", data=form))
        assert len({first, second, await login()}) == 3


async def test_kite_web_login_with_totp_then_enctoken_under_oms(sb: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sb.root_url) as c:
        wrong = {"user_id": sb.user_id, "password": "nope"}
        error(await c.post("/api/login", data=wrong), 400, "InputException")
        login = data(
            await c.post("/api/login", data={"user_id": sb.user_id, "password": sb.password})
        )
        form = {
            "user_id": sb.user_id,
            "request_id": login["request_id"],
            "twofa_type": "totp",
            "twofa_value": "000000" if pyotp.TOTP(sb.config.totp_secret).now() != "000000" else "1",
        }
        error(await c.post("/api/twofa", data=form), 400, "InputException")
        form["twofa_value"] = pyotp.TOTP(sb.config.totp_secret).now()
        response = await c.post("/api/twofa", data=form)
        data(response)
        enctoken = response.cookies["enctoken"]
        assert enctoken == sb.enctoken
        headers = {"Authorization": f"enctoken {enctoken}"}
        assert data(await c.get("/oms/user/profile", headers=headers))["user_id"] == sb.user_id
        assert data(await c.get("/oms/orders", headers=headers)) == []
        error(
            await c.get("/oms/orders", headers={"Authorization": "enctoken x"}),
            403,
            "TokenException",
        )


# -- orders ---------------------------------------------------------------------------------------


async def test_market_order_walks_kite_statuses_and_fills(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    with sb.state.order_updates() as updates:
        order_id = await place(client, tag="mytag1")
        history = data(await client.get(f"/orders/{order_id}"))
        assert [row["status"] for row in history] == [
            "PUT ORDER REQ RECEIVED",
            "VALIDATION PENDING",
            "OPEN PENDING",
            "OPEN",
            "COMPLETE",
        ]
        final = history[-1]
        last = sb.state.market.last_price(408065)
        assert final["average_price"] == last
        assert final["filled_quantity"] == 2
        assert final["pending_quantity"] == 0
        assert final["tag"] == "mytag1"
        postbacks = [updates.receive_nowait(), updates.receive_nowait()]
    assert [p["status"] for p in postbacks] == ["OPEN", "COMPLETE"]
    expected = hashlib.sha256(
        (order_id + postbacks[1]["order_timestamp"] + sb.api_secret).encode()
    ).hexdigest()
    assert postbacks[1]["checksum"] == expected
    trades = data(await client.get(f"/orders/{order_id}/trades"))
    assert [(t["quantity"], t["average_price"]) for t in trades] == [(2, last)]
    assert data(await client.get("/trades")) == trades
    positions = data(await client.get("/portfolio/positions"))
    (row,) = positions["net"]
    assert (row["tradingsymbol"], row["quantity"], row["product"]) == ("INFY", 2, "CNC")
    holdings = {h["tradingsymbol"]: h for h in data(await client.get("/portfolio/holdings"))}
    assert holdings["INFY"]["t1_quantity"] == 2
    orders = data(await client.get("/orders"))
    assert [o["order_id"] for o in orders] == [order_id]
    assert sb.state.stats.orders_booked == 1


async def test_limit_order_waits_then_fills_when_the_market_crosses(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    last = sb.state.market.last_price(408065)
    price = round(last - 0.05, 2)
    order_id = await place(client, order_type="LIMIT", price=str(price))
    assert data(await client.get(f"/orders/{order_id}"))[-1]["status"] == "OPEN"
    for _ in range(2000):
        sb.step_market()
        if sb.state.book.get(order_id).status == "COMPLETE":
            break
    final = data(await client.get(f"/orders/{order_id}"))[-1]
    assert final["status"] == "COMPLETE"
    assert final["average_price"] <= price


async def test_sl_order_triggers_then_fills(sb: Sandbox, client: httpx.AsyncClient) -> None:
    last = sb.state.market.last_price(408065)
    trigger = round(last + 0.5, 2)
    with sb.state.order_updates() as updates:
        order_id = await place(client, order_type="SL-M", trigger_price=str(trigger), product="MIS")
        assert sb.state.book.get(order_id).status == "TRIGGER PENDING"
        for _ in range(20000):
            sb.step_market()
            if sb.state.book.get(order_id).status == "COMPLETE":
                break
        published = [updates.receive_nowait()["status"] for _ in range(3)]
    statuses = [row["status"] for row in data(await client.get(f"/orders/{order_id}"))]
    assert statuses[-3:] == ["TRIGGER PENDING", "OPEN", "COMPLETE"]
    assert published == ["TRIGGER PENDING", "OPEN", "COMPLETE"]


async def test_modify_and_cancel_an_open_order(sb: Sandbox, client: httpx.AsyncClient) -> None:
    low = round(sb.state.market.last_price(408065) * 0.5, 1)
    order_id = await place(client, order_type="LIMIT", price=str(low))
    modified = await client.put(
        f"/orders/regular/{order_id}", data={"price": str(low + 1), "quantity": "3"}
    )
    assert data(modified) == {"order_id": order_id}
    off_tick = await client.put(f"/orders/regular/{order_id}", data={"price": str(low + 0.03)})
    assert "tick size" in error(off_tick, 400, "InputException")
    history = data(await client.get(f"/orders/{order_id}"))
    assert [row["status"] for row in history[-4:]] == [
        "MODIFY VALIDATION PENDING",
        "MODIFY PENDING",
        "MODIFIED",
        "OPEN",
    ]
    assert (history[-1]["price"], history[-1]["quantity"], history[-1]["modified"]) == (
        low + 1,
        3,
        True,
    )
    assert data(await client.delete(f"/orders/regular/{order_id}")) == {"order_id": order_id}
    final = data(await client.get(f"/orders/{order_id}"))[-1]
    assert (final["status"], final["cancelled_quantity"]) == ("CANCELLED", 3)
    error(await client.delete(f"/orders/regular/{order_id}"), 400, "InputException")
    error(
        await client.put(f"/orders/regular/{order_id}", data={"price": "1"}), 400, "InputException"
    )
    error(await client.get("/orders/999"), 400, "InputException")


async def test_ioc_limit_that_does_not_match_is_cancelled(client: httpx.AsyncClient) -> None:
    order_id = await place(client, order_type="LIMIT", price="1", validity="IOC")
    final = data(await client.get(f"/orders/{order_id}"))[-1]
    assert final["status"] == "CANCELLED"


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"quantity": ""}, "quantity"),
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "1.5"}, "quantity"),
        ({"quantity": "inf"}, "quantity"),
        ({"quantity": "nan"}, "quantity"),
        ({"order_type": "LIMIT", "price": "inf"}, "price"),
        ({"transaction_type": "HOLD"}, "transaction_type"),
        ({"order_type": "LIMIT"}, "price"),
        ({"order_type": "SL"}, "price"),
        ({"order_type": "SL-M"}, "trigger_price"),
        ({"product": "XYZ"}, "product"),
        ({"tradingsymbol": "NOPE"}, "tradingsymbol"),
        ({"exchange": "NFO", "tradingsymbol": "NIFTY26DECFUT", "quantity": "10"}, "lot size"),
        ({"tradingsymbol": "NIFTY 50"}, "not tradable"),
        ({"tag": "has space"}, "tag"),
        ({"tag": "x" * 21}, "tag"),
        ({"validity": "GTC"}, "validity"),
        ({"order_type": "LIMIT", "price": "100.03"}, "tick"),
        ({"market_protection": "abc"}, "market_protection"),
        ({"market_protection": "101"}, "market_protection"),
    ],
)
async def test_bad_orders_get_400_input_exception(
    client: httpx.AsyncClient, changes: dict[str, str], needle: str
) -> None:
    message = error(
        await client.post("/orders/regular", data={**MARKET_BUY, **changes}), 400, "InputException"
    )
    assert needle in message


async def test_bad_variety_and_missing_fields(client: httpx.AsyncClient) -> None:
    error(await client.post("/orders/weird", data=MARKET_BUY), 400, "InputException")
    error(await client.post("/orders/regular", data={}), 400, "InputException")


async def test_shortfalls_book_a_rejected_order(client: httpx.AsyncClient) -> None:
    order_id = await place(client, quantity="100000000")
    final = data(await client.get(f"/orders/{order_id}"))[-1]
    assert final["status"] == "REJECTED"
    assert "Insufficient funds" in final["status_message"]
    sell = await place(client, transaction_type="SELL", tradingsymbol="RELIANCE")
    rejected = data(await client.get(f"/orders/{sell}"))[-1]
    assert rejected["status"] == "REJECTED"
    assert "holdings" in rejected["status_message"]


async def test_cover_order_gets_a_stoploss_leg_that_exits(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    last = sb.state.market.last_price(408065)
    response = await client.post(
        "/orders/co",
        data={**MARKET_BUY, "product": "MIS", "trigger_price": str(round(last * 0.9, 1))},
    )
    parent = data(response)["order_id"]
    legs = [o for o in data(await client.get("/orders")) if o["parent_order_id"] == parent]
    (leg,) = legs
    assert (leg["status"], leg["transaction_type"]) == ("TRIGGER PENDING", "SELL")
    data(await client.delete(f"/orders/co/{leg['order_id']}"))
    assert data(await client.get(f"/orders/{leg['order_id']}"))[-1]["status"] == "COMPLETE"
    (position,) = data(await client.get("/portfolio/positions"))["net"]
    assert position["quantity"] == 0


async def test_amo_orders_wait_and_can_be_cancelled(client: httpx.AsyncClient) -> None:
    response = await client.post("/orders/amo", data=MARKET_BUY)
    order_id = data(response)["order_id"]
    assert data(await client.get(f"/orders/{order_id}"))[-1]["status"] == "AMO REQ RECEIVED"
    data(await client.delete(f"/orders/amo/{order_id}"))


async def test_autoslice_splits_past_the_freeze_quantity(client: httpx.AsyncClient) -> None:
    form = {
        **MARKET_BUY,
        "exchange": "NFO",
        "tradingsymbol": "NIFTY26DEC24300CE",
        "product": "NRML",
        "quantity": str(75 * 50),
        "autoslice": "true",
    }
    answer = data(await client.post("/orders/regular", data=form))
    assert len(answer["children"]) == 3
    assert answer["order_id"] == answer["children"][0]["order_id"]
    # no slice can be booked: the error itself, not a success with an empty order_id
    refused = await client.post("/orders/regular", data={**form, "price": "-1"})
    assert "price" in error(refused, 400, "InputException")


async def test_convert_position(client: httpx.AsyncClient) -> None:
    await place(client, product="MIS")
    form = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "transaction_type": "BUY",
        "position_type": "day",
        "quantity": "1",
        "old_product": "MIS",
        "new_product": "CNC",
    }
    assert data(await client.put("/portfolio/positions", data=form)) is True
    net = {
        p["product"]: p["quantity"] for p in data(await client.get("/portfolio/positions"))["net"]
    }
    assert net == {"MIS": 1, "CNC": 1}
    error(
        await client.put("/portfolio/positions", data={**form, "quantity": "5"}),
        400,
        "InputException",
    )


async def test_margins_follow_fills(client: httpx.AsyncClient) -> None:
    before = data(await client.get("/user/margins/equity"))
    await place(client)
    after = data(await client.get("/user/margins/equity"))
    assert after["net"] < before["net"]
    assert after["utilised"]["debits"] > before["utilised"]["debits"]
    both = data(await client.get("/user/margins"))
    assert set(both) == {"equity", "commodity"}
    error(await client.get("/user/margins/crypto"), 400, "InputException")


# -- market data ----------------------------------------------------------------------------------


async def test_quote_ohlc_ltp_match_the_ticks(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.step_market(3)
    keys = ["NSE:INFY", "NSE:NIFTY 50", "CDS:USDINR26DECFUT", "408065", "NSE:NOPE"]
    quote = data(await client.get("/quote", params={"i": keys}))
    assert set(quote) == set(keys) - {"NSE:NOPE"}
    tick = snapshot(sb.state.market, 408065, "full")
    infy = quote["NSE:INFY"]
    assert tick.last_price == infy["last_price"]
    assert tick.volume_traded == infy["volume"]
    assert tick.ohlc.close == infy["ohlc"]["close"]
    assert [level.price for level in tick.depth.buy] == [d["price"] for d in infy["depth"]["buy"]]
    assert quote["408065"] == infy
    ohlc = data(await client.get("/quote/ohlc", params={"i": ["NSE:INFY"]}))
    assert ohlc["NSE:INFY"]["ohlc"] == infy["ohlc"]
    ltp = data(await client.get("/quote/ltp", params={"i": ["NSE:NIFTY 50"]}))
    assert ltp["NSE:NIFTY 50"]["last_price"] == snapshot(sb.state.market, 256265, "ltp").last_price
    error(await client.get("/quote"), 400, "InputException")
    error(await client.get("/quote", params={"i": ["NSE:INFY"] * 501}), 400, "InputException")


async def test_instrument_dumps_are_csv(client: httpx.AsyncClient) -> None:
    response = await client.get("/instruments")
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0].startswith("instrument_token,exchange_token,tradingsymbol")
    assert len(lines) > 300
    segments = {int(line.split(",")[0]) & 0xFF for line in lines[1:]}
    assert segments >= {1, 2, 3, 4, 6, 7, 9}
    nfo = (await client.get("/instruments/NFO")).text.splitlines()
    assert all(line.endswith(",NFO") for line in nfo[1:])
    error(await client.get("/instruments/XYZ"), 400, "InputException")
    mf = await client.get("/mf/instruments")
    assert mf.headers["content-type"].startswith("text/csv")
    assert mf.text.startswith("tradingsymbol,amc,name")


def test_shipped_instruments_have_kite_tokens() -> None:
    instruments = load_instruments()
    codes = {"NSE": 1, "NFO": 2, "CDS": 3, "BSE": 4, "BFO": 5, "BCD": 6, "MCX": 7}
    assert len(instruments) >= 300
    for token, instrument in instruments.items():
        code = 9 if instrument.segment == "INDICES" else codes[instrument.exchange]
        assert token & 0xFF == code, instrument.tradingsymbol
        assert token >> 8 == instrument.exchange_token
        assert instrument.base_price > 0
        if instrument.instrument_type in ("FUT", "CE", "PE"):
            assert instrument.expiry is not None
            assert instrument.lot_size >= 1
    assert instruments[408065].tradingsymbol == "INFY"
    assert instruments[256265].tradingsymbol == "NIFTY 50"
    assert instruments[260105].tradingsymbol == "NIFTY BANK"
    segments = {instrument.segment for instrument in instruments.values()}
    assert segments >= {"NSE", "BSE", "INDICES", "NFO-FUT", "NFO-OPT", "CDS-FUT", "BCD-FUT"}
    assert segments >= {"MCX-FUT", "MCX-OPT", "BFO-FUT", "BFO-OPT", "CDS-OPT"}


async def test_historical_candles(sb: Sandbox, client: httpx.AsyncClient) -> None:
    params = {"from": "2024-03-04 09:15:00", "to": "2024-03-04 15:29:00"}
    candles = data(await client.get("/instruments/historical/408065/minute", params=params))
    rows = candles["candles"]
    assert len(rows) == 375
    assert rows[0][0] == "2024-03-04T09:15:00+0530"
    for _, o, h, low, c, volume in rows:
        assert low <= min(o, c) <= max(o, c) <= h
        assert volume > 0
    with_oi = data(
        await client.get("/instruments/historical/408065/5minute", params={**params, "oi": "1"})
    )["candles"]
    assert {len(row) for row in with_oi} == {7}
    days = data(
        await client.get(
            "/instruments/historical/256265/day",
            params={"from": "2024-03-01", "to": "2024-03-31"},
        )
    )["candles"]
    assert len(days) == 21  # weekdays of March 2024
    too_long = {"from": "2024-01-01 09:15:00", "to": "2024-03-04 09:15:00"}
    error(
        await client.get("/instruments/historical/408065/minute", params=too_long),
        400,
        "InputException",
    )
    error(
        await client.get("/instruments/historical/408065/2minute", params=params),
        400,
        "InputException",
    )
    error(
        await client.get(
            "/instruments/historical/408065/day", params={**params, "continuous": "1"}
        ),
        400,
        "InputException",
    )
    error(
        await client.get("/instruments/historical/1/minute", params=params), 400, "InputException"
    )
    error(
        await client.get(
            "/instruments/historical/408065/minute", params={"from": "yesterday", "to": "now"}
        ),
        400,
        "InputException",
    )


async def test_futures_candles_span_the_contract_unless_continuous(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    future = sb.state.market.by_symbol("NFO", "NIFTY26DECFUT")
    assert future is not None
    path = f"/instruments/historical/{future.instrument_token}/day"
    march = {"from": "2024-03-01", "to": "2024-03-31"}
    assert data(await client.get(path, params=march))["candles"] == []
    stitched = data(await client.get(path, params={**march, "continuous": "1"}))["candles"]
    assert len(stitched) == 21
    live = {"from": "2026-11-02", "to": "2026-11-06"}
    assert len(data(await client.get(path, params=live))["candles"]) == 5


async def test_trigger_range(client: httpx.AsyncClient) -> None:
    answer = data(
        await client.get("/instruments/trigger_range/buy", params={"i": ["NSE:INFY", "NSE:SBIN"]})
    )
    assert answer["NSE:INFY"]["lower"] < answer["NSE:INFY"]["upper"]
    error(
        await client.get("/instruments/trigger_range/hold", params={"i": "NSE:INFY"}),
        400,
        "InputException",
    )
    too_many = {"i": ["NSE:INFY"] * 501}  # at most 500, as for /quote
    refused = await client.get("/instruments/trigger_range/buy", params=too_many)
    assert "at most 500" in error(refused, 400, "InputException")


# -- GTT, alerts, mutual funds --------------------------------------------------------------------


async def test_gtt_lifecycle_and_trigger(sb: Sandbox, client: httpx.AsyncClient) -> None:
    last = sb.state.market.last_price(408065)
    condition = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "trigger_values": [round(last + 0.05, 2)],
        "last_price": last,
    }
    orders = [
        {
            "transaction_type": "BUY",
            "quantity": 1,
            "order_type": "LIMIT",
            "product": "CNC",
            "price": round(last + 5, 1),
        }
    ]
    form = {"type": "single", "condition": json.dumps(condition), "orders": json.dumps(orders)}
    trigger_id = data(await client.post("/gtt/triggers", data=form))["trigger_id"]
    got = data(await client.get(f"/gtt/triggers/{trigger_id}"))
    assert (got["status"], got["condition"]["instrument_token"]) == ("active", 408065)
    assert [g["id"] for g in data(await client.get("/gtt/triggers"))] == [trigger_id]
    condition["trigger_values"] = [round(last + 0.1, 2)]
    form["condition"] = json.dumps(condition)
    assert data(await client.put(f"/gtt/triggers/{trigger_id}", data=form)) == {
        "trigger_id": trigger_id
    }
    for _ in range(20000):
        sb.step_market()
        if kite_state(sb.state).gtts.get(str(trigger_id))["status"] == "triggered":
            break
    fired = data(await client.get(f"/gtt/triggers/{trigger_id}"))
    assert fired["status"] == "triggered"
    result = fired["orders"][0]["result"]
    assert result["order_result"]["status"] == "success"
    assert data(await client.get(f"/orders/{result['order_result']['order_id']}"))
    assert data(await client.delete(f"/gtt/triggers/{trigger_id}")) == {"trigger_id": trigger_id}
    error(await client.get(f"/gtt/triggers/{trigger_id}"), 400, "InputException")
    bad = {**form, "type": "two-leg"}
    error(await client.post("/gtt/triggers", data=bad), 400, "InputException")
    for change, needle in (({"quantity": 1.5}, "quantity"), ({"price": "abc"}, "price")):
        bad = {**form, "orders": json.dumps([{**orders[0], **change}])}
        assert needle in error(await client.post("/gtt/triggers", data=bad), 400, "InputException")


async def test_alerts_crud_and_history(sb: Sandbox, client: httpx.AsyncClient) -> None:
    form = {
        "name": "nifty up",
        "type": "simple",
        "lhs_exchange": "INDICES",
        "lhs_tradingsymbol": "NIFTY 50",
        "lhs_attribute": "LastTradedPrice",
        "operator": ">=",
        "rhs_type": "constant",
        "rhs_constant": "1",
    }
    # an index alert is labelled INDICES, and what the sandbox answers it accepts back
    index_alert = data(await client.post("/alerts", data=form))
    assert index_alert["lhs_exchange"] == "INDICES"
    again = data(await client.put(f"/alerts/{index_alert['uuid']}", data=form))
    assert (again["lhs_exchange"], again["lhs_tradingsymbol"]) == ("INDICES", "NIFTY 50")
    await client.delete(f"/alerts/{index_alert['uuid']}")
    form["lhs_exchange"] = "NSE"
    alert = data(await client.post("/alerts", data=form))
    uuid = alert["uuid"]
    assert data(await client.get(f"/alerts/{uuid}"))["name"] == "nifty up"
    sb.step_market()
    history = data(await client.get(f"/alerts/{uuid}/history"))
    assert len(history) == 1
    assert data(await client.get(f"/alerts/{uuid}"))["alert_count"] == 1
    modified = data(await client.put(f"/alerts/{uuid}", data={**form, "name": "renamed"}))
    assert modified["name"] == "renamed"
    assert [a["uuid"] for a in data(await client.get("/alerts"))] == [uuid]
    item = {"tradingsymbol": "INFY", "exchange": "NSE", "weight": "heavy", "params": {}}
    ato = {**form, "type": "ato", "basket": json.dumps({"items": [item]})}
    assert "weight" in error(await client.post("/alerts", data=ato), 400, "InputException")
    await client.delete("/alerts", params={"uuid": [uuid]})
    assert data(await client.get("/alerts")) == []
    error(await client.get(f"/alerts/{uuid}"), 400, "InputException")


async def test_mutual_fund_orders_and_sips(client: httpx.AsyncClient) -> None:
    order = {"tradingsymbol": "INF179K01VY8", "transaction_type": "BUY", "amount": "5000"}
    order_id = data(await client.post("/mf/orders", data=order))["order_id"]
    assert data(await client.get(f"/mf/orders/{order_id}"))["status"] == "OPEN"
    assert data(await client.delete(f"/mf/orders/{order_id}")) == {"order_id": order_id}
    assert data(await client.get("/mf/orders"))[0]["status"] == "CANCELLED"
    error(await client.post("/mf/orders", data={**order, "amount": "1"}), 400, "InputException")
    sip = {
        "tradingsymbol": "INF179K01VY8",
        "amount": "1000",
        "frequency": "monthly",
        "instalments": "12",
    }
    sip_id = data(await client.post("/mf/sips", data=sip))["sip_id"]
    for bad in ("twelve", "0", "-2"):
        refused = await client.post("/mf/sips", data={**sip, "instalments": bad})
        assert "instalments" in error(refused, 400, "InputException")
        refused = await client.put(f"/mf/sips/{sip_id}", data={"instalments": bad})
        assert "instalments" in error(refused, 400, "InputException")
    data(await client.put(f"/mf/sips/{sip_id}", data={"amount": "2000", "status": "paused"}))
    got = data(await client.get(f"/mf/sips/{sip_id}"))
    assert (got["instalment_amount"], got["status"]) == (2000.0, "PAUSED")
    data(await client.delete(f"/mf/sips/{sip_id}"))
    assert data(await client.get("/mf/sips"))[0]["status"] == "CANCELLED"
    assert len(data(await client.get("/mf/holdings"))) == 3


async def test_margin_and_charge_calculators(client: httpx.AsyncClient) -> None:
    orders = [
        {
            "exchange": "NSE",
            "tradingsymbol": "INFY",
            "transaction_type": "BUY",
            "variety": "regular",
            "product": "CNC",
            "order_type": "MARKET",
            "quantity": 1,
            "price": 0,
        },
        {
            "exchange": "NFO",
            "tradingsymbol": "NIFTY26DECFUT",
            "transaction_type": "SELL",
            "variety": "regular",
            "product": "NRML",
            "order_type": "LIMIT",
            "quantity": 75,
            "price": 24000,
        },
    ]
    rows = data(await client.post("/margins/orders", json=orders))
    assert rows[0]["var"] > 0
    assert rows[1]["span"] > 0
    basket = data(
        await client.post("/margins/basket", json=orders, params={"consider_positions": "true"})
    )
    assert basket["final"]["total"] <= basket["initial"]["total"]
    notes = data(await client.post("/charges/orders", json=orders))
    assert notes[1]["charges"]["transaction_tax"] > 0
    error(await client.post("/margins/orders", json=[]), 400, "InputException")
    error(await client.post("/margins/orders", json=[{"exchange": "NSE"}]), 400, "InputException")


# -- rate limits ----------------------------------------------------------------------------------


async def test_rate_limits_answer_429_and_are_counted() -> None:
    async with (
        Sandbox(SandboxConfig(market_interval=None)) as sb,
        httpx.AsyncClient(base_url=sb.root_url, headers=auth(sb)) as c,
    ):
        responses: list[httpx.Response] = []

        async def call(method: str, path: str, **options: Any) -> None:
            responses.append(await c.request(method, path, **options))

        # concurrent bursts: they all arrive well inside one window
        async with anyio.create_task_group() as group:
            for _ in range(2):
                group.start_soon(partial(call, "GET", "/quote/ltp", params={"i": "NSE:INFY"}))
            for _ in range(12):
                group.start_soon(partial(call, "POST", "/orders/regular", data=MARKET_BUY))
        refused = [r for r in responses if r.status_code == 429]
        assert len(refused) == 3
        for response in refused:
            assert error(response, 429, "NetworkException") == "Too many requests"
        stats = data(await c.get("/__sandbox__/stats"))
    assert stats["refused_429"]["quote"] == 1
    assert stats["refused_429"]["order"] == 2
    assert stats["orders_booked"] == 10


def test_rate_limiter_windows_and_scale() -> None:
    # every window is Kite's less a fixed tolerance (seconds), never a fraction of it
    tolerance = RATE_LIMIT_TOLERANCE
    assert 0 < tolerance <= 0.2
    limiter = RateLimiter(DIALECT.rate_limits, scale=1)
    second = 1.0 - tolerance  # quote: 1 call per second
    calls = (0.0, 0.5, second - 0.01, second + 0.01, 1.0, 2 * second + 0.02)
    assert [limiter.allow(QUOTE, t) for t in calls] == [True, False, False, True, False, True]
    # 10/s and 200/min for orders: the minute window binds after 200 calls, for 60 s less
    # the same tolerance
    accepted = sum(limiter.allow(ORDER, s + i / 100) for s in range(30) for i in range(10))
    assert accepted == 200
    assert not limiter.allow(ORDER, 40.0)
    assert not limiter.allow(ORDER, 60.0 - tolerance - 0.05)
    assert limiter.allow(ORDER, 61.0)
    scaled = RateLimiter(DIALECT.rate_limits, scale=20)
    assert sum(scaled.allow(QUOTE, 0.0) for _ in range(25)) == 20
    tiny = RateLimiter(DIALECT.rate_limits, scale=0.01)
    assert tiny.allow(OTHER, 0.0)
    assert not tiny.allow(OTHER, 0.1)


async def test_rate_limit_refuses_a_client_paced_over_kites_rate() -> None:
    # 50 quote calls evenly paced over Kite's 20/s at scale 20: any 21 consecutive calls
    # span 3/4 of the window (1 s less the tolerance), so some of them are refused.
    spacing = 0.75 * (1.0 - RATE_LIMIT_TOLERANCE) / 20
    async with (
        Sandbox(SandboxConfig(market_interval=None, rate_limit_scale=20)) as sb,
        httpx.AsyncClient(base_url=sb.root_url, headers=auth(sb)) as c,
    ):
        statuses: list[int] = []

        async def quote_at(moment: float) -> None:
            await anyio.sleep_until(moment)
            statuses.append((await c.get("/quote/ltp", params={"i": "NSE:INFY"})).status_code)

        await c.get("/user/profile")  # the connection is open before the clock starts
        start = anyio.current_time()
        async with anyio.create_task_group() as group:
            for i in range(50):
                group.start_soon(quote_at, start + i * spacing)
        assert statuses.count(200) >= 20
        assert 429 in statuses
        assert sb.state.stats.refused_429[QUOTE] == statuses.count(429)


async def test_rate_limit_accepts_a_client_at_the_scaled_rate() -> None:
    async with (
        Sandbox(SandboxConfig(market_interval=None, rate_limit_scale=20)) as sb,
        httpx.AsyncClient(base_url=sb.root_url, headers=auth(sb)) as c,
    ):
        # 20 quote calls per second at scale 20, all at once
        statuses: list[int] = []

        async def quote() -> None:
            statuses.append((await c.get("/quote/ltp", params={"i": "NSE:INFY"})).status_code)

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(quote)
        assert statuses == [200] * 20


# -- determinism ----------------------------------------------------------------------------------


async def _walk(seed: int) -> tuple[list[float], Any]:
    async with Sandbox(SandboxConfig(seed=seed, market_interval=None)) as sb:
        prices = []
        for _ in range(50):
            sb.step_market()
            prices.append(sb.state.market.last_price(408065))
            prices.append(sb.state.market.last_price(256265))
        async with httpx.AsyncClient(base_url=sb.root_url, headers=auth(sb)) as c:
            params = {"from": "2023-05-02", "to": "2023-05-03", "oi": "1"}
            candles = data(await c.get("/instruments/historical/408065/15minute", params=params))
    return prices, candles


async def test_same_seed_same_market_other_seed_other_market() -> None:
    first, first_candles = await _walk(11)
    again, again_candles = await _walk(11)
    other, other_candles = await _walk(12)
    assert first == again
    assert first_candles == again_candles
    assert first != other
    assert first_candles != other_candles
