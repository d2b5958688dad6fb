"""Broker-neutral trading vocabulary: sides, order types, products, statuses, and records.

A strategy written against these names and the neutral operations of
:class:`aio_trader.abc.AbstractBroker` (``last_prices``, ``submit``, ``modify``,
``cancel``, ``follow``, ``order_book``, ``net_positions``, ``portfolio``, ``funds``)
runs unchanged on every broker: each broker maps them to its own enums and records
(``docs/strategies.md`` has the tables) and keeps its own record in ``raw``.

Instruments are symbols ``"EXCHANGE:TRADINGSYMBOL"`` with Kite's exchange names for
every broker (``NSE``, ``BSE``, ``NFO``, ``BFO``, ``MCX``, ``CDS``, ``BCD``).

Everything here is data and pure checks: no I/O. A bad value raises ``TypeError`` /
``ValueError`` naming the field, when the record is built, so nothing is sent.
"""

from __future__ import annotations

import enum
import math
import re
import secrets
from collections.abc import Iterable
from typing import Any, Final

import attrs

from aio_trader._instruments import split_symbol
from aio_trader.errors import UnknownInstrument

__all__ = [
    "EXCHANGES",
    "Funds",
    "Holding",
    "Order",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Position",
    "Product",
    "Side",
    "TradingEnum",
    "Validity",
    "check_symbol",
    "check_symbols",
    "modification",
    "new_tag",
    "unknown_symbols",
]

#: The exchanges of neutral symbols (Kite's names, for every broker).
EXCHANGES: Final = frozenset({"NSE", "BSE", "NFO", "BFO", "MCX", "CDS", "BCD"})

#: A tag every broker takes: letters and digits, 1 to 20 (Kite: 20 alphanumerics at most;
#: Dhan's correlation ids allow more).
_TAG: Final = re.compile(r"[A-Za-z0-9]{1,20}")


# -- enums ------------------------------------------------------------------------------


class TradingEnum(str, enum.Enum):
    """Base of the neutral enums: a ``str`` whose ``str()`` and format are the value.

    Built from a member, its value, or its name in any case (``Side("buy")``,
    ``Product("intraday")``); anything else raises ``ValueError`` listing the values.
    """

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return str(self.value).__format__(format_spec)

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            wanted = value.strip().upper()
            for name, member in cls.__members__.items():
                if wanted in (name, str(member.value).upper()):
                    return member
        return None


class Side(TradingEnum):
    """Buy or sell."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        """The other side (the exit of a position entered on this side)."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(TradingEnum):
    """How an order is priced."""

    MARKET = "MARKET"
    """At the market (brokers want ``market_protection`` for it)."""
    LIMIT = "LIMIT"
    """At ``price`` or better."""
    SL = "SL"
    """Stop-loss limit: a LIMIT order at ``price`` once ``trigger_price`` trades."""
    SL_M = "SL-M"
    """Stop-loss market: a MARKET order once ``trigger_price`` trades."""


class Product(TradingEnum):
    """What the position is held as. ``DELIVERY``, ``INTRADAY`` and ``MARGIN`` are the
    same members as ``CNC``, ``MIS`` and ``NRML``."""

    CNC = "CNC"
    """Delivery (cash and carry): equity bought to keep."""
    MIS = "MIS"
    """Intraday: squared off by the broker before the close."""
    NRML = "NRML"
    """Margin: F&O (and commodities) carried overnight."""
    MTF = "MTF"
    """Margin trading facility: delivery bought with the broker's funding."""
    DELIVERY = "CNC"
    INTRADAY = "MIS"
    MARGIN = "NRML"


class Validity(TradingEnum):
    """How long an order stays."""

    DAY = "DAY"
    """Until the end of the session."""
    IOC = "IOC"
    """Immediate or cancel."""


class OrderStatus(TradingEnum):
    """Where an order is in its life; :attr:`is_final` for the statuses it never leaves.

    Each broker's statuses map onto these (the broker's own word is kept in
    :attr:`Order.broker_status`); a status the mapping does not know is ``UNKNOWN``.
    """

    PENDING = "PENDING"
    """Accepted by the broker, not working at the exchange yet (in transit, validation,
    a modification or cancellation under way, an after-market order)."""
    OPEN = "OPEN"
    """Working at the exchange; maybe partly filled (see ``filled_quantity``)."""
    TRIGGER_PENDING = "TRIGGER_PENDING"
    """A stop-loss order waiting for its trigger price."""
    COMPLETE = "COMPLETE"
    """Filled entirely."""
    CANCELLED = "CANCELLED"
    """Cancelled (by you, or for IOC the exchange); part of it may have filled."""
    REJECTED = "REJECTED"
    """Refused by the broker or the exchange (``message`` says why)."""
    EXPIRED = "EXPIRED"
    """Ended unfilled with the session."""
    UNKNOWN = "UNKNOWN"
    """A status this library does not map (see ``broker_status``)."""

    @property
    def is_final(self) -> bool:
        """True for the statuses an order never leaves."""
        return self in _FINAL


_FINAL: Final = frozenset(
    {OrderStatus.COMPLETE, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


# -- checks -------------------------------------------------------------------------------


def new_tag() -> str:
    """A fresh unique order tag that every broker accepts (19 letters and digits)."""
    return "aio" + secrets.token_hex(8)


def check_symbol(symbol: Any) -> str:
    """``symbol`` if it is ``"EXCHANGE:TRADINGSYMBOL"`` with one of :data:`EXCHANGES`.

    ``TypeError`` for a non-str; :class:`~aio_trader.errors.UnknownInstrument` (an
    ``InvalidInput``) naming it when the exchange is missing or unknown, or the trading
    symbol is empty: the error the instrument index raises for such a symbol.
    """
    exchange, tradingsymbol = split_symbol(symbol)  # the index's check: an EXCHANGE: part
    if exchange not in EXCHANGES or symbol != f"{exchange}:{tradingsymbol}":
        raise UnknownInstrument(
            f"instrument {symbol!r} is not 'EXCHANGE:TRADINGSYMBOL' with an exchange among "
            f"{', '.join(sorted(EXCHANGES))} (e.g. 'NSE:INFY')",
            symbols=(symbol,),
        )
    return str(symbol)


def _member(kind: type[TradingEnum], value: Any, name: str) -> Any:
    if isinstance(value, kind):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a {kind.__name__} or a str, got {type(value).__name__}")
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(dict.fromkeys(str(m.value) for m in kind))
        raise ValueError(f"unknown {name} {value!r}: expected one of {allowed}") from None


def _side(value: Side | str) -> Side:
    member: Side = _member(Side, value, "side")
    return member


def _order_type(value: OrderType | str) -> OrderType:
    member: OrderType = _member(OrderType, value, "order_type")
    return member


def _product(value: Product | str) -> Product:
    member: Product = _member(Product, value, "product")
    return member


def _validity(value: Validity | str) -> Validity:
    member: Validity = _member(Validity, value, "validity")
    return member


def _quantity(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"quantity must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"quantity must be > 0, got {value!r}")
    return value


def _price(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number above 0, got {value!r}")
    return float(value)


def _limit_price(value: Any) -> float | None:
    return _price(value, "price")


def _trigger_price(value: Any) -> float | None:
    return _price(value, "trigger_price")


def _protection(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"market_protection must be a number, got {type(value).__name__}")
    if value == -1 or 0 < value <= 100:
        return float(value)
    raise ValueError(
        f"market_protection must be -1 (automatic) or above 0 up to 100, got {value!r}"
    )


def _tag(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"tag must be a str, got {type(value).__name__}")
    if not _TAG.fullmatch(value):
        raise ValueError(
            f"tag must be 1 to 20 letters or digits (every broker takes it): {value!r}"
        )
    return value


def check_symbols(symbols: Iterable[str]) -> list[str]:
    """``symbols`` (a collection, not one str) checked with :func:`check_symbol`, without
    repeats, in order; ``ValueError`` when there is none."""
    if isinstance(symbols, str):
        raise TypeError("symbols is a collection of 'EXCHANGE:TRADINGSYMBOL' strs, not a str")
    checked = list(dict.fromkeys(check_symbol(symbol) for symbol in symbols))
    if not checked:
        raise ValueError("at least one symbol is needed")
    return checked


def unknown_symbols(symbols: Iterable[str], broker: str) -> UnknownInstrument:
    """The error for symbols a broker does not know (or gave no price for), naming them."""
    names = tuple(symbols)
    return UnknownInstrument(
        f"{broker} does not know {', '.join(names)}", symbols=names, broker=broker
    )


def modification(
    quantity: Any, price: Any, trigger_price: Any, order_type: Any
) -> tuple[int | None, float | None, float | None, OrderType | None]:
    """A modification's values, checked as an :class:`OrderRequest`'s; at least one."""
    if quantity is None and price is None and trigger_price is None and order_type is None:
        raise ValueError("modify needs at least one change (quantity, price, ...)")
    return (
        None if quantity is None else _quantity(quantity),
        _limit_price(price),
        _trigger_price(trigger_price),
        None if order_type is None else _order_type(order_type),
    )


# -- records ------------------------------------------------------------------------------


@attrs.frozen
class OrderRequest:
    """A new order, checked when built (``TypeError`` / ``ValueError`` naming the field):
    ``await broker.submit(OrderRequest("NSE:INFY", Side.BUY, 1, product=Product.MIS))``.

    - ``symbol``: ``"EXCHANGE:TRADINGSYMBOL"``; ``quantity``: an int above 0 (units; for
      F&O a multiple of the lot size, which the broker checks);
    - ``order_type``: ``LIMIT`` and ``SL`` need ``price``, ``SL`` and ``SL_M`` need
      ``trigger_price``; ``MARKET`` and ``SL_M`` take no ``price``;
    - ``market_protection`` (MARKET and SL-M orders): ``-1`` (the broker's automatic
      protection) or a percentage above 0 up to 100; ``None``: the client's default,
      and without one the broker refuses the order before sending it;
    - ``tag``: letters and digits, 1 to 20; a fresh one (:func:`new_tag`) by default.
      It is known before the order is sent, so after an interruption (Ctrl-C, a lost
      answer) ``[o for o in await broker.order_book() if o.tag == request.tag]`` tells
      whether it was placed. One request is one order: to place another, make a new
      request (``attrs.evolve(request, tag=new_tag())``), not the same one again.
    """

    symbol: str = attrs.field(converter=check_symbol)
    side: Side = attrs.field(converter=_side)
    quantity: int = attrs.field(converter=_quantity)
    product: Product = attrs.field(converter=_product, kw_only=True)
    order_type: OrderType = attrs.field(
        default=OrderType.MARKET, converter=_order_type, kw_only=True
    )
    price: float | None = attrs.field(default=None, converter=_limit_price, kw_only=True)
    trigger_price: float | None = attrs.field(default=None, converter=_trigger_price, kw_only=True)
    validity: Validity = attrs.field(default=Validity.DAY, converter=_validity, kw_only=True)
    market_protection: float | None = attrs.field(default=None, converter=_protection, kw_only=True)
    tag: str = attrs.field(factory=new_tag, converter=_tag, kw_only=True)

    def __attrs_post_init__(self) -> None:
        kind = self.order_type
        if kind in (OrderType.LIMIT, OrderType.SL) and self.price is None:
            raise ValueError(f"a {kind} order needs a price")
        if kind in (OrderType.MARKET, OrderType.SL_M) and self.price is not None:
            raise ValueError(f"a {kind} order takes no price (it trades at the market)")
        if kind in (OrderType.SL, OrderType.SL_M) and self.trigger_price is None:
            raise ValueError(f"a {kind} order needs a trigger_price")
        if kind in (OrderType.MARKET, OrderType.LIMIT) and self.trigger_price is not None:
            raise ValueError(f"a {kind} order takes no trigger_price")

    @property
    def exchange(self) -> str:
        """The symbol's exchange (``"NSE"``)."""
        return self.symbol.partition(":")[0]

    @property
    def tradingsymbol(self) -> str:
        """The symbol without its exchange (``"INFY"``)."""
        return self.symbol.partition(":")[2]


@attrs.frozen
class Order:
    """One order as every broker shows it (the latest state).

    A field the broker's record lacks, or a value the mapping does not know, is
    ``None`` (``status``: ``UNKNOWN``); the broker's own record is ``raw`` (Kite's
    ``aio_trader.kite.Order``, Dhan's ``aio_trader.dhan.Order``), its status word
    ``broker_status``. ``tag`` is the client tag (Kite ``tag``, Dhan ``correlationId``).
    """

    order_id: str
    status: OrderStatus = OrderStatus.UNKNOWN
    symbol: str | None = None
    side: Side | None = None
    quantity: int | None = None
    filled_quantity: int | None = None
    price: float | None = None
    trigger_price: float | None = None
    average_price: float | None = None
    order_type: OrderType | None = None
    product: Product | None = None
    validity: Validity | None = None
    tag: str | None = None
    broker_status: str | None = None
    message: str | None = None
    raw: Any = attrs.field(default=None, repr=False, eq=False)

    @property
    def is_final(self) -> bool:
        """The order's status is final (it will not change again)."""
        return self.status.is_final


@attrs.frozen
class Position:
    """A net position of the day (flat ones included: ``quantity`` 0 with their P&L).

    ``quantity``: net units, negative when short; ``average_price``: of the net
    quantity; ``last_price`` where the broker reports it (Dhan does not: ``None``);
    ``pnl`` = ``realised`` + ``unrealised``; ``raw``: the broker's record.
    """

    symbol: str | None
    quantity: int
    product: Product | None = None
    average_price: float | None = None
    last_price: float | None = None
    realised: float | None = None
    unrealised: float | None = None
    pnl: float | None = None
    raw: Any = attrs.field(default=None, repr=False, eq=False)


@attrs.frozen
class Holding:
    """A demat holding. ``quantity`` counts the shares still in settlement (T1) too;
    ``raw``: the broker's record."""

    symbol: str | None
    quantity: int
    average_price: float | None = None
    last_price: float | None = None
    raw: Any = attrs.field(default=None, repr=False, eq=False)

    @property
    def pnl(self) -> float | None:
        """``(last_price - average_price) * quantity``, when both prices are known."""
        if self.last_price is None or self.average_price is None:
            return None
        return (self.last_price - self.average_price) * self.quantity


@attrs.frozen
class Funds:
    """The account's funds for trading (Kite: the equity segment).

    ``available``: what new orders can use now; ``used``: blocked by orders and
    positions; ``opening``: the balance at the start of the day; ``raw``: the
    broker's record (Kite's ``Margins``, Dhan's ``FundLimits``).
    """

    available: float | None
    used: float | None = None
    opening: float | None = None
    raw: Any = attrs.field(default=None, repr=False, eq=False)
