"""DhanHQ API v2 constants: exchange segments, the market feed's codes, and feed limits.

Every ``str`` enum here (``class X(str, enum.Enum)``, so it works on Python 3.10) compares
equal to Dhan's strings (``ExchangeSegment.NSE_EQ == "NSE_EQ"``) and ``str()`` /
f-strings give the bare value, so members can be passed anywhere Dhan expects a string.
The integer codes are :class:`enum.IntEnum`\\ s: they compare equal to the numbers on the
wire. Everything here is data: importing this module loads nothing but the standard
library.

Sources: Dhan's v2 annexure (segments, request and response codes, the Data API error
codes) and its live-market-feed page (limits). Where Dhan's official SDK disagrees with
the annexure (it swaps the labels of 808 and 809 and lacks 810), the annexure wins.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    "DEPTH20_MAX_INSTRUMENTS",
    "FEED_MAX_CONNECTIONS",
    "FEED_MAX_INSTRUMENTS",
    "FEED_MAX_INSTRUMENTS_PER_MESSAGE",
    "SESSION_DISCONNECT_REASONS",
    "DhanEnum",
    "DisconnectReason",
    "ExchangeSegment",
    "FeedMode",
    "FeedRequestCode",
    "FeedResponseCode",
]


class DhanEnum(str, enum.Enum):
    """Base of the string enums here: a ``str`` whose ``str()`` and format are the value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return str(self.value).__format__(format_spec)


# -- exchange segments ------------------------------------------------------------------


class ExchangeSegment(DhanEnum):
    """Exchange segments by Dhan's name (REST bodies, feed subscriptions); :attr:`code` is
    the byte that stands for the segment in the market feed's packets."""

    IDX_I = "IDX_I"
    """Index values (not tradable)."""
    NSE_EQ = "NSE_EQ"
    NSE_FNO = "NSE_FNO"
    NSE_CURRENCY = "NSE_CURRENCY"
    BSE_EQ = "BSE_EQ"
    MCX_COMM = "MCX_COMM"
    BSE_CURRENCY = "BSE_CURRENCY"
    BSE_FNO = "BSE_FNO"

    @property
    def code(self) -> int:
        """The segment's byte in feed packets (0 ``IDX_I`` ... 8 ``BSE_FNO``; there is no 6)."""
        return _SEGMENT_CODES[self]

    @property
    def is_currency(self) -> bool:
        """Currency segments, whose prices have four decimals (the others two)."""
        return self in (ExchangeSegment.NSE_CURRENCY, ExchangeSegment.BSE_CURRENCY)

    @classmethod
    def from_code(cls, code: int) -> ExchangeSegment:
        """The segment of a feed byte; ``ValueError`` for a byte that names none."""
        segment = _SEGMENT_OF_CODE.get(code)
        if segment is None:
            raise ValueError(f"no exchange segment has the feed code {code!r}")
        return segment


_SEGMENT_CODES: Final[Mapping[ExchangeSegment, int]] = MappingProxyType(
    {
        ExchangeSegment.IDX_I: 0,
        ExchangeSegment.NSE_EQ: 1,
        ExchangeSegment.NSE_FNO: 2,
        ExchangeSegment.NSE_CURRENCY: 3,
        ExchangeSegment.BSE_EQ: 4,
        ExchangeSegment.MCX_COMM: 5,
        ExchangeSegment.BSE_CURRENCY: 7,
        ExchangeSegment.BSE_FNO: 8,
    }
)
_SEGMENT_OF_CODE: Final[Mapping[int, ExchangeSegment]] = MappingProxyType(
    {code: segment for segment, code in _SEGMENT_CODES.items()}
)


# -- the market feed -----------------------------------------------------------------------


class FeedMode(DhanEnum):
    """Market feed subscription modes, poorest first. ``FeedMode("ltp")`` is
    :attr:`TICKER` (the name Kite users know for the same mode)."""

    TICKER = "ticker"
    """Last traded price and time (ticker packets)."""
    QUOTE = "quote"
    """Trade data and the day's OHLC (quote packets, with OI packets)."""
    FULL = "full"
    """Quote data with open interest and five levels of depth (full packets)."""

    @classmethod
    def _missing_(cls, value: object) -> FeedMode | None:
        if isinstance(value, str) and value.lower() == "ltp":
            return cls.TICKER
        if isinstance(value, str) and value.lower() != value:
            return cls._value2member_map_.get(value.lower())  # type: ignore[return-value]
        return None

    @property
    def subscribe_code(self) -> FeedRequestCode:
        """The ``RequestCode`` that subscribes instruments in this mode."""
        return _SUBSCRIBE[self]

    @property
    def unsubscribe_code(self) -> FeedRequestCode:
        """The ``RequestCode`` that unsubscribes instruments from this mode."""
        return _UNSUBSCRIBE[self]


class FeedRequestCode(enum.IntEnum):
    """``RequestCode`` of the JSON messages a client sends on the feeds."""

    CONNECT = 11
    DISCONNECT = 12
    SUBSCRIBE_TICKER = 15
    UNSUBSCRIBE_TICKER = 16
    SUBSCRIBE_QUOTE = 17
    UNSUBSCRIBE_QUOTE = 18
    SUBSCRIBE_FULL = 21
    UNSUBSCRIBE_FULL = 22
    SUBSCRIBE_DEPTH = 23
    """20-level depth feed (its own socket)."""
    UNSUBSCRIBE_DEPTH = 25


_SUBSCRIBE: Final[Mapping[FeedMode, FeedRequestCode]] = MappingProxyType(
    {
        FeedMode.TICKER: FeedRequestCode.SUBSCRIBE_TICKER,
        FeedMode.QUOTE: FeedRequestCode.SUBSCRIBE_QUOTE,
        FeedMode.FULL: FeedRequestCode.SUBSCRIBE_FULL,
    }
)
_UNSUBSCRIBE: Final[Mapping[FeedMode, FeedRequestCode]] = MappingProxyType(
    {
        FeedMode.TICKER: FeedRequestCode.UNSUBSCRIBE_TICKER,
        FeedMode.QUOTE: FeedRequestCode.UNSUBSCRIBE_QUOTE,
        FeedMode.FULL: FeedRequestCode.UNSUBSCRIBE_FULL,
    }
)


class FeedResponseCode(enum.IntEnum):
    """The first byte of a market feed packet (the third of a 20-level depth packet)."""

    INDEX = 1
    """Listed by Dhan; its payload is not documented."""
    TICKER = 2
    QUOTE = 4
    OI = 5
    PREV_CLOSE = 6
    MARKET_STATUS = 7
    """Listed by Dhan; its payload is not documented."""
    FULL = 8
    DEPTH_BID = 41
    """20-level depth: the bid (buy) side."""
    DISCONNECT = 50
    DEPTH_ASK = 51
    """20-level depth: the ask (sell) side."""


class DisconnectReason(enum.IntEnum):
    """Reason codes of a disconnect packet and of Data API errors (Dhan's annexure).

    :attr:`label` is the annexure's description. (Dhan's official SDK prints 808 as
    "Invalid Client ID" and 809 as "Authentication Failed": swapped; the annexure is
    followed here.)
    """

    INTERNAL_ERROR = 800
    TOO_MANY_INSTRUMENTS = 804
    TOO_MANY_CONNECTIONS = 805
    """Too many requests or connections: a sixth connection disconnects the first."""
    DATA_API_NOT_SUBSCRIBED = 806
    TOKEN_EXPIRED = 807
    AUTHENTICATION_FAILED = 808
    TOKEN_INVALID = 809
    CLIENT_ID_INVALID = 810
    INVALID_EXPIRY_DATE = 811
    INVALID_DATE_FORMAT = 812
    INVALID_SECURITY_ID = 813
    INVALID_REQUEST = 814

    @property
    def label(self) -> str:
        """Dhan's description of the code."""
        return _REASON_LABELS[self]

    @property
    def is_session_error(self) -> bool:
        """807-810: the credentials are expired or wrong; reconnecting cannot help."""
        return self in SESSION_DISCONNECT_REASONS


_REASON_LABELS: Final[Mapping[DisconnectReason, str]] = MappingProxyType(
    {
        DisconnectReason.INTERNAL_ERROR: "Internal Server Error",
        DisconnectReason.TOO_MANY_INSTRUMENTS: "Requested number of instruments exceeds limit",
        DisconnectReason.TOO_MANY_CONNECTIONS: (
            "Too many requests or connections. "
            "Further requests may result in the user being blocked."
        ),
        DisconnectReason.DATA_API_NOT_SUBSCRIBED: "Data APIs not subscribed",
        DisconnectReason.TOKEN_EXPIRED: "Access token is expired",
        DisconnectReason.AUTHENTICATION_FAILED: (
            "Authentication Failed - Client ID or Access Token invalid"
        ),
        DisconnectReason.TOKEN_INVALID: "Access token is invalid",
        DisconnectReason.CLIENT_ID_INVALID: "Client ID is invalid",
        DisconnectReason.INVALID_EXPIRY_DATE: "Invalid Expiry Date",
        DisconnectReason.INVALID_DATE_FORMAT: "Invalid Date Format",
        DisconnectReason.INVALID_SECURITY_ID: "Invalid SecurityId",
        DisconnectReason.INVALID_REQUEST: "Invalid Request",
    }
)

#: Disconnect reasons that end a feed with a session error (no retry): 807-810.
SESSION_DISCONNECT_REASONS: Final = frozenset(
    {
        DisconnectReason.TOKEN_EXPIRED,
        DisconnectReason.AUTHENTICATION_FAILED,
        DisconnectReason.TOKEN_INVALID,
        DisconnectReason.CLIENT_ID_INVALID,
    }
)

# -- feed limits ------------------------------------------------------------------------

#: Most instruments in one subscribe / unsubscribe message.
FEED_MAX_INSTRUMENTS_PER_MESSAGE: Final = 100
#: Most instruments on one market feed connection.
FEED_MAX_INSTRUMENTS: Final = 5000
#: Most market feed connections per user (a sixth disconnects the first with 805).
FEED_MAX_CONNECTIONS: Final = 5
#: Most instruments on one 20-level depth connection.
DEPTH20_MAX_INSTRUMENTS: Final = 50

# -- REST: orders, products, statuses, endpoint groups and their limits ---------------------
# (appended for the REST client, ``aio_trader.dhan.Dhan``; the feed's names are above)

__all__ += [
    "MAX_MODIFICATIONS",
    "QUOTE_MAX_INSTRUMENTS",
    "AmoTime",
    "DhanEndpointGroup",
    "ExpiryCode",
    "InstrumentType",
    "KillSwitchStatus",
    "LegName",
    "OrderStatus",
    "OrderType",
    "ProductType",
    "TransactionType",
    "Validity",
]


class TransactionType(DhanEnum):
    BUY = "BUY"
    SELL = "SELL"


class ProductType(DhanEnum):
    """``productType``: CNC delivery, INTRADAY, MARGIN (carry-forward F&O), MTF, CO, BO."""

    CNC = "CNC"
    INTRADAY = "INTRADAY"
    MARGIN = "MARGIN"
    MTF = "MTF"
    CO = "CO"
    BO = "BO"


class OrderType(DhanEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_MARKET = "STOP_LOSS_MARKET"


class Validity(DhanEnum):
    DAY = "DAY"
    IOC = "IOC"


class OrderStatus(DhanEnum):
    """``orderStatus``; super orders add CLOSED and TRIGGERED."""

    TRANSIT = "TRANSIT"
    PENDING = "PENDING"
    PART_TRADED = "PART_TRADED"
    TRADED = "TRADED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    CLOSED = "CLOSED"
    TRIGGERED = "TRIGGERED"


class AmoTime(DhanEnum):
    """``amoTime`` of an after-market order."""

    PRE_OPEN = "PRE_OPEN"
    OPEN = "OPEN"
    OPEN_30 = "OPEN_30"
    OPEN_60 = "OPEN_60"


class LegName(DhanEnum):
    """The legs of a super order (and of a forever OCO order)."""

    ENTRY_LEG = "ENTRY_LEG"
    TARGET_LEG = "TARGET_LEG"
    STOP_LOSS_LEG = "STOP_LOSS_LEG"


class InstrumentType(DhanEnum):
    """``instrument`` of candle and option-chain requests."""

    INDEX = "INDEX"
    EQUITY = "EQUITY"
    FUTIDX = "FUTIDX"
    FUTSTK = "FUTSTK"
    OPTIDX = "OPTIDX"
    OPTSTK = "OPTSTK"
    FUTCOM = "FUTCOM"
    OPTFUT = "OPTFUT"
    FUTCUR = "FUTCUR"
    OPTCUR = "OPTCUR"


class ExpiryCode(enum.IntEnum):
    """``expiryCode`` of a futures candle request: 0 current (near), 1 next, 2 far."""

    CURRENT = 0
    NEXT = 1
    FAR = 2


class KillSwitchStatus(DhanEnum):
    ACTIVATE = "ACTIVATE"
    DEACTIVATE = "DEACTIVATE"


class DhanEndpointGroup(DhanEnum):
    """The endpoint groups Dhan rate-limits separately."""

    ORDER = "order"
    """Order placement, modification and cancellation (all order kinds)."""
    DATA = "data"
    """Candles, option chain, expiry lists."""
    QUOTE = "quote"
    """``/marketfeed/ltp``, ``/marketfeed/ohlc``, ``/marketfeed/quote``."""
    OTHER = "other"
    """Everything else (non-trading APIs)."""


#: Most instruments in one ltp / ohlc / quote request.
QUOTE_MAX_INSTRUMENTS: Final = 1000
#: Most modifications of one order.
MAX_MODIFICATIONS: Final = 25
