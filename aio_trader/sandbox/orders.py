"""The order engine (broker-neutral): validation, fills against the simulated market, trades,
positions, holdings, margins and charges.

The engine has one vocabulary, Kite's because Kite came first: requests are mappings with
``exchange``, ``tradingsymbol``, ``transaction_type`` (BUY/SELL), ``order_type``
(MARKET/LIMIT/SL/SL-M), ``product``, ``validity``, ``quantity``, ``price``,
``trigger_price``, ``tag``, ``market_protection``...; orders walk the statuses PUT ORDER REQ
RECEIVED -> VALIDATION PENDING -> OPEN PENDING -> OPEN / TRIGGER PENDING -> COMPLETE, or
REJECTED / CANCELLED, each step kept in the order's history; ``to_dict`` views use the same
names. A dialect says which values its broker accepts (``OrderTables``), translates its own
request into this vocabulary and renders orders, positions and holdings in its own shapes.
Every visible change is handed to ``on_update(order, status)``; the dialect renders the
update message its feed sockets send (Kite: the postback).

When the market follows quotes set from outside (``Market.follow_quotes``: paper trading),
orders fill only against instruments that were quoted, at their last quoted price
(``on_quote`` after each quote), and a MARKET order on an instrument not quoted yet is
refused (400): there is no price to fill it at.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs

from aio_trader.sandbox._api import ApiError, now_ist, optional_float, optional_int, param, stamp
from aio_trader.sandbox.config import OrderRules
from aio_trader.sandbox.market import Market, SandboxInstrument

__all__ = [
    "AUTO_MARKET_PROTECTION",
    "MARKET_PROTECTION_REQUIRED",
    "MIS_LEVERAGE",
    "Holding",
    "Order",
    "OrderBook",
    "OrderTables",
    "charges",
    "instrument_of",
    "order_margin",
]

#: The answer (400, kind "input") to a MARKET or SL-M order without market protection
#: (Kite's words).
MARKET_PROTECTION_REQUIRED: Final = (
    "Market orders without market protection are not allowed via API. "
    "Please set market protection or use a Limit order."
)
#: The percentage the sandbox applies for ``market_protection=-1`` (Kite decides its own).
AUTO_MARKET_PROTECTION: Final = 2.0
_MODIFICATIONS_EXCEEDED: Final = "Maximum allowed order modifications exceeded."
_INTRADAY: Final = ("MIS", "CO")
#: The exchange terminal id Kite's newer order bodies carry (one fixed id for the sandbox).
_TERMINAL_ID: Final = "111111111111100"


@attrs.frozen
class OrderTables:
    """The values a broker's order requests may carry (the dialect supplies them); anything
    else is refused with a 400 before an order is booked."""

    varieties: tuple[str, ...]
    order_types: tuple[str, ...]
    products: tuple[str, ...]
    validities: tuple[str, ...]
    transaction_types: tuple[str, ...] = ("BUY", "SELL")


_TAG = re.compile(r"[A-Za-z0-9]{1,20}")
_LIVE: Final = frozenset({"OPEN", "TRIGGER PENDING", "AMO REQ RECEIVED"})
#: The leverage of intraday (MIS) equity orders.
MIS_LEVERAGE: Final = 5.0
#: The fields of an order history entry (a subset of an ``/orders`` entry).
_HISTORY_FIELDS: Final = (
    "average_price",
    "cancelled_quantity",
    "disclosed_quantity",
    "exchange",
    "exchange_order_id",
    "exchange_timestamp",
    "filled_quantity",
    "instrument_token",
    "modified",
    "order_id",
    "order_timestamp",
    "order_type",
    "parent_order_id",
    "pending_quantity",
    "placed_by",
    "price",
    "product",
    "quantity",
    "status",
    "status_message",
    "tag",
    "tradingsymbol",
    "transaction_type",
    "trigger_price",
    "validity",
    "variety",
)
_FNO_MARGIN: Final = 0.15


def segment_of(instrument: SandboxInstrument) -> str:
    """The funds segment an instrument trades against: "commodity" (MCX) or "equity"."""
    return "commodity" if instrument.exchange == "MCX" else "equity"


def instrument_of(market: Market, params: Mapping[str, Any]) -> SandboxInstrument:
    """The instrument named by ``exchange`` + ``tradingsymbol``, else 400."""
    exchange = param(params, "exchange")
    symbol = param(params, "tradingsymbol")
    instrument = market.by_symbol(exchange, symbol)
    if instrument is None:
        raise ApiError.input(f"Invalid `tradingsymbol` {exchange}:{symbol}: instrument not found.")
    return instrument


def _market_protection(
    params: Mapping[str, Any], order_type: str, rules: OrderRules
) -> float | None:
    """``market_protection`` (None when absent): -1 (automatic) or 0 to 100, else 400.

    With ``rules.market_protection``, a MARKET or SL-M order without it, or with 0, is refused
    with Kite's message.
    """
    raw = params.get("market_protection")
    text = "" if raw is None else str(raw).strip()
    protection: float | None = None
    if text:
        try:
            protection = float(text) if text.isascii() else math.nan
        except ValueError:
            protection = math.nan
        if not math.isfinite(protection):
            raise ApiError.input(
                f"Invalid request (failed to decode market_protection, got: {text[:32]} "
                "(expected decimal))"
            )
        if protection != -1 and not 0 <= protection <= 100:
            raise ApiError.input(
                "Invalid `market_protection`: -1 (automatic) or above 0 up to 100."
            )
    if rules.market_protection and order_type in ("MARKET", "SL-M") and not protection:
        raise ApiError.input(MARKET_PROTECTION_REQUIRED)
    return protection


def _protected_price(
    market: Market, instrument: SandboxInstrument, side: str, reference: float, percent: float
) -> float:
    """The LIMIT price a protected market order rests at: ``percent`` beyond ``reference``
    (against the order's side), inside the instrument's price band."""
    factor = 1 + percent / 100 if side == "BUY" else 1 - percent / 100
    lower, upper = market.circuit_limits(instrument.instrument_token)
    price = min(max(reference * factor, lower), upper)
    return max(instrument.round_price(price), instrument.tick_size or 0.05)


def _check_priced(market: Market, instrument: SandboxInstrument, order_type: str) -> None:
    """400 for a MARKET order on an instrument without a price yet (a market following
    quotes from outside, before the instrument's first quote)."""
    if order_type == "MARKET" and not market.has_price(instrument.instrument_token):
        raise ApiError.input(
            f"No price yet for {instrument.key}: a MARKET order fills at the last price, and "
            "no tick of it came (subscribe it on the feed and wait for a tick)."
        )


def _check_tick(instrument: SandboxInstrument, name: str, price: float) -> float:
    """``price`` if it is on the instrument's tick grid (0: not given), else 400."""
    if price and instrument.tick_size and abs(instrument.round_price(price) - price) > 1e-9:
        raise ApiError.input(
            f"Invalid `{name}`: not a multiple of the tick size {instrument.tick_size}."
        )
    return price


def order_margin(
    instrument: SandboxInstrument, transaction_type: str, product: str, quantity: int, price: float
) -> dict[str, float]:
    """Kite-style margin components for one order: span, exposure, option_premium, var, total."""
    value = quantity * price * instrument.multiplier
    out = {"span": 0.0, "exposure": 0.0, "option_premium": 0.0, "var": 0.0}
    if instrument.instrument_type in ("CE", "PE") and transaction_type == "BUY":
        out["option_premium"] = value
    elif instrument.is_derivative:
        notional = (
            value
            if instrument.instrument_type == "FUT"
            else (quantity * max(instrument.strike, price) * instrument.multiplier)
        )
        out["span"] = notional * (_FNO_MARGIN - 0.03)
        out["exposure"] = notional * 0.03
        if product in _INTRADAY:
            out["span"] /= 2
            out["exposure"] /= 2
    elif product in _INTRADAY:
        out["var"] = value / MIS_LEVERAGE
    else:
        out["var"] = value
    out["total"] = sum(out.values())
    return out


def charges(
    instrument: SandboxInstrument, transaction_type: str, product: str, quantity: int, price: float
) -> dict[str, Any]:
    """Plausible Indian charges (STT/CTT, exchange, SEBI, brokerage, stamp, GST) for one fill."""
    value = quantity * price * instrument.multiplier
    kind = instrument.instrument_type
    if instrument.exchange == "MCX":
        tax_type, tax = "ctt", (value * 0.0001 if transaction_type == "SELL" else 0.0)
        turnover_rate = 0.000026
    elif kind in ("CE", "PE"):
        tax_type, tax = "stt", (value * 0.001 if transaction_type == "SELL" else 0.0)
        turnover_rate = 0.0005
    elif kind == "FUT":
        tax_type, tax = "stt", (value * 0.0002 if transaction_type == "SELL" else 0.0)
        turnover_rate = 0.00002
    else:
        delivery = product == "CNC"
        rate = 0.001 if delivery else (0.00025 if transaction_type == "SELL" else 0.0)
        tax_type, tax = "stt", value * rate
        turnover_rate = 0.0000297
    if instrument.exchange in ("CDS", "BCD"):
        tax_type, tax = "stt", 0.0
    brokerage = (
        0.0 if (product == "CNC" and not instrument.is_derivative) else min(20.0, value * 0.0003)
    )
    exchange_charge = value * turnover_rate
    sebi = value * 0.000001
    stamp_duty = value * (0.00015 if transaction_type == "BUY" else 0.0)
    gst = (brokerage + exchange_charge + sebi) * 0.18
    return {
        "transaction_tax": tax,
        "transaction_tax_type": tax_type,
        "exchange_turnover_charge": exchange_charge,
        "sebi_turnover_charge": sebi,
        "brokerage": brokerage,
        "stamp_duty": stamp_duty,
        "gst": {"igst": gst, "cgst": 0, "sgst": 0, "total": gst},
        "total": tax + exchange_charge + sebi + brokerage + stamp_duty + gst,
    }


@attrs.define
class Order:
    """One order in the book (mutable while it lives)."""

    order_id: str
    variety: str
    instrument: SandboxInstrument
    transaction_type: str
    order_type: str
    product: str
    validity: str
    quantity: int
    price: float
    trigger_price: float
    disclosed_quantity: int = 0
    validity_ttl: int = 0
    market_protection: float = 0.0
    tag: str | None = None
    #: tags Kite adds itself (``mktp``, ``autoslice``), after the user's ``tag``.
    system_tags: list[str] = attrs.Factory(list)
    algo_id: str | None = None
    account_id: str | None = None
    meta: dict[str, Any] = attrs.Factory(dict)
    modifications: int = 0
    parent_order_id: str | None = None
    guid: str = ""
    auction_number: str | None = None
    exchange_order_id: str | None = None
    status: str = "PUT ORDER REQ RECEIVED"
    status_message: str | None = None
    order_timestamp: str = ""
    exchange_timestamp: str | None = None
    exchange_update_timestamp: str | None = None
    filled_quantity: int = 0
    average_price: float = 0.0
    cancelled_quantity: int = 0
    modified: bool = False
    triggered: bool = False
    history: list[dict[str, Any]] = attrs.Factory(list)

    @property
    def pending_quantity(self) -> int:
        if self.status in ("COMPLETE", "REJECTED"):
            return 0
        return self.quantity - self.filled_quantity

    def to_dict(self) -> dict[str, Any]:
        """The ``/orders`` entry."""
        i = self.instrument
        tags = ([self.tag] if self.tag else []) + self.system_tags
        # Kite sends tags only when there are some, auction_number only on auction orders
        optional: dict[str, Any] = {"tags": tags} if tags else {}
        if self.auction_number is not None:
            optional["auction_number"] = self.auction_number
        return {
            "account_id": self.account_id,
            "placed_by": "",
            "terminal_id": _TERMINAL_ID,
            "order_id": self.order_id,
            "exchange_order_id": self.exchange_order_id,
            "parent_order_id": self.parent_order_id,
            "status": self.status,
            "status_message": self.status_message,
            "status_message_raw": self.status_message,
            "order_timestamp": self.order_timestamp,
            "exchange_update_timestamp": self.exchange_update_timestamp,
            "exchange_timestamp": self.exchange_timestamp,
            "variety": self.variety,
            "modified": self.modified,
            "exchange": i.exchange,
            "tradingsymbol": i.tradingsymbol,
            "instrument_token": i.instrument_token,
            "order_type": self.order_type,
            "transaction_type": self.transaction_type,
            "validity": self.validity,
            "validity_ttl": self.validity_ttl,
            "product": self.product,
            "quantity": self.quantity,
            "disclosed_quantity": self.disclosed_quantity,
            "price": self.price,
            "trigger_price": self.trigger_price,
            "average_price": self.average_price,
            "filled_quantity": self.filled_quantity,
            "pending_quantity": self.pending_quantity,
            "cancelled_quantity": self.cancelled_quantity,
            "market_protection": self.market_protection,
            "meta": {key: dict(value) for key, value in self.meta.items()},
            "tag": self.tag,
            "guid": self.guid,
            **optional,
        }


@attrs.define
class Holding:
    """A demat holding (CNC buys arrive as ``t1_quantity``)."""

    instrument: SandboxInstrument
    isin: str
    quantity: int
    t1_quantity: int
    average_price: float

    def to_dict(self, market: Market) -> dict[str, Any]:
        i = self.instrument
        last = market.last_price(i.instrument_token)
        close = market.close_price(i.instrument_token)
        total = self.quantity + self.t1_quantity
        return {
            "tradingsymbol": i.tradingsymbol,
            "exchange": i.exchange,
            "instrument_token": i.instrument_token,
            "isin": self.isin,
            "product": "CNC",
            "price": 0,
            "quantity": self.quantity,
            "used_quantity": 0,
            "t1_quantity": self.t1_quantity,
            "realised_quantity": self.quantity,
            "authorised_quantity": 0,
            "authorised_date": stamp(),
            "authorisation": {},
            "opening_quantity": self.quantity,
            "short_quantity": 0,
            "collateral_quantity": 0,
            "collateral_type": "",
            "discrepancy": False,
            "average_price": self.average_price,
            "last_price": last,
            "close_price": close,
            "pnl": (last - self.average_price) * total,
            "day_change": last - close,
            "day_change_percentage": (last - close) * 100 / close if close else 0.0,
            "mtf": {
                "quantity": 0,
                "used_quantity": 0,
                "average_price": 0,
                "value": 0,
                "initial_margin": 0,
            },
        }


@attrs.define
class _Position:
    instrument: SandboxInstrument
    product: str
    buy_quantity: int = 0
    buy_value: float = 0.0
    sell_quantity: int = 0
    sell_value: float = 0.0

    @property
    def quantity(self) -> int:
        return self.buy_quantity - self.sell_quantity

    def to_dict(self, market: Market) -> dict[str, Any]:
        i = self.instrument
        mult = i.multiplier
        last = market.last_price(i.instrument_token)
        close = market.close_price(i.instrument_token)
        buy_price = self.buy_value / self.buy_quantity if self.buy_quantity else 0.0
        sell_price = self.sell_value / self.sell_quantity if self.sell_quantity else 0.0
        qty = self.quantity
        average = buy_price if qty > 0 else sell_price if qty < 0 else 0.0
        value = (self.sell_value - self.buy_value) * mult
        pnl = value + qty * last * mult
        realised = min(self.buy_quantity, self.sell_quantity) * (sell_price - buy_price) * mult
        return {
            "tradingsymbol": i.tradingsymbol,
            "exchange": i.exchange,
            "instrument_token": i.instrument_token,
            "product": self.product,
            "quantity": qty,
            "overnight_quantity": 0,
            "multiplier": mult,
            "average_price": average,
            "close_price": close,
            "last_price": last,
            "value": value,
            "pnl": pnl,
            "m2m": pnl,
            "unrealised": pnl - realised,
            "realised": realised,
            "buy_quantity": self.buy_quantity,
            "buy_price": buy_price,
            "buy_value": self.buy_value * mult,
            "buy_m2m": self.buy_value * mult,
            "sell_quantity": self.sell_quantity,
            "sell_price": sell_price,
            "sell_value": self.sell_value * mult,
            "sell_m2m": self.sell_value * mult,
            "day_buy_quantity": self.buy_quantity,
            "day_buy_price": buy_price,
            "day_buy_value": self.buy_value * mult,
            "day_sell_quantity": self.sell_quantity,
            "day_sell_price": sell_price,
            "day_sell_value": self.sell_value * mult,
        }


#: (exchange, tradingsymbol, ISIN, quantity, average price) the sandbox account starts with.
_OPENING_HOLDINGS: Final = (
    ("NSE", "INFY", "INE009A01021", 10, 1395.5),
    ("NSE", "TCS", "INE467B01029", 5, 3350.0),
    ("BSE", "SBIN", "INE062A01020", 16, 801.78),
    ("NSE", "GOLDBEES", "INF204KB17I5", 100, 61.2),
)


class OrderBook:
    """Orders, trades, positions, holdings and funds of the sandbox account."""

    def __init__(
        self,
        market: Market,
        *,
        tables: OrderTables,
        user_id: str,
        opening_cash: float,
        on_update: Callable[[Order, str | None], None],
        rules: OrderRules | None = None,
    ) -> None:
        self.market = market
        self.tables = tables
        self.rules = rules if rules is not None else OrderRules()
        self.user_id = user_id
        self.opening_cash = opening_cash
        self._on_update = on_update
        self.orders: dict[str, Order] = {}
        self.trades: list[dict[str, Any]] = []
        self.positions: dict[tuple[int, str], _Position] = {}
        self.holdings: dict[int, Holding] = {}
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        for exchange, symbol, isin, quantity, average in _OPENING_HOLDINGS:
            instrument = market.by_symbol(exchange, symbol)
            if instrument is not None:
                self.holdings[instrument.instrument_token] = Holding(
                    instrument, isin, quantity, 0, average
                )

    # -- placement -------------------------------------------------------------------

    def new_id(self) -> str:
        """A fresh Kite-style order id (also what groups autoslice children)."""
        return self._new_id()

    def _new_id(self) -> str:
        return now_ist().strftime("%y%m%d") + f"{next(self._ids):09d}"

    def place(
        self,
        variety: str,
        params: Mapping[str, Any],
        *,
        system_tags: Iterable[str] = (),
        refuse_shortfall: bool = False,
        meta: Mapping[str, Any] | None = None,
    ) -> Order:
        """Validate (400, kind "input", on bad input) and book an order; returns it.

        ``meta`` is merged into the order's ``meta`` before anything is published (a
        dialect keeps its own fields there, e.g. Dhan's ``correlationId``).

        Margin or holding shortfalls do not raise: the order is booked and REJECTED, as Kite
        does; with ``refuse_shortfall`` (an autoslice child) they raise 400 (kind "margin")
        and nothing is booked.
        """
        if variety not in self.tables.varieties:
            raise ApiError.input("Invalid `variety`.")
        order = self._validated(variety, params)
        order.system_tags.extend(system_tags)
        if meta:
            order.meta.update(meta)
        problem = self._funds_problem(order)
        if problem is not None and refuse_shortfall:
            raise ApiError(400, "margin", problem)
        self.orders[order.order_id] = order
        self._walk(order, "PUT ORDER REQ RECEIVED", "VALIDATION PENDING")
        if problem is not None:
            order.status_message = problem
            self._walk(order, "REJECTED")
            self._publish(order)
            return order
        if variety == "amo":
            self._walk(order, "AMO REQ RECEIVED")
            self._publish(order)
            return order
        self._open(order)
        return order

    def _validated(self, variety: str, params: Mapping[str, Any]) -> Order:
        instrument = instrument_of(self.market, params)
        if instrument.is_index:
            raise ApiError.input("Indices are not tradable.")
        tables = self.tables
        transaction_type = param(params, "transaction_type", tables.transaction_types)
        order_type = param(params, "order_type", tables.order_types)
        product = param(params, "product", tables.products)
        if variety == "co":
            product = "CO"  # Kite books cover orders (both legs) under product CO
        validity = str(params.get("validity") or "DAY")
        if validity not in tables.validities:
            raise ApiError.input("Invalid `validity`.")
        self._check_validity(instrument, validity)
        quantity = optional_int(params, "quantity")
        if quantity <= 0:
            raise ApiError.input("Invalid `quantity`.")
        if instrument.lot_size > 1 and quantity % instrument.lot_size:
            raise ApiError.input(
                f"Quantity should be a multiple of the lot size {instrument.lot_size}."
            )
        price = optional_float(params, "price")
        trigger_price = optional_float(params, "trigger_price")
        if order_type in ("LIMIT", "SL") and price <= 0:
            raise ApiError.input("Invalid `price`: a LIMIT/SL order needs a price.")
        if order_type in ("SL", "SL-M") and trigger_price <= 0:
            raise ApiError.input("Invalid `trigger_price`: an SL/SL-M order needs a trigger price.")
        if variety == "co" and trigger_price <= 0:
            raise ApiError.input("Invalid `trigger_price`: a cover order needs a stoploss trigger.")
        _check_tick(instrument, "price", price)
        _check_tick(instrument, "trigger_price", trigger_price)
        protection = _market_protection(params, order_type, self.rules)
        _check_priced(self.market, instrument, order_type)
        system_tags: list[str] = []
        if self.rules.market_protection and order_type in ("MARKET", "SL-M") and protection:
            # Kite books a protected market order as a LIMIT (SL-M: an SL) at the protected
            # price, tagged "mktp", "mktp:<percent>", and shows market_protection 0.
            percent = AUTO_MARKET_PROTECTION if protection == -1 else protection
            reference = (
                trigger_price
                if order_type == "SL-M"
                else self.market.last_price(instrument.instrument_token)
            )
            price = _protected_price(self.market, instrument, transaction_type, reference, percent)
            order_type = "LIMIT" if order_type == "MARKET" else "SL"
            system_tags = ["mktp", f"mktp:{percent:.2f}"]
            protection = 0.0
        validity_ttl = optional_int(params, "validity_ttl")
        if validity == "TTL" and validity_ttl <= 0:
            raise ApiError.input("Invalid `validity_ttl`: TTL validity needs minutes.")
        disclosed = optional_int(params, "disclosed_quantity")
        if disclosed > quantity:
            raise ApiError.input("Invalid `disclosed_quantity`.")
        meta: dict[str, Any] = {}
        if variety == "iceberg":
            legs = optional_int(params, "iceberg_legs")
            leg_quantity = optional_int(params, "iceberg_quantity")
            if not 2 <= legs <= 50 or leg_quantity <= 0:
                raise ApiError.input("Invalid `iceberg_legs` or `iceberg_quantity`.")
            meta["iceberg"] = {
                "leg": 1,
                "legs": legs,
                "leg_quantity": leg_quantity,
                "total_quantity": quantity,
                "remaining_quantity": max(quantity - leg_quantity, 0),
            }
        auction_number = params.get("auction_number")
        if variety == "auction" and not auction_number:
            raise ApiError.input("Missing `auction_number`.")
        tag = params.get("tag")
        if tag is not None and tag != "":
            tag = str(tag)
            if not _TAG.fullmatch(tag):
                raise ApiError.input("Invalid `tag`: alphanumeric, at most 20 characters.")
        else:
            tag = None
        algo_id = params.get("algo_id")
        order_id = self._new_id()
        return Order(
            order_id=order_id,
            variety=variety,
            instrument=instrument,
            transaction_type=transaction_type,
            order_type=order_type,
            product=product,
            validity=validity,
            quantity=quantity,
            price=price,
            trigger_price=trigger_price,
            disclosed_quantity=disclosed,
            validity_ttl=validity_ttl,
            market_protection=protection or 0.0,
            tag=tag,
            system_tags=system_tags,
            algo_id=str(algo_id) if algo_id not in (None, "") else None,
            account_id=self.user_id,
            meta=meta,
            guid=hashlib.sha1(order_id.encode(), usedforsecurity=False).hexdigest()[:12],
            auction_number=str(auction_number) if auction_number else None,
            order_timestamp=stamp(),
        )

    def _check_validity(self, instrument: SandboxInstrument, validity: str) -> None:
        if self.rules.mcx_no_ioc and validity == "IOC" and instrument.exchange == "MCX":
            raise ApiError.input("IOC orders are not allowed on MCX for API orders.")

    def _funds_problem(self, order: Order) -> str | None:
        i = order.instrument
        if order.transaction_type == "SELL" and order.product == "CNC" and not i.is_derivative:
            holding = self.holdings.get(i.instrument_token)
            owned = holding.quantity + holding.t1_quantity if holding else 0
            pending = sum(
                o.pending_quantity
                for o in self.orders.values()
                if o is not order
                and o.status in _LIVE
                and o.instrument is i
                and o.product == "CNC"
                and o.transaction_type == "SELL"
            )
            if order.quantity + pending > owned:
                return f"Insufficient holdings: {owned - pending} available to sell."
            return None
        price = order.price or self.market.last_price(i.instrument_token)
        required = order_margin(i, order.transaction_type, order.product, order.quantity, price)
        available = self.funds(segment_of(i))["net"]
        if required["total"] > available:
            return (
                f"Insufficient funds. Required margin is {required['total']:.2f} "
                f"but available margin is {available:.2f}."
            )
        return None

    def _walk(self, order: Order, *statuses: str) -> None:
        for status in statuses:
            order.status = status
            if status in ("OPEN", "TRIGGER PENDING", "AMO REQ RECEIVED") and (
                order.exchange_order_id is None
            ):
                order.exchange_order_id = f"13{order.order_id[-14:]:0>14}"
                order.exchange_timestamp = stamp()
            if order.exchange_order_id is not None:
                order.exchange_update_timestamp = stamp()
            order.history.append(order.to_dict())

    def _open(self, order: Order) -> None:
        waiting = "TRIGGER PENDING" if order.order_type in ("SL", "SL-M") else "OPEN"
        self._walk(order, "OPEN PENDING", waiting)
        self._publish(order)
        if not self._try_fill(order) and order.validity == "IOC":
            self._cancel(order, "IOC order cancelled: not matched.")

    # -- fills ---------------------------------------------------------------------------

    def _try_fill(self, order: Order) -> bool:
        token = order.instrument.instrument_token
        if not self.market.has_price(token):
            return False  # following quotes, and none came for it yet
        last = self.market.last_price(token)
        buy = order.transaction_type == "BUY"
        if order.status == "TRIGGER PENDING":
            if (buy and last < order.trigger_price) or (not buy and last > order.trigger_price):
                return False
            order.triggered = True
            self._walk(order, "OPEN")
            self._publish(order)
        if order.status != "OPEN":
            return False
        if order.order_type in ("LIMIT", "SL") and (
            (buy and last > order.price) or (not buy and last < order.price)
        ):
            return False
        self._fill(order, last)
        return True

    def _fill(self, order: Order, price: float) -> None:
        i = order.instrument
        quantity = order.quantity - order.filled_quantity
        order.filled_quantity = order.quantity
        order.average_price = price
        self._walk(order, "COMPLETE")
        now = now_ist()
        self.trades.append(
            {
                "trade_id": f"{next(self._trade_ids):08d}",
                "order_id": order.order_id,
                "exchange": i.exchange,
                "tradingsymbol": i.tradingsymbol,
                "instrument_token": i.instrument_token,
                "product": order.product,
                "average_price": price,
                "quantity": quantity,
                "exchange_order_id": order.exchange_order_id,
                "transaction_type": order.transaction_type,
                "fill_timestamp": stamp(now),
                "order_timestamp": now.strftime("%H:%M:%S"),
                "exchange_timestamp": stamp(now),
            }
        )
        self._book_position(order, quantity, price)
        self._publish(order)
        if order.variety == "co" and order.parent_order_id is None:
            self._cover_leg(order)

    def _book_position(self, order: Order, quantity: int, price: float) -> None:
        i = order.instrument
        key = (i.instrument_token, order.product)
        position = self.positions.setdefault(key, _Position(i, order.product))
        if order.transaction_type == "BUY":
            position.buy_quantity += quantity
            position.buy_value += quantity * price
        else:
            position.sell_quantity += quantity
            position.sell_value += quantity * price
        if order.product == "CNC" and not i.is_derivative:
            self._book_holding(order, quantity, price)

    def _book_holding(self, order: Order, quantity: int, price: float) -> None:
        i = order.instrument
        holding = self.holdings.get(i.instrument_token)
        if order.transaction_type == "BUY":
            if holding is None:
                holding = self.holdings[i.instrument_token] = Holding(i, "", 0, 0, price)
            total = holding.quantity + holding.t1_quantity
            holding.average_price = (holding.average_price * total + price * quantity) / (
                total + quantity
            )
            holding.t1_quantity += quantity
        elif holding is not None:
            from_settled = min(holding.quantity, quantity)
            holding.quantity -= from_settled
            holding.t1_quantity -= quantity - from_settled
            if holding.quantity + holding.t1_quantity <= 0:
                del self.holdings[i.instrument_token]

    def _cover_leg(self, parent: Order) -> None:
        leg = Order(
            order_id=self._new_id(),
            variety="co",
            instrument=parent.instrument,
            transaction_type="SELL" if parent.transaction_type == "BUY" else "BUY",
            order_type="SL-M",
            product=parent.product,
            validity="DAY",
            quantity=parent.quantity,
            price=0.0,
            trigger_price=parent.trigger_price,
            parent_order_id=parent.order_id,
            tag=parent.tag,
            account_id=self.user_id,
            order_timestamp=stamp(),
        )
        self.orders[leg.order_id] = leg
        self._walk(leg, "PUT ORDER REQ RECEIVED", "VALIDATION PENDING")
        self._open(leg)

    def on_market_step(self) -> None:
        """Fill live orders the market has crossed (called after each market step)."""
        for order in [o for o in self.orders.values() if o.status in ("OPEN", "TRIGGER PENDING")]:
            self._try_fill(order)

    def on_quote(self, token: int) -> None:
        """Fill the live orders of one instrument its new quote crossed (called after
        ``Market.set_quote``), at its last price, in the order they were placed."""
        for order in [
            o
            for o in self.orders.values()
            if o.instrument.instrument_token == token and o.status in ("OPEN", "TRIGGER PENDING")
        ]:
            self._try_fill(order)

    # -- modify / cancel -------------------------------------------------------------------

    def get(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise ApiError.input("Couldn't find that `order_id`.")
        return order

    def by_tag(self, tag: str) -> list[Order]:
        return [order for order in self.orders.values() if order.tag == tag]

    def modify(self, variety: str, order_id: str, params: Mapping[str, Any]) -> Order:
        """Modify a live order (quantity, price, trigger_price, order_type, validity...)."""
        order = self.get(order_id)
        if order.status not in _LIVE:
            raise ApiError.input(f"Order cannot be modified: it is {order.status}.")
        limit = self.rules.max_modifications
        if limit is not None and order.modifications >= limit:
            raise ApiError.input(_MODIFICATIONS_EXCEEDED)
        changes: dict[str, Any] = {}
        if params.get("order_type"):
            changes["order_type"] = param(params, "order_type", self.tables.order_types)
        if params.get("quantity") not in (None, ""):
            quantity = optional_int(params, "quantity")
            lot = max(order.instrument.lot_size, 1)
            if quantity <= 0 or quantity % lot:
                raise ApiError.input("Invalid `quantity`.")
            changes["quantity"] = quantity
        for name in ("price", "trigger_price"):
            if params.get(name) not in (None, ""):
                changes[name] = _check_tick(order.instrument, name, optional_float(params, name))
        if params.get("validity"):
            changes["validity"] = param(params, "validity", self.tables.validities)
            self._check_validity(order.instrument, changes["validity"])
        if params.get("disclosed_quantity") not in (None, ""):
            changes["disclosed_quantity"] = optional_int(params, "disclosed_quantity")
        order_type = changes.get("order_type", order.order_type)
        if order_type in ("LIMIT", "SL") and changes.get("price", order.price) <= 0:
            raise ApiError.input("Invalid `price`: a LIMIT/SL order needs a price.")
        if order_type in ("SL", "SL-M") and changes.get("trigger_price", order.trigger_price) <= 0:
            raise ApiError.input("Invalid `trigger_price`: an SL/SL-M order needs a trigger price.")
        if "order_type" in changes:
            protection = _market_protection(params, order_type, self.rules)
            _check_priced(self.market, order.instrument, order_type)
            if self.rules.market_protection and order_type in ("MARKET", "SL-M") and protection:
                percent = AUTO_MARKET_PROTECTION if protection == -1 else protection
                token = order.instrument.instrument_token
                trigger = changes.get("trigger_price", order.trigger_price)
                reference = trigger if order_type == "SL-M" else self.market.last_price(token)
                changes["price"] = _protected_price(
                    self.market, order.instrument, order.transaction_type, reference, percent
                )
                changes["order_type"] = "LIMIT" if order_type == "MARKET" else "SL"
                tags = [t for t in order.system_tags if not t.startswith("mktp")]
                changes["system_tags"] = [*tags, "mktp", f"mktp:{percent:.2f}"]
        live = order.status
        self._walk(order, "MODIFY VALIDATION PENDING", "MODIFY PENDING")
        for name, value in changes.items():
            setattr(order, name, value)
        order.modifications += 1
        order.modified = True
        order.order_timestamp = stamp()
        if live == "AMO REQ RECEIVED":
            self._walk(order, "MODIFIED", live)
        else:
            waiting = (
                "TRIGGER PENDING"
                if order.order_type in ("SL", "SL-M") and not (order.triggered)
                else "OPEN"
            )
            self._walk(order, "MODIFIED", waiting)
        self._publish(order, status="UPDATE")
        if order.status != "AMO REQ RECEIVED":
            self._try_fill(order)
        return order

    def cancel(self, variety: str, order_id: str) -> Order:
        """Cancel a live order; a cover order's stoploss leg is exited at market instead."""
        order = self.get(order_id)
        if order.status not in _LIVE:
            raise ApiError.input(f"Order cannot be cancelled: it is {order.status}.")
        if order.variety == "co" and order.parent_order_id is not None:
            order.order_type = "MARKET"
            if order.status == "TRIGGER PENDING":
                self._walk(order, "OPEN")
            self._fill(order, self.market.last_price(order.instrument.instrument_token))
            return order
        self._cancel(order, None)
        return order

    def _cancel(self, order: Order, message: str | None) -> None:
        order.cancelled_quantity = order.quantity - order.filled_quantity
        order.status_message = message
        self._walk(order, "CANCEL PENDING", "CANCELLED")
        self._publish(order)

    # -- funds -------------------------------------------------------------------------------

    def funds(self, segment: str) -> dict[str, Any]:
        """The ``/user/margins/{segment}`` body."""
        blocked = 0.0
        for order in self.orders.values():
            i = order.instrument
            if order.status in _LIVE and segment_of(i) == segment:
                price = order.price or self.market.last_price(i.instrument_token)
                blocked += order_margin(
                    i, order.transaction_type, order.product, order.pending_quantity, price
                )["total"]
        span = exposure = premium = delivery = 0.0
        realised = unrealised = 0.0
        for position in self.positions.values():
            i = position.instrument
            if segment_of(i) != segment:
                continue
            data = position.to_dict(self.market)
            realised += data["realised"]
            unrealised += data["unrealised"]
            quantity = position.quantity
            if quantity == 0:
                continue
            side = "BUY" if quantity > 0 else "SELL"
            margin = order_margin(i, side, position.product, abs(quantity), data["average_price"])
            span += margin["span"]
            exposure += margin["exposure"]
            premium += margin["option_premium"]
            delivery += margin["var"]
        debits = blocked + span + exposure + premium + delivery
        net = self.opening_cash - debits + realised
        return {
            "enabled": True,
            "net": net,
            "available": {
                "adhoc_margin": 0,
                "cash": self.opening_cash,
                "opening_balance": self.opening_cash,
                "live_balance": net,
                "collateral": 0,
                "intraday_payin": 0,
            },
            "utilised": {
                "debits": debits,
                "exposure": exposure,
                "m2m_realised": realised,
                "m2m_unrealised": unrealised,
                "option_premium": premium,
                "payout": 0,
                "span": span + blocked,
                "holding_sales": 0,
                "turnover": 0,
                "liquid_collateral": 0,
                "stock_collateral": 0,
                "delivery": delivery,
            },
        }

    # -- views ---------------------------------------------------------------------------

    def positions_dict(self) -> dict[str, list[dict[str, Any]]]:
        rows = [position.to_dict(self.market) for position in self.positions.values()]
        return {"net": rows, "day": [dict(row) for row in rows]}

    def holdings_list(self) -> list[dict[str, Any]]:
        return [holding.to_dict(self.market) for holding in self.holdings.values()]

    def convert(self, params: Mapping[str, Any]) -> None:
        """Move ``quantity`` of an open position from ``old_product`` to ``new_product``."""
        exchange = param(params, "exchange")
        symbol = param(params, "tradingsymbol")
        transaction_type = param(params, "transaction_type", self.tables.transaction_types)
        param(params, "position_type", ("day", "overnight"))
        old = param(params, "old_product", self.tables.products)
        new = param(params, "new_product", self.tables.products)
        quantity = optional_int(params, "quantity")
        instrument = self.market.by_symbol(exchange, symbol)
        position = self.positions.get((instrument.instrument_token, old)) if instrument else None
        if instrument is None or position is None or quantity <= 0 or old == new:
            raise ApiError.input("No open position to convert.")
        net = position.quantity if transaction_type == "BUY" else -position.quantity
        if net < quantity:
            raise ApiError.input("Position quantity is less than the quantity to convert.")
        target = self.positions.setdefault(
            (instrument.instrument_token, new), _Position(instrument, new)
        )
        if transaction_type == "BUY":
            price = position.buy_value / position.buy_quantity
            position.buy_quantity -= quantity
            position.buy_value -= quantity * price
            target.buy_quantity += quantity
            target.buy_value += quantity * price
        else:
            price = position.sell_value / position.sell_quantity
            position.sell_quantity -= quantity
            position.sell_value -= quantity * price
            target.sell_quantity += quantity
            target.sell_value += quantity * price

    # -- updates ---------------------------------------------------------------------------

    def _publish(self, order: Order, status: str | None = None) -> None:
        """Hand the order's new state to ``on_update`` (``status`` overrides its status)."""
        self._on_update(order, status)

    def orders_list(self) -> list[dict[str, Any]]:
        rows = [order.to_dict() for order in self.orders.values()]
        for row in rows:
            row["placed_by"] = self.user_id
        return rows

    def history(self, order_id: str) -> list[dict[str, Any]]:
        """``/orders/{order_id}``: the order at each status, in Kite's history fields."""
        rows = [
            {key: entry[key] for key in _HISTORY_FIELDS} for entry in self.get(order_id).history
        ]
        for row in rows:
            row["placed_by"] = self.user_id
        return rows

    def order_trades(self, order_id: str) -> list[dict[str, Any]]:
        self.get(order_id)
        return [trade for trade in self.trades if trade["order_id"] == order_id]
