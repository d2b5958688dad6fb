"""Dhan's side of the neutral trading operations (:mod:`aio_trader.trading`).

Tables from the neutral enums to Dhan's values and back, the record mappings, and the
operations themselves, each a few lines over ``Dhan``'s own methods (so every rule of
those holds: checks before I/O, rate limits, never sending an order twice by
correlation id). Neutral symbols (``"NSE:INFY"``, Kite's exchange names) become Dhan's
``(exchange_segment, security_id)`` through the client's instrument index.
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
from aio_trader.dhan import _models as dhan
from aio_trader.errors import UnknownInstrument

if TYPE_CHECKING:
    from aio_trader._instruments import InstrumentIndex
    from aio_trader.dhan._broker import Dhan
    from aio_trader.dhan._feed import DhanFeed

__all__ = [
    "ORDER_TYPES",
    "PRODUCTS",
    "SEGMENTS",
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

#: Neutral -> Dhan.
SIDES: Final[Mapping[Side, str]] = MappingProxyType({Side.BUY: "BUY", Side.SELL: "SELL"})
ORDER_TYPES: Final[Mapping[OrderType, str]] = MappingProxyType(
    {
        OrderType.MARKET: "MARKET",
        OrderType.LIMIT: "LIMIT",
        OrderType.SL: "STOP_LOSS",
        OrderType.SL_M: "STOP_LOSS_MARKET",
    }
)
PRODUCTS: Final[Mapping[Product, str]] = MappingProxyType(
    {Product.CNC: "CNC", Product.MIS: "INTRADAY", Product.NRML: "MARGIN", Product.MTF: "MTF"}
)
VALIDITIES: Final[Mapping[Validity, str]] = MappingProxyType(
    {Validity.DAY: "DAY", Validity.IOC: "IOC"}
)
#: Dhan's order statuses -> neutral (Dhan's ``PENDING`` is an order working at the
#: exchange: neutral ``OPEN``).
STATUSES: Final[Mapping[str, OrderStatus]] = MappingProxyType(
    {
        "TRANSIT": OrderStatus.PENDING,
        "PENDING": OrderStatus.OPEN,
        "PART_TRADED": OrderStatus.OPEN,
        "TRADED": OrderStatus.COMPLETE,
        "CANCELLED": OrderStatus.CANCELLED,
        "REJECTED": OrderStatus.REJECTED,
        "EXPIRED": OrderStatus.EXPIRED,
    }
)
#: A neutral symbol's exchange (Kite's names) -> Dhan's exchange segment.
SEGMENTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "NSE": "NSE_EQ",
        "BSE": "BSE_EQ",
        "NFO": "NSE_FNO",
        "BFO": "BSE_FNO",
        "MCX": "MCX_COMM",
        "CDS": "NSE_CURRENCY",
        "BCD": "BSE_CURRENCY",
    }
)
_EXCHANGES: Final[Mapping[str, str]] = MappingProxyType(
    {segment: exchange for exchange, segment in SEGMENTS.items()}
)


def _back(table: Mapping[Any, str], value: str | None) -> Any:
    """The neutral member whose Dhan value is ``value``, or None."""
    for member, wire in table.items():
        if wire == value:
            return member
    return None


def _wire(table: Mapping[Any, str], value: TradingEnum) -> str:
    return table[value]


# -- symbols ---------------------------------------------------------------------------


class _Symbols:
    """Neutral symbols <-> Dhan's ``(exchange_segment, security_id)``, through the
    client's instrument index (:meth:`Dhan.instrument_index`: downloaded once a day)."""

    def __init__(self, index: InstrumentIndex) -> None:
        self._index = index

    @classmethod
    async def of(cls, client: Dhan) -> _Symbols:
        return cls(await client.instrument_index())

    def keys(self, symbols: Iterable[str]) -> dict[str, tuple[str, str, float]]:
        """Every symbol's ``(segment, security_id, tick_size)``; ``UnknownInstrument``
        naming those Dhan does not list (with the index's suggestions for one)."""
        wanted = check_symbols(symbols)
        found: dict[str, tuple[str, str, float]] = {}
        missing: list[str] = []
        for symbol in wanted:
            try:
                instrument = self._index.get(symbol)
            except UnknownInstrument:
                if len(wanted) == 1:
                    raise
                missing.append(symbol)
                continue
            segment, security_id = cast("tuple[str, str]", instrument.key)
            found[symbol] = (segment, security_id, instrument.tick_size or 0.05)
        if missing:
            raise unknown_symbols(missing, "dhan")
        return found

    def symbol(self, segment: str | None, security_id: str | None, name: str | None) -> str | None:
        """The neutral symbol of a Dhan record's instrument: the index's, else the
        exchange of ``segment`` with Dhan's trading symbol ``name`` (None if unknown)."""
        if segment and security_id:
            try:
                return self._index.by_key((segment, security_id)).symbol
            except KeyError:
                pass
        exchange = _EXCHANGES.get(segment or "")
        return f"{exchange}:{name}" if exchange and name else None


# -- records ---------------------------------------------------------------------------


def order_from(order: dhan.Order, symbols: _Symbols) -> Order:
    """The neutral :class:`~aio_trader.trading.Order` of Dhan's order record."""
    return Order(
        order_id=str(order.order_id or ""),
        status=STATUSES.get(order.order_status or "", OrderStatus.UNKNOWN),
        symbol=symbols.symbol(order.exchange_segment, order.security_id, order.trading_symbol),
        side=_back(SIDES, order.transaction_type),
        quantity=order.quantity,
        filled_quantity=order.filled_qty,
        price=order.price or None,
        trigger_price=order.trigger_price or None,
        average_price=order.average_traded_price or None,
        order_type=_back(ORDER_TYPES, order.order_type),
        product=_back(PRODUCTS, order.product_type),
        validity=_back(VALIDITIES, order.validity),
        tag=order.correlation_id or None,
        broker_status=order.order_status,
        message=order.oms_error_description or None,
        raw=order,
    )


def position_from(position: dhan.Position, symbols: _Symbols) -> Position:
    """The neutral position of Dhan's: ``net_qty``, ``cost_price`` (else the buy or
    sell average of the net side), realised + unrealised profit."""
    quantity = position.net_qty or 0
    average = position.cost_price
    if not average:
        average = position.buy_avg if quantity > 0 else position.sell_avg if quantity else None
    realised, unrealised = position.realized_profit, position.unrealized_profit
    pnl = None if realised is None and unrealised is None else (realised or 0) + (unrealised or 0)
    return Position(
        symbol=symbols.symbol(
            position.exchange_segment, position.security_id, position.trading_symbol
        ),
        quantity=quantity,
        product=_back(PRODUCTS, position.product_type),
        average_price=average or None,
        last_price=None,
        realised=realised,
        unrealised=unrealised,
        pnl=pnl,
        raw=position,
    )


def holding_from(holding: dhan.Holding, symbols: _Symbols) -> Holding:
    """The neutral holding of Dhan's: ``total_qty`` (T1 included), ``avg_cost_price``,
    ``last_traded_price``; the exchange is NSE unless Dhan says BSE."""
    segment = "BSE_EQ" if holding.exchange == "BSE" else "NSE_EQ"
    return Holding(
        symbol=symbols.symbol(segment, holding.security_id, holding.trading_symbol),
        quantity=holding.total_qty or 0,
        average_price=holding.avg_cost_price,
        last_price=holding.last_traded_price,
        raw=holding,
    )


def funds_from(limits: dhan.FundLimits) -> Funds:
    """The neutral funds of Dhan's fund limits: ``availabelBalance`` (available),
    ``utilizedAmount`` (used), ``sodLimit`` (opening)."""
    return Funds(
        available=limits.availabel_balance,
        used=limits.utilized_amount,
        opening=limits.sod_limit,
        raw=limits,
    )


# -- the operations ----------------------------------------------------------------------


async def last_prices(client: Dhan, symbols: Iterable[str]) -> dict[str, float]:
    """``Dhan.ltp`` by symbol (resolved through the instrument index); unknown symbols
    raise ``UnknownInstrument`` naming them."""
    wanted = check_symbols(symbols)
    (await _Symbols.of(client)).keys(wanted)  # every unknown one named, before any quote
    quotes = await client.ltp(wanted)
    prices = {s: q.last_price for s, q in quotes.items() if q.last_price is not None}
    missing = [symbol for symbol in wanted if symbol not in prices]
    if missing:
        raise unknown_symbols(missing, "dhan")
    return prices


async def submit(client: Dhan, request: OrderRequest) -> str:
    """``Dhan.place_order`` with the request's tag as the correlation id and the
    instrument's tick size."""
    if not isinstance(request, OrderRequest):
        raise TypeError(f"request must be an OrderRequest, got {type(request).__name__}")
    symbols = await _Symbols.of(client)
    ((segment, security_id, tick_size),) = symbols.keys([request.symbol]).values()
    return await client.place_order(
        security_id,
        segment,
        _wire(SIDES, request.side),
        request.quantity,
        _wire(ORDER_TYPES, request.order_type),
        _wire(PRODUCTS, request.product),
        price=request.price,
        trigger_price=request.trigger_price,
        validity=_wire(VALIDITIES, request.validity),
        correlation_id=request.tag,
        market_protection=request.market_protection,
        tick_size=tick_size,
    )


async def modify(
    client: Dhan,
    order_id: str,
    quantity: Any,
    price: Any,
    trigger_price: Any,
    order_type: Any,
) -> str:
    """``Dhan.modify_order``; Dhan wants the order type (and the quantity and price) of
    every modification, so what is not changed comes from the order (one read first)."""
    quantity, price, trigger_price, kind = modification(quantity, price, trigger_price, order_type)
    current = await client.order(order_id)
    return await client.modify_order(
        order_id,
        _wire(ORDER_TYPES, kind) if kind is not None else str(current.order_type),
        quantity=quantity if quantity is not None else current.quantity,
        price=price if price is not None else current.price,
        trigger_price=trigger_price if trigger_price is not None else current.trigger_price,
        validity=str(current.validity or "DAY"),
    )


async def cancel(client: Dhan, order_id: str) -> str:
    """``Dhan.cancel_order``."""
    return await client.cancel_order(order_id)


async def follow(
    client: Dhan,
    order_id: str,
    feed: AsyncIterable[object] | None,
    timeout: float | None,
) -> Order:
    """``Dhan.wait_for_order``, mapped."""
    done = await client.wait_for_order(order_id, cast("DhanFeed | None", feed), timeout)
    return order_from(done, await _Symbols.of(client))


async def order_book(client: Dhan) -> list[Order]:
    """``Dhan.orders``, mapped."""
    symbols = await _Symbols.of(client)
    return [order_from(order, symbols) for order in await client.orders()]


async def net_positions(client: Dhan) -> list[Position]:
    """``Dhan.positions``, mapped."""
    symbols = await _Symbols.of(client)
    return [position_from(p, symbols) for p in await client.positions()]


async def portfolio(client: Dhan) -> list[Holding]:
    """``Dhan.holdings``, mapped."""
    symbols = await _Symbols.of(client)
    return [holding_from(h, symbols) for h in await client.holdings()]


async def funds(client: Dhan) -> Funds:
    """``Dhan.fund_limits``, mapped."""
    return funds_from(await client.fund_limits())
