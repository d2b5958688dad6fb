"""The sandbox's Dhan dialect over raw HTTP: Dhan's bodies (conformance with the reference
bodies), errors (400-family for malformed input, never a 500), limits (429 DH-904), static
IP (DH-911), the modification cap, MARKET protection, candle dates."""

from __future__ import annotations

import datetime
import json
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aio_trader.sandbox import Sandbox, SandboxConfig

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "dhan-reference"


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(
        broker="dhan", seed=5, market_interval=None, rate_limit_scale=1000, opening_cash=1e8
    )
    async with Sandbox(config) as sandbox:
        yield sandbox


def http(sb: Sandbox, **headers: str) -> httpx.AsyncClient:
    base = {"access-token": sb.access_token, "client-id": sb.client_id}
    return httpx.AsyncClient(base_url=sb.root_url, headers={**base, **headers})


def order_body(sb: Sandbox, **changes: Any) -> dict[str, Any]:
    body = {
        "dhanClientId": sb.client_id,
        "transactionType": "BUY",
        "exchangeSegment": "NSE_EQ",
        "productType": "CNC",
        "orderType": "LIMIT",
        "validity": "DAY",
        "securityId": "1333",
        "quantity": 1,
        "price": 500.0,
        "correlationId": "raw-1",
    }
    body.update(changes)
    return body


def is_dhan_error(response: httpx.Response, code: str) -> None:
    body = response.json()
    assert set(body) == {"errorType", "errorCode", "errorMessage"}
    assert body["errorCode"] == code


# -- shapes --------------------------------------------------------------------------------------


async def test_admin_routes_answer_under_the_rest_root(sb: Sandbox) -> None:
    async with httpx.AsyncClient() as c:
        assert (await c.get(f"{sb.root_url}/__sandbox__/ping")).json() == "pong"
        assert (await c.get(f"{sb.origin}/__sandbox__/ping")).json() == "pong"
        faults = await c.post(f"{sb.root_url}/__sandbox__/faults", json={"latency": "x"})
        assert faults.status_code == 400
        is_dhan_error(faults, "DH-905")


async def test_errors_are_dhans_bodies(sb: Sandbox) -> None:
    async with http(sb) as c:
        is_dhan_error(await c.get("/no/such/route"), "DH-905")
        unauthorised = await c.get("/orders", headers={"access-token": "wrong"})
        assert unauthorised.status_code == 401
        is_dhan_error(unauthorised, "DH-901")
        headers = {"access-token": sb.access_token}
        async with httpx.AsyncClient(base_url=sb.root_url, headers=headers) as bare:
            no_client = await bare.post("/marketfeed/ltp", json={"NSE_EQ": [1333]})
            assert no_client.status_code == 400  # market quotes need the client-id header
            is_dhan_error(no_client, "DH-905")
            assert (await bare.get("/fundlimit")).status_code == 200
        other_client = await c.get("/fundlimit", headers={"client-id": "42"})
        is_dhan_error(other_client, "DH-901")
        unknown = await c.post("/orders", json=order_body(sb, securityId="777777"))
        assert unknown.status_code == 400
        is_dhan_error(unknown, "DH-905")
        sb.faults.http_5xx_burst = 1
        unavailable = await c.get("/orders")
        assert unavailable.status_code == 503
        is_dhan_error(unavailable, "DH-908")


MALFORMED: list[Any] = [
    b"{",
    b"[]",
    b"null",
    b'"text"',
    b"1e999",
    json.dumps({"quantity": "many"}).encode(),
    json.dumps({"securityId": ["1333"], "exchangeSegment": {"x": 1}}).encode(),
    json.dumps({"fromDate": "2026-13-45", "toDate": 7}).encode(),
    json.dumps({"NSE_EQ": "1333"}).encode(),
    json.dumps({"UnderlyingScrip": "१३", "UnderlyingSeg": "IDX_I", "Expiry": "x"}).encode(),
    json.dumps({"scripList": [1, 2]}).encode(),
    json.dumps({"condition": [], "orders": {}}).encode(),
    json.dumps({"price": -1, "quantity": 1e300}).encode(),
    b'{"ip": "999.1.1.1", "ipFlag": "PRIMARY"}',
]
WRITES = [
    ("POST", "/orders"),
    ("POST", "/orders/slicing"),
    ("PUT", "/orders/1"),
    ("POST", "/super/orders"),
    ("PUT", "/super/orders/1"),
    ("POST", "/forever/orders"),
    ("PUT", "/forever/orders/1"),
    ("POST", "/alerts/orders"),
    ("PUT", "/alerts/orders/1"),
    ("POST", "/positions/convert"),
    ("POST", "/margincalculator"),
    ("POST", "/margincalculator/multi"),
    ("POST", "/pnlExit"),
    ("POST", "/ip/setIP"),
    ("PUT", "/ip/modifyIP"),
    ("POST", "/edis/form"),
    ("POST", "/marketfeed/ltp"),
    ("POST", "/marketfeed/quote"),
    ("POST", "/charts/historical"),
    ("POST", "/charts/intraday"),
    ("POST", "/optionchain"),
    ("POST", "/optionchain/expirylist"),
]


async def test_malformed_input_is_a_400_never_a_500(sb: Sandbox) -> None:
    async with http(sb, **{"content-type": "application/json"}) as c:
        for method, path in WRITES:
            for body in MALFORMED:
                response = await c.request(method, path, content=body)
                assert 400 <= response.status_code < 500, (method, path, body, response.text)
                assert response.json()["errorCode"] in ("DH-905", "DH-906", "DH-907")
        for path in (
            "/orders/%E0%A5%A7",
            "/trades/x/y/z",
            "/trades/2026-01-01/2026-01-02/-1",
            "/ledger?from-date=x",
            "/edis/inquire/%00",
            "/instrument/NSE",
            "/orders/external/" + "x" * 40,
        ):
            response = await c.get(path)
            assert 400 <= response.status_code < 500, (path, response.text)
    assert sb.state.stats.orders_booked == 0


def _kinds(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


#: reference file -> how the sandbox answers the same request (method, path, JSON body).
def _requests(sb: Sandbox, order_id: str, filled: str) -> dict[str, tuple[str, str, Any]]:
    return {
        "get-current-orders-list": ("GET", "/orders", None),
        "get-order-by-id": ("GET", f"/orders/{order_id}", None),
        "get-order-by-correlation-id": ("GET", "/orders/external/ref-1", None),
        "get_all_trades": ("GET", "/trades", None),
        "get_trade_book_by_orderid": ("GET", f"/trades/{filled}", None),
        "get_trade_history": ("GET", "/trades/2026-01-01/2030-01-01/0", None),
        "get_ledger_report": ("GET", "/ledger?from-date=2026-01-01&to-date=2026-12-01", None),
        "get_positions": ("GET", "/positions", None),
        "get-current-holdings": ("GET", "/holdings", None),
        "get_fund_limits": ("GET", "/fundlimit", None),
        "margin_calculator": (
            "POST",
            "/margincalculator",
            {
                "securityId": "1333",
                "exchangeSegment": "NSE_EQ",
                "transactionType": "BUY",
                "quantity": 1,
                "productType": "CNC",
                "price": 900.0,
            },
        ),
        "get-forever-orders-list": ("GET", "/forever/orders", None),
        "place_order": ("POST", "/orders", order_body(sb, correlationId="ref-2")),
        "place_slice_order": ("POST", "/orders/slicing", order_body(sb, correlationId="ref-3")),
        "modify_pending_order": (
            "PUT",
            f"/orders/{order_id}",
            {"orderId": order_id, "orderType": "LIMIT", "quantity": 2, "price": 500.0},
        ),
        "cancel_given_order": ("DELETE", f"/orders/{order_id}", None),
    }


async def test_bodies_conform_to_dhans_reference(sb: Sandbox) -> None:
    if not REFERENCE.is_dir():
        pytest.skip("Dhan's reference bodies are not present (../shared/dhan-reference)")
    async with http(sb) as c:
        placed = await c.post("/orders", json=order_body(sb, correlationId="ref-1"))
        order_id = placed.json()["orderId"]
        market = order_body(
            sb, orderType="MARKET", price=0, productType="INTRADAY", correlationId=""
        )
        filled = (await c.post("/orders", json=market)).json()["orderId"]
        forever = order_body(sb, orderFlag="SINGLE", triggerPrice=501.0)
        assert (await c.post("/forever/orders", json=forever)).status_code == 200
        checked = 0
        for name, (method, path, body) in _requests(sb, order_id, filled).items():
            reference = json.loads((REFERENCE / f"{name}.json").read_text())["data"]
            response = await c.request(method, path, json=body)
            assert response.status_code in (200, 202), (name, response.text)
            ours = response.json()
            if isinstance(reference, list):
                assert isinstance(ours, list), name
                assert ours, f"{name}: nothing to compare"
                reference, ours = reference[0], ours[0]
            elif isinstance(ours, list):  # the ledger: Dhan's docs show one entry
                reference, ours = reference, ours[0]
            missing = set(reference) - set(ours)
            assert not missing, f"{name}: the sandbox lacks {sorted(missing)}"
            for key, value in reference.items():
                if value in ("string", None) or ours[key] is None:
                    continue  # OpenAPI placeholders say nothing of the type
                assert _kinds(ours[key]) == _kinds(value), (name, key, ours[key], value)
            checked += 1
    assert checked == 16


# -- limits, static IP, rules ----------------------------------------------------------------


async def test_a_burst_above_dhans_limits_earns_429_dh_904() -> None:
    config = SandboxConfig(broker="dhan", market_interval=None)
    async with Sandbox(config) as sb, http(sb) as c:
        answers = [await c.post("/marketfeed/ltp", json={"NSE_EQ": [1333]}) for _ in range(3)]
        assert [a.status_code for a in answers].count(429) >= 1
        limited = next(a for a in answers if a.status_code == 429)
        is_dhan_error(limited, "DH-904")
        assert sb.state.stats.refused_429["quote"] >= 1
        assert sb.state.limiter.limits["order"] == (
            (10, 1.0),
            (250, 59.95),
            (1000, 3599.95),
            (7000, 86399.95),
        )
        assert [count for count, _ in sb.state.limiter.limits["data"]] == [5, 100_000]
        assert [count for count, _ in sb.state.limiter.limits["other"]] == [20]


async def test_static_ip_refusal_is_dh_911() -> None:
    config = SandboxConfig(broker="dhan", market_interval=None, order_ips=("203.0.113.5",))
    async with Sandbox(config) as sb, http(sb) as c:
        for method, path in (
            ("POST", "/orders"),
            ("PUT", "/orders/1"),
            ("DELETE", "/orders/1"),
            ("POST", "/super/orders"),
            ("POST", "/forever/orders"),
        ):
            refused = await c.request(method, path, json=order_body(sb))
            assert refused.status_code == 403
            is_dhan_error(refused, "DH-911")
        assert (await c.get("/orders")).status_code == 200


async def test_modification_cap_and_market_protection(sb: Sandbox) -> None:
    async with http(sb) as c:
        order_id = (await c.post("/orders", json=order_body(sb))).json()["orderId"]
        for step in range(25):
            changed = await c.put(
                f"/orders/{order_id}",
                json={"orderType": "LIMIT", "price": 500.0 + 0.05 * (step % 2), "quantity": 1},
            )
            assert changed.status_code == 200, changed.text
        capped = await c.put(f"/orders/{order_id}", json={"orderType": "LIMIT", "price": 500.0})
        assert capped.status_code == 400
        is_dhan_error(capped, "DH-906")
        # A MARKET order is booked as a LIMIT order at a protected price (since March 2026)
        market = order_body(sb, orderType="MARKET", price=0, correlationId="mkt")
        placed = (await c.post("/orders", json=market)).json()
        order = (await c.get(f"/orders/{placed['orderId']}")).json()
        assert order["orderType"] == "LIMIT"
        assert order["price"] > 0
    rules = SandboxConfig(broker="dhan", market_interval=None, rules="before-2026")
    async with Sandbox(rules) as old, http(old) as c:
        placed = (await c.post("/orders", json=order_body(old, orderType="MARKET", price=0))).json()
        assert (await c.get(f"/orders/{placed['orderId']}")).json()["orderType"] == "MARKET"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-11-02", "2026-11-03"),
        ("2026-11-02 09:15:00", "2026-11-03 15:29:00"),
        ("2026-11-02 09:15", "2026-11-03T15:29:00"),
    ],
)
async def test_candles_take_dates_or_datetimes(sb: Sandbox, start: str, end: str) -> None:
    body = {"securityId": "1333", "exchangeSegment": "NSE_EQ", "instrument": "EQUITY"}
    async with http(sb) as c:
        intraday = await c.post(
            "/charts/intraday", json={**body, "interval": "15", "fromDate": start, "toDate": end}
        )
        assert intraday.status_code == 200, intraday.text
        times = [datetime.datetime.fromtimestamp(t) for t in intraday.json()["timestamp"]]
        days = {t.date() for t in times}
        assert days == {datetime.date(2026, 11, 2), datetime.date(2026, 11, 3)}
        daily = await c.post("/charts/historical", json={**body, "fromDate": start, "toDate": end})
        assert daily.status_code == 200, daily.text
        columns = daily.json()
        assert set(columns) >= {"open", "high", "low", "close", "volume", "timestamp"}
        too_long = await c.post(
            "/charts/intraday",
            json={**body, "interval": "1", "fromDate": "2026-01-01", "toDate": "2026-06-01"},
        )
        assert too_long.status_code == 400
        is_dhan_error(too_long, "DH-907")


#: Field names and values Dhan's bodies use, mixed at random by the fuzz below.
_KEYS = [
    "dhanClientId",
    "transactionType",
    "exchangeSegment",
    "productType",
    "orderType",
    "validity",
    "securityId",
    "quantity",
    "disclosedQuantity",
    "price",
    "triggerPrice",
    "afterMarketOrder",
    "amoTime",
    "correlationId",
    "legName",
    "targetPrice",
    "stopLossPrice",
    "trailingJump",
    "orderFlag",
    "price1",
    "triggerPrice1",
    "quantity1",
    "positionType",
    "convertQty",
    "fromProductType",
    "toProductType",
    "condition",
    "orders",
    "scripList",
    "profitValue",
    "lossValue",
    "enableKillSwitch",
    "ip",
    "ipFlag",
    "isin",
    "qty",
    "exchange",
    "segment",
    "bulk",
    "instrument",
    "interval",
    "oi",
    "fromDate",
    "toDate",
    "expiryCode",
    "UnderlyingScrip",
    "UnderlyingSeg",
    "Expiry",
    "NSE_EQ",
    "IDX_I",
]
_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    1333,
    2**63,
    1e300,
    -0.5,
    0.05,
    "",
    "1333",
    "13",
    "NSE_EQ",
    "IDX_I",
    "NSE_FNO",
    "BUY",
    "SELL",
    "LIMIT",
    "MARKET",
    "STOP_LOSS",
    "CNC",
    "INTRADAY",
    "MARGIN",
    "DAY",
    "IOC",
    "SINGLE",
    "OCO",
    "ENTRY_LEG",
    "TARGET_LEG",
    "LONG",
    "EQUITY",
    "2026-11-02",
    "2026-11-02 09:15:00",
    "2026-13-40",
    "१२",
    "x" * 200,
    [],
    {},
    [1333],
    ["INTRADAY"],
    {"securityId": "13"},
    [{"securityId": "1333"}],
]


#: Rounds of random bodies over every write route (DHAN_FUZZ_ROUNDS=200 to dig).
ROUNDS = int(os.environ.get("DHAN_FUZZ_ROUNDS", "10"))


def _random_body(rng: random.Random, depth: int = 0) -> Any:
    if depth > 1 or rng.random() < 0.1:
        return rng.choice(_VALUES)
    return {
        rng.choice(_KEYS): (
            _random_body(rng, depth + 1) if rng.random() < 0.2 else rng.choice(_VALUES)
        )
        for _ in range(rng.randint(0, 12))
    }


async def test_random_bodies_never_earn_a_500(sb: Sandbox) -> None:
    rng = random.Random(18)
    async with http(sb) as c:
        for _ in range(ROUNDS):
            for method, path in [*WRITES, ("DELETE", "/super/orders/1/ENTRY_LEG")]:
                body = _random_body(rng)
                response = await c.request(method, path, json=body)
                assert response.status_code < 500, (method, path, body, response.text)
                if response.status_code >= 400:
                    assert response.json()["errorCode"].startswith("DH-9")
