"""Every reference body in ``../shared/kiteconnect-mocks`` with a matching endpoint: the
sandbox answers with the same keys and value types (skips when the folder is absent).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aio_trader.sandbox import Sandbox, SandboxConfig

#: Dicts whose keys are data (dates), not field names: only their value types are compared.
DYNAMIC_KEYS = {"step_up"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _merge(samples: list[Any]) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for sample in samples:
        for key, value in sample.items():
            merged.setdefault(key, []).append(value)
    return merged


def check_shape(ours: Any, refs: list[Any], where: str = "data") -> None:
    """``ours`` has the shape of one of ``refs`` (samples of the same field in the mock).

    A null in the reference says nothing about the type. For a list of records, keys found in
    every reference record are required and keys found in none are refused.
    """
    known = [ref for ref in refs if ref is not None]
    if not known:
        return
    if ours is None:
        assert len(known) < len(refs), f"{where}: null where Kite has {_kind(known[0])}"
        return
    kinds = {_kind(ref) for ref in known}
    assert _kind(ours) in kinds, f"{where}: {_kind(ours)} where Kite has {sorted(kinds)}"
    if isinstance(ours, dict):
        dicts = [ref for ref in known if isinstance(ref, dict)]
        if where.rsplit(".", 1)[-1] in DYNAMIC_KEYS:
            values = [value for ref in dicts for value in ref.values()]
            for key, value in ours.items():
                check_shape(value, values, f"{where}.{key}")
            return
        merged = _merge(dicts)
        required = set.intersection(*(set(ref) for ref in dicts))
        assert required <= set(ours), f"{where}: missing {sorted(required - set(ours))}"
        assert set(ours) <= set(merged), f"{where}: unknown {sorted(set(ours) - set(merged))}"
        for key, value in ours.items():
            check_shape(value, merged[key], f"{where}.{key}")
    elif isinstance(ours, list):
        items = [item for ref in known if isinstance(ref, list) for item in ref]
        for index, item in enumerate(ours):
            check_shape(item, items, f"{where}[{index}]")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def listing(folder: Path, pattern: str) -> set[str]:
    return {path.name for path in folder.glob(pattern)}


def mock_data(mocks: Path, name: str) -> Any:
    body = read_json(mocks / name)
    assert body.get("status", "success") == "success"  # mf_sips.json has no status
    return body["data"]


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    # opening cash for one NIFTY future slice, not two: the autoslice answer gets an error child
    config = SandboxConfig(
        seed=5, market_interval=None, rate_limit_scale=1000, opening_cash=8_000_000
    )
    async with Sandbox(config) as s:
        yield s


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"token {sb.api_key}:{sb.access_token}"}
    async with httpx.AsyncClient(base_url=sb.root_url, headers=headers) as c:
        yield c


async def ok(response: Any) -> Any:
    response = await response
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "success"
    return body["data"]


ORDER = {
    "exchange": "NSE",
    "tradingsymbol": "INFY",
    "transaction_type": "BUY",
    "quantity": "1",
    "product": "CNC",
    "order_type": "MARKET",
    "market_protection": "-1",
}


async def test_rest_bodies_match_the_reference_shapes(
    mocks: Path, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    answers: dict[str, Any] = {}
    post, put, get, delete = client.post, client.put, client.get, client.delete

    # session
    async with httpx.AsyncClient(base_url=sb.root_url) as anonymous:
        login = await anonymous.get("/connect/login", params={"api_key": sb.api_key})
        token = httpx.URL(login.headers["location"]).params["request_token"]
        checksum = hashlib.sha256((sb.api_key + token + sb.api_secret).encode()).hexdigest()
        form = {"api_key": sb.api_key, "request_token": token, "checksum": checksum}
        answers["generate_session.json"] = await ok(anonymous.post("/session/token", data=form))

    # user
    answers["profile.json"] = await ok(get("/user/profile"))
    answers["full_profile.json"] = await ok(get("/user/profile/full"))

    # orders: one complete, one open (modified), one cancelled
    filled = await ok(post("/orders/regular", data=ORDER))
    answers["order_response.json"] = filled
    low = round(sb.state.market.last_price(408065) * 0.5, 1)
    limit = {**ORDER, "order_type": "LIMIT", "price": str(low), "tag": "conf1"}
    open_id = (await ok(post("/orders/regular", data=limit)))["order_id"]
    answers["order_modify.json"] = await ok(
        put(f"/orders/regular/{open_id}", data={"price": str(low + 1)})
    )
    doomed = (await ok(post("/orders/regular", data=limit)))["order_id"]
    answers["order_cancel.json"] = await ok(delete(f"/orders/regular/{doomed}"))
    slice_form = {
        **ORDER,
        "exchange": "NFO",
        "tradingsymbol": "NIFTY26DECFUT",
        "product": "NRML",
        "quantity": str(75 * 30),
        "autoslice": "true",
    }
    answers["autoslice_response.json"] = await ok(post("/orders/regular", data=slice_form))
    answers["orders.json"] = await ok(get("/orders"))
    answers["order_info.json"] = await ok(get(f"/orders/{open_id}"))
    answers["order_trades.json"] = await ok(get(f"/orders/{filled['order_id']}/trades"))
    answers["trades.json"] = await ok(get("/trades"))

    # portfolio (MIS so the position can be converted)
    await ok(post("/orders/regular", data={**ORDER, "product": "MIS", "quantity": "2"}))
    answers["positions.json"] = await ok(get("/portfolio/positions"))
    convert = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "transaction_type": "BUY",
        "position_type": "day",
        "quantity": "1",
        "old_product": "MIS",
        "new_product": "NRML",
    }
    answers["convert_position.json"] = await ok(put("/portfolio/positions", data=convert))
    answers["holdings.json"] = await ok(get("/portfolio/holdings"))
    answers["holdings_compact.json"] = await ok(get("/portfolio/holdings/compact"))
    answers["holdings_summary.json"] = await ok(get("/portfolio/holdings/summary"))
    answers["holdings_auth.json"] = await ok(post("/portfolio/holdings/authorise"))
    answers["auctions_list.json"] = await ok(get("/portfolio/holdings/auctions"))
    answers["margins.json"] = await ok(get("/user/margins"))
    answers["margins_equity.json"] = await ok(get("/user/margins/equity"))
    answers["margin_commodity.json"] = await ok(get("/user/margins/commodity"))

    # market data
    answers["quote.json"] = await ok(get("/quote", params={"i": "NSE:INFY"}))
    answers["ohlc.json"] = await ok(get("/quote/ohlc", params={"i": "NSE:INFY"}))
    answers["ltp.json"] = await ok(get("/quote/ltp", params={"i": "NSE:INFY"}))
    answers["trigger_range.json"] = await ok(
        get("/instruments/trigger_range/buy", params={"i": ["NSE:INFY", "NSE:RELIANCE"]})
    )
    span = {"from": "2017-12-15 09:15:00", "to": "2017-12-15 09:20:00"}
    answers["historical_minute.json"] = await ok(
        get("/instruments/historical/408065/minute", params=span)
    )
    answers["historical_oi.json"] = await ok(
        get(
            "/instruments/historical/256265/minute",
            params={"from": "2019-12-04 09:15:00", "to": "2019-12-04 09:20:00", "oi": "1"},
        )
    )

    # GTT
    condition = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "trigger_values": [low],
        "last_price": low * 2,
    }
    gtt_orders = [
        {
            "transaction_type": "BUY",
            "quantity": 1,
            "order_type": "LIMIT",
            "product": "CNC",
            "price": low,
        }
    ]
    gtt_form = {
        "type": "single",
        "condition": json.dumps(condition),
        "orders": json.dumps(gtt_orders),
    }
    placed = await ok(post("/gtt/triggers", data=gtt_form))
    answers["gtt_place_order.json"] = placed
    trigger = placed["trigger_id"]
    answers["gtt_modify_order.json"] = await ok(put(f"/gtt/triggers/{trigger}", data=gtt_form))
    answers["gtt_get_order.json"] = await ok(get(f"/gtt/triggers/{trigger}"))
    answers["gtt_get_orders.json"] = await ok(get("/gtt/triggers"))
    answers["gtt_delete_order.json"] = await ok(delete(f"/gtt/triggers/{trigger}"))

    # margin and charges calculators
    calc = [
        {
            "exchange": "NFO",
            "tradingsymbol": "NIFTY26DEC24300CE",
            "transaction_type": "SELL",
            "variety": "regular",
            "product": "NRML",
            "order_type": "LIMIT",
            "quantity": 75,
            "price": 100,
        },
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
    ]
    answers["order_margins.json"] = await ok(post("/margins/orders", json=calc))
    answers["basket_margins.json"] = await ok(post("/margins/basket", json=calc))
    answers["virtual_contract_note.json"] = await ok(post("/charges/orders", json=calc))

    # mutual funds
    mf_form = {"tradingsymbol": "INF179K01VY8", "transaction_type": "BUY", "amount": "5000"}
    mf_order = await ok(post("/mf/orders", data=mf_form))
    answers["mf_order_response.json"] = mf_order
    answers["mf_orders.json"] = await ok(get("/mf/orders"))
    answers["mf_orders_info.json"] = await ok(get(f"/mf/orders/{mf_order['order_id']}"))
    answers["mf_order_cancel.json"] = await ok(delete(f"/mf/orders/{mf_order['order_id']}"))
    sip_form = {"tradingsymbol": "INF209KB1ZH2", "amount": "1000", "frequency": "weekly"}
    sip = await ok(post("/mf/sips", data=sip_form))
    answers["mf_sip_place.json"] = sip
    answers["mf_sips.json"] = await ok(get("/mf/sips"))
    answers["mf_sip_info.json"] = await ok(get(f"/mf/sips/{sip['sip_id']}"))
    answers["mf_sip_modify.json"] = await ok(put(f"/mf/sips/{sip['sip_id']}", data={"amount": "5"}))
    answers["mf_sip_cancel.json"] = await ok(delete(f"/mf/sips/{sip['sip_id']}"))
    answers["mf_holdings.json"] = await ok(get("/mf/holdings"))

    # alerts
    alert_form = {
        "name": "NIFTY 50",
        "type": "simple",
        "lhs_exchange": "INDICES",
        "lhs_tradingsymbol": "NIFTY 50",
        "lhs_attribute": "LastTradedPrice",
        "operator": ">=",
        "rhs_type": "constant",
        "rhs_constant": "1",
    }
    alert_form["lhs_exchange"] = "NSE"
    created = await ok(post("/alerts", data=alert_form))
    answers["alerts_create.json"] = created
    basket = {"items": [{"tradingsymbol": "INFY", "exchange": "NSE", "params": {}}]}
    ato = {**alert_form, "type": "ato", "basket": json.dumps(basket)}
    answers["alerts_create_ato.json"] = await ok(post("/alerts", data=ato))
    answers["alerts_get_one.json"] = await ok(get(f"/alerts/{created['uuid']}"))
    answers["alerts_modify.json"] = await ok(put(f"/alerts/{created['uuid']}", data=alert_form))
    sb.step_market()
    answers["alerts_history.json"] = await ok(get(f"/alerts/{created['uuid']}/history"))
    answers["alerts_get.json"] = await ok(get("/alerts"))
    answers["alerts_delete.json"] = await ok(delete("/alerts", params={"uuid": created["uuid"]}))

    answers["session_logout.json"] = await ok(
        delete("/session/token", params={"api_key": sb.api_key, "access_token": "other"})
    )

    checked = []
    for name, ours in answers.items():
        assert ours is not None or mock_data(mocks, name) is None, name
        check_shape(ours, [mock_data(mocks, name)], where=name)
        checked.append(name)
    json_mocks = {name for name in listing(mocks, "*.json") if not name.startswith("ticker_")}
    assert json_mocks - set(checked) == {"postback.json"}


async def test_postbacks_match_the_reference_shape(
    mocks: Path, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    reference = read_json(mocks / "postback.json")
    with sb.state.order_updates() as updates:
        response = await client.post("/orders/regular", data=ORDER)
        assert response.status_code == 200
        postbacks = [updates.receive_nowait(), updates.receive_nowait()]
    for postback in postbacks:
        check_shape(postback, [reference], where="postback")


async def test_csv_dumps_have_kites_columns(mocks: Path, client: httpx.AsyncClient) -> None:
    for path, name in (
        ("/instruments", "instruments_all.csv"),
        ("/instruments/NSE", "instruments_nse.csv"),
        ("/mf/instruments", "mf_instruments.csv"),
    ):
        response = await client.get(path)
        assert response.headers["content-type"].startswith("text/csv")
        reference = read_lines(mocks / name)
        lines = response.text.splitlines()
        assert lines[0] == reference[0], name
        assert len(lines) > 1


async def test_2026_order_rows_and_triggered_gtts_match_the_reference_shapes(
    mocks: Path, sb: Sandbox, client: httpx.AsyncClient
) -> None:
    """Rows the April-2026 rules shape (protected market orders, autoslice children), an
    iceberg with its meta, an auction order, a cover order, a triggered GTT."""
    low = round(sb.state.market.last_price(408065) * 0.5, 1)
    await ok(client.post("/orders/regular", data={**ORDER, "market_protection": "5"}))
    iceberg = {**ORDER, "order_type": "LIMIT", "price": str(low), "quantity": "10"}
    await ok(
        client.post(
            "/orders/iceberg", data={**iceberg, "iceberg_legs": "2", "iceberg_quantity": "5"}
        )
    )
    holding = (await ok(client.get("/portfolio/holdings/auctions")))[0]
    auction = {
        **iceberg,
        "quantity": "1",
        "transaction_type": "SELL",
        "exchange": holding["exchange"],
        "tradingsymbol": holding["tradingsymbol"],
        "auction_number": holding["auction_number"],
    }
    await ok(client.post("/orders/auction", data=auction))
    sliced = {**ORDER, "exchange": "NFO", "tradingsymbol": "NIFTY26DECFUT", "product": "NRML"}
    await ok(
        client.post("/orders/regular", data={**sliced, "quantity": "150", "autoslice": "true"})
    )
    cover = {**ORDER, "product": "MIS", "trigger_price": str(low)}
    await ok(client.post("/orders/co", data=cover))
    rows = await ok(client.get("/orders"))
    assert {row["variety"] for row in rows} >= {"regular", "iceberg", "auction", "co"}
    check_shape(rows, [mock_data(mocks, "orders.json")], where="orders.json")
    for row in rows:
        history = await ok(client.get(f"/orders/{row['order_id']}"))
        check_shape(history, [mock_data(mocks, "order_info.json")], where="order_info.json")
    check_shape(
        await ok(client.get("/portfolio/positions")),
        [mock_data(mocks, "positions.json")],
        where="positions.json",
    )

    last = sb.state.market.last_price(408065)
    condition = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "trigger_values": [round(last * 1.5, 1)],
        "last_price": round(last * 2, 1),
    }
    legs = [
        {"transaction_type": "BUY", "quantity": 1, "order_type": "LIMIT", "product": "CNC",
         "price": low}
    ]  # fmt: skip
    form = {"type": "single", "condition": json.dumps(condition), "orders": json.dumps(legs)}
    trigger = (await ok(client.post("/gtt/triggers", data=form)))["trigger_id"]
    sb.step_market()
    triggered = await ok(client.get(f"/gtt/triggers/{trigger}"))
    assert (triggered["status"], triggered["meta"]) == ("triggered", None)
    check_shape(triggered, [mock_data(mocks, "gtt_get_order.json")], where="gtt_get_order.json")
    check_shape(
        await ok(client.get("/gtt/triggers")),
        [mock_data(mocks, "gtt_get_orders.json")],
        where="gtt_get_orders.json",
    )
