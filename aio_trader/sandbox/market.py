"""The simulated market: instruments, a seeded random walk, and candles (broker-neutral).

Everything here is deterministic under ``seed``: the k-th ``step()`` gives the same prices
for the same seed, and historical candles are a pure function of (seed, token, interval,
candle time), never of the wall clock. Only timestamps (``updated_at``) use the real time.

A market can also follow prices set from outside (``follow_quotes()``, then ``set_quote``
for each tick of a real feed: paper trading, ``aio_trader.paper``): an instrument then has
a price only once it was quoted (``has_price``), and the order engine fills only those.

The instrument list comes from the dialect (``Dialect.load_instruments``), and so does every
wire shape: a dialect reads ``quote()``, ``depth()`` and ``candles()`` and renders its
broker's ticks and REST bodies (Kite: ``_kite/_quotes.py``, ``_kite/_ticker.py``).
"""

from __future__ import annotations

import datetime
import functools
import math
import random
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, cast

import attrs

from aio_trader._calendar import NSE_HOLIDAYS
from aio_trader._time import IST
from aio_trader.sandbox._api import ascii_int, now_ist, seeded

__all__ = [
    "INTERVALS",
    "BookLevel",
    "CandleError",
    "Market",
    "Quote",
    "SandboxInstrument",
]

_T = TypeVar("_T")

#: Candle intervals: (length in minutes, maximum days per request), Kite's names and limits.
INTERVALS: Final[Mapping[str, tuple[int, int]]] = {
    "minute": (1, 60),
    "3minute": (3, 100),
    "5minute": (5, 100),
    "10minute": (10, 100),
    "15minute": (15, 200),
    "30minute": (30, 200),
    "60minute": (60, 400),
    "day": (1440, 2000),
}

#: Trading session (open, close) per exchange, IST.
_SESSIONS: Final[Mapping[str, tuple[datetime.time, datetime.time]]] = {
    "MCX": (datetime.time(9, 0), datetime.time(23, 30)),
    "CDS": (datetime.time(9, 0), datetime.time(17, 0)),
    "BCD": (datetime.time(9, 0), datetime.time(17, 0)),
}
_EQUITY_SESSION: Final = (datetime.time(9, 15), datetime.time(15, 30))
_MASK64: Final = (1 << 64) - 1
#: where the walk of an instrument with no shipped price starts (``SandboxConfig.instruments``).
DEFAULT_BASE_PRICE: Final = 100.0
#: A futures/options contract trades for this many days before its expiry.
_CONTRACT_LIFE: Final = datetime.timedelta(days=120)
#: (period in seconds, amplitude) of the waves that shape historical prices.
_WAVES: Final = (
    (900.0, 0.0015),
    (173.0, 0.0008),
    (97 * 86400.0, 0.12),
    (11 * 86400.0, 0.04),
    (0.9 * 86400.0, 0.012),
    (6000.0, 0.004),
)


class CandleError(ValueError):
    """A historical-candles request a broker refuses (a dialect answers it with a 400)."""


def _mix(*parts: int) -> int:
    """A deterministic 64-bit mix of integers (stable across processes, unlike hash(str))."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = ((value ^ (part & _MASK64)) * 0xBF58476D1CE4E5B9) & _MASK64
        value ^= value >> 31
    return value


@functools.lru_cache(maxsize=64)
def _decimals(tick: float) -> int:
    text = f"{tick:.10f}".rstrip("0")
    return max(2, len(text.split(".")[1]))


@attrs.frozen
class SandboxInstrument:
    """One instrument of the sandbox's list (the dialect loads it: Kite's instrument dump)."""

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    #: the price the random walk starts around (the dump's ``last_price`` column).
    base_price: float
    expiry: datetime.date | None
    strike: float
    tick_size: float
    lot_size: int
    instrument_type: str
    #: the segment name, e.g. "NSE", "INDICES", "NFO-FUT", "CDS-FUT", "MCX-OPT".
    segment: str
    exchange: str

    @property
    def key(self) -> str:
        """``EXCHANGE:TRADINGSYMBOL``, as quote endpoints take and answer it."""
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def is_index(self) -> bool:
        """Indices have a price but cannot be traded."""
        return self.segment == "INDICES"

    @property
    def is_derivative(self) -> bool:
        return self.instrument_type in ("FUT", "CE", "PE")

    @property
    def multiplier(self) -> float:
        """Value of one unit of quantity per rupee of price (currency contracts: 1000)."""
        return 1000.0 if self.exchange in ("CDS", "BCD") else 1.0

    def round_price(self, price: float) -> float:
        """``price`` on the instrument's tick grid (2 decimals for indices)."""
        tick = self.tick_size
        if tick <= 0:
            return round(price, 2)
        return round(round(price / tick) * tick, _decimals(tick))


@attrs.frozen
class BookLevel:
    """One level of the simulated order book (market depth)."""

    price: float
    quantity: int
    orders: int


@attrs.define
class Quote:
    """The simulated state of one instrument (mutable: the market changes it each step)."""

    last_price: float
    open: float
    high: float
    low: float
    close: float
    volume: int = 0
    last_quantity: int = 0
    turnover: float = 0.0
    buy_quantity: int = 0
    sell_quantity: int = 0
    oi: int = 0
    oi_day_high: int = 0
    oi_day_low: int = 0

    @property
    def average_price(self) -> float:
        return self.turnover / self.volume if self.volume else self.last_price

    def ohlc(self) -> dict[str, float]:
        return {"open": self.open, "high": self.high, "low": self.low, "close": self.close}


class Market:
    """Seeded random walk per instrument; ``step()`` advances every instrument once.

    Readers (``quote``, ``depth``, ``last_price``...) raise ``KeyError`` for unknown tokens.
    """

    def __init__(self, instruments: Mapping[int, SandboxInstrument], seed: int) -> None:
        self.instruments: Mapping[int, SandboxInstrument] = instruments
        self.seed = seed
        self.steps = 0
        #: changes at every step and every ``set_quote``: what a cache of rendered ticks keys on.
        self.version = 0
        self.updated_at = now_ist()
        self._by_key = {instrument.key: instrument for instrument in instruments.values()}
        self._rngs: dict[int, random.Random] = {}
        self._quotes: dict[int, Quote] = {}
        self._phases: dict[int, tuple[float, ...]] = {}
        self._step_cache: dict[object, object] = {}
        #: None: every instrument has its seeded price; a set: the market follows quotes set
        #: from outside, and only the instruments in it have been quoted.
        self._quoted: set[int] | None = None
        #: depth set from outside (``set_quote``), instead of the synthetic levels.
        self._depths: dict[int, tuple[tuple[BookLevel, ...], tuple[BookLevel, ...]]] = {}
        for token, instrument in instruments.items():
            rng = seeded(_mix(seed, token))
            self._rngs[token] = rng
            close = instrument.round_price(instrument.base_price * (1 + rng.gauss(0, 0.01)))
            first = instrument.round_price(close * (1 + rng.gauss(0, 0.004)))
            quote = Quote(last_price=first, open=first, high=first, low=first, close=close)
            if not instrument.is_index:
                quote.buy_quantity = rng.randint(100, 5000) * instrument.lot_size
                quote.sell_quantity = rng.randint(100, 5000) * instrument.lot_size
            if instrument.is_derivative:
                quote.oi = quote.oi_day_high = quote.oi_day_low = (
                    rng.randint(500, 50_000) * instrument.lot_size
                )
            self._quotes[token] = quote

    # -- lookups -------------------------------------------------------------------

    def by_key(self, key: str) -> SandboxInstrument | None:
        """The instrument for ``EXCHANGE:SYMBOL`` or a numeric token string; None if unknown."""
        found = self._by_key.get(key)
        token = ascii_int(key) if found is None else None
        if token is not None:
            found = self.instruments.get(token)
        return found

    def by_symbol(self, exchange: str, tradingsymbol: str) -> SandboxInstrument | None:
        return self._by_key.get(f"{exchange}:{tradingsymbol}")

    def last_price(self, token: int) -> float:
        return self._quotes[token].last_price

    def has_price(self, token: int) -> bool:
        """Whether the instrument has a price to trade at: always, unless the market follows
        quotes set from outside (``follow_quotes``) and this one was not quoted yet."""
        return self._quoted is None or token in self._quoted

    def close_price(self, token: int) -> float:
        """The previous session's close."""
        return self._quotes[token].close

    # -- the walk ------------------------------------------------------------------

    def step(self) -> None:
        """Advance every instrument by one random-walk step (deterministic under the seed)."""
        self.steps += 1
        self.version += 1
        self.updated_at = now_ist()
        self._step_cache.clear()
        for token, instrument in self.instruments.items():
            rng = self._rngs[token]
            quote = self._quotes[token]
            move = rng.gauss(0.0, 0.0015)
            price = instrument.round_price(quote.last_price * math.exp(move))
            if price <= 0:
                price = instrument.round_price(max(instrument.tick_size, 0.01))
            quote.last_price = price
            quote.high = max(quote.high, price)
            quote.low = min(quote.low, price)
            if instrument.is_index:
                continue
            lots = rng.randint(1, 20)
            quantity = lots * max(instrument.lot_size, 1)
            quote.last_quantity = quantity
            quote.volume += quantity
            quote.turnover += quantity * price
            quote.buy_quantity = max(
                0, quote.buy_quantity + rng.randint(-50, 50) * instrument.lot_size
            )
            quote.sell_quantity = max(
                0, quote.sell_quantity + rng.randint(-50, 50) * instrument.lot_size
            )
            if instrument.is_derivative:
                quote.oi = max(0, quote.oi + rng.randint(-20, 20) * instrument.lot_size)
                quote.oi_day_high = max(quote.oi_day_high, quote.oi)
                quote.oi_day_low = min(quote.oi_day_low, quote.oi)

    # -- prices set from outside -----------------------------------------------------

    def follow_quotes(self) -> None:
        """From now on, prices come from ``set_quote`` (a real feed's ticks): an instrument
        not quoted yet has no price to trade at (``has_price``). Stop the market clock too
        (``SandboxConfig(market_interval=None)``): ``step()`` would still walk every price."""
        if self._quoted is None:
            self._quoted = set()

    def set_quote(
        self,
        token: int,
        last_price: float | None = None,
        *,
        open: float | None = None,
        high: float | None = None,
        low: float | None = None,
        close: float | None = None,
        volume: int | None = None,
        last_quantity: int | None = None,
        average_price: float | None = None,
        buy_quantity: int | None = None,
        sell_quantity: int | None = None,
        oi: int | None = None,
        oi_day_high: int | None = None,
        oi_day_low: int | None = None,
        depth: tuple[tuple[BookLevel, ...], tuple[BookLevel, ...]] | None = None,
    ) -> None:
        """Set the instrument's state from outside (a tick of a real feed); None leaves a
        field as it is. ``KeyError`` for an unknown token.

        A ``last_price`` makes the instrument quoted (``has_price``); the day's high and low
        follow it unless given. The first price of an instrument without ``close`` sets the
        previous close too (the price band is 20 % around it: the seeded close may be far
        from a real price). ``average_price`` with ``volume`` sets the day's turnover.
        ``depth`` (5 buy, 5 sell levels, best first) replaces the synthetic levels from now on.
        """
        quote = self._quotes[token]
        first = self._quoted is not None and token not in self._quoted
        if last_price is not None:
            quote.last_price = last_price
            if first and close is None:
                quote.close = last_price
            if first and open is None:
                quote.open = quote.high = quote.low = last_price
            quote.high = max(quote.high, last_price) if high is None else high
            quote.low = min(quote.low, last_price) if low is None else low
            if self._quoted is not None:
                self._quoted.add(token)
        for name, value in (
            ("open", open),
            ("close", close),
            ("last_quantity", last_quantity),
            ("buy_quantity", buy_quantity),
            ("sell_quantity", sell_quantity),
            ("oi", oi),
            ("oi_day_high", oi_day_high),
            ("oi_day_low", oi_day_low),
        ):
            if value is not None:
                setattr(quote, name, value)
        if last_price is None:
            if high is not None:
                quote.high = high
            if low is not None:
                quote.low = low
        if volume is not None:
            quote.volume = volume
            if average_price is not None:
                quote.turnover = average_price * volume
        if depth is not None:
            self._depths[token] = depth
        self.version += 1
        self.updated_at = now_ist()
        self._step_cache.clear()  # rendered ticks and quotes show the new state

    # -- readers ---------------------------------------------------------------------

    def per_step(self, key: object, build: Callable[[], _T]) -> _T:
        """``build()``, cached under ``key`` until the next step (a dialect's rendered ticks).

        ``key`` must be distinct per kind of value (a tuple starting with the caller's name).
        """
        if key in self._step_cache:
            return cast(_T, self._step_cache[key])
        value = self._step_cache[key] = build()
        return value

    def quote(self, token: int) -> Quote:
        """The instrument's current state (do not change it). KeyError for unknown tokens."""
        return self._quotes[token]

    def depth(self, token: int) -> tuple[tuple[BookLevel, ...], tuple[BookLevel, ...]]:
        """(5 buy levels, 5 sell levels) around the last price, fixed until the next step."""
        instrument = self.instruments[token]
        given = self._depths.get(token)
        if given is not None:
            return given
        return self.per_step(("depth", token), lambda: self._make_depth(instrument))

    def _make_depth(
        self, instrument: SandboxInstrument
    ) -> tuple[tuple[BookLevel, ...], tuple[BookLevel, ...]]:
        quote = self._quotes[instrument.instrument_token]
        tick = instrument.tick_size or 0.05
        lot = max(instrument.lot_size, 1)
        token = instrument.instrument_token

        def level(side: int, index: int) -> BookLevel:
            salt = _mix(self.seed, token, self.steps, side, index)
            price = instrument.round_price(quote.last_price + side * (index + 1) * tick)
            return BookLevel(
                quantity=(salt % 200 + 1) * lot, price=max(price, 0.0), orders=salt % 20 + 1
            )

        return tuple(level(-1, i) for i in range(5)), tuple(level(1, i) for i in range(5))

    def circuit_limits(self, token: int) -> tuple[float, float]:
        """(lower, upper) price band: 20% around the previous close."""
        instrument = self.instruments[token]
        close = self._quotes[token].close
        return instrument.round_price(close * 0.8), instrument.round_price(close * 1.2)

    # -- historical candles ------------------------------------------------------------

    def candles(
        self,
        token: int,
        interval: str,
        start: datetime.datetime,
        end: datetime.datetime,
        *,
        oi: bool = False,
        continuous: bool = False,
    ) -> list[list[Any]]:
        """Candle rows ``[time, open, high, low, close, volume(, oi)]`` in [start, end]
        (``time``: an aware datetime, IST).

        Weekends and NSE's holidays (``aio_trader.toolkit.NSE_HOLIDAYS``) have no candles.
        A pure function of (seed, token, interval, candle time). Raises KeyError for an
        unknown token and CandleError for what a broker refuses (unknown interval, range over
        the interval's limit, ``continuous`` for a non-future).
        """
        instrument = self.instruments[token]
        if interval not in INTERVALS:
            raise CandleError("invalid interval")
        minutes, max_days = INTERVALS[interval]
        if end < start:
            raise CandleError("invalid `from` and `to` dates: `from` is after `to`")
        if (end - start) > datetime.timedelta(days=max_days):
            raise CandleError(f"interval exceeds max limit: {max_days} days")
        if continuous and instrument.instrument_type != "FUT":
            raise CandleError("continuous data is only available for futures")
        first_day, last_day = start.date(), end.date()
        if instrument.expiry is not None and not continuous:
            first_day = max(first_day, instrument.expiry - _CONTRACT_LIFE)
            last_day = min(last_day, instrument.expiry)
        opens, closes = _SESSIONS.get(instrument.exchange, _EQUITY_SESSION)
        rows: list[list[Any]] = []
        day = first_day
        one_day = datetime.timedelta(days=1)
        while day <= last_day:
            if day.weekday() < 5 and day not in NSE_HOLIDAYS:
                session_open = datetime.datetime.combine(day, opens, IST)
                session_close = datetime.datetime.combine(day, closes, IST)
                if minutes == 1440:
                    moment = datetime.datetime.combine(day, datetime.time(0), IST)
                    rows.append(
                        self._candle(instrument, minutes, moment, session_open, session_close, oi)
                    )
                else:
                    length = datetime.timedelta(minutes=minutes)
                    moment = session_open
                    while moment < session_close:
                        if start <= moment <= end:
                            stop = min(moment + length, session_close)
                            rows.append(self._candle(instrument, minutes, moment, moment, stop, oi))
                        moment += length
            day += one_day
        return rows

    def _phases_of(self, token: int) -> tuple[float, ...]:
        phases = self._phases.get(token)
        if phases is None:
            rng = seeded(_mix(self.seed, token, 7))
            phases = self._phases[token] = tuple(rng.uniform(0, math.tau) for _ in _WAVES)
        return phases

    def _level(self, instrument: SandboxInstrument, t: float) -> float:
        """A smooth, deterministic price path around the base price (``t``: epoch seconds)."""
        total = 0.0
        for (period, amplitude), phase in zip(
            _WAVES, self._phases_of(instrument.instrument_token), strict=True
        ):
            total += amplitude * math.sin(math.tau * t / period + phase)
        return instrument.base_price * math.exp(total)

    def _candle(
        self,
        instrument: SandboxInstrument,
        minutes: int,
        moment: datetime.datetime,
        begin: datetime.datetime,
        stop: datetime.datetime,
        with_oi: bool,
    ) -> list[Any]:
        token = instrument.instrument_token
        at = moment.timestamp()
        noise = _mix(self.seed, token, minutes, int(at))
        u_high, u_low, u_volume = (((noise >> shift) & 0xFFFFF) / 0x100000 for shift in (0, 20, 40))
        first = instrument.round_price(self._level(instrument, begin.timestamp()))
        last = instrument.round_price(self._level(instrument, stop.timestamp()))
        spread = instrument.base_price * 0.0012 * math.sqrt(minutes)
        high = instrument.round_price(max(first, last) + u_high * spread)
        low = instrument.round_price(max(min(first, last) - u_low * spread, 0.0))
        volume = 0 if instrument.is_index else int(50 + u_volume * 4950) * minutes
        row: list[Any] = [moment, first, high, low, last, volume]
        if with_oi:
            if instrument.is_derivative:
                base = _mix(self.seed, token) % 40_000 + 1_000
                row.append(int(base * (1 + 0.2 * math.sin(at / 86400.0))))
            else:
                row.append(0)
        return row
