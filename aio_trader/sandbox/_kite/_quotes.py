"""Kite's views of the simulated market: the ticker's tick records and the quote bodies."""

from __future__ import annotations

from typing import Any

from aio_trader.kite.ticks import (
    Depth,
    DepthLevel,
    FullTick,
    IndexFullTick,
    IndexQuoteTick,
    LtpTick,
    Ohlc,
    QuoteTick,
    Tick,
)
from aio_trader.sandbox._api import stamp
from aio_trader.sandbox.market import Market

__all__ = ["ltp_dict", "ohlc_dict", "quote_dict", "snapshot"]


def snapshot(market: Market, token: int, mode: str) -> Tick:
    """The tick record of the instrument's current state in ``mode`` (ltp/quote/full).

    Index tokens give index kinds. Raises KeyError for unknown tokens, ValueError for an
    unknown mode. Records are immutable and cached until the next market step.
    """
    return market.per_step(("kite-tick", token, mode), lambda: _build(market, token, mode))


def _depth(market: Market, token: int) -> Depth:
    buy, sell = market.depth(token)
    return Depth(
        buy=tuple(DepthLevel(quantity=b.quantity, price=b.price, orders=b.orders) for b in buy),
        sell=tuple(DepthLevel(quantity=s.quantity, price=s.price, orders=s.orders) for s in sell),
    )


def _build(market: Market, token: int, mode: str) -> Tick:
    instrument = market.instruments[token]
    quote = market.quote(token)
    if mode == "ltp":
        return LtpTick(instrument_token=token, last_price=quote.last_price)
    if mode not in ("quote", "full"):
        raise ValueError(f"unknown mode {mode!r}")
    ohlc = Ohlc(open=quote.open, high=quote.high, low=quote.low, close=quote.close)
    if instrument.is_index:
        if mode == "quote":
            return IndexQuoteTick(instrument_token=token, last_price=quote.last_price, ohlc=ohlc)
        return IndexFullTick(
            instrument_token=token,
            last_price=quote.last_price,
            ohlc=ohlc,
            exchange_timestamp=market.updated_at,
        )
    fields: dict[str, Any] = {
        "instrument_token": token,
        "last_price": quote.last_price,
        "last_traded_quantity": quote.last_quantity,
        "average_traded_price": instrument.round_price(quote.average_price),
        "volume_traded": quote.volume,
        "total_buy_quantity": quote.buy_quantity,
        "total_sell_quantity": quote.sell_quantity,
        "ohlc": ohlc,
    }
    if mode == "quote":
        return QuoteTick(**fields)
    return FullTick(
        **fields,
        last_trade_time=market.updated_at,
        oi=quote.oi,
        oi_day_high=quote.oi_day_high,
        oi_day_low=quote.oi_day_low,
        exchange_timestamp=market.updated_at,
        depth=_depth(market, token),
    )


def ltp_dict(market: Market, token: int) -> dict[str, Any]:
    """The ``/quote/ltp`` entry."""
    return {"instrument_token": token, "last_price": market.quote(token).last_price}


def ohlc_dict(market: Market, token: int) -> dict[str, Any]:
    """The ``/quote/ohlc`` entry."""
    quote = market.quote(token)
    return {"instrument_token": token, "last_price": quote.last_price, "ohlc": quote.ohlc()}


def quote_dict(market: Market, token: int) -> dict[str, Any]:
    """The ``/quote`` entry: the same state as the ``full`` tick."""
    instrument = market.instruments[token]
    quote = market.quote(token)
    buy, sell = market.depth(token)
    updated = stamp(market.updated_at)
    lower, upper = market.circuit_limits(token)
    return {
        "instrument_token": token,
        "timestamp": updated,
        "last_trade_time": updated,
        "last_price": quote.last_price,
        "last_quantity": quote.last_quantity,
        "buy_quantity": quote.buy_quantity,
        "sell_quantity": quote.sell_quantity,
        "volume": quote.volume,
        "average_price": instrument.round_price(quote.average_price),
        "oi": quote.oi,
        "oi_day_high": quote.oi_day_high,
        "oi_day_low": quote.oi_day_low,
        "net_change": instrument.round_price(quote.last_price - quote.close),
        "lower_circuit_limit": lower,
        "upper_circuit_limit": upper,
        "ohlc": quote.ohlc(),
        "depth": {
            side: [
                {"price": level.price, "quantity": level.quantity, "orders": level.orders}
                for level in levels
            ]
            for side, levels in (("buy", buy), ("sell", sell))
        },
    }
