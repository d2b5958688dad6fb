"""Kite's side of the neutral trading operations (:mod:`aio_trader.trading`).

Tables from the neutral enums to Kite's values and back, the record mappings, and the
operations themselves, each a few lines over ``Kite``'s own methods (so every rule of
those holds: checks before I/O, rate limits, never sending an order twice). Kite takes
neutral symbols as they are (``"NSE:INFY"``: Kite's own instrument keys).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, cast

from aio_trader._trading import (
    Funds,
    Holding,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
    TradingEnum,
    Validity,
    check_symbols,
    modification,
    unknown_symbols,
)
from aio_trader.kite import _models as kite
from aio_trader.kite.constants import LTP_MAX_INSTRUMENTS

if TYPE_CHECKING:
    from aio_trader.kite._broker import Kite
    from aio_trader.kite._feed import KiteFeed

__all__ = [
    "ORDER_TYPES",
    "PRODUCTS",
    "SIDES",
    "STATUSES",
    "VALIDITIES",
    "cancel",
    "follow",
    "funds",
    "last_prices",
    "modify",
    "net_positions",
    "order_book",
    "portfolio",
    "submit",
]

#: Neutral -> Kite (the neutral values are Kite's: the tables are the identity).
SIDES: Final[Mapping[Side, str]] = MappingProxyType({Side.BUY: "BUY", Side.SELL: "SELL"})
ORDER_TYPES: Final[Mapping[OrderType, str]] = MappingProxyType(
    {
        OrderType.MARKET: "MARKET",
        OrderType.LIMIT: "LIMIT",
        OrderType.SL: "SL",
        OrderType.SL_M: "SL-M",
    }
)
PRODUCTS: Final[Mapping[Product, str]] = MappingProxyType(
    {Product.CNC: "CNC", Product.MIS: "MIS", Product.NRML: "NRML", Product.MTF: "MTF"}
)
VALIDITIES: Final[Mapping[Validity, str]] = MappingProxyType(
    {Validity.DAY: "DAY", Validity.IOC: "IOC"}
)
#: Kite's order statuses -> neutral.
STATUSES: Final[Mapping[str, OrderStatus]] = MappingProxyType(
    {
        "PUT ORDER REQ RECEIVED": OrderStatus.PENDING,
        "VALIDATION PENDING": OrderStatus.PENDING,
        "OPEN PENDING": OrderStatus.PENDING,
        "AMO REQ RECEIVED": OrderStatus.PENDING,
        "MODIFY VALIDATION PENDING": OrderStatus.PENDING,
        "MODIFY PENDING": OrderStatus.PENDING,
        "CANCEL PENDING": OrderStatus.PENDING,
        "OPEN": OrderStatus.OPEN,
        "MODIFIED": OrderStatus.OPEN,
        "TRIGGER PENDING": OrderStatus.TRIGGER_PENDING,
        "COMPLETE": OrderStatus.COMPLETE,
        "CANCELLED": OrderStatus.CANCELLED,
        "REJECTED": OrderStatus.REJECTED,
    }
)


def _back(table: Mapping[Any, str], value: str | None) -> Any:
    """The neutral member whose Kite value is ``value``, or None."""
    for member, wire in table.items():
        if wire == value:
            return member
    return None


def _symbol(exchange: str | None, tradingsymbol: str | None) -> str | None:
    return f"{exchange}:{tradingsymbol}" if exchange and tradingsymbol else None


# -- records ---------------------------------------------------------------------------


def order_from(order: kite.Order) -> Order:
    """The neutral :class:`~aio_trader.trading.Order` of Kite's order record."""
    return Order(
        order_id=str(order.order_id or ""),
        status=STATUSES.get(order.status or "", OrderStatus.UNKNOWN),
        symbol=_symbol(order.exchange, order.tradingsymbol),
        side=_back(SIDES, order.transaction_type),
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        price=order.price or None,
        trigger_price=order.trigger_price or None,
        average_price=order.average_price or None,
        order_type=_back(ORDER_TYPES, order.order_type),
        product=_back(PRODUCTS, order.product),
        validity=_back(VALIDITIES, order.validity),
        tag=order.tag,
        broker_status=order.status,
        message=order.status_message,
        raw=order,
    )


def position_from(position: kite.Position) -> Position:
    """The neutral position of Kite's net position record."""
    realised, unrealised = position.realised, position.unrealised
    pnl = position.pnl
    if pnl is None and realised is not None and unrealised is not None:
        pnl = realised + unrealised
    return Position(
        symbol=_symbol(position.exchange, position.tradingsymbol),
        quantity=position.quantity or 0,
        product=_back(PRODUCTS, position.product),
        average_price=position.average_price,
        last_price=position.last_price,
        realised=realised,
        unrealised=unrealised,
        pnl=pnl,
        raw=position,
    )


def holding_from(holding: kite.Holding) -> Holding:
    """The neutral holding of Kite's: ``quantity`` + ``t1_quantity``."""
    return Holding(
        symbol=_symbol(holding.exchange, holding.tradingsymbol),
        quantity=(holding.quantity or 0) + (holding.t1_quantity or 0),
        average_price=holding.average_price,
        last_price=holding.last_price,
        raw=holding,
    )


def funds_from(margins: kite.Margins) -> Funds:
    """The neutral funds of Kite's margins: the equity segment's ``net`` (available),
    ``utilised.debits`` (used) and ``available.opening_balance`` (opening)."""
    equity = margins.equity
    if equity is None:
        return Funds(available=None, raw=margins)
    return Funds(
        available=equity.net,
        used=None if equity.utilised is None else equity.utilised.debits,
        opening=None if equity.available is None else equity.available.opening_balance,
        raw=margins,
    )


def _wire(table: Mapping[Any, str], value: TradingEnum) -> str:
    return table[value]


# -- the operations ----------------------------------------------------------------------


async def last_prices(client: Kite, symbols: Iterable[str]) -> dict[str, float]:
    """``Kite.ltp`` in chunks of 1000; unknown symbols raise ``UnknownInstrument``."""
    wanted = check_symbols(symbols)
    prices: dict[str, float] = {}
    for start in range(0, len(wanted), LTP_MAX_INSTRUMENTS):
        chunk = wanted[start : start + LTP_MAX_INSTRUMENTS]
        quotes = await client.ltp(chunk)
        for symbol in chunk:
            quote = quotes.get(symbol)
            if quote is not None and quote.last_price is not None:
                prices[symbol] = quote.last_price
    missing = [symbol for symbol in wanted if symbol not in prices]
    if missing:
        raise unknown_symbols(missing, "kite")
    return prices


async def submit(client: Kite, request: OrderRequest) -> str:
    """``Kite.place_order`` (variety ``regular``) with the request's tag."""
    if not isinstance(request, OrderRequest):
        raise TypeError(f"request must be an OrderRequest, got {type(request).__name__}")
    return await client.place_order(
        "regular",
        request.exchange,
        request.tradingsymbol,
        _wire(SIDES, request.side),
        request.quantity,
        _wire(PRODUCTS, request.product),
        _wire(ORDER_TYPES, request.order_type),
        price=request.price,
        validity=_wire(VALIDITIES, request.validity),
        trigger_price=request.trigger_price,
        tag=request.tag,
        market_protection=request.market_protection,
    )


async def modify(
    client: Kite,
    order_id: str,
    quantity: Any,
    price: Any,
    trigger_price: Any,
    order_type: Any,
) -> str:
    """``Kite.modify_order`` (variety ``regular``)."""
    quantity, price, trigger_price, kind = modification(quantity, price, trigger_price, order_type)
    return await client.modify_order(
        "regular",
        order_id,
        quantity=quantity,
        price=price,
        order_type=None if kind is None else _wire(ORDER_TYPES, kind),
        trigger_price=trigger_price,
    )


async def cancel(client: Kite, order_id: str) -> str:
    """``Kite.cancel_order`` (variety ``regular``)."""
    return await client.cancel_order("regular", order_id)


async def follow(
    client: Kite,
    order_id: str,
    feed: AsyncIterable[object] | None,
    timeout: float | None,
) -> Order:
    """``Kite.wait_for_order``, mapped."""
    done = await client.wait_for_order(order_id, cast("KiteFeed | None", feed), timeout)
    return order_from(done)


async def order_book(client: Kite) -> list[Order]:
    """``Kite.orders``, mapped."""
    return [order_from(order) for order in await client.orders()]


async def net_positions(client: Kite) -> list[Position]:
    """``Kite.positions().net``, mapped."""
    return [position_from(p) for p in (await client.positions()).net or ()]


async def portfolio(client: Kite) -> list[Holding]:
    """``Kite.holdings``, mapped."""
    return [holding_from(h) for h in await client.holdings()]


async def funds(client: Kite) -> Funds:
    """``Kite.margins()`` (every segment; the equity one mapped)."""
    return funds_from(await client.margins())
