"""The NSE trading calendar: holidays (a shipped table) and market hours, in IST.

The table lists the weekday trading holidays of NSE's equity and equity-derivatives
segments. It is data, not a rule: NSE publishes the next year's list each December
(and, rarely, changes a date during the year), so this table must be updated yearly.
A date in a year the table does not cover raises ``ValueError`` rather than guessing.

Not modelled: special sessions on a weekend (the Budget-day Saturday session of
1 February 2025, Muhurat trading on Diwali evening) and the commodity / currency
segments' own hours.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from aio_trader._time import IST

__all__ = [
    "MARKET_CLOSE",
    "MARKET_OPEN",
    "NSE_HOLIDAYS",
    "PRE_OPEN_END",
    "PRE_OPEN_START",
    "holiday_name",
    "is_trading_day",
    "next_trading_day",
    "previous_trading_day",
    "session_close",
    "session_open",
]

#: Pre-open call auction (order entry 09:00-09:08 IST), then the normal session.
PRE_OPEN_START: Final = datetime.time(9, 0)
PRE_OPEN_END: Final = datetime.time(9, 8)
MARKET_OPEN: Final = datetime.time(9, 15)
MARKET_CLOSE: Final = datetime.time(15, 30)

_D = datetime.date

#: Weekday trading holidays of NSE (equity, F&O), date -> occasion.
#: 2025: NSE's list for 2025, checked against the BSE holiday table of the
#: exchange_calendars project (XBOM, the same 14 dates). 2026: NSE's list for 2026 as
#: published in December 2025 (15 dates) and the market closure of 15 January 2026
#: (municipal elections in Maharashtra), checked date by date against the same project's
#: BSE table (exchange_calendars 4.13.3). See docs/toolkit.md.
NSE_HOLIDAYS: Final[Mapping[datetime.date, str]] = MappingProxyType(
    {
        _D(2025, 2, 26): "Mahashivratri",
        _D(2025, 3, 14): "Holi",
        _D(2025, 3, 31): "Id-Ul-Fitr (Ramadan Eid)",
        _D(2025, 4, 10): "Shri Mahavir Jayanti",
        _D(2025, 4, 14): "Dr. Baba Saheb Ambedkar Jayanti",
        _D(2025, 4, 18): "Good Friday",
        _D(2025, 5, 1): "Maharashtra Day",
        _D(2025, 8, 15): "Independence Day",
        _D(2025, 8, 27): "Ganesh Chaturthi",
        _D(2025, 10, 2): "Mahatma Gandhi Jayanti / Dussehra",
        _D(2025, 10, 21): "Diwali Laxmi Pujan",
        _D(2025, 10, 22): "Diwali Balipratipada",
        _D(2025, 11, 5): "Prakash Gurpurb Sri Guru Nanak Dev",
        _D(2025, 12, 25): "Christmas",
        _D(2026, 1, 15): "Municipal Corporation elections in Maharashtra",
        _D(2026, 1, 26): "Republic Day",
        _D(2026, 3, 3): "Holi",
        _D(2026, 3, 26): "Shri Ram Navami",
        _D(2026, 3, 31): "Shri Mahavir Jayanti",
        _D(2026, 4, 3): "Good Friday",
        _D(2026, 4, 14): "Dr. Baba Saheb Ambedkar Jayanti",
        _D(2026, 5, 1): "Maharashtra Day",
        _D(2026, 5, 28): "Bakri Id",
        _D(2026, 6, 26): "Muharram",
        _D(2026, 9, 14): "Ganesh Chaturthi",
        _D(2026, 10, 2): "Mahatma Gandhi Jayanti",
        _D(2026, 10, 20): "Dussehra",
        _D(2026, 11, 10): "Diwali Balipratipada",
        _D(2026, 11, 24): "Prakash Gurpurb Sri Guru Nanak Dev",
        _D(2026, 12, 25): "Christmas",
    }
)

_YEARS: Final = frozenset(day.year for day in NSE_HOLIDAYS)


def _day(day: datetime.date) -> datetime.date:
    """The IST date of ``day`` (an aware datetime is converted; a naive one refused)."""
    if isinstance(day, datetime.datetime):
        if day.tzinfo is None or day.utcoffset() is None:
            raise ValueError("a naive datetime is ambiguous: pass a date or an aware datetime")
        day = day.astimezone(IST).date()
    elif not isinstance(day, datetime.date):
        raise TypeError(f"expected a datetime.date, not {type(day).__name__}")
    if day.year not in _YEARS:
        known = ", ".join(str(year) for year in sorted(_YEARS))
        raise ValueError(f"no NSE holiday table for {day.year} (known: {known}); update aio_trader")
    return day


def holiday_name(day: datetime.date) -> str | None:
    """The occasion NSE is closed for on ``day``, or ``None`` (weekends: ``None``)."""
    return NSE_HOLIDAYS.get(_day(day))


def is_trading_day(day: datetime.date) -> bool:
    """Whether NSE trades on ``day``: a weekday that is not a holiday.

    ``day`` is a date, or an aware datetime (its IST date is used). Raises
    ``ValueError`` for a naive datetime or a year the holiday table does not cover.
    """
    day = _day(day)
    return day.weekday() < 5 and day not in NSE_HOLIDAYS


def next_trading_day(day: datetime.date) -> datetime.date:
    """The first trading day strictly after ``day`` (``ValueError`` past the table)."""
    day = _day(day) + datetime.timedelta(days=1)
    while not is_trading_day(day):
        day += datetime.timedelta(days=1)
    return day


def previous_trading_day(day: datetime.date) -> datetime.date:
    """The last trading day strictly before ``day`` (``ValueError`` before the table)."""
    day = _day(day) - datetime.timedelta(days=1)
    while not is_trading_day(day):
        day -= datetime.timedelta(days=1)
    return day


def _session(day: datetime.date, at: datetime.time) -> datetime.datetime:
    day = _day(day)
    if not is_trading_day(day):
        raise ValueError(f"{day} is not an NSE trading day")
    return datetime.datetime.combine(day, at, IST)


def session_open(day: datetime.date) -> datetime.datetime:
    """09:15 IST (aware) on trading day ``day``; ``ValueError`` on a closed day."""
    return _session(day, MARKET_OPEN)


def session_close(day: datetime.date) -> datetime.datetime:
    """15:30 IST (aware) on trading day ``day``; ``ValueError`` on a closed day."""
    return _session(day, MARKET_CLOSE)
