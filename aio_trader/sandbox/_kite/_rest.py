"""Kite Connect v3 REST endpoints of the sandbox, each a few lines over the core's pipeline.

Every Kite endpoint is a core ``_pipeline.Endpoint``: injected latency, 5xx bursts, auth (403
TokenException), static IP, rate limit (429), parameters, then the handler; answers are Kite
envelopes (``{"status": "success", "data": ...}``) or Kite error bodies (``_wire``).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from aio_trader._time import IST
from aio_trader.kite.constants import (
    LTP_MAX_INSTRUMENTS,
    OHLC_MAX_INSTRUMENTS,
    QUOTE_MAX_INSTRUMENTS,
    TRIGGER_RANGE_MAX_INSTRUMENTS,
    EndpointGroup,
)
from aio_trader.sandbox._api import ApiError, ascii_int, optional_float, optional_int, param, stamp
from aio_trader.sandbox._kite._instruments import instruments_csv
from aio_trader.sandbox._kite._quotes import ltp_dict, ohlc_dict, quote_dict
from aio_trader.sandbox._kite._state import check_enctoken, kite_state
from aio_trader.sandbox._kite._ticker import ticker_endpoint
from aio_trader.sandbox._kite._wire import error_type, success
from aio_trader.sandbox._pipeline import Call, Endpoint, Handler
from aio_trader.sandbox.market import CandleError, Market, SandboxInstrument
from aio_trader.sandbox.orders import (
    MIS_LEVERAGE,
    OrderTables,
    charges,
    instrument_of,
    order_margin,
)
from aio_trader.sandbox.state import SandboxState

__all__ = ["auth_error", "kite_routes", "routes", "session_routes"]

log = logging.getLogger(__name__)

_QUOTE_LIMITS: Final = {
    "quote": QUOTE_MAX_INSTRUMENTS,
    "ohlc": OHLC_MAX_INSTRUMENTS,
    "ltp": LTP_MAX_INSTRUMENTS,
}
_DATE_FORMATS: Final = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
#: Kite's content type for the instrument dumps: exactly this, no charset (Kite's Node client
#: parses the CSV only for this value).
_CSV: Final = "text/csv"


def auth_error(request: Request, state: SandboxState) -> ApiError | None:
    """None for a live ``Authorization: token api_key:access_token`` (or Kite Web's
    ``enctoken ...``), else Kite's 403 TokenException."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme == "token":
        api_key, _, access_token = credentials.partition(":")
        if state.check_token(api_key, access_token):
            return None
    elif scheme == "enctoken" and check_enctoken(state, "", credentials):
        return None
    return ApiError(403, "session", "Incorrect `api_key` or `access_token`.")


def _checksum(*parts: str) -> str:
    return hashlib.sha256("".join(parts).encode()).hexdigest()


# -- sessions and login -------------------------------------------------------------------------


async def connect_login(call: Call) -> Response:
    state = call.state
    if call.params.get("api_key") != state.config.api_key:
        raise ApiError.input("Invalid `api_key`.")
    request_token = kite_state(state).new_request_token()
    query = urlencode({"request_token": request_token, "action": "login", "status": "success"})
    url = state.config.redirect_url
    return RedirectResponse(f"{url}{'&' if '?' in url else '?'}{query}", status_code=302)


def _session(state: SandboxState) -> dict[str, Any]:
    config = state.config
    return {
        **_profile(state),
        "avatar_url": "",
        "api_key": config.api_key,
        "access_token": config.access_token,
        "public_token": _checksum("public", config.access_token)[:32],
        "enctoken": config.enctoken,
        "refresh_token": config.refresh_token,
        "silo": "",
        "login_time": stamp(),
    }


def _redeem(call: Call, name: str, live: set[str]) -> str:
    """The token ``name`` of a session exchange, once its api_key, checksum (sha256 of
    api_key + token + api_secret) and liveness (one of ``live``) are checked; else 403/400."""
    config = call.state.config
    if param(call.params, "api_key") != config.api_key:
        raise ApiError(403, "session", "Invalid `api_key`.")
    token = param(call.params, name)
    expected = _checksum(config.api_key, token, config.api_secret)
    if not hmac.compare_digest(param(call.params, "checksum"), expected):
        raise ApiError.input("Invalid `checksum`.")
    if token not in live:
        raise ApiError(403, "session", "Token is invalid or has expired.")
    return token


async def session_token(call: Call) -> Any:
    state, kite = call.state, kite_state(call.state)
    kite.request_tokens.discard(_redeem(call, "request_token", kite.request_tokens))
    state.start_session()
    return _session(state)


async def session_delete(call: Call) -> Any:
    state = call.state
    if call.params.get("api_key") != state.config.api_key:
        raise ApiError(403, "session", "Invalid `api_key`.")
    if call.params.get("access_token"):
        state.access_tokens.discard(str(call.params["access_token"]))
    elif call.params.get("refresh_token"):
        kite_state(state).refresh_tokens.discard(str(call.params["refresh_token"]))
    else:
        raise ApiError.input("Missing `access_token` or `refresh_token`.")
    return True


async def session_refresh(call: Call) -> Any:
    _redeem(call, "refresh_token", kite_state(call.state).refresh_tokens)
    call.state.start_session()
    return _session(call.state)


async def web_login(call: Call) -> Any:
    state, config = call.state, call.state.config
    user_id = param(call.params, "user_id")
    password = param(call.params, "password")
    if user_id != config.user_id or not hmac.compare_digest(password, config.password):
        raise ApiError.input("Invalid `user_id` or `password`.")
    request_id = secrets.token_hex(16)  # unique: two logins in one second get two ids
    kite_state(state).web_requests.add(request_id)
    return {
        "user_id": user_id,
        "request_id": request_id,
        "twofa_type": "totp",
        "twofa_types": ["totp"],
        "twofa_status": "active",
        "profile": {"user_name": config.user_name, "user_shortname": config.user_name.split()[0]},
    }


def _twofa_ok(state: SandboxState, value: str) -> bool:
    config = state.config
    if config.twofa_value is not None and hmac.compare_digest(value, config.twofa_value):
        return True
    try:
        import pyotp
    except ImportError:
        return False
    return bool(pyotp.TOTP(config.totp_secret).verify(value, valid_window=1))


async def web_twofa(call: Call) -> Response:
    state, config = call.state, call.state.config
    if param(call.params, "user_id") != config.user_id:
        raise ApiError.input("Invalid `user_id`.")
    request_id = param(call.params, "request_id")
    web_requests = kite_state(state).web_requests
    if request_id not in web_requests:
        raise ApiError(403, "session", "Invalid or expired `request_id`.")
    if not _twofa_ok(state, param(call.params, "twofa_value")):
        raise ApiError.input("Invalid `twofa_value`.")
    web_requests.discard(request_id)
    state.start_session()
    response = success({"profile": {}})
    response.set_cookie("enctoken", config.enctoken, path="/", httponly=True, samesite="lax")
    return response


# -- user ------------------------------------------------------------------------------------


def _profile(state: SandboxState) -> dict[str, Any]:
    config = state.config
    return {
        "user_id": config.user_id,
        "user_type": "individual",
        "email": f"{config.user_id.lower()}@sandbox.invalid",
        "user_name": config.user_name,
        "user_shortname": config.user_name.split()[0],
        "broker": "ZERODHA",
        "exchanges": ["NSE", "NFO", "BFO", "CDS", "BSE", "MCX", "BCD", "MF"],
        "products": ["CNC", "NRML", "MIS", "BO", "CO"],
        "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
        "avatar_url": None,
        "meta": {"demat_consent": "physical"},
    }


async def profile(call: Call) -> Any:
    return _profile(call.state)


async def full_profile(call: Call) -> Any:
    data = _profile(call.state)
    del data["meta"]
    data.update(
        twofa_type="totp",
        phone="*9999",
        bank_accounts=[{"name": "SANDBOX BANK", "branch": "", "account": "*9999"}],
        dp_ids=["0xx0xxx0xxxx0xx0"],
        pan="*xxxX",
        tags=[],
        password_timestamp="1970-01-01 00:00:00",  # noqa: S106 - a date, not a secret
        twofa_timestamp="1970-01-01 00:00:00",
        meta={"poa": "physical", "silo": "", "account_blocks": []},
    )
    return data


async def margins(call: Call) -> Any:
    book = call.state.book
    segment = call.path.get("segment")
    if segment is None:
        return {"equity": book.funds("equity"), "commodity": book.funds("commodity")}
    if segment not in ("equity", "commodity"):
        raise ApiError.input("Invalid segment: `equity` or `commodity`.")
    return book.funds(segment)


# -- orders ----------------------------------------------------------------------------------


async def place_order(call: Call) -> Any:
    book = call.state.book

    def book_one(params: Mapping[str, Any], **options: Any) -> str:
        order_id = book.place(call.path["variety"], params, **options).order_id
        call.state.stats.orders_booked += 1
        return order_id

    if str(call.params.get("autoslice", "")).lower() != "true":
        return {"order_id": book_one(call.params)}
    instrument = book.market.by_symbol(
        str(call.params.get("exchange")), str(call.params.get("tradingsymbol"))
    )
    quantity = ascii_int(call.params.get("quantity"))
    freeze = max(instrument.lot_size, 1) * 24 if instrument and instrument.is_derivative else 0
    if not freeze or quantity is None or quantity <= freeze:
        order_id = book_one(call.params)
        return {"order_id": order_id, "children": [{"order_id": order_id}]}
    slices = -(-quantity // freeze)
    most = call.state.config.rules.max_slices
    if most is not None and slices > most:
        raise ApiError.input(
            f"Order quantity exceeds the autoslice limit: at most {most} slices of the freeze "
            f"quantity {freeze} ({most * freeze}); {slices} would be needed."
        )
    group = f"autoslice:{book.new_id()}"
    children: list[dict[str, Any]] = []
    refusals: list[ApiError] = []
    total = quantity
    while total > 0:
        chunk = min(freeze, total)
        total -= chunk
        try:
            order_id = book_one(
                {**call.params, "quantity": str(chunk)},
                system_tags=("autoslice", group),
                refuse_shortfall=True,
            )
            children.append({"order_id": order_id})
        except ApiError as error:
            refusals.append(error)
            children.append(
                {
                    "error": {
                        "code": error.status,
                        "error_type": error_type(error),
                        "message": error.message,
                        "data": None,
                    }
                }
            )
    booked = [child["order_id"] for child in children if "order_id" in child]
    if not booked:
        raise refusals[0]  # no slice booked: the error, not an empty order_id
    return {"order_id": booked[0], "children": children}


async def modify_order(call: Call) -> Any:
    order = call.state.book.modify(call.path["variety"], call.path["order_id"], call.params)
    return {"order_id": order.order_id}


async def cancel_order(call: Call) -> Any:
    order = call.state.book.cancel(call.path["variety"], call.path["order_id"])
    return {"order_id": order.order_id}


async def orders(call: Call) -> Any:
    return call.state.book.orders_list()


async def order_history(call: Call) -> Any:
    return call.state.book.history(call.path["order_id"])


async def order_trades(call: Call) -> Any:
    return call.state.book.order_trades(call.path["order_id"])


async def trades(call: Call) -> Any:
    return list(call.state.book.trades)


# -- portfolio -------------------------------------------------------------------------------


async def positions(call: Call) -> Any:
    return call.state.book.positions_dict()


async def convert_position(call: Call) -> Any:
    call.state.book.convert(call.params)
    return True


async def holdings(call: Call) -> Any:
    return call.state.book.holdings_list()


async def holdings_compact(call: Call) -> Any:
    return [
        {key: row[key] for key in ("exchange", "tradingsymbol", "instrument_token", "t1_quantity")}
        | {"quantity": row["quantity"]}
        for row in call.state.book.holdings_list()
    ]


async def holdings_summary(call: Call) -> Any:
    rows = call.state.book.holdings_list()
    invested = sum(r["average_price"] * (r["quantity"] + r["t1_quantity"]) for r in rows)
    current = sum(r["last_price"] * (r["quantity"] + r["t1_quantity"]) for r in rows)
    today = sum(r["day_change"] * (r["quantity"] + r["t1_quantity"]) for r in rows)
    previous = current - today
    return {
        "total_pnl": current - invested,
        "total_pnl_percent": (current - invested) * 100 / invested if invested else 0.0,
        "today_pnl": today,
        "today_pnl_percent": today * 100 / previous if previous else 0.0,
        "invested_amount": invested,
        "current_value": current,
    }


async def holdings_authorise(call: Call) -> Any:
    return {"request_id": _checksum("authorise", stamp())[:32]}


async def auctions(call: Call) -> Any:
    rows = []
    for index, row in enumerate(call.state.book.holdings_list()[:2]):
        entry = {key: value for key, value in row.items() if key not in _NOT_IN_AUCTIONS}
        entry["auction_number"] = str(20 + index)
        rows.append(entry)
    return rows


_NOT_IN_AUCTIONS: Final = frozenset({"used_quantity", "authorisation", "short_quantity", "mtf"})


# -- mutual funds ----------------------------------------------------------------------------


async def mf_orders(call: Call) -> Any:
    rows = [
        dict(order, placed_by=call.state.config.user_id)
        for order in kite_state(call.state).mf.orders.values()
    ]
    return rows


async def mf_order(call: Call) -> Any:
    return dict(
        kite_state(call.state).mf.get_order(call.path["order_id"]),
        placed_by=call.state.config.user_id,
    )


async def mf_place_order(call: Call) -> Any:
    return {"order_id": kite_state(call.state).mf.place_order(call.params)}


async def mf_cancel_order(call: Call) -> Any:
    return {"order_id": kite_state(call.state).mf.cancel_order(call.path["order_id"])}


async def mf_sips(call: Call) -> Any:
    # the list leaves out what only the single-SIP answer carries
    return [
        {key: value for key, value in sip.items() if key != "fund_source"}
        for sip in kite_state(call.state).mf.sips.values()
    ]


async def mf_sip(call: Call) -> Any:
    return kite_state(call.state).mf.get_sip(call.path["sip_id"])


async def mf_place_sip(call: Call) -> Any:
    return {"sip_id": kite_state(call.state).mf.place_sip(call.params)}


async def mf_modify_sip(call: Call) -> Any:
    return {"sip_id": kite_state(call.state).mf.modify_sip(call.path["sip_id"], call.params)}


async def mf_cancel_sip(call: Call) -> Any:
    return {"sip_id": kite_state(call.state).mf.cancel_sip(call.path["sip_id"])}


async def mf_holdings(call: Call) -> Any:
    return kite_state(call.state).mf.holdings()


async def mf_instruments(call: Call) -> Response:
    return _csv_response(kite_state(call.state).mf.csv_text)


# -- market data -----------------------------------------------------------------------------


async def instruments(call: Call) -> Response:
    market = call.state.market
    exchange = call.path.get("exchange")
    selected = [
        i for i in market.instruments.values() if exchange is None or i.exchange == exchange
    ]
    if exchange is not None and not selected:
        raise ApiError.input(f"Invalid exchange `{exchange}`.")
    return _csv_response(instruments_csv(selected))


def _csv_response(text: str) -> Response:
    """A CSV dump with Kite's ``Content-Type: text/csv`` (Starlette would add a charset)."""
    response = Response(text.encode())
    response.headers["content-type"] = _CSV
    return response


def _requested(call: Call, limit: int) -> list[tuple[str, SandboxInstrument]]:
    """The ``i`` parameters (1 to ``limit``, else 400) that name a known instrument, with it;
    unknown ones are left out, as Kite does."""
    keys = call.query.getlist("i")
    if not keys:
        raise ApiError.input("Missing `i`: at least one instrument is needed.")
    if len(keys) > limit:
        raise ApiError.input(f"Too many instruments: at most {limit}.")
    found = ((key, call.state.market.by_key(key)) for key in keys)
    return [(key, instrument) for key, instrument in found if instrument is not None]


def _quote_endpoint(kind: str) -> Handler:
    async def handler(call: Call) -> Any:
        market = call.state.market
        render = {"quote": quote_dict, "ohlc": ohlc_dict, "ltp": ltp_dict}[kind]
        return {
            key: render(market, instrument.instrument_token)
            for key, instrument in _requested(call, _QUOTE_LIMITS[kind])
        }

    return handler


def _parse_date(params: Mapping[str, Any], name: str) -> datetime.datetime:
    """``yyyy-mm-dd hh:mm:ss`` (Kite's documented form; also without seconds or time) or
    ISO 8601 (``2026-12-01T09:15:00``, optionally with an offset), read as IST unless an
    offset says otherwise."""
    text = str(param(params, name)).strip()
    moment = _read_date(text)
    if moment is None or not 1900 <= moment.year <= 2200:  # the candle clock stays in range
        raise ApiError.input(f"Invalid `{name}` date: use YYYY-MM-DD HH:MM:SS.")
    return moment


def _read_date(text: str) -> datetime.datetime | None:
    if text.isascii():
        for pattern in _DATE_FORMATS:
            try:
                return datetime.datetime.strptime(text, pattern).replace(tzinfo=IST)
            except ValueError:
                continue
        if "T" in text:
            try:
                moment = datetime.datetime.fromisoformat(text)
                if moment.tzinfo is None:
                    return moment.replace(tzinfo=IST)
                return moment.astimezone(IST)
            except (ValueError, OverflowError):  # e.g. year 1 moved west of IST
                return None
    return None


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = str(params.get(name, "0")).lower()
    if value not in ("0", "1", "true", "false", ""):
        raise ApiError.input(f"Invalid `{name}`: 0 or 1.")
    return value in ("1", "true")


async def historical(call: Call) -> Any:
    token = ascii_int(call.path["instrument_token"])
    if token is None or token not in call.state.market.instruments:
        raise ApiError.input("Invalid `instrument_token`.")
    start = _parse_date(call.params, "from")
    end = _parse_date(call.params, "to")
    try:
        candles = call.state.market.candles(
            token,
            call.path["interval"],
            start,
            end,
            oi=_flag(call.params, "oi"),
            continuous=_flag(call.params, "continuous"),
        )
    except CandleError as error:
        raise ApiError.input(str(error)) from None
    for row in candles:
        row[0] = row[0].strftime("%Y-%m-%dT%H:%M:%S%z")
    return {"candles": candles}


async def trigger_range(call: Call) -> Any:
    side = call.path["transaction_type"].lower()
    if side not in ("buy", "sell"):
        raise ApiError.input("Invalid `transaction_type`.")
    market = call.state.market
    out = {}
    for key, instrument in _requested(call, TRIGGER_RANGE_MAX_INSTRUMENTS):
        last = market.last_price(instrument.instrument_token)
        low, high = (0.96, 0.99) if side == "buy" else (1.01, 1.04)
        out[key] = {
            "instrument_token": instrument.instrument_token,
            "lower": instrument.round_price(last * low),
            "upper": instrument.round_price(last * high),
        }
    return out


# -- GTT ---------------------------------------------------------------------------------------


async def gtt_list(call: Call) -> Any:
    return list(kite_state(call.state).gtts.triggers.values())


async def gtt_get(call: Call) -> Any:
    return kite_state(call.state).gtts.get(call.path["trigger_id"])


async def gtt_place(call: Call) -> Any:
    return {"trigger_id": kite_state(call.state).gtts.place(call.params)}


async def gtt_modify(call: Call) -> Any:
    return {"trigger_id": kite_state(call.state).gtts.modify(call.path["trigger_id"], call.params)}


async def gtt_delete(call: Call) -> Any:
    return {"trigger_id": kite_state(call.state).gtts.delete(call.path["trigger_id"])}


# -- margin and charges calculators --------------------------------------------------------------


def _json_orders(call: Call) -> list[Any]:
    if not isinstance(call.body, list) or not call.body:
        raise ApiError.input("Send a non-empty JSON list of orders.")
    return call.body


async def order_margins(call: Call) -> Any:
    return margin_rows(call.state.market, call.state.book.tables, _json_orders(call))


async def basket_margins(call: Call) -> Any:
    rows = margin_rows(call.state.market, call.state.book.tables, _json_orders(call))
    keys = ("span", "exposure", "option_premium", "additional", "bo", "cash", "var", "total")

    def summary(factor: float) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "", "tradingsymbol": "", "exchange": ""}
        for key in keys:
            out[key] = sum(row[key] for row in rows) * (factor if key != "option_premium" else 1)
        out["pnl"] = {"realised": 0, "unrealised": 0}
        out["leverage"] = 0
        out["charges"] = _zero_charges()
        return out

    hedge = 0.85 if len(rows) > 1 else 1.0
    compact = call.query.get("mode") == "compact"
    return {
        "initial": summary(1.0),
        "final": summary(hedge),
        "orders": [] if compact else rows,
        "charges": _zero_charges()
        | {
            "brokerage": sum(row["charges"]["brokerage"] for row in rows),
            "sebi_turnover_charge": sum(row["charges"]["sebi_turnover_charge"] for row in rows),
        },
    }


def _zero_charges() -> dict[str, Any]:
    return {
        "transaction_tax": 0,
        "transaction_tax_type": "",
        "exchange_turnover_charge": 0,
        "sebi_turnover_charge": 0,
        "brokerage": 0,
        "stamp_duty": 0,
        "gst": {"igst": 0, "cgst": 0, "sgst": 0, "total": 0},
        "total": 0,
    }


async def virtual_contract_note(call: Call) -> Any:
    return contract_notes(call.state.market, call.state.book.tables, _json_orders(call))


# -- alerts --------------------------------------------------------------------------------------


async def alerts_list(call: Call) -> Any:
    status = call.query.get("status")
    return [
        kite_state(call.state).alerts.public(alert)
        for alert in kite_state(call.state).alerts.alerts.values()
        if status is None or alert["status"] == status
    ]


async def alerts_create(call: Call) -> Any:
    return kite_state(call.state).alerts.create(call.params)


async def alerts_get(call: Call) -> Any:
    return kite_state(call.state).alerts.public(
        kite_state(call.state).alerts.get(call.path["uuid"])
    )


async def alerts_modify(call: Call) -> Any:
    return kite_state(call.state).alerts.modify(call.path["uuid"], call.params)


async def alerts_delete(call: Call) -> Any:
    ids = [call.path["uuid"]] if "uuid" in call.path else call.query.getlist("uuid")
    kite_state(call.state).alerts.delete(ids)
    return None


async def alerts_history(call: Call) -> Any:
    return kite_state(call.state).alerts.history(call.path["uuid"])


def margin_rows(
    market: Market, tables: OrderTables, orders: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``/margins/orders`` rows for a JSON list of orders (400 on bad entries)."""
    rows = []
    for entry in orders:
        instrument, side, product, quantity, price = _calc_params(market, tables, entry)
        margin = order_margin(instrument, side, product, quantity, price)
        rows.append(
            {
                "type": "equity",
                "tradingsymbol": instrument.tradingsymbol,
                "exchange": instrument.exchange,
                "span": margin["span"],
                "exposure": margin["exposure"],
                "option_premium": margin["option_premium"],
                "additional": 0,
                "bo": 0,
                "cash": 0,
                "var": margin["var"],
                "pnl": {"realised": 0, "unrealised": 0},
                "leverage": MIS_LEVERAGE if product == "MIS" else 1,
                "charges": charges(instrument, side, product, quantity, price),
                "total": margin["total"],
            }
        )
    return rows


def contract_notes(
    market: Market, tables: OrderTables, orders: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``/charges/orders`` rows (virtual contract note) for a JSON list of executed orders."""
    rows = []
    for entry in orders:
        instrument, side, product, quantity, price = _calc_params(market, tables, entry)
        rows.append(
            {
                "transaction_type": side,
                "tradingsymbol": instrument.tradingsymbol,
                "exchange": instrument.exchange,
                "variety": str(entry.get("variety") or "regular"),
                "product": product,
                "order_type": str(entry.get("order_type") or "MARKET"),
                "quantity": quantity,
                "price": price,
                "charges": charges(instrument, side, product, quantity, price),
            }
        )
    return rows


def _calc_params(
    market: Market, tables: OrderTables, entry: Mapping[str, Any]
) -> tuple[SandboxInstrument, str, str, int, float]:
    if not isinstance(entry, Mapping):
        raise ApiError.input("Each order must be a JSON object.")
    instrument = instrument_of(market, entry)
    side = param(entry, "transaction_type", tables.transaction_types)
    product = param(entry, "product", tables.products)
    quantity = optional_int(entry, "quantity")
    if quantity <= 0:
        raise ApiError.input("Invalid `quantity`.")
    price = optional_float(entry, "price") or optional_float(entry, "average_price")
    if price <= 0:
        price = market.last_price(instrument.instrument_token)
    return instrument, side, product, quantity, price


# -- the route table ---------------------------------------------------------------------------


def _route(
    path: str,
    method: str,
    handler: Handler,
    group: str | None = EndpointGroup.OTHER,
    **options: bool,
) -> Route:
    return Route(path, Endpoint(handler, group=group, **options), methods=[method])


def kite_routes() -> list[BaseRoute]:
    """Every Kite Connect v3 REST route (mounted at ``/`` and, for Kite Web, ``/oms``)."""
    return [
        _route("/user/profile", "GET", profile),
        _route("/user/profile/full", "GET", full_profile),
        _route("/user/margins", "GET", margins),
        _route("/user/margins/{segment}", "GET", margins),
        _route("/orders", "GET", orders),
        _route(
            "/orders/{variety}", "POST", place_order, EndpointGroup.ORDER, lossy=True, orders=True
        ),
        _route("/orders/{order_id}", "GET", order_history),
        _route(
            "/orders/{variety}/{order_id}", "PUT", modify_order, EndpointGroup.ORDER, orders=True
        ),
        _route(
            "/orders/{variety}/{order_id}", "DELETE", cancel_order, EndpointGroup.ORDER, orders=True
        ),
        _route("/orders/{order_id}/trades", "GET", order_trades),
        _route("/trades", "GET", trades),
        _route("/portfolio/positions", "GET", positions),
        _route("/portfolio/positions", "PUT", convert_position),
        _route("/portfolio/holdings", "GET", holdings),
        _route("/portfolio/holdings/compact", "GET", holdings_compact),
        _route("/portfolio/holdings/summary", "GET", holdings_summary),
        _route("/portfolio/holdings/auctions", "GET", auctions),
        _route("/portfolio/holdings/authorise", "POST", holdings_authorise),
        _route("/mf/orders", "GET", mf_orders),
        _route("/mf/orders", "POST", mf_place_order),
        _route("/mf/orders/{order_id}", "GET", mf_order),
        _route("/mf/orders/{order_id}", "DELETE", mf_cancel_order),
        _route("/mf/sips", "GET", mf_sips),
        _route("/mf/sips", "POST", mf_place_sip),
        _route("/mf/sips/{sip_id}", "GET", mf_sip),
        _route("/mf/sips/{sip_id}", "PUT", mf_modify_sip),
        _route("/mf/sips/{sip_id}", "DELETE", mf_cancel_sip),
        _route("/mf/holdings", "GET", mf_holdings),
        _route("/mf/instruments", "GET", mf_instruments),
        _route("/instruments", "GET", instruments),
        _route(
            "/instruments/historical/{instrument_token}/{interval}",
            "GET",
            historical,
            EndpointGroup.HISTORICAL,
        ),
        _route("/instruments/trigger_range/{transaction_type}", "GET", trigger_range),
        _route("/instruments/{exchange}", "GET", instruments),
        _route("/quote", "GET", _quote_endpoint("quote"), EndpointGroup.QUOTE),
        _route("/quote/ohlc", "GET", _quote_endpoint("ohlc"), EndpointGroup.QUOTE),
        _route("/quote/ltp", "GET", _quote_endpoint("ltp"), EndpointGroup.QUOTE),
        _route("/gtt/triggers", "GET", gtt_list),
        _route("/gtt/triggers", "POST", gtt_place),
        _route("/gtt/triggers/{trigger_id}", "GET", gtt_get),
        _route("/gtt/triggers/{trigger_id}", "PUT", gtt_modify),
        _route("/gtt/triggers/{trigger_id}", "DELETE", gtt_delete),
        _route("/margins/orders", "POST", order_margins),
        _route("/margins/basket", "POST", basket_margins),
        _route("/charges/orders", "POST", virtual_contract_note),
        _route("/alerts", "GET", alerts_list),
        _route("/alerts", "POST", alerts_create),
        _route("/alerts", "DELETE", alerts_delete),
        _route("/alerts/{uuid}", "GET", alerts_get),
        _route("/alerts/{uuid}", "PUT", alerts_modify),
        _route("/alerts/{uuid}", "DELETE", alerts_delete),
        _route("/alerts/{uuid}/history", "GET", alerts_history),
    ]


def session_routes() -> list[BaseRoute]:
    """Login and session routes (no session needed, not rate limited)."""
    return [
        _route("/connect/login", "GET", connect_login, None, auth=False),
        _route("/session/token", "POST", session_token, None, auth=False),
        _route("/session/token", "DELETE", session_delete, None, auth=False),
        _route("/session/refresh_token", "POST", session_refresh, None, auth=False),
        _route("/api/login", "POST", web_login, None, auth=False),
        _route("/api/twofa", "POST", web_twofa, None, auth=False),
    ]


def routes() -> list[BaseRoute]:
    """Everything Kite's dialect serves: the ticker at ``/ws``, login and session, and the
    REST routes at ``/`` and, for Kite Web, under ``/oms``."""
    api = kite_routes()
    return [
        WebSocketRoute("/ws", ticker_endpoint),
        *session_routes(),
        *api,
        Mount("/oms", routes=api),
    ]
