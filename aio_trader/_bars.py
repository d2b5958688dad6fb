"""OHLCV bars built from a feed's ticks, at any interval, aligned in IST."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterable, AsyncIterator, Hashable
from typing import Any

import attrs

from aio_trader._time import IST

__all__ = ["Bar", "BarBuilder", "bars_from"]


@attrs.frozen
class Bar:
    """One OHLCV bar of one instrument.

    ``start`` and ``end`` are aware IST datetimes, ``[start, end)``; ``volume`` is the
    quantity traded in the bar (see :class:`BarBuilder`); ``ticks`` how many ticks made it.
    """

    key: Hashable
    start: datetime.datetime
    end: datetime.datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    ticks: int


def tick_key(tick: Any) -> Hashable:
    """Kite's ``instrument_token``, or Dhan's ``(exchange_segment, security_id)``."""
    token = getattr(tick, "instrument_token", None)
    if token is not None:
        return token  # type: ignore[no-any-return]
    return (tick.exchange_segment, tick.security_id)


def _timestamp(tick: Any) -> datetime.datetime | None:
    stamp = getattr(tick, "exchange_timestamp", None)
    if stamp is None:
        stamp = getattr(tick, "last_trade_time", None)
    if stamp is None and not (
        hasattr(tick, "exchange_timestamp") or hasattr(tick, "last_trade_time")
    ):
        raise TypeError(
            f"{type(tick).__name__} has no exchange_timestamp or last_trade_time: "
            "subscribe in a mode whose ticks carry a time (Kite: full; Dhan: any)"
        )
    return stamp


@attrs.define
class _Open:
    start: datetime.datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    ticks: int


class BarBuilder:
    """Bars (OHLCV) of every instrument in a stream of ticks, at one interval.

    Feed it ticks with :meth:`update`: any record with ``last_price`` and an
    ``exchange_timestamp`` or ``last_trade_time`` (Kite's full-mode ticks, Dhan's ticker,
    quote and full ticks); instruments are told apart by ``instrument_token`` (Kite) or
    ``(exchange_segment, security_id)`` (Dhan). Bars are aligned to IST boundaries
    counted from ``anchor`` (default 09:15, the session open, as Kite's candles are):
    a 60-minute bar runs 09:15-10:15, a 5-minute one 09:15-09:20. A bar is closed, and
    returned by :meth:`update`, when a tick of a later interval of the same instrument
    arrives; :meth:`flush` closes the open bars (at the end of a session or of a stream).
    A quiet instrument's bar therefore closes only at its next tick or a flush.

    Volume: from the day's cumulative ``volume_traded`` when the tick has it (the
    increase over the highest cumulative seen that IST day for the instrument: a tick
    that repeats it, or arrives after a later one, adds 0; the first tick of a new day
    counts its whole cumulative; the very first tick seen counts its
    ``last_traded_quantity``, as what came before is unknown); otherwise the sum of
    ``last_traded_quantity`` (which counts a trade twice if two ticks repeat it); 0 for
    ticks with neither.

    Out-of-order ticks: a tick older than the instrument's open bar (its interval is
    already closed) is dropped and counted in :attr:`late`: a bar once returned never
    changes; its volume is not lost when the next tick carries the cumulative volume.
    A tick of the open bar's interval is applied in arrival order (``close`` is the last
    price received, not the latest stamped). Ticks whose time is ``None`` (no trade yet)
    are counted in :attr:`untimed` and ignored.

    Not thread-safe; one builder per consumer. No I/O, so nothing to cancel.
    """

    def __init__(
        self, interval: datetime.timedelta, *, anchor: datetime.time = datetime.time(9, 15)
    ) -> None:
        """``interval``: > 0 and at most one day. Raises ``ValueError`` otherwise."""
        if not isinstance(interval, datetime.timedelta):
            raise TypeError("interval must be a datetime.timedelta")
        if not datetime.timedelta(0) < interval <= datetime.timedelta(days=1):
            raise ValueError(f"interval must be > 0 and at most one day, not {interval}")
        if anchor.tzinfo is not None:
            raise ValueError("anchor is a naive IST time of day")
        self.interval = interval
        self.anchor = anchor
        self.late = 0
        self.untimed = 0
        self._open: dict[Hashable, _Open] = {}
        self._cumulative: dict[Hashable, tuple[datetime.date, int]] = {}

    def bar_start(self, moment: datetime.datetime) -> datetime.datetime:
        """The start (aware IST) of the interval holding the aware ``moment``."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("tick times must be aware datetimes")
        local = moment.astimezone(IST)
        origin = datetime.datetime.combine(local.date(), self.anchor, IST)
        count = (local - origin) // self.interval  # negative before the anchor
        return origin + count * self.interval

    def _volume(self, key: Hashable, tick: Any, day: datetime.date) -> int:
        traded = getattr(tick, "volume_traded", None)
        quantity = int(getattr(tick, "last_traded_quantity", None) or 0)
        if traded is None:
            return quantity
        last = self._cumulative.get(key)
        if last is None:  # the first tick seen: what came before is unknown
            self._cumulative[key] = (day, traded)
            return quantity
        last_day, previous = last
        if day != last_day:  # a new day: its cumulative counts from zero
            self._cumulative[key] = (day, traded)
            return int(traded)
        if traded <= previous:  # a repeat, or a tick that overtook this one
            return 0
        self._cumulative[key] = (day, traded)
        return int(traded) - int(previous)

    def update(self, tick: Any) -> Bar | None:
        """Apply one tick; the bar it closed (of its instrument), or ``None``."""
        stamp = _timestamp(tick)
        if stamp is None:
            self.untimed += 1
            return None
        key = tick_key(tick)
        start = self.bar_start(stamp)
        price = float(tick.last_price)
        current = self._open.get(key)
        if current is not None and start < current.start:
            self.late += 1
            return None
        volume = self._volume(key, tick, stamp.astimezone(IST).date())
        if current is not None and start == current.start:
            current.high = max(current.high, price)
            current.low = min(current.low, price)
            current.close = price
            current.volume += volume
            current.ticks += 1
            return None
        self._open[key] = _Open(start, price, price, price, price, volume, 1)
        return None if current is None else self._close(key, current)

    def _close(self, key: Hashable, bar: _Open) -> Bar:
        return Bar(
            key=key,
            start=bar.start,
            end=bar.start + self.interval,
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
            ticks=bar.ticks,
        )

    def flush(self) -> list[Bar]:
        """Close every open bar (in the order their instruments first ticked)."""
        closed = [self._close(key, bar) for key, bar in self._open.items()]
        self._open.clear()
        return closed


async def bars_from(
    ticks: AsyncIterable[Any],
    interval: datetime.timedelta,
    *,
    anchor: datetime.time = datetime.time(9, 15),
) -> AsyncIterator[Bar]:
    """The closed bars of an async stream of ticks (``async for bar in bars_from(feed, ...)``).

    ``ticks`` is any async iterable of ticks (a feeder, a replay, a Redis feed). When it
    ends, the open bars are flushed and yielded. Cancellation: cancelling the task that
    iterates cancels the wait for the next tick; the open bars are then dropped (use a
    :class:`BarBuilder` directly to keep them). Closing the generator early
    (``aclose``, or leaving the ``async for``) does not close ``ticks``.
    """
    builder = BarBuilder(interval, anchor=anchor)
    async for tick in ticks:
        bar = builder.update(tick)
        if bar is not None:
            yield bar
    for bar in builder.flush():
        yield bar
