"""Kite Connect v3 constants: enums for request parameters and response values, and limits.

Every enum is a ``str`` enum (``class X(str, enum.Enum)``, so it works on Python 3.10):
members compare equal to Kite's strings (``Product.CNC == "CNC"``) and ``str()`` /
f-strings give the bare value, so they can be passed anywhere Kite expects a string.
Records in :mod:`aio_trader.kite._models` keep plain ``str`` fields (a value Kite adds
tomorrow never breaks parsing); compare them with these enums.

The limits are data shared by the REST client (client-side limiter, request checks)
and the sandbox (server-side enforcement), so both agree on Kite's defaults.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from aio_trader.ratelimit import Rate

__all__ = [
    "LTP_MAX_INSTRUMENTS",
    "MARKET_PROTECTION_AUTO",
    "OHLC_MAX_INSTRUMENTS",
    "ORDER_TAG_MAX",
    "QUOTE_MAX_INSTRUMENTS",
    "RATE_LIMITS",
    "TICKER_MAX_CONNECTIONS",
    "TICKER_MAX_INSTRUMENTS",
    "TRIGGER_RANGE_MAX_INSTRUMENTS",
    "AlertOperator",
    "AlertStatus",
    "AlertType",
    "EndpointGroup",
    "Exchange",
    "GTTStatus",
    "GTTType",
    "Interval",
    "KiteEnum",
    "MarginSegment",
    "Mode",
    "OrderStatus",
    "OrderType",
    "PositionType",
    "Product",
    "SIPFrequency",
    "TransactionType",
    "Validity",
    "Variety",
    "rate_limits",
]


class KiteEnum(str, enum.Enum):
    """Base of every enum here: a ``str`` whose ``str()`` and format are the bare value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return str(self.value).__format__(format_spec)


class Exchange(KiteEnum):
    """Exchanges (the ``exchange`` of an instrument or order)."""

    NSE = "NSE"
    BSE = "BSE"
    NFO = "NFO"
    BFO = "BFO"
    CDS = "CDS"
    BCD = "BCD"
    MCX = "MCX"
    NCO = "NCO"
    MF = "MF"


class Variety(KiteEnum):
    """Order varieties (the ``{variety}`` of ``/orders/{variety}``)."""

    REGULAR = "regular"
    AMO = "amo"
    CO = "co"
    ICEBERG = "iceberg"
    AUCTION = "auction"


class OrderType(KiteEnum):
    """Order types."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL"
    SLM = "SL-M"


class Product(KiteEnum):
    """Margin products."""

    CNC = "CNC"
    NRML = "NRML"
    MIS = "MIS"
    CO = "CO"
    MTF = "MTF"


class TransactionType(KiteEnum):
    """Buy or sell."""

    BUY = "BUY"
    SELL = "SELL"


class Validity(KiteEnum):
    """Order validity; ``TTL`` takes ``validity_ttl`` minutes."""

    DAY = "DAY"
    IOC = "IOC"
    TTL = "TTL"


class OrderStatus(KiteEnum):
    """Common order statuses (Kite also reports transient ones, e.g. ``VALIDATION PENDING``)."""

    OPEN = "OPEN"
    COMPLETE = "COMPLETE"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    TRIGGER_PENDING = "TRIGGER PENDING"
    AMO_REQ_RECEIVED = "AMO REQ RECEIVED"
    MODIFIED = "MODIFIED"
    PUT_ORDER_REQ_RECEIVED = "PUT ORDER REQ RECEIVED"
    VALIDATION_PENDING = "VALIDATION PENDING"
    OPEN_PENDING = "OPEN PENDING"
    MODIFY_VALIDATION_PENDING = "MODIFY VALIDATION PENDING"
    MODIFY_PENDING = "MODIFY PENDING"
    CANCEL_PENDING = "CANCEL PENDING"


class PositionType(KiteEnum):
    """``position_type`` of ``convert_position``."""

    DAY = "day"
    OVERNIGHT = "overnight"


class MarginSegment(KiteEnum):
    """Segments of ``/user/margins/{segment}``."""

    EQUITY = "equity"
    COMMODITY = "commodity"


class Mode(KiteEnum):
    """Ticker (WebSocket) subscription modes."""

    LTP = "ltp"
    QUOTE = "quote"
    FULL = "full"


class GTTType(KiteEnum):
    """GTT trigger types."""

    SINGLE = "single"
    OCO = "two-leg"


class GTTStatus(KiteEnum):
    """GTT trigger statuses."""

    ACTIVE = "active"
    TRIGGERED = "triggered"
    DISABLED = "disabled"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    DELETED = "deleted"


class SIPFrequency(KiteEnum):
    """Mutual fund SIP frequencies."""

    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


class AlertType(KiteEnum):
    """Alert types: a plain alert, or alert-triggers-order (a basket placed when it fires)."""

    SIMPLE = "simple"
    ATO = "ato"


class AlertStatus(KiteEnum):
    """Alert statuses."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    DELETED = "deleted"


class AlertOperator(KiteEnum):
    """Alert comparison operators."""

    LE = "<="
    GE = ">="
    LT = "<"
    GT = ">"
    EQ = "=="


class Interval(KiteEnum):
    """Historical candle intervals; :attr:`max_days` is Kite's longest range per request."""

    MINUTE = "minute"
    MINUTE_3 = "3minute"
    MINUTE_5 = "5minute"
    MINUTE_10 = "10minute"
    MINUTE_15 = "15minute"
    MINUTE_30 = "30minute"
    MINUTE_60 = "60minute"
    DAY = "day"

    @property
    def max_days(self) -> int:
        """The longest ``to - from`` range, in days, that one historical request may ask for."""
        return _INTERVAL_MAX_DAYS[self]


_INTERVAL_MAX_DAYS: Mapping[Interval, int] = MappingProxyType(
    {
        Interval.MINUTE: 60,
        Interval.MINUTE_3: 100,
        Interval.MINUTE_5: 100,
        Interval.MINUTE_10: 100,
        Interval.MINUTE_15: 200,
        Interval.MINUTE_30: 200,
        Interval.MINUTE_60: 400,
        Interval.DAY: 2000,
    }
)

#: ``market_protection=-1``: let Kite choose the protection for a market order.
MARKET_PROTECTION_AUTO = -1

# -- request limits ---------------------------------------------------------------------

#: Most instruments in one ``/quote`` request.
QUOTE_MAX_INSTRUMENTS = 500
#: Most instruments in one ``/quote/ohlc`` request.
OHLC_MAX_INSTRUMENTS = 1000
#: Most instruments in one ``/quote/ltp`` request.
LTP_MAX_INSTRUMENTS = 1000
#: Most instruments in one ``/instruments/trigger_range`` request (same as quote).
TRIGGER_RANGE_MAX_INSTRUMENTS = 500
#: Longest order ``tag`` (alphanumeric).
ORDER_TAG_MAX = 20
#: Most instruments subscribed on one ticker connection.
TICKER_MAX_INSTRUMENTS = 3000
#: Most ticker connections per api_key.
TICKER_MAX_CONNECTIONS = 3

# -- rate limits ------------------------------------------------------------------------


class EndpointGroup(KiteEnum):
    """The endpoint groups Kite rate-limits separately."""

    QUOTE = "quote"
    """``/quote``, ``/quote/ohlc``, ``/quote/ltp``."""
    HISTORICAL = "historical"
    """``/instruments/historical/...``."""
    ORDER = "order"
    """Order placement, modification and cancellation (``/orders/{variety}...``)."""
    OTHER = "other"
    """Everything else."""


#: Kite's default limits per endpoint group; a request must satisfy every rate of its group.
#: (The order-per-day rate is a rolling 24 h window; Kite resets it each trading day.)
RATE_LIMITS: Mapping[EndpointGroup, tuple[Rate, ...]] = MappingProxyType(
    {
        EndpointGroup.QUOTE: (Rate(1, 1.0),),
        EndpointGroup.HISTORICAL: (Rate(3, 1.0),),
        EndpointGroup.ORDER: (Rate(10, 1.0), Rate(200, 60.0), Rate(5000, 86400.0)),
        EndpointGroup.OTHER: (Rate(10, 1.0),),
    }
)


def rate_limits(scale: float = 1.0) -> Mapping[EndpointGroup, tuple[Rate, ...]]:
    """Kite's limits with every count multiplied by ``scale`` (at least 1 per window).

    Tests scale the sandbox's and the client's limits together (e.g. ``rate_limits(20)``)
    so that limit-bound work stays quick; ``scale=1`` is :data:`RATE_LIMITS` itself.
    """
    if scale == 1:
        return RATE_LIMITS
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    return MappingProxyType(
        {
            group: tuple(Rate(max(1, round(r.count * scale)), r.period) for r in rates)
            for group, rates in RATE_LIMITS.items()
        }
    )
