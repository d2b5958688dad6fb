"""The little things traders write every time, broker-neutral.

Instruments by symbol (the index each REST client's ``instrument_index()`` returns),
rounding to a tick size, OHLCV bars from a feed's ticks, and the NSE trading calendar::

    from aio_trader.toolkit import BarBuilder, InstrumentIndex, is_trading_day, round_to_tick
"""

from __future__ import annotations

from aio_trader._bars import Bar, BarBuilder, bars_from
from aio_trader._calendar import (
    MARKET_CLOSE,
    MARKET_OPEN,
    NSE_HOLIDAYS,
    PRE_OPEN_END,
    PRE_OPEN_START,
    holiday_name,
    is_trading_day,
    next_trading_day,
    previous_trading_day,
    session_close,
    session_open,
)
from aio_trader._instruments import CACHE_DIR_ENV, Instrument, InstrumentIndex, Quotes
from aio_trader._ticksize import round_to_tick

__all__ = [
    "CACHE_DIR_ENV",
    "MARKET_CLOSE",
    "MARKET_OPEN",
    "NSE_HOLIDAYS",
    "PRE_OPEN_END",
    "PRE_OPEN_START",
    "Bar",
    "BarBuilder",
    "Instrument",
    "InstrumentIndex",
    "Quotes",
    "bars_from",
    "holiday_name",
    "is_trading_day",
    "next_trading_day",
    "previous_trading_day",
    "round_to_tick",
    "session_close",
    "session_open",
]
