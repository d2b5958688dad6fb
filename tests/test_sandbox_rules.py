"""The sandbox as Kite is since April 2026 (the exchanges' retail-algo rules), each rule
switchable in ``SandboxConfig``, and what Kite's other clients found (issue 11)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx_ws
import pytest

from aio_trader.kite.constants import EndpointGroup
from aio_trader.sandbox import OrderRules, Sandbox, SandboxConfig
from aio_trader.sandbox._kite import DIALECT
from aio_trader.sandbox.orders import MARKET_PROTECTION_REQUIRED
from aio_trader.sandbox.state import RateLimiter

INFY = 408065
NIFTY_FUT = {"exchange": "NFO", "tradingsymbol": "NIFTY26DECFUT", "product": "NRML"}
BUY = {
    "exchange": "NSE",
    "tradingsymbol": "INFY",
    "transaction_type": "BUY",
    "quantity": "1",
    "product": "CNC",
    "order_type": "MARKET",
}


def config(**changes: Any) -> SandboxConfig:
    return SandboxConfig(
        **{"seed": 11, "market_interval": None, "rate_limit_scale": 1000, **changes}
    )


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(config()) as s:
        yield s


def headers(sb: Sandbox) -> dict[str, str]:
    return {"X-Kite-Version": "3", "Authorization": f"token {sb.api_key}:{sb.access_token}"}


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sb.root_url, headers=headers(sb)) as c:
        yield c


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def refused(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["status"], body["error_type"]) == ("error", error_type)
    return str(body["message"])


async def order(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    rows = [o for o in ok(await client.get("/orders")) if o["order_id"] == order_id]
    assert len(rows) == 1
    return rows[0]


# -- market protection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"market_protection": "0"},
        {"market_protection": ""},
        {"order_type": "SL-M", "trigger_price": "1500"},
        {"order_type": "SL-M", "trigger_price": "1500", "market_protection": "0"},
    ],
)
async def test_market_orders_without_protection_are_refused_with_kites_message(
    sb: Sandbox, client: httpx.AsyncClient, changes: dict[str, str]
) -> None:
    message = refused(
        await client.post("/orders/regular", data={**BUY, **changes}), 400, "InputException"
    )
    assert message == MARKET_PROTECTION_REQUIRED
    assert message == (
        "Market orders without market protection are not allowed via API. "
        "Please set market protection or use a Limit order."
    )
    assert sb.state.book.orders == {}  # refused: nothing booked, no state change
    assert sb.state.stats.orders_booked == 0


@pytest.mark.parametrize("value", ["abc", "True", "nan", "inf", "²", "1e999"])
async def test_a_non_numeric_protection_is_an_input_error(
    sb: Sandbox, client: httpx.AsyncClient, value: str
) -> None:
    response = await client.post("/orders/regular", data={**BUY, "market_protection": value})
    message = refused(response, 400, "InputException")
    assert "failed to decode market_protection" in message
    assert "expected decimal" in message
    assert sb.state.book.orders == {}


@pytest.mark.parametrize("value", ["-2", "-0.5", "100.01", "101"])
async def test_protection_outside_minus_one_or_0_to_100_is_refused(
    client: httpx.AsyncClient, value: str
) -> None:
    response = await client.post("/orders/regular", data={**BUY, "market_protection": value})
    assert "market_protection" in refused(response, 400, "InputException")


async def test_a_protected_market_order_rests_as_a_limit_at_the_protected_price(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    last = sb.state.market.last_price(INFY)
    instrument = sb.state.market.instruments[INFY]
    buy = ok(await client.post("/orders/regular", data={**BUY, "market_protection": "3"}))
    row = await order(client, buy["order_id"])
    assert row["order_type"] == "LIMIT"
    assert row["price"] == instrument.round_price(last * 1.03)
    assert row["tags"] == ["mktp", "mktp:3.00"]
    assert row["market_protection"] == 0  # as Kite's order book shows it
    assert (row["status"], row["average_price"]) == ("COMPLETE", last)
    # a sell (of a holding) is protected below the market; -1 is Kite's automatic protection
    sell = {**BUY, "transaction_type": "SELL", "market_protection": "-1"}
    row = await order(client, ok(await client.post("/orders/regular", data=sell))["order_id"])
    assert (row["order_type"], row["price"]) == ("LIMIT", instrument.round_price(last * 0.98))
    assert row["tags"] == ["mktp", "mktp:2.00"]
    history = ok(await client.get(f"/orders/{buy['order_id']}"))
    assert {entry["order_type"] for entry in history} == {"LIMIT"}


async def test_the_protected_price_stays_inside_the_price_band(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    lower, upper = sb.state.market.circuit_limits(INFY)
    form = {**BUY, "market_protection": "100"}
    row = await order(client, ok(await client.post("/orders/regular", data=form))["order_id"])
    assert row["price"] == sb.state.market.instruments[INFY].round_price(upper)
    sell = {**form, "transaction_type": "SELL"}
    row = await order(client, ok(await client.post("/orders/regular", data=sell))["order_id"])
    assert row["price"] == sb.state.market.instruments[INFY].round_price(lower)


async def test_a_protected_sl_m_order_waits_as_an_sl_at_the_protected_price(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    last = sb.state.market.last_price(INFY)
    trigger = sb.state.market.instruments[INFY].round_price(last * 1.05)
    form = {
        **BUY,
        "order_type": "SL-M",
        "trigger_price": str(trigger),
        "market_protection": "1",
        "product": "MIS",
    }
    row = await order(client, ok(await client.post("/orders/regular", data=form))["order_id"])
    assert (row["order_type"], row["status"]) == ("SL", "TRIGGER PENDING")
    assert row["price"] == sb.state.market.instruments[INFY].round_price(trigger * 1.01)


async def test_modifying_into_a_market_order_needs_protection_too(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    low = sb.state.market.instruments[INFY].round_price(sb.state.market.last_price(INFY) * 0.5)
    form = {**BUY, "order_type": "LIMIT", "price": str(low)}
    order_id = ok(await client.post("/orders/regular", data=form))["order_id"]
    response = await client.put(f"/orders/regular/{order_id}", data={"order_type": "MARKET"})
    assert refused(response, 400, "InputException") == MARKET_PROTECTION_REQUIRED
    assert (await order(client, order_id))["modified"] is False
    changes = {"order_type": "MARKET", "market_protection": "-1"}
    ok(await client.put(f"/orders/regular/{order_id}", data=changes))
    row = await order(client, order_id)
    assert (row["order_type"], row["status"], row["tags"]) == (
        "LIMIT",
        "COMPLETE",
        ["mktp", "mktp:2.00"],
    )


async def test_every_rule_switches_off() -> None:
    async with (
        Sandbox(config(rules=OrderRules.before_2026())) as sb,
        httpx.AsyncClient(base_url=sb.root_url, headers=headers(sb)) as client,
    ):
        row = await order(client, ok(await client.post("/orders/regular", data=BUY))["order_id"])
        assert (row["order_type"], row["status"], row.get("tags")) == ("MARKET", "COMPLETE", None)
        gold = {**BUY, "exchange": "MCX", "tradingsymbol": "GOLD26DECFUT", "product": "NRML"}
        gold |= {"quantity": "100", "validity": "IOC"}
        ok(await client.post("/orders/regular", data=gold))
        sliced = {**BUY, **NIFTY_FUT, "quantity": str(75 * 24 * 11), "autoslice": "true"}
        sliced["order_type"] = "LIMIT"
        sliced["price"] = "1"
        assert len(ok(await client.post("/orders/regular", data=sliced))["children"]) == 11
    assert sb.state.limiter.limits[EndpointGroup.ORDER][0][1] < 1.0


# -- order rate ----------------------------------------------------------------------------------


def test_order_rate_is_strictly_10_in_any_second() -> None:
    strict = RateLimiter(DIALECT.rate_limits, 1.0, strict_orders=True)
    loose = RateLimiter(DIALECT.rate_limits, 1.0, strict_orders=False)
    for limiter in (strict, loose):
        assert all(limiter.allow(EndpointGroup.ORDER, 100 + i * 0.09) for i in range(10))
    assert not strict.allow(EndpointGroup.ORDER, 100.99)  # 11 inside one second: refused
    assert loose.allow(EndpointGroup.ORDER, 100.99)  # the old 0.05 s tolerance let it in
    assert strict.allow(EndpointGroup.ORDER, 101.0)  # a full second after the first


def test_orders_per_minute_is_configurable() -> None:
    limiter = RateLimiter(DIALECT.rate_limits, 1.0, orders_per_minute=400, strict_orders=True)
    windows = limiter.limits[EndpointGroup.ORDER]
    assert [count for count, _ in windows] == [10, 400, 5000]
    default = RateLimiter(DIALECT.rate_limits, 1.0).limits[EndpointGroup.ORDER]
    assert [count for count, _ in default] == [10, 200, 5000]


async def test_orders_past_the_per_minute_limit_get_429() -> None:
    async with (
        Sandbox(config(rate_limit_scale=1.0, orders_per_minute=3)) as sb,
        httpx.AsyncClient(base_url=sb.root_url, headers=headers(sb)) as client,
    ):
        low = sb.state.market.instruments[INFY].round_price(sb.state.market.last_price(INFY) / 2)
        form = {**BUY, "order_type": "LIMIT", "price": str(low)}
        # 4 orders fit the 10/s window: the minute window (3) refuses the 4th
        statuses = [(await client.post("/orders/regular", data=form)).status_code for _ in "abc"]
        response = await client.post("/orders/regular", data=form)
        assert statuses == [200, 200, 200]
        refused(response, 429, "NetworkException")
        assert sb.state.stats.refused_429[EndpointGroup.ORDER] == 1
        assert len(sb.state.book.orders) == 3
        ok(await client.get("/orders"))  # other groups are not affected


# -- static IP whitelist for order requests ------------------------------------------------------


async def test_order_requests_from_an_unregistered_address_get_403() -> None:
    async with Sandbox(config(order_ips=("127.0.0.2",))) as sb:
        registered = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with (
            httpx.AsyncClient(base_url=sb.root_url, headers=headers(sb)) as other,
            httpx.AsyncClient(
                base_url=sb.root_url, headers=headers(sb), transport=registered
            ) as static,
        ):
            low = sb.state.market.instruments[INFY].round_price(
                sb.state.market.last_price(INFY) / 2
            )
            form = {**BUY, "order_type": "LIMIT", "price": str(low)}
            message = refused(
                await other.post("/orders/regular", data=form), 403, "PermissionException"
            )
            assert "static IP" in message
            assert sb.state.book.orders == {}
            order_id = ok(await static.post("/orders/regular", data=form))["order_id"]
            for call in (
                other.put(f"/orders/regular/{order_id}", data={"price": str(low + 1)}),
                other.delete(f"/orders/regular/{order_id}"),
                other.delete(f"/orders/co/{order_id}"),  # exit
            ):
                refused(await call, 403, "PermissionException")
            assert sb.state.book.orders[order_id].status == "OPEN"
            # every other endpoint stays open from any address, the ticker too
            assert len(ok(await other.get("/orders"))) == 1
            ok(await other.get("/quote/ltp", params={"i": "NSE:INFY"}))
            url = f"{sb.ticker_url}?api_key={sb.api_key}&access_token={sb.access_token}"
            async with httpx_ws.aconnect_ws(url, other) as ws:
                await ws.send_text(json.dumps({"a": "subscribe", "v": [INFY]}))
                assert isinstance(await ws.receive_bytes(), bytes)
            ok(await static.put(f"/orders/regular/{order_id}", data={"price": str(low + 1)}))
            ok(await static.delete(f"/orders/regular/{order_id}"))


def test_order_ips_are_checked_addresses() -> None:
    assert SandboxConfig().order_ips == ()
    assert SandboxConfig(order_ips="127.0.0.2").order_ips == ("127.0.0.2",)
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        SandboxConfig(order_ips=("localhost",))


# -- MCX IOC, autoslice slices, modifications, tags, algo_id --------------------------------------


async def test_mcx_orders_with_ioc_validity_are_refused(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    gold = {
        **BUY,
        "exchange": "MCX",
        "tradingsymbol": "GOLD26DECFUT",
        "product": "NRML",
        "quantity": "100",
        "order_type": "LIMIT",
        "price": "1",
    }
    assert "IOC" in refused(
        await client.post("/orders/regular", data={**gold, "validity": "IOC"}),
        400,
        "InputException",
    )
    order_id = ok(await client.post("/orders/regular", data=gold))["order_id"]
    response = await client.put(f"/orders/regular/{order_id}", data={"validity": "IOC"})
    assert "IOC" in refused(response, 400, "InputException")
    nse_ioc = {**BUY, "order_type": "LIMIT", "price": "1", "validity": "IOC"}
    assert ok(await client.post("/orders/regular", data=nse_ioc))  # IOC elsewhere is fine


async def test_autoslice_never_makes_more_than_10_slices(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    form = {**BUY, **NIFTY_FUT, "order_type": "LIMIT", "price": "1", "autoslice": "true"}
    freeze = 75 * 24
    message = refused(
        await client.post("/orders/regular", data={**form, "quantity": str(freeze * 10 + 75)}),
        400,
        "InputException",
    )
    assert "10 slices" in message
    assert sb.state.book.orders == {}
    answer = ok(await client.post("/orders/regular", data={**form, "quantity": str(freeze * 10)}))
    assert len(answer["children"]) == 10
    rows = ok(await client.get("/orders"))
    (group,) = {row["tags"][1] for row in rows}
    assert all(row["tags"] == ["autoslice", group] for row in rows)
    assert group.startswith("autoslice:")


async def test_failed_autoslice_children_carry_their_error() -> None:
    # cash for one NIFTY future slice of 1800, not for the second one
    async with (
        Sandbox(config(opening_cash=8_000_000)) as sb,
        httpx.AsyncClient(base_url=sb.root_url, headers=headers(sb)) as client,
    ):
        form = {**BUY, **NIFTY_FUT, "quantity": str(75 * 30), "autoslice": "true"}
        form["market_protection"] = "-1"
        answer = ok(await client.post("/orders/regular", data=form))
        first, second = answer["children"]
        assert answer["order_id"] == first["order_id"]
        assert second["error"]["code"] == 400
        assert second["error"]["error_type"] == "MarginException"
        assert second["error"]["message"].startswith("Insufficient funds.")
        assert second["error"]["data"] is None
        assert list(sb.state.book.orders) == [first["order_id"]]


async def test_an_order_is_modified_at_most_25_times(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    form = {**BUY, "order_type": "LIMIT", "price": "100"}
    order_id = ok(await client.post("/orders/regular", data=form))["order_id"]
    for step in range(25):
        ok(await client.put(f"/orders/regular/{order_id}", data={"price": str(101 + step)}))
    response = await client.put(f"/orders/regular/{order_id}", data={"price": "200"})
    assert refused(response, 400, "InputException") == (
        "Maximum allowed order modifications exceeded."
    )
    assert (await order(client, order_id))["price"] == 125
    ok(await client.delete(f"/orders/regular/{order_id}"))  # cancelling still works


async def test_a_tag_over_20_characters_is_refused_not_truncated(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    form = {**BUY, "market_protection": "-1"}
    response = await client.post("/orders/regular", data={**form, "tag": "a" * 21})
    assert "tag" in refused(response, 400, "InputException")
    assert sb.state.book.orders == {}
    order_id = ok(await client.post("/orders/regular", data={**form, "tag": "b" * 20}))["order_id"]
    assert (await order(client, order_id))["tag"] == "b" * 20


async def test_algo_id_is_accepted(sb: Sandbox, client: httpx.AsyncClient) -> None:
    form = {**BUY, "market_protection": "-1", "algo_id": "ALGO123"}
    order_id = ok(await client.post("/orders/regular", data=form))["order_id"]
    assert sb.state.book.orders[order_id].algo_id == "ALGO123"
    # Kite's reference bodies show algo_id nowhere: the sandbox echoes it nowhere either
    assert "algo_id" not in await order(client, order_id)


# -- what Kite's other clients found -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/instruments", "/instruments/NSE", "/mf/instruments"])
async def test_instrument_dumps_are_exactly_text_csv(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv"
    assert response.text.startswith(("instrument_token,", "tradingsymbol,"))


async def test_cover_orders_report_product_co(sb: Sandbox, client: httpx.AsyncClient) -> None:
    last = sb.state.market.last_price(INFY)
    form = {
        **BUY,
        "product": "MIS",
        "market_protection": "-1",
        "trigger_price": str(sb.state.market.instruments[INFY].round_price(last * 0.9)),
    }
    parent = ok(await client.post("/orders/co", data=form))["order_id"]
    rows = ok(await client.get("/orders"))
    assert len(rows) == 2
    assert {row["product"] for row in rows} == {"CO"}
    assert {entry["product"] for entry in ok(await client.get(f"/orders/{parent}"))} == {"CO"}
    (position,) = ok(await client.get("/portfolio/positions"))["net"]
    assert (position["product"], position["quantity"]) == ("CO", 1)
    (trade,) = ok(await client.get("/trades"))
    assert trade["product"] == "CO"


async def test_order_bodies_carry_kites_fields(sb: Sandbox, client: httpx.AsyncClient) -> None:
    form = {**BUY, "order_type": "LIMIT", "price": "100", "quantity": "10"}
    iceberg = {**form, "iceberg_legs": "5", "iceberg_quantity": "2"}
    order_id = ok(await client.post("/orders/iceberg", data=iceberg))["order_id"]
    row = await order(client, order_id)
    assert row["account_id"] == sb.user_id
    assert isinstance(row["terminal_id"], str)
    assert row["meta"] == {
        "iceberg": {
            "leg": 1,
            "legs": 5,
            "leg_quantity": 2,
            "total_quantity": 10,
            "remaining_quantity": 8,
        }
    }
    assert "auction_number" not in row  # Kite sends it on auction orders only
    holding = ok(await client.get("/portfolio/holdings/auctions"))[0]
    auction = {
        **form,
        "transaction_type": "SELL",
        "quantity": "1",
        "tradingsymbol": holding["tradingsymbol"],
        "exchange": holding["exchange"],
        "auction_number": holding["auction_number"],
    }
    auction_id = ok(await client.post("/orders/auction", data=auction))["order_id"]
    assert (await order(client, auction_id))["auction_number"] == holding["auction_number"]


async def test_gtt_meta_is_null_once_triggered(sb: Sandbox, client: httpx.AsyncClient) -> None:
    last = sb.state.market.last_price(INFY)
    condition = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "trigger_values": [round(last * 1.5, 1)],
        "last_price": round(last * 2, 1),
    }
    orders = [
        {
            "transaction_type": "BUY",
            "quantity": 1,
            "order_type": "LIMIT",
            "product": "CNC",
            "price": round(last * 0.5, 1),
        }
    ]
    form = {"type": "single", "condition": json.dumps(condition), "orders": json.dumps(orders)}
    trigger_id = ok(await client.post("/gtt/triggers", data=form))["trigger_id"]
    assert ok(await client.get(f"/gtt/triggers/{trigger_id}"))["meta"] == {}
    sb.step_market()
    trigger = ok(await client.get(f"/gtt/triggers/{trigger_id}"))
    assert (trigger["status"], trigger["meta"]) == ("triggered", None)


async def test_historical_accepts_iso_dates(client: httpx.AsyncClient) -> None:
    path = f"/instruments/historical/{INFY}/minute"
    spaced = ok(
        await client.get(path, params={"from": "2026-12-01 09:15:00", "to": "2026-12-01 09:20:00"})
    )
    iso = ok(
        await client.get(path, params={"from": "2026-12-01T09:15:00", "to": "2026-12-01T09:20:00"})
    )
    offset = {"from": "2026-12-01T03:45:00+00:00", "to": "2026-12-01T09:20:00+05:30"}
    assert spaced == iso == ok(await client.get(path, params=offset))
    assert len(iso["candles"]) == 6
    bad = await client.get(path, params={"from": "2026-12-01T09:15:00x", "to": "2026-12-01"})
    refused(bad, 400, "InputException")


def test_the_sandbox_command_takes_order_ips_and_checks_them() -> None:
    from click.testing import CliRunner

    from aio_trader.cli import main

    assert "--order-ips" in CliRunner().invoke(main, ["sandbox", "--help"]).output
    result = CliRunner().invoke(main, ["sandbox", "--port", "0", "--order-ips", "not-an-ip"])
    assert result.exit_code == 2
    assert "not-an-ip" in result.output
