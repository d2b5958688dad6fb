"""DhanHQ v2 REST endpoints of the sandbox (under ``/v2``), each a few lines over the core's
pipeline and order engine, plus Dhan's auth host (``/app/...``, ``/login/...``) and the
scrip masters (``/api-data/...``) at the server's root.

Every endpoint is a core ``_pipeline.Endpoint``: injected latency, 5xx bursts, auth (401
DH-901), static IP (403 DH-911), rate limit (429 DH-904), then the handler. Bodies are
Dhan's JSON (``_wire``); malformed input is a 400 (DH-905), never a 500.
"""

from __future__ import annotations

import datetime
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from aio_trader._time import IST
from aio_trader.dhan.constants import (
    MAX_MODIFICATIONS,
    QUOTE_MAX_INSTRUMENTS,
    DhanEndpointGroup,
    ExchangeSegment,
)
from aio_trader.sandbox._api import ApiError, optional_float, optional_int, stamp
from aio_trader.sandbox._dhan._instruments import (
    by_security,
    compact_csv,
    detailed_csv,
    dhan_segment,
    security_id,
)
from aio_trader.sandbox._dhan._state import check_access_token, dhan_state
from aio_trader.sandbox._dhan._wire import (
    ORDER_TYPES,
    PRODUCTS,
    dhan_order,
    dhan_order_type,
    dhan_product,
    dhan_status,
)
from aio_trader.sandbox._pipeline import Call, Endpoint, Handler
from aio_trader.sandbox.market import CandleError, SandboxInstrument
from aio_trader.sandbox.orders import Order, order_margin, segment_of
from aio_trader.sandbox.state import SandboxState

__all__ = ["auth_error", "rest_routes", "routes"]

ORDER: Final = DhanEndpointGroup.ORDER.value
DATA: Final = DhanEndpointGroup.DATA.value
QUOTE: Final = DhanEndpointGroup.QUOTE.value
OTHER: Final = DhanEndpointGroup.OTHER.value

_ISIN = re.compile(r"[A-Z]{2}[A-Z0-9]{9}[0-9]")
_CORRELATION = re.compile(r"[A-Za-z0-9_\- ]{1,30}")
_SEGMENTS: Final = frozenset(member.value for member in ExchangeSegment)
_INTERVALS: Final = {"1": "minute", "5": "5minute", "15": "15minute", "25": "25", "60": "60minute"}
_MODIFICATIONS_EXCEEDED: Final = (
    f"Maximum modifications reached: an order can be modified at most {MAX_MODIFICATIONS} times."
)


def auth_error(request: Request, state: SandboxState) -> ApiError | None:
    """None for a live ``access-token`` header (and, when sent, this account's
    ``client-id``), else Dhan's 401 DH-901."""
    token = request.headers.get("access-token", "")
    if not check_access_token(state, token):
        return ApiError(
            401, "session", "Client ID or user generated access token is invalid or expired."
        )
    client = request.headers.get("client-id")
    if client is not None and client != state.config.client_id:
        return ApiError(
            401, "session", "Client ID or user generated access token is invalid or expired."
        )
    return None


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison of two strings (any characters: never a TypeError)."""
    return hmac.compare_digest(
        given.encode("utf-8", "replace"), expected.encode("utf-8", "replace")
    )


# -- parameters -------------------------------------------------------------------------------


def _body(call: Call) -> Mapping[str, Any]:
    """The JSON object body, else 400."""
    if not isinstance(call.body, dict):
        raise ApiError.input("Send a JSON object body.")
    return call.body


def _text(body: Mapping[str, Any], name: str, choices: Any = None, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ApiError.input(f"Missing required field: {name}.")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ApiError.input(f"Invalid {name}.")
    text = str(value)
    if choices is not None and text not in choices:
        raise ApiError.input(f"Invalid {name}: {text[:40]!r}.")
    return text


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value in (None, 0, 1):
        return bool(value)
    raise ApiError.input(f"Invalid {name}: true or false.")


def _find(state: SandboxState, segment: str, sid: str) -> SandboxInstrument:
    instrument = by_security(state.market, segment, sid)
    if instrument is None:
        raise ApiError.input(f"Invalid securityId {sid[:20]} for {segment}.")
    return instrument


def _instrument_of(call: Call, body: Mapping[str, Any]) -> SandboxInstrument:
    segment = _text(body, "exchangeSegment", _SEGMENTS)
    return _find(call.state, segment, _text(body, "securityId"))


def _correlation(body: Mapping[str, Any]) -> str:
    value = body.get("correlationId")
    if value in (None, ""):
        return ""
    text = str(value)
    if not isinstance(value, str) or not _CORRELATION.fullmatch(text):
        raise ApiError.input("Invalid correlationId: up to 30 letters, digits, '-', '_' or spaces.")
    return text


def _engine_params(
    call: Call, body: Mapping[str, Any], instrument: SandboxInstrument
) -> dict[str, Any]:
    """Dhan's order body in the engine's words (Kite's vocabulary)."""
    order_type = _text(body, "orderType", ORDER_TYPES)
    engine_type = ORDER_TYPES[order_type]
    params: dict[str, Any] = {
        "exchange": instrument.exchange,
        "tradingsymbol": instrument.tradingsymbol,
        "transaction_type": _text(body, "transactionType", ("BUY", "SELL")),
        "order_type": engine_type,
        "product": PRODUCTS[_text(body, "productType", PRODUCTS)],
        "validity": _text(body, "validity", ("DAY", "IOC"), required=False) or "DAY",
        "quantity": body.get("quantity"),
        "price": body.get("price"),
        "trigger_price": body.get("triggerPrice"),
        "disclosed_quantity": body.get("disclosedQuantity"),
    }
    for name in ("quantity", "price", "trigger_price", "disclosed_quantity"):
        if isinstance(params[name], bool | dict | list):
            raise ApiError.input(f"Invalid {name}.")
    if engine_type in ("MARKET", "SL-M") and call.state.config.rules.market_protection:
        # Since March 2026 Dhan turns API market orders into LIMIT orders with market price
        # protection; the engine books them so (automatic protection).
        params["market_protection"] = -1
    return params


def _check_kill_switch(state: SandboxState) -> None:
    if dhan_state(state).kill_switch:
        raise ApiError(400, "order", "Kill switch is active: no orders until it is deactivated.")


def _answer(order: Order) -> dict[str, Any]:
    return {"orderId": order.order_id, "orderStatus": dhan_status(order)}


# -- orders -----------------------------------------------------------------------------------


def _place(call: Call, body: Mapping[str, Any], *, quantity: int | None = None) -> Order:
    _check_kill_switch(call.state)
    instrument = _instrument_of(call, body)
    params = _engine_params(call, body, instrument)
    if quantity is not None:
        params["quantity"] = quantity
    correlation = _correlation(body)
    variety = "amo" if _flag(body, "afterMarketOrder") else "regular"
    meta = {"dhan": {"correlationId": correlation}}
    order = call.state.book.place(variety, params, meta=meta)
    call.state.stats.orders_booked += 1
    if correlation:
        dhan_state(call.state).correlations.setdefault(correlation, []).append(order.order_id)
    return order


async def place_order(call: Call) -> Any:
    return _answer(_place(call, _body(call)))


#: Most quantity of one slice (the exchange's freeze quantity): lots for derivatives.
_FREEZE_LOTS: Final = 24
_FREEZE_EQUITY: Final = 100_000


async def place_slice_order(call: Call) -> Any:
    body = _body(call)
    instrument = _instrument_of(call, body)
    total = optional_int(body, "quantity")
    if total <= 0:
        raise ApiError.input("Invalid quantity.")
    freeze = instrument.lot_size * _FREEZE_LOTS if instrument.is_derivative else _FREEZE_EQUITY
    answers = []
    left = total
    while left > 0:
        part = min(left, freeze)
        answers.append(_answer(_place(call, body, quantity=part)))
        left -= part
    return answers


def _order(call: Call) -> Order:
    order_id = call.path["order_id"]
    order = call.state.book.orders.get(order_id)
    if order is None:
        raise ApiError(400, "order", f"Order {order_id[:24]} not found.")
    return order


async def modify_order(call: Call) -> Any:
    body = _body(call)
    order = _order(call)
    limit = call.state.config.rules.max_modifications
    if limit is not None and order.modifications >= limit:
        raise ApiError(400, "order", _MODIFICATIONS_EXCEEDED)
    changes: dict[str, Any] = {}
    if body.get("orderType") not in (None, ""):
        changes["order_type"] = ORDER_TYPES[_text(body, "orderType", ORDER_TYPES)]
        if (
            changes["order_type"] in ("MARKET", "SL-M")
            and call.state.config.rules.market_protection
        ):
            changes["market_protection"] = -1
    for dhan_name, name in (
        ("quantity", "quantity"),
        ("price", "price"),
        ("triggerPrice", "trigger_price"),
        ("disclosedQuantity", "disclosed_quantity"),
        ("validity", "validity"),
    ):
        value = body.get(dhan_name)
        if isinstance(value, bool | dict | list):
            raise ApiError.input(f"Invalid {dhan_name}.")
        if value not in (None, "") and not (dhan_name == "disclosedQuantity" and value == 0):
            changes[name] = value
    if changes.get("order_type") == "LIMIT" and "price" not in changes:
        changes["price"] = order.price
    call.state.book.modify(order.variety, order.order_id, changes)
    return _answer(order)


async def cancel_order(call: Call) -> Any:
    order = _order(call)
    call.state.book.cancel(order.variety, order.order_id)
    return {"orderId": order.order_id, "orderStatus": dhan_status(order)}


async def orders(call: Call) -> Any:
    return [dhan_order(call.state, order) for order in call.state.book.orders.values()]


async def order_by_id(call: Call) -> Any:
    return dhan_order(call.state, _order(call))


async def order_by_correlation(call: Call) -> Any:
    correlation = call.path["correlation_id"]
    ids = dhan_state(call.state).correlations.get(correlation)
    if not ids:
        raise ApiError(400, "order", f"No order with correlationId {correlation[:30]}.")
    return dhan_order(call.state, call.state.book.orders[ids[-1]])


# -- trades and statements ---------------------------------------------------------------------


def _trade(
    state: SandboxState, trade: Mapping[str, Any], *, history: bool = False
) -> dict[str, Any]:
    order = state.book.orders[trade["order_id"]]
    i = order.instrument
    row: dict[str, Any] = {
        "dhanClientId": state.config.client_id,
        "orderId": order.order_id,
        "exchangeOrderId": order.exchange_order_id or "",
        "exchangeTradeId": trade["trade_id"],
        "transactionType": order.transaction_type,
        "exchangeSegment": dhan_segment(i),
        "productType": dhan_product(order.product),
        "orderType": dhan_order_type(order.order_type),
        "tradingSymbol": i.tradingsymbol,
        "customSymbol": i.tradingsymbol,
        "securityId": security_id(i),
        "tradedQuantity": trade["quantity"],
        "tradedPrice": trade["average_price"],
        "createTime": trade["fill_timestamp"],
        "updateTime": trade["fill_timestamp"],
        "exchangeTime": trade["exchange_timestamp"],
        "drvExpiryDate": i.expiry.isoformat() if i.expiry else "NA",
        "drvOptionType": {"CE": "CALL", "PE": "PUT"}.get(i.instrument_type, "NA"),
        "drvStrikePrice": i.strike,
    }
    if history:
        del row["tradingSymbol"]
        row.update(
            isin="",
            instrument=i.instrument_type,
            sebiTax=0.0,
            stt=0.0,
            brokerageCharges=0.0,
            serviceTax=0.0,
            exchangeTransactionCharges=0.0,
            stampDuty=0.0,
        )
    return row


async def trades(call: Call) -> Any:
    return [_trade(call.state, trade) for trade in call.state.book.trades]


async def order_trades(call: Call) -> Any:
    order_id = _order(call).order_id
    return [
        _trade(call.state, trade)
        for trade in call.state.book.trades
        if trade["order_id"] == order_id
    ]


def _date(text: str, name: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text[:10]) if text.isascii() else _bad_date(name)
    except ValueError:
        return _bad_date(name)


def _bad_date(name: str) -> datetime.date:
    raise ApiError.input(f"Invalid {name}: use YYYY-MM-DD.")


_PAGE: Final = 20


async def trade_history(call: Call) -> Any:
    start = _date(call.path["from_date"], "from-date")
    end = _date(call.path["to_date"], "to-date")
    page = optional_int(call.path, "page")
    rows = [
        _trade(call.state, trade, history=True)
        for trade in call.state.book.trades
        if start <= datetime.date.fromisoformat(trade["fill_timestamp"][:10]) <= end
    ]
    return rows[page * _PAGE : (page + 1) * _PAGE]


async def ledger(call: Call) -> Any:
    start = _date(str(call.query.get("from-date", "")), "from-date")
    end = _date(str(call.query.get("to-date", "")), "to-date")
    if end < start:
        raise ApiError.input("Invalid dates: from-date is after to-date.")
    cash = call.state.config.opening_cash
    return [
        {
            "dhanClientId": call.state.config.client_id,
            "narration": "Opening balance (sandbox)",
            "voucherdate": start.strftime("%b %d, %Y"),
            "exchange": "NSE-CAPITAL",
            "voucherdesc": "Funds",
            "vouchernumber": "SB0001",
            "debit": "0.00",
            "credit": f"{cash:.2f}",
            "runbal": f"{cash:.2f}",
        }
    ]


# -- portfolio ---------------------------------------------------------------------------------


async def positions(call: Call) -> Any:
    state = call.state
    rows = []
    for position in state.book.positions.values():
        data = position.to_dict(state.market)
        i = position.instrument
        net = data["quantity"]
        rows.append(
            {
                "dhanClientId": state.config.client_id,
                "tradingSymbol": i.tradingsymbol,
                "securityId": security_id(i),
                "positionType": "LONG" if net > 0 else "SHORT" if net < 0 else "CLOSED",
                "exchangeSegment": dhan_segment(i),
                "productType": dhan_product(position.product),
                "buyAvg": data["buy_price"],
                "costPrice": data["average_price"],
                "buyQty": data["buy_quantity"],
                "sellAvg": data["sell_price"],
                "sellQty": data["sell_quantity"],
                "netQty": net,
                "realizedProfit": data["realised"],
                "unrealizedProfit": data["unrealised"],
                "rbiReferenceRate": 1.0,
                "multiplier": int(data["multiplier"]),
                "carryForwardBuyQty": 0,
                "carryForwardSellQty": 0,
                "carryForwardBuyValue": 0.0,
                "carryForwardSellValue": 0.0,
                "dayBuyQty": data["day_buy_quantity"],
                "daySellQty": data["day_sell_quantity"],
                "dayBuyValue": data["day_buy_value"],
                "daySellValue": data["day_sell_value"],
                "drvExpiryDate": i.expiry.isoformat() if i.expiry else "0001-01-01",
                "drvOptionType": {"CE": "CALL", "PE": "PUT"}.get(i.instrument_type, "NA"),
                "drvStrikePrice": i.strike,
                "crossCurrency": False,
            }
        )
    return rows


async def convert_position(call: Call) -> Any:
    body = _body(call)
    instrument = _instrument_of(call, body)
    position_type = _text(body, "positionType", ("LONG", "SHORT"))
    params = {
        "exchange": instrument.exchange,
        "tradingsymbol": instrument.tradingsymbol,
        "transaction_type": "BUY" if position_type == "LONG" else "SELL",
        "position_type": "day",
        "old_product": PRODUCTS[_text(body, "fromProductType", PRODUCTS)],
        "new_product": PRODUCTS[_text(body, "toProductType", PRODUCTS)],
        "quantity": body.get("convertQty"),
    }
    if isinstance(params["quantity"], bool | dict | list):
        raise ApiError.input("Invalid convertQty.")
    call.state.book.convert(params)
    return JSONResponse({}, status_code=202)


async def exit_positions(call: Call) -> Any:
    """``DELETE /positions``: cancel every open order and square off every open position."""
    state = call.state
    book = state.book
    for live in [o for o in book.orders.values() if o.status in ("OPEN", "TRIGGER PENDING")]:
        book.cancel(live.variety, live.order_id)
    for position in list(book.positions.values()):
        net = position.quantity
        if net == 0:
            continue
        i = position.instrument
        book.place(
            "regular",
            {
                "exchange": i.exchange,
                "tradingsymbol": i.tradingsymbol,
                "transaction_type": "SELL" if net > 0 else "BUY",
                "order_type": "MARKET",
                "product": position.product,
                "quantity": abs(net),
                "market_protection": -1,
            },
        )
    return {"status": "SUCCESS", "message": "All orders and positions exited successfully."}


async def holdings(call: Call) -> Any:
    state = call.state
    rows = []
    for holding in state.book.holdings.values():
        i = holding.instrument
        total = holding.quantity + holding.t1_quantity
        rows.append(
            {
                "exchange": "ALL",
                "tradingSymbol": i.tradingsymbol,
                "securityId": security_id(i),
                "isin": holding.isin,
                "totalQty": total,
                "dpQty": holding.quantity,
                "t1Qty": holding.t1_quantity,
                "availableQty": total,
                "collateralQty": 0,
                "avgCostPrice": holding.average_price,
                "lastTradedPrice": state.market.last_price(i.instrument_token),
            }
        )
    if not rows:
        raise ApiError(400, "order", "No holdings available.")
    return rows


# -- funds and margins -----------------------------------------------------------------------


async def fund_limits(call: Call) -> Any:
    funds = call.state.book.funds("equity")
    debits = funds["utilised"]["debits"]
    return {
        "dhanClientId": call.state.config.client_id,
        "availabelBalance": funds["net"],
        "sodLimit": call.state.config.opening_cash,
        "collateralAmount": 0.0,
        "receiveableAmount": 0.0,
        "utilizedAmount": debits,
        "blockedPayoutAmount": 0.0,
        "withdrawableBalance": max(funds["net"], 0.0),
    }


def _margin(call: Call, entry: Mapping[str, Any]) -> dict[str, float]:
    instrument = _instrument_of(call, entry)
    side = _text(entry, "transactionType", ("BUY", "SELL"))
    product = PRODUCTS[_text(entry, "productType", PRODUCTS)]
    quantity = optional_int(entry, "quantity")
    if quantity <= 0:
        raise ApiError.input("Invalid quantity.")
    price = optional_float(entry, "price") or call.state.market.last_price(
        instrument.instrument_token
    )
    margin = order_margin(instrument, side, product, quantity, price)
    margin["segment"] = 1.0 if segment_of(instrument) == "commodity" else 0.0
    return margin


async def margin_calculator(call: Call) -> Any:
    body = _body(call)
    margin = _margin(call, body)
    available = call.state.book.funds("equity")["net"]
    total = margin["total"]
    leverage = PRODUCTS[str(body.get("productType"))] == "MIS"
    return {
        "totalMargin": total,
        "spanMargin": margin["span"],
        "exposureMargin": margin["exposure"],
        "availableBalance": available,
        "variableMargin": margin["var"],
        "insufficientBalance": max(total - available, 0.0),
        "brokerage": 20.0,
        "leverage": "5.00" if leverage else "1.00",
    }


async def margin_calculator_multi(call: Call) -> Any:
    body = _body(call)
    scrips = body.get("scripList")
    if not isinstance(scrips, list) or not scrips:
        raise ApiError.input("Missing required field: scripList (a non-empty list).")
    totals = {"total": 0.0, "span": 0.0, "exposure": 0.0, "equity": 0.0, "commodity": 0.0}
    for entry in scrips:
        if not isinstance(entry, dict):
            raise ApiError.input("Each scripList entry must be a JSON object.")
        margin = _margin(call, entry)
        totals["total"] += margin["total"]
        totals["span"] += margin["span"]
        totals["exposure"] += margin["exposure"]
        totals["commodity" if margin["segment"] else "equity"] += margin["total"]
    hedge = totals["total"] * 0.15 if len(scrips) > 1 else 0.0
    return {
        "total_margin": f"{totals['total'] - hedge:.2f}",
        "span_margin": f"{totals['span']:.2f}",
        "exposure_margin": f"{totals['exposure']:.2f}",
        "equity_margin": f"{totals['equity']:.2f}",
        "fo_margin": "0.00",
        "commodity_margin": f"{totals['commodity']:.2f}",
        "currency": "0.00",
        "hedge_benefit": f"{hedge:.2f}",
    }


# -- super orders ---------------------------------------------------------------------------------

_LEGS: Final = ("ENTRY_LEG", "TARGET_LEG", "STOP_LOSS_LEG")


def _price(body: Mapping[str, Any], name: str) -> float:
    value = optional_float(body, name)
    if value <= 0:
        raise ApiError.input(f"Missing required field: {name} (a price above 0).")
    return value


async def super_place(call: Call) -> Any:
    body = _body(call)
    target = optional_float(body, "targetPrice")
    stop = optional_float(body, "stopLossPrice")
    if target <= 0 and stop <= 0:
        raise ApiError.input("Set targetPrice or stopLossPrice (a price above 0).")
    trailing = optional_float(body, "trailingJump")
    entry = _place(call, body)
    dhan_state(call.state).super_orders[entry.order_id] = {
        "targetPrice": target,
        "stopLossPrice": stop,
        "trailingJump": trailing,
        "legs": {"TARGET_LEG": "PENDING", "STOP_LOSS_LEG": "PENDING"},
    }
    return _answer(entry)


def _super(call: Call) -> tuple[Order, dict[str, Any]]:
    order = _order(call)
    record = dhan_state(call.state).super_orders.get(order.order_id)
    if record is None:
        raise ApiError(400, "order", f"Super order {order.order_id[:24]} not found.")
    return order, record


def _super_row(state: SandboxState, order: Order, record: Mapping[str, Any]) -> dict[str, Any]:
    row = dhan_order(state, order)
    status = row["orderStatus"]
    legs = []
    for leg in ("TARGET_LEG", "STOP_LOSS_LEG"):
        price = record["targetPrice"] if leg == "TARGET_LEG" else record["stopLossPrice"]
        legs.append(
            {
                "orderId": f"{order.order_id}-{leg[0]}",
                "legName": leg,
                "transactionType": "SELL" if order.transaction_type == "BUY" else "BUY",
                "totalQuatity": order.quantity,
                "remainingQuantity": order.quantity,
                "triggeredQuantity": 0,
                "price": price,
                "orderStatus": record["legs"][leg],
                "trailingJump": record["trailingJump"] if leg == "STOP_LOSS_LEG" else 0.0,
            }
        )
    row.update(
        legName="ENTRY_LEG",
        orderStatus=status,
        ltp=state.market.last_price(order.instrument.instrument_token),
        legDetails=legs,
    )
    return row


async def super_list(call: Call) -> Any:
    state = call.state
    return [
        _super_row(state, state.book.orders[order_id], record)
        for order_id, record in dhan_state(state).super_orders.items()
    ]


async def super_modify(call: Call) -> Any:
    body = _body(call)
    order, record = _super(call)
    leg = _text(body, "legName", _LEGS)
    if leg == "ENTRY_LEG":
        await modify_order(call)
        for name in ("targetPrice", "stopLossPrice"):
            if body.get(name) not in (None, ""):
                record[name] = _price(body, name)
    elif leg == "TARGET_LEG":
        record["targetPrice"] = _price(body, "targetPrice")
    else:
        record["stopLossPrice"] = _price(body, "stopLossPrice")
        record["trailingJump"] = optional_float(body, "trailingJump")
    return _answer(order)


async def super_cancel(call: Call) -> Any:
    order, record = _super(call)
    leg = call.path["leg"]
    if leg not in _LEGS:
        raise ApiError.input(f"Invalid order leg: {leg[:20]}.")
    if leg == "ENTRY_LEG":
        if order.status in ("OPEN", "TRIGGER PENDING", "AMO REQ RECEIVED"):
            call.state.book.cancel(order.variety, order.order_id)
        record["legs"] = dict.fromkeys(record["legs"], "CANCELLED")
    else:
        record["legs"][leg] = "CANCELLED"
    return {"orderId": order.order_id, "orderStatus": "CANCELLED"}


# -- forever orders ----------------------------------------------------------------------------


async def forever_place(call: Call) -> Any:
    body = _body(call)
    _check_kill_switch(call.state)
    instrument = _instrument_of(call, body)
    flag = _text(body, "orderFlag", ("SINGLE", "OCO"))
    params = _engine_params(call, body, instrument)
    quantity = optional_int(body, "quantity")
    if quantity <= 0:
        raise ApiError.input("Invalid quantity.")
    record: dict[str, Any] = {
        "orderFlag": flag,
        "correlationId": _correlation(body),
        "instrument": instrument,
        "transactionType": params["transaction_type"],
        "productType": _text(body, "productType"),
        "orderType": _text(body, "orderType"),
        "validity": params["validity"],
        "quantity": quantity,
        "price": optional_float(body, "price"),
        "triggerPrice": _price(body, "triggerPrice"),
        "status": "PENDING",
        "createTime": stamp(),
        #: the price when placed: a trigger fires when the price crosses it from this side
        "reference": call.state.market.last_price(instrument.instrument_token),
    }
    if flag == "OCO":
        record["price1"] = _price(body, "price1")
        record["triggerPrice1"] = _price(body, "triggerPrice1")
        record["quantity1"] = optional_int(body, "quantity1") or quantity
    forever = dhan_state(call.state)
    order_id = "F" + forever.new_id()
    forever.forever_orders[order_id] = record
    return {"orderId": order_id, "orderStatus": "PENDING"}


def _forever(call: Call) -> tuple[str, dict[str, Any]]:
    order_id = call.path["order_id"]
    record = dhan_state(call.state).forever_orders.get(order_id)
    if record is None:
        raise ApiError(400, "order", f"Forever order {order_id[:24]} not found.")
    return order_id, record


async def forever_list(call: Call) -> Any:
    state = call.state
    rows = []
    for order_id, record in dhan_state(state).forever_orders.items():
        i: SandboxInstrument = record["instrument"]
        legs = ["TARGET_LEG", "STOP_LOSS_LEG"] if record["orderFlag"] == "OCO" else ["TARGET_LEG"]
        for leg in legs:
            second = leg == "STOP_LOSS_LEG"
            rows.append(
                {
                    "dhanClientId": state.config.client_id,
                    "orderId": order_id,
                    "orderStatus": record["status"],
                    "transactionType": record["transactionType"],
                    "exchangeSegment": dhan_segment(i),
                    "productType": record["productType"],
                    "orderType": record["orderFlag"],
                    "tradingSymbol": i.tradingsymbol,
                    "securityId": security_id(i),
                    "quantity": record["quantity1"] if second else record["quantity"],
                    "price": record["price1"] if second else record["price"],
                    "triggerPrice": record["triggerPrice1"] if second else record["triggerPrice"],
                    "legName": leg,
                    "createTime": record["createTime"],
                    "updateTime": record.get("updateTime", record["createTime"]),
                    "exchangeTime": "0001-01-01 00:00:00",
                    "drvExpiryDate": i.expiry.isoformat() if i.expiry else "0001-01-01",
                    "drvOptionType": {"CE": "CALL", "PE": "PUT"}.get(i.instrument_type, "NA"),
                    "drvStrikePrice": i.strike,
                }
            )
    return rows


async def forever_modify(call: Call) -> Any:
    body = _body(call)
    order_id, record = _forever(call)
    if record["status"] != "PENDING":
        raise ApiError(400, "order", f"Forever order {order_id} is {record['status']}.")
    leg = _text(body, "legName", ("TARGET_LEG", "STOP_LOSS_LEG"))
    suffix = "1" if leg == "STOP_LOSS_LEG" and record["orderFlag"] == "OCO" else ""
    if body.get("quantity") not in (None, ""):
        record[f"quantity{suffix}"] = optional_int(body, "quantity")
    if body.get("price") not in (None, ""):
        record[f"price{suffix}"] = optional_float(body, "price")
    if body.get("triggerPrice") not in (None, ""):
        record[f"triggerPrice{suffix}"] = _price(body, "triggerPrice")
    record["updateTime"] = stamp()
    return {"orderId": order_id, "orderStatus": "PENDING"}


async def forever_cancel(call: Call) -> Any:
    order_id, record = _forever(call)
    record["status"] = "CANCELLED"
    return {"orderId": order_id, "orderStatus": "CANCELLED"}


# -- conditional triggers ------------------------------------------------------------------------


async def alert_place(call: Call) -> Any:
    body = _body(call)
    condition = body.get("condition")
    legs = body.get("orders")
    if not isinstance(condition, dict) or not isinstance(legs, list) or not legs:
        raise ApiError.input("Send a condition object and a non-empty orders list.")
    _find(
        call.state,
        _text(condition, "exchangeSegment", _SEGMENTS),
        _text(condition, "securityId"),
    )
    for leg in legs:
        if not isinstance(leg, dict):
            raise ApiError.input("Each orders entry must be a JSON object.")
        _instrument_of(call, leg)
    dhan = dhan_state(call.state)
    alert_id = dhan.new_id()
    dhan.alerts[alert_id] = {
        "alertId": alert_id,
        "alertStatus": "ACTIVE",
        "createdTime": stamp(),
        "triggeredTime": None,
        "lastPrice": None,
        "condition": condition,
        "orders": legs,
    }
    return {"alertId": alert_id, "alertStatus": "ACTIVE"}


def _alert(call: Call) -> dict[str, Any]:
    alert = dhan_state(call.state).alerts.get(call.path["alert_id"])
    if alert is None:
        raise ApiError.input(f"Alert {call.path['alert_id'][:24]} not found.")
    return alert


async def alert_list(call: Call) -> Any:
    return list(dhan_state(call.state).alerts.values())


async def alert_get(call: Call) -> Any:
    return _alert(call)


async def alert_modify(call: Call) -> Any:
    body = _body(call)
    alert = _alert(call)
    if isinstance(body.get("condition"), dict):
        alert["condition"] = body["condition"]
    if isinstance(body.get("orders"), list) and body["orders"]:
        alert["orders"] = body["orders"]
    return {"alertId": alert["alertId"], "alertStatus": alert["alertStatus"]}


async def alert_delete(call: Call) -> Any:
    alert = _alert(call)
    alert["alertStatus"] = "CANCELLED"
    del dhan_state(call.state).alerts[alert["alertId"]]
    return {"alertId": alert["alertId"], "alertStatus": "CANCELLED"}


# -- trader's controls, profile, static IP, EDIS ----------------------------------------------


async def kill_switch(call: Call) -> Any:
    dhan = dhan_state(call.state)
    if call.request.method == "POST":
        action = str(call.query.get("killSwitchStatus", ""))
        if action not in ("ACTIVATE", "DEACTIVATE"):
            raise ApiError.input("Invalid killSwitchStatus: ACTIVATE or DEACTIVATE.")
        dhan.kill_switch = action == "ACTIVATE"
        done = "activated" if dhan.kill_switch else "deactivated"
        return {
            "dhanClientId": call.state.config.client_id,
            "killSwitchStatus": f"Kill Switch has been successfully {done}",
        }
    return {
        "dhanClientId": call.state.config.client_id,
        "killSwitchStatus": "ACTIVATE" if dhan.kill_switch else "DEACTIVATE",
    }


async def pnl_exit(call: Call) -> Any:
    dhan = dhan_state(call.state)
    method = call.request.method
    if method == "POST":
        body = _body(call)
        products = body.get("productType")
        if not isinstance(products, list) or not products:
            raise ApiError.input("Invalid productType: a non-empty list of product types.")
        if any(not isinstance(p, str) or p not in PRODUCTS for p in products):
            raise ApiError.input("Invalid productType: a non-empty list of product types.")
        _price(body, "profitValue")
        _price(body, "lossValue")
        dhan.pnl_exit = {
            "pnlExitStatus": "ACTIVE",
            "profit": str(optional_float(body, "profitValue")),
            "loss": str(optional_float(body, "lossValue")),
            "productType": products,
            "enable_kill_switch": _flag(body, "enableKillSwitch"),
        }
        return {"pnlExitStatus": "ACTIVE", "message": "P&L based exit configured successfully"}
    if method == "DELETE":
        dhan.pnl_exit = None
        return {"pnlExitStatus": "DISABLED", "message": "P&L based exit stopped successfully"}
    if dhan.pnl_exit is None:
        return {"pnlExitStatus": "DISABLED"}
    return dhan.pnl_exit


async def profile(call: Call) -> Any:
    valid = datetime.datetime.now(IST) + datetime.timedelta(hours=24)
    return {
        "dhanClientId": call.state.config.client_id,
        "tokenValidity": valid.strftime("%d/%m/%Y %H:%M"),
        "activeSegment": "Equity, Derivative, Currency, Commodity",
        "ddpi": "Active",
        "mtf": "Active",
        "dataPlan": "Active",
        "dataValidity": (valid + datetime.timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S.0"),
    }


async def set_ip(call: Call) -> Any:
    import ipaddress

    body = _body(call)
    address = _text(body, "ip")
    flag = _text(body, "ipFlag", ("PRIMARY", "SECONDARY"))
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ApiError.input("Invalid ip: an IPv4 or IPv6 address.") from None
    dhan_state(call.state).ips[flag] = address
    return {"message": "IP saved successfully", "status": "SUCCESS"}


async def get_ip(call: Call) -> Any:
    ips = dhan_state(call.state).ips
    today = datetime.date.today().isoformat()
    return {
        "modifyDatePrimary": today if "PRIMARY" in ips else "",
        "modifyDateSecondary": today if "SECONDARY" in ips else "",
        "primaryIP": ips.get("PRIMARY", ""),
        "secondaryIP": ips.get("SECONDARY", ""),
    }


async def edis_tpin(call: Call) -> Any:
    return JSONResponse({}, status_code=202)


async def edis_form(call: Call) -> Any:
    body = _body(call)
    isin = _text(body, "isin")
    return {
        "dhanClientId": call.state.config.client_id,
        "edisFormHtml": f"<html><body>Sandbox eDIS form for {isin[:12]}</body></html>",
    }


async def edis_inquire(call: Call) -> Any:
    isin = call.path["isin"]
    if isin != "ALL" and not _ISIN.fullmatch(isin):
        raise ApiError.input("Invalid isin: 12 letters and digits, or ALL.")
    held = [h for h in call.state.book.holdings.values() if h.isin == isin or isin == "ALL"]
    return {
        "clientId": call.state.config.client_id,
        "isin": isin,
        "totalQty": sum(h.quantity + h.t1_quantity for h in held),
        "aprvdQty": 0,
        "status": "SUCCESS" if held else "NA",
        "remarks": "sandbox",
    }


# -- market data --------------------------------------------------------------------------------


def _requested(call: Call) -> list[tuple[str, str, SandboxInstrument | None]]:
    if "client-id" not in call.request.headers:
        raise ApiError.input("Missing header: client-id (market quotes need it).")
    body = _body(call)
    if not body:
        raise ApiError.input("Send {segment: [security ids]} with at least one instrument.")
    requested = []
    for segment, ids in body.items():
        if segment == "dhanClientId":
            continue
        if segment not in _SEGMENTS or not isinstance(ids, list):
            raise ApiError.input(f"Invalid exchange segment or id list: {str(segment)[:20]}.")
        for sid in ids:
            if isinstance(sid, bool) or not isinstance(sid, int | str):
                raise ApiError.input("Invalid security id.")
            requested.append((segment, str(sid), by_security(call.state.market, segment, sid)))
    if not requested:
        raise ApiError.input("Send at least one instrument.")
    if len(requested) > QUOTE_MAX_INSTRUMENTS:
        raise ApiError.input(f"Too many instruments: at most {QUOTE_MAX_INSTRUMENTS} a request.")
    return requested


def _quote_body(state: SandboxState, instrument: SandboxInstrument, kind: str) -> dict[str, Any]:
    market = state.market
    token = instrument.instrument_token
    quote = market.quote(token)
    if kind == "ltp":
        return {"last_price": quote.last_price}
    ohlc = {"open": quote.open, "close": quote.close, "high": quote.high, "low": quote.low}
    if kind == "ohlc":
        return {"last_price": quote.last_price, "ohlc": ohlc}
    bids, asks = market.depth(token)
    lower, upper = market.circuit_limits(token)
    return {
        "average_price": round(quote.average_price, 2),
        "buy_quantity": quote.buy_quantity,
        "depth": {
            "buy": [{"quantity": b.quantity, "orders": b.orders, "price": b.price} for b in bids],
            "sell": [{"quantity": a.quantity, "orders": a.orders, "price": a.price} for a in asks],
        },
        "last_price": quote.last_price,
        "last_quantity": quote.last_quantity,
        "last_trade_time": market.updated_at.strftime("%d/%m/%Y %H:%M:%S"),
        "lower_circuit_limit": lower,
        "net_change": round(quote.last_price - quote.close, 2),
        "ohlc": ohlc,
        "oi": quote.oi,
        "oi_day_high": quote.oi_day_high,
        "oi_day_low": quote.oi_day_low,
        "sell_quantity": quote.sell_quantity,
        "upper_circuit_limit": upper,
        "volume": quote.volume,
    }


def _quote_endpoint(kind: str) -> Handler:
    async def handler(call: Call) -> Any:
        data: dict[str, dict[str, Any]] = {}
        for segment, sid, instrument in _requested(call):
            if instrument is not None:
                data.setdefault(segment, {})[sid] = _quote_body(call.state, instrument, kind)
        return {"data": data, "status": "success"}

    return handler


def _moment(text: str, name: str) -> datetime.datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM[:SS]`` (or ISO 8601), read as IST."""
    if text.isascii():
        for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
            try:
                return datetime.datetime.strptime(text.strip(), pattern).replace(tzinfo=IST)
            except ValueError:
                continue
        try:
            moment = datetime.datetime.fromisoformat(text.strip())
        except ValueError:
            moment = None
        if moment is not None and 1900 <= moment.year <= 2200:
            return moment.replace(tzinfo=IST) if moment.tzinfo is None else moment.astimezone(IST)
    raise ApiError.input(f"Invalid {name}: YYYY-MM-DD or YYYY-MM-DD HH:MM:SS.")


def _columns(rows: list[list[Any]], oi: bool) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {
        "open": [row[1] for row in rows],
        "high": [row[2] for row in rows],
        "low": [row[3] for row in rows],
        "close": [row[4] for row in rows],
        "volume": [row[5] for row in rows],
        "timestamp": [int(row[0].timestamp()) for row in rows],
    }
    if oi:
        out["open_interest"] = [row[6] for row in rows]
    return out


def _candle_request(
    call: Call,
) -> tuple[SandboxInstrument, datetime.datetime, datetime.datetime, bool]:
    body = _body(call)
    instrument = _instrument_of(call, body)
    _text(body, "instrument")
    start = _moment(_text(body, "fromDate"), "fromDate")
    end = _moment(_text(body, "toDate"), "toDate")
    if end < start:
        raise ApiError(400, "data", "Invalid dates: fromDate is after toDate.")
    return instrument, start, end, _flag(body, "oi")


async def daily_candles(call: Call) -> Any:
    instrument, start, end, oi = _candle_request(call)
    if len(str(_body(call).get("toDate", ""))) <= 10:
        end = end - datetime.timedelta(seconds=1)  # toDate (a date) is not inclusive
    try:
        rows = call.state.market.candles(instrument.instrument_token, "day", start, end, oi=True)
    except CandleError as error:
        raise ApiError(400, "data", str(error)) from None
    return _columns(rows, oi)


#: Most days of one intraday request.
_INTRADAY_DAYS: Final = 90


async def intraday_candles(call: Call) -> Any:
    instrument, start, end, oi = _candle_request(call)
    body = _body(call)
    interval = _text(body, "interval", _INTERVALS)
    if end - start > datetime.timedelta(days=_INTRADAY_DAYS):
        raise ApiError(400, "data", f"Intraday requests span at most {_INTRADAY_DAYS} days.")
    if len(str(body.get("toDate", ""))) <= 10:
        end = end + datetime.timedelta(days=1) - datetime.timedelta(seconds=1)
    rows: list[list[Any]] = []
    minutes = int(interval)
    engine = {1: "minute", 5: "5minute", 15: "15minute", 60: "60minute"}.get(minutes)
    day = start
    while day <= end:  # the market's per-interval range limits are Kite's: ask a day at a time
        stop = min(day + datetime.timedelta(days=1) - datetime.timedelta(seconds=1), end)
        try:
            if engine is not None:
                rows.extend(
                    call.state.market.candles(
                        instrument.instrument_token, engine, day, stop, oi=True
                    )
                )
            else:  # 25 minutes: five 5-minute candles merged
                five = call.state.market.candles(
                    instrument.instrument_token, "5minute", day, stop, oi=True
                )
                for index in range(0, len(five), 5):
                    group = five[index : index + 5]
                    rows.append(
                        [
                            group[0][0],
                            group[0][1],
                            max(row[2] for row in group),
                            min(row[3] for row in group),
                            group[-1][4],
                            sum(row[5] for row in group),
                            group[-1][6],
                        ]
                    )
        except CandleError as error:
            raise ApiError(400, "data", str(error)) from None
        day = datetime.datetime.combine(
            day.date() + datetime.timedelta(days=1), datetime.time(0), IST
        )
    return _columns(rows, oi)


def _underlying(call: Call) -> tuple[SandboxInstrument, list[SandboxInstrument]]:
    body = _body(call)
    segment = _text(body, "UnderlyingSeg", _SEGMENTS)
    underlying = _find(call.state, segment, _text(body, "UnderlyingScrip"))
    name = underlying.name if segment != "IDX_I" else underlying.tradingsymbol
    options = [
        i
        for i in call.state.market.instruments.values()
        if i.instrument_type in ("CE", "PE") and i.name == name
    ]
    return underlying, options


async def expiry_list(call: Call) -> Any:
    _, options = _underlying(call)
    expiries = sorted({i.expiry.isoformat() for i in options if i.expiry is not None})
    return {"data": expiries, "status": "success"}


async def option_chain(call: Call) -> Any:
    underlying, options = _underlying(call)
    expiry = _date(_text(_body(call), "Expiry"), "Expiry")
    chain: dict[str, dict[str, Any]] = {}
    market = call.state.market
    for i in options:
        if i.expiry != expiry:
            continue
        quote = market.quote(i.instrument_token)
        bids, asks = market.depth(i.instrument_token)
        side = "ce" if i.instrument_type == "CE" else "pe"
        chain.setdefault(f"{i.strike:.6f}", {})[side] = {
            "average_price": round(quote.average_price, 2),
            "greeks": {
                "delta": 0.5 if side == "ce" else -0.5,
                "theta": -10.0,
                "gamma": 0.001,
                "vega": 10.0,
            },
            "implied_volatility": 15.0,
            "last_price": quote.last_price,
            "oi": quote.oi,
            "previous_close_price": quote.close,
            "previous_oi": quote.oi_day_low,
            "previous_volume": 0,
            "security_id": i.exchange_token,
            "top_ask_price": asks[0].price,
            "top_ask_quantity": asks[0].quantity,
            "top_bid_price": bids[0].price,
            "top_bid_quantity": bids[0].quantity,
            "volume": quote.volume,
        }
    if not chain:
        raise ApiError(400, "data", f"No option chain for expiry {expiry.isoformat()}.")
    last = market.last_price(underlying.instrument_token)
    return {"data": {"last_price": last, "oc": dict(sorted(chain.items()))}, "status": "success"}


# -- instruments ---------------------------------------------------------------------------------


def _csv(text: str) -> Response:
    return Response(text.encode(), media_type="text/csv")


async def instrument_segment(call: Call) -> Any:
    segment = call.path["segment"]
    if segment not in _SEGMENTS:
        raise ApiError.input(f"Invalid exchange segment {segment[:20]}.")
    return _csv(detailed_csv(segment, call.state.market))


async def scrip_master(call: Call) -> Any:
    return _csv(compact_csv(market=call.state.market))


async def scrip_master_detailed(call: Call) -> Any:
    return _csv(detailed_csv(market=call.state.market))


# -- sessions (Dhan's auth host and RenewToken) ------------------------------------------------


def _token_answer(state: SandboxState, token: str) -> dict[str, Any]:
    expiry = datetime.datetime.now(IST).replace(tzinfo=None) + datetime.timedelta(hours=24)
    return {
        "dhanClientId": state.config.client_id,
        "dhanClientName": state.config.user_name.upper(),
        "dhanClientUcc": "SBX" + state.config.client_id[-5:],
        "givenPowerOfAttorney": True,
        "accessToken": token,
        "expiryTime": expiry.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _new_token(state: SandboxState) -> str:
    token = "sandbox." + secrets.token_urlsafe(24)
    state.access_tokens.add(token)
    state.faults.session_expired = False
    return token


async def renew_token(call: Call) -> Any:
    state = call.state
    old = call.request.headers.get("access-token", "")
    client = call.request.headers.get("dhanClientId") or call.request.headers.get("client-id")
    if client is not None and client != state.config.client_id:
        raise ApiError(401, "session", "Client ID is invalid.")
    token = _new_token(state)
    state.access_tokens.discard(old)
    return _token_answer(state, token)


def _check_pin(state: SandboxState, pin: str, totp: str) -> bool:
    if not _same(pin, state.config.pin):
        return False
    if state.config.twofa_value is not None and _same(totp, state.config.twofa_value):
        return True
    try:
        import pyotp
    except ModuleNotFoundError:  # pragma: no cover - the totp extra missing
        return False
    return bool(pyotp.TOTP(state.config.totp_secret).verify(totp, valid_window=1))


async def generate_access_token(call: Call) -> Any:
    state = call.state
    query = call.query
    if query.get("dhanClientId") != state.config.client_id:
        raise ApiError(401, "session", "Invalid dhanClientId.")
    if not _check_pin(state, str(query.get("pin", "")), str(query.get("totp", ""))):
        raise ApiError(401, "session", "Invalid PIN or TOTP.")
    return _token_answer(state, _new_token(state))


def _check_app(call: Call) -> None:
    config = call.state.config
    app_id = call.request.headers.get("app_id", "")
    app_secret = call.request.headers.get("app_secret", "")
    if not (_same(app_id, config.api_key) and _same(app_secret, config.api_secret)):
        raise ApiError(401, "session", "Invalid app_id or app_secret.")


async def generate_consent(call: Call) -> Any:
    _check_app(call)
    if call.query.get("client_id") != call.state.config.client_id:
        raise ApiError(401, "session", "Invalid client_id.")
    consent = secrets.token_hex(16)
    dhan_state(call.state).consents[consent] = ""
    return {"consentAppId": consent, "consentAppStatus": "GENERATED", "status": "success"}


async def consent_login(call: Call) -> Response:
    consents = dhan_state(call.state).consents
    consent = str(call.query.get("consentAppId", ""))
    if consent not in consents:
        raise ApiError.input("Invalid consentAppId.")
    token_id = secrets.token_urlsafe(16)
    consents[consent] = token_id
    url = call.state.config.redirect_url
    query = urlencode({"tokenId": token_id})
    return RedirectResponse(f"{url}{'&' if '?' in url else '?'}{query}", status_code=302)


async def consume_consent(call: Call) -> Any:
    _check_app(call)
    token_id = str(call.query.get("tokenId", ""))
    consents = dhan_state(call.state).consents
    found = [c for c, t in consents.items() if t and _same(t, token_id)]
    if not found:
        raise ApiError(401, "session", "Invalid or used tokenId.")
    del consents[found[0]]
    return _token_answer(call.state, _new_token(call.state))


# -- the route table ---------------------------------------------------------------------------


def _route(
    path: str,
    method: str,
    handler: Handler,
    group: str | None = OTHER,
    **options: bool,
) -> Route:
    return Route(path, Endpoint(handler, group=group, **options), methods=[method])


def rest_routes(prefix: str = "/v2") -> list[BaseRoute]:
    """Every DhanHQ v2 REST route under ``prefix``."""
    p = prefix
    order = {"orders": True}  # the static-IP whitelist applies
    return [
        _route(f"{p}/orders", "POST", place_order, ORDER, lossy=True, **order),
        _route(f"{p}/orders/slicing", "POST", place_slice_order, ORDER, lossy=True, **order),
        _route(f"{p}/orders", "GET", orders),
        _route(f"{p}/orders/external/{{correlation_id}}", "GET", order_by_correlation),
        _route(f"{p}/orders/{{order_id}}", "GET", order_by_id),
        _route(f"{p}/orders/{{order_id}}", "PUT", modify_order, ORDER, **order),
        _route(f"{p}/orders/{{order_id}}", "DELETE", cancel_order, ORDER, **order),
        _route(f"{p}/super/orders", "POST", super_place, ORDER, lossy=True, **order),
        _route(f"{p}/super/orders", "GET", super_list),
        _route(f"{p}/super/orders/{{order_id}}", "PUT", super_modify, ORDER, **order),
        _route(f"{p}/super/orders/{{order_id}}/{{leg}}", "DELETE", super_cancel, ORDER, **order),
        _route(f"{p}/forever/orders", "POST", forever_place, ORDER, lossy=True, **order),
        _route(f"{p}/forever/orders", "GET", forever_list),
        _route(f"{p}/forever/all", "GET", forever_list),
        _route(f"{p}/forever/orders/{{order_id}}", "PUT", forever_modify, ORDER, **order),
        _route(f"{p}/forever/orders/{{order_id}}", "DELETE", forever_cancel, ORDER, **order),
        _route(f"{p}/alerts/orders", "POST", alert_place),
        _route(f"{p}/alerts/orders", "GET", alert_list),
        _route(f"{p}/alerts/orders/{{alert_id}}", "GET", alert_get),
        _route(f"{p}/alerts/orders/{{alert_id}}", "PUT", alert_modify),
        _route(f"{p}/alerts/orders/{{alert_id}}", "DELETE", alert_delete),
        _route(f"{p}/trades", "GET", trades),
        _route(f"{p}/trades/", "GET", trades),
        _route(f"{p}/trades/{{order_id}}", "GET", order_trades),
        _route(f"{p}/trades/{{from_date}}/{{to_date}}/{{page}}", "GET", trade_history),
        _route(f"{p}/ledger", "GET", ledger),
        _route(f"{p}/positions", "GET", positions),
        _route(f"{p}/positions", "DELETE", exit_positions, ORDER, **order),
        _route(f"{p}/positions/convert", "POST", convert_position),
        _route(f"{p}/holdings", "GET", holdings),
        _route(f"{p}/fundlimit", "GET", fund_limits),
        _route(f"{p}/margincalculator", "POST", margin_calculator),
        _route(f"{p}/margincalculator/multi", "POST", margin_calculator_multi),
        _route(f"{p}/killswitch", "POST", kill_switch),
        _route(f"{p}/killswitch", "GET", kill_switch),
        _route(f"{p}/pnlExit", "POST", pnl_exit),
        _route(f"{p}/pnlExit", "GET", pnl_exit),
        _route(f"{p}/pnlExit", "DELETE", pnl_exit),
        _route(f"{p}/profile", "GET", profile),
        _route(f"{p}/ip/setIP", "POST", set_ip),
        _route(f"{p}/ip/modifyIP", "PUT", set_ip),
        _route(f"{p}/ip/getIP", "GET", get_ip),
        _route(f"{p}/edis/tpin", "GET", edis_tpin),
        _route(f"{p}/edis/form", "POST", edis_form),
        _route(f"{p}/edis/inquire/{{isin}}", "GET", edis_inquire),
        _route(f"{p}/marketfeed/ltp", "POST", _quote_endpoint("ltp"), QUOTE),
        _route(f"{p}/marketfeed/ohlc", "POST", _quote_endpoint("ohlc"), QUOTE),
        _route(f"{p}/marketfeed/quote", "POST", _quote_endpoint("quote"), QUOTE),
        _route(f"{p}/charts/historical", "POST", daily_candles, DATA),
        _route(f"{p}/charts/intraday", "POST", intraday_candles, DATA),
        _route(f"{p}/optionchain", "POST", option_chain, DATA),
        _route(f"{p}/optionchain/expirylist", "POST", expiry_list, DATA),
        _route(f"{p}/instrument/{{segment}}", "GET", instrument_segment),
        _route(f"{p}/RenewToken", "GET", renew_token, None),
    ]


def session_routes() -> list[BaseRoute]:
    """Dhan's auth host (``auth.dhan.co``) and the scrip masters (``images.dhan.co``), at
    the server's root: no session needed, not rate limited."""
    return [
        _route("/app/generateAccessToken", "POST", generate_access_token, None, auth=False),
        _route("/app/generate-consent", "POST", generate_consent, None, auth=False),
        _route("/login/consentApp-login", "GET", consent_login, None, auth=False),
        _route("/app/consumeApp-consent", "GET", consume_consent, None, auth=False),
        _route("/api-data/api-scrip-master.csv", "GET", scrip_master, None, auth=False),
        _route(
            "/api-data/api-scrip-master-detailed.csv",
            "GET",
            scrip_master_detailed,
            None,
            auth=False,
        ),
    ]


def routes() -> list[BaseRoute]:
    """Everything the Dhan dialect serves over HTTP."""
    return [*session_routes(), *rest_routes()]
