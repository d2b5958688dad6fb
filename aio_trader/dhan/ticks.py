"""DhanHQ v2 feed codec: market feed and 20-level depth packets to attrs records, and back;
order-update messages to :class:`OrderUpdate`.

Pure: bytes in, records out, no I/O. Decoding never raises for any bytes: a malformed
part of a message is skipped and reported as a :class:`MalformedPacket` (each to
``on_malformed``; without it, one WARNING per message with their count), while the
message's well-formed packets are still returned. Only a non-bytes-like argument is an
error (``TypeError``).

Market feed (little-endian). A message holds one or more packets, each walked by its
length field; every packet starts with an 8-byte header: ``u8`` response code, ``u16``
length of the whole packet (header included), ``u8`` exchange segment, ``u32`` security
id. Payloads (offsets from the packet's start):

==== ============== ======= ============================================================
code record         length  payload
==== ============== ======= ============================================================
2    TickerTick     16      8 f32 last price, 12 u32 last trade time
6    PrevClose      16      8 f32 previous close, 12 u32 previous day's OI
4    QuoteTick      50      8 f32 last price, 12 u16 last qty, 14 u32 LTT, 18 f32 average
                            price, 22 u32 volume, 26 u32 total sell qty, 30 u32 total
                            buy qty, 34 f32 open, 38 close, 42 high, 46 low
5    OpenInterest   12      8 u32 OI
8    FullTick       162     quote's first seven fields, 34 u32 OI, 38 OI day high,
                            42 OI day low, 46 f32 open, 50 close, 54 high, 58 low,
                            62 five depth levels of 20 bytes: u32 bid qty, u32 ask qty,
                            u16 bid orders, u16 ask orders, f32 bid price, f32 ask price
7    MarketStatus   >= 8    undocumented: the record keeps the bytes after the header
50   Disconnect     10      8 u16 reason code (:class:`~aio_trader.dhan.constants.DisconnectReason`)
==== ============== ======= ============================================================

Code 1 (index packet) is listed by Dhan without a layout and no client reads it (index
values arrive as ticker packets of segment ``IDX_I``): it is reported as malformed and
skipped, like any unknown code, a length shorter than the code's layout, or a length
running past the message's end. A packet longer than its layout is decoded (the extra
bytes are ignored: room for fields Dhan may add).

Integers are read unsigned, as Dhan's official SDK reads them (Dhan's tables say
``int32``/``int16``: the same values for everything non-negative, and volumes above
2**31 stay right). A segment byte is the :class:`~aio_trader.dhan.constants.ExchangeSegment`
it names, or its number as text (``"6"``) for a byte that names none, as the SDK does.

Prices are float32 on the wire and are rounded to the instrument's tick: to 2 decimals
(0.01 is exact enough for 0.05 ticks), 4 for the currency segments, or, given
``tick_sizes``, to as many decimals as the instrument's tick size has (at least 2: an
average traded price is no multiple of the tick). Rounding is exact (the same float as
``round(price, decimals)``) and memoised per decimals (prices repeat: a bounded table
from the float32 value to its rounding, emptied when full). NaN and infinities are kept
as they are.

The last trade time is Indian wall-clock time written as epoch seconds (Dhan confirmed
it in DhanHQ-py issue #51): it is read as UTC and labelled IST, so ``last_trade_time``
is an aware IST datetime whose clock reads what the exchange's did, right to the second.
0 means "none" (``None``).

20-level depth (:func:`decode_depth_message`): a 12-byte header in another order (``u16``
length, ``u8`` code 41 bids / 51 asks / 50 disconnect, ``u8`` segment, ``u32`` security
id, ``u32`` sequence), then rows of 16 bytes (f64 price, u32 quantity, u32 orders), a
bid and an ask packet per instrument stacked in one message. Prices are float64 and kept
as they are. A disconnect's reason is the ``int16`` after the header (Dhan's page); a
12-byte disconnect packet has none, and its sequence field is taken as the reason, as
Dhan's SDK reads it.

Order updates (:func:`decode_text`): ``{"Type": "order_alert", "Data": {...}}``, with
Dhan's PascalCase keys (``OrderNo``) or the camelCase ones live messages use
(``orderNo``).

Speed, plainly: packet records are frozen attrs classes filled through a mutable twin
(the one interpreter trick of the library, explained and tested in
``aio_trader/_twins.py``), in one hand-written function per packet kind;
:class:`Ohlc` and :class:`DepthLevel` are named tuples, built in C. A full tick's
:class:`Depth` keeps the packet's bytes (the message itself when it is that one packet,
else a copy of the 100 depth bytes) and builds a side's five levels each time the side is
read. Timestamps and prices go through bounded caches (ticks of a message share a few
seconds and prices). Figures: ``benchmarks/bench_dhan_ticks.py``; its ``--profile``
splits a full tick read in full: decoding it is a quarter of the time, building the
ten levels of its depth half (each level a named tuple, about 0.1 us, plus unpacking,
rounding and freeing), reading their thirty fields an eighth. Measured slower, so not
used: sides cached on first read, levels made with ``map``/``zip`` or
``struct.iter_unpack`` (``benchmarks/README.md``).
"""

from __future__ import annotations

import datetime
import decimal
import json
import logging
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Final, Literal, NamedTuple, TypeAlias, cast

import attrs

from aio_trader._time import IST
from aio_trader._twins import mutable_twin
from aio_trader.dhan.constants import DisconnectReason, ExchangeSegment

__all__ = [
    "Depth",
    "DepthLevel",
    "Disconnect",
    "FeedMessage",
    "FeedRecord",
    "FullTick",
    "MalformedPacket",
    "MarketStatus",
    "Ohlc",
    "OpenInterest",
    "OrderUpdate",
    "PrevClose",
    "QuoteTick",
    "Tick",
    "TickerTick",
    "TwentyDepth",
    "decode_counted",
    "decode_depth_message",
    "decode_message",
    "decode_text",
    "encode_depth_message",
    "encode_message",
    "encode_packet",
    "encode_text",
    "segment_name",
]

log = logging.getLogger(__name__)

_U16: Final = 0xFFFF
_U32: Final = 0xFFFFFFFF
_HEADER: Final = 8
_DEPTH_HEADER: Final = 12
_DEPTH_ROW: Final = 16

# -- segments, prices, times ------------------------------------------------------------

#: Feed byte -> the segment's name (an ExchangeSegment), or the number as text.
_SEGMENT_NAMES: Final[tuple[str, ...]] = tuple(
    next((s for s in ExchangeSegment if s.code == byte), str(byte)) for byte in range(256)
)
_SEGMENT_CODES: Final[dict[str, int]] = {name: byte for byte, name in enumerate(_SEGMENT_NAMES)}


def segment_name(code: int) -> str:
    """The segment a feed byte stands for: an :class:`ExchangeSegment` (a ``str``), or
    the byte's number as text (``"6"``) for a byte that names none."""
    return _SEGMENT_NAMES[code & 0xFF]


def _segment_code(value: object) -> int:
    code = _SEGMENT_CODES.get(value) if isinstance(value, str) else None
    if code is None:
        raise ValueError(f"exchange_segment={value!r} is no segment name or code 0..255")
    return code


class _Rounding(dict[float, float]):
    """float32 value -> that value rounded to ``decimals`` decimals, learnt on a miss.

    ``round(x * 10**d) / 10**d`` is exact here: a float32 times 10**d (d <= 10) is exact
    in a float64, so the integer is the correctly rounded (half to even) one and the
    division gives the float nearest to it, the float ``round(x, d)`` gives.
    """

    __slots__ = ("scale",)

    def __init__(self, decimals: int) -> None:
        super().__init__()
        self.scale: int = 10**decimals

    def __missing__(self, value: float) -> float:
        try:
            rounded = round(value * self.scale) / self.scale
        except (OverflowError, ValueError):  # infinities, NaN: kept as they are
            return value
        if len(self) >= _ROUNDING_MAX:
            self.clear()
        self[value] = rounded
        return rounded


_ROUNDING_MAX: Final = 1 << 16
_MAX_DECIMALS: Final = 10
_ROUNDINGS: Final[dict[int, _Rounding]] = {d: _Rounding(d) for d in range(_MAX_DECIMALS + 1)}
#: Feed byte -> the default rounding of its prices (4 decimals for currencies, else 2).
_SEGMENT_ROUNDING: Final[tuple[_Rounding, ...]] = tuple(
    _ROUNDINGS[4 if byte in (3, 7) else 2] for byte in range(256)
)
#: Tick size -> the rounding of its prices.
_TICK_ROUNDING: Final[dict[float, _Rounding]] = {}


def _tick_rounding(tick: float) -> _Rounding:
    rounding = _TICK_ROUNDING.get(tick)
    if rounding is None:
        try:
            exponent = decimal.Decimal(repr(float(tick))).as_tuple().exponent
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"tick size {tick!r} is not a number") from None
        places = -exponent if isinstance(exponent, int) else 0
        rounding = _ROUNDINGS[min(max(places, 2), _MAX_DECIMALS)]
        if len(_TICK_ROUNDING) < 1024:
            _TICK_ROUNDING[tick] = rounding
    return rounding


#: Midnight of 1970-01-01 on an Indian clock: plus LTT seconds, the exchange's clock.
_WALL_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=IST)
_SECOND: Final = datetime.timedelta(seconds=1)


class _Times(dict[int, "datetime.datetime | None"]):
    """Wire time (IST wall clock as epoch seconds) -> aware IST datetime; 0 -> None."""

    __slots__ = ()

    def __missing__(self, value: int) -> datetime.datetime | None:
        stamp = _WALL_EPOCH + value * _SECOND if value else None
        if len(self) >= _TIMES_MAX:
            self.clear()
        self[value] = stamp
        return stamp


_TIMES_MAX: Final = 4096
_TIMES: Final = _Times()


def _wire_time(value: datetime.datetime | None, what: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, datetime.datetime) or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime or None, got {value!r}")
    seconds = (value.astimezone(IST) - _WALL_EPOCH) // _SECOND
    return _wire_int(seconds, what)


def _wire_int(value: object, what: str, limit: int = _U32) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ValueError(f"{what}={value!r} does not fit the wire format (an int in 0..{limit})")
    return value


def _wire_price(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what}={value!r} is not a price")
    try:
        struct.pack("<f", value)
    except OverflowError:
        raise ValueError(f"{what}={value!r} does not fit a float32") from None
    return float(value)


# -- records --------------------------------------------------------------------------


class Ohlc(NamedTuple):
    """Open, high, low and close prices of the day. Dhan sends ``close`` only after the
    market closes (0 before): the previous day's close is :class:`PrevClose`.

    A named tuple, as :class:`DepthLevel` is: small values of plain numbers, built in C."""

    open: float
    high: float
    low: float
    close: float


class DepthLevel(NamedTuple):
    """One level of market depth: ``quantity`` at ``price`` from ``orders`` orders.

    A named tuple rather than an attrs record: a full packet has ten of them, and a
    tuple subclass is built in C (``quantity, price, orders = level`` unpacks it; it
    also compares equal to a plain tuple of the same values)."""

    quantity: int
    price: float
    orders: int


@attrs.frozen(
    these={"buy": attrs.field(), "sell": attrs.field()}, slots=False, init=False, weakref_slot=False
)
class Depth:
    """Market depth: five bid levels (``buy``) and five ask levels (``sell``), best first.

    A decoded tick's depth keeps the packet's bytes and builds a side's levels
    each time that side is read (equal every time, not the same tuple): levels cost
    nothing until read. Bind ``side = depth.buy`` once to read a side many times.
    """

    # attrs declares the fields (``these``) and makes eq, hash, repr and the frozen
    # __setattr__; the storage is ours: a constructed depth holds its two tuples, a
    # decoded one (made in ``_full``) bytes holding the depth (the message itself when it
    # is that one packet, else a copy of the 100 depth bytes), where the depth starts in
    # them, and the price rounding.
    __slots__ = ("_at", "_buy", "_raw", "_rounding", "_sell")
    _buy: tuple[DepthLevel, ...]
    _sell: tuple[DepthLevel, ...]
    _raw: bytes | None
    _at: int
    _rounding: _Rounding

    def __init__(self, buy: Iterable[DepthLevel], sell: Iterable[DepthLevel]) -> None:
        object.__setattr__(self, "_buy", tuple(buy))  # attrs' way into a frozen record
        object.__setattr__(self, "_sell", tuple(sell))
        object.__setattr__(self, "_raw", None)

    @property
    def buy(self) -> tuple[DepthLevel, ...]:
        """The five bid levels, best (highest price) first."""
        raw = self._raw
        return self._buy if raw is None else _depth_side(raw, self._at, _BID, self._rounding)

    @property
    def sell(self) -> tuple[DepthLevel, ...]:
        """The five ask levels, best (lowest price) first."""
        raw = self._raw
        return self._sell if raw is None else _depth_side(raw, self._at, _ASK, self._rounding)

    def __reduce__(self) -> tuple[type[Depth], tuple[tuple[DepthLevel, ...], ...]]:
        return Depth, (self.buy, self.sell)


def _depth_side(raw: bytes, at: int, side: struct.Struct, r: _Rounding) -> tuple[DepthLevel, ...]:
    """One side's five levels from a full packet's depth bytes at ``raw[at:]``
    (straight-line: it runs per read). ``side`` reads that side's (quantity, orders,
    price) of each level."""
    q0, o0, p0, q1, o1, p1, q2, o2, p2, q3, o3, p3, q4, o4, p4 = side.unpack_from(raw, at)
    return (
        _new(DepthLevel, (q0, r[p0], o0)),
        _new(DepthLevel, (q1, r[p1], o1)),
        _new(DepthLevel, (q2, r[p2], o2)),
        _new(DepthLevel, (q3, r[p3], o3)),
        _new(DepthLevel, (q4, r[p4], o4)),
    )


#: A full packet's 100 depth bytes are five levels of: u32 bid qty, u32 ask qty, u16 bid
#: orders, u16 ask orders, f32 bid price, f32 ask price. Each side's reader skips the
#: other side's bytes.
_DEPTH_VALUES: Final = struct.Struct("<" + "IIHHff" * 5)
_BID: Final = struct.Struct("<" + "I4xH2xf4x" * 5)
_ASK: Final = struct.Struct("<" + "4xI2xH4xf" * 5)
_DEPTH_AT: Final = 62  # where a full packet's depth starts
_new: Final = tuple.__new__


class _Keyed:
    """What every market feed record shares: its instrument's ``key``."""

    __slots__ = ()
    exchange_segment: str
    security_id: int

    @property
    def key(self) -> tuple[str, int]:
        """``(exchange_segment, security_id)``: the instrument, as a feed subscribes it."""
        return (self.exchange_segment, self.security_id)


@attrs.frozen(weakref_slot=False)
class TickerTick(_Keyed):
    """Ticker packet (code 2): last traded price and time."""

    code: ClassVar[int] = 2
    mode: ClassVar[Literal["ticker"]] = "ticker"
    exchange_segment: str
    security_id: int
    last_price: float
    last_trade_time: datetime.datetime | None


@attrs.frozen(weakref_slot=False)
class PrevClose(_Keyed):
    """Previous close packet (code 6), sent on every subscription: the previous day's
    close and open interest."""

    code: ClassVar[int] = 6
    exchange_segment: str
    security_id: int
    previous_close: float
    previous_oi: int


@attrs.frozen(weakref_slot=False)
class QuoteTick(_Keyed):
    """Quote packet (code 4): trade data and the day's OHLC."""

    code: ClassVar[int] = 4
    mode: ClassVar[Literal["quote"]] = "quote"
    exchange_segment: str
    security_id: int
    last_price: float
    last_traded_quantity: int
    last_trade_time: datetime.datetime | None
    average_traded_price: float
    volume_traded: int
    total_sell_quantity: int
    total_buy_quantity: int
    ohlc: Ohlc


@attrs.frozen(weakref_slot=False)
class OpenInterest(_Keyed):
    """OI packet (code 5), sent with quote subscriptions."""

    code: ClassVar[int] = 5
    exchange_segment: str
    security_id: int
    oi: int


@attrs.frozen(weakref_slot=False)
class FullTick(_Keyed):
    """Full packet (code 8): quote data, open interest and five levels of depth.

    ``oi_day_high`` and ``oi_day_low`` are sent for ``NSE_FNO`` only (0 elsewhere)."""

    code: ClassVar[int] = 8
    mode: ClassVar[Literal["full"]] = "full"
    exchange_segment: str
    security_id: int
    last_price: float
    last_traded_quantity: int
    last_trade_time: datetime.datetime | None
    average_traded_price: float
    volume_traded: int
    total_sell_quantity: int
    total_buy_quantity: int
    oi: int
    oi_day_high: int
    oi_day_low: int
    ohlc: Ohlc
    depth: Depth


@attrs.frozen(weakref_slot=False)
class MarketStatus(_Keyed):
    """Market status packet (code 7): its payload is undocumented, kept as ``payload``
    (the bytes after the header)."""

    code: ClassVar[int] = 7
    exchange_segment: str
    security_id: int
    payload: bytes = b""


@attrs.frozen(weakref_slot=False)
class Disconnect(_Keyed):
    """Disconnect packet (code 50): the server is closing the connection, for ``reason``
    (see :class:`~aio_trader.dhan.constants.DisconnectReason`)."""

    code: ClassVar[int] = 50
    exchange_segment: str
    security_id: int
    reason: int

    @property
    def known_reason(self) -> DisconnectReason | None:
        """The reason as a :class:`DisconnectReason`; ``None`` for a code Dhan lists not."""
        try:
            return DisconnectReason(self.reason)
        except ValueError:
            return None

    @property
    def label(self) -> str:
        """Dhan's description of the reason (its annexure's)."""
        known = self.known_reason
        return known.label if known is not None else f"unknown reason code {self.reason}"

    @property
    def is_session_error(self) -> bool:
        """807-810: the credentials are expired or wrong; reconnecting cannot help."""
        known = self.known_reason
        return known is not None and known.is_session_error


@attrs.frozen(weakref_slot=False)
class TwentyDepth(_Keyed):
    """One side of the 20-level depth feed (codes 41 bids, 51 asks): ``levels`` best
    first, as sent; ``sequence`` is the header's message sequence (Dhan: to be ignored)."""

    exchange_segment: str
    security_id: int
    side: Literal["buy", "sell"]
    sequence: int
    levels: tuple[DepthLevel, ...]


#: A price tick (the three subscription modes).
Tick: TypeAlias = TickerTick | QuoteTick | FullTick
#: Any record of the market feed's binary messages.
FeedRecord: TypeAlias = (
    TickerTick | PrevClose | QuoteTick | OpenInterest | FullTick | MarketStatus | Disconnect
)


@attrs.frozen
class MalformedPacket:
    """A part of a message that could not be decoded; it was skipped.

    ``offset`` is where the bad part starts in the message, ``length`` the packet's
    declared length (for a cut-off message or trailing bytes: the number of bytes left),
    ``raw`` the undecoded bytes.
    """

    reason: str
    offset: int
    length: int
    raw: bytes = attrs.field(repr=lambda raw: f"<{len(raw)} bytes>")


# -- decoding: one plain function per packet kind --------------------------------------------
#
# Each takes the message, the packet's start and end and the price rounding, and fills a
# mutable twin of its record (aio_trader/_twins.py says why). The struct each reads
# comes from the table below, which also drives encoding; round-trip tests hold them
# together.

_TickerTwin: Final = mutable_twin(TickerTick)
_PrevCloseTwin: Final = mutable_twin(PrevClose)
_QuoteTwin: Final = mutable_twin(QuoteTick)
_OiTwin: Final = mutable_twin(OpenInterest)
_FullTwin: Final = mutable_twin(FullTick)
_DepthTwin: Final = mutable_twin(Depth)
_StatusTwin: Final = mutable_twin(MarketStatus)
_DisconnectTwin: Final = mutable_twin(Disconnect)


def _ticker(data: bytes, pos: int, end: int, r: _Rounding) -> TickerTick:
    seg, sid, last, ltt = _TICKER.unpack_from(data, pos)
    t = _TickerTwin()
    t.exchange_segment = _SEGMENT_NAMES[seg]
    t.security_id = sid
    t.last_price = r[last]
    t.last_trade_time = _TIMES[ltt]
    t.__class__ = TickerTick
    return t  # type: ignore[no-any-return]


def _prev_close(data: bytes, pos: int, end: int, r: _Rounding) -> PrevClose:
    seg, sid, close, oi = _PREV_CLOSE.unpack_from(data, pos)
    t = _PrevCloseTwin()
    t.exchange_segment = _SEGMENT_NAMES[seg]
    t.security_id = sid
    t.previous_close = r[close]
    t.previous_oi = oi
    t.__class__ = PrevClose
    return t  # type: ignore[no-any-return]


def _quote(data: bytes, pos: int, end: int, r: _Rounding) -> QuoteTick:
    seg, sid, last, qty, ltt, avg, vol, sell, buy, o, c, h, low = _QUOTE.unpack_from(data, pos)
    ohlc = _new(Ohlc, (r[o], r[h], r[low], r[c]))
    t = _QuoteTwin()
    t.exchange_segment = _SEGMENT_NAMES[seg]
    t.security_id = sid
    t.last_price = r[last]
    t.last_traded_quantity = qty
    t.last_trade_time = _TIMES[ltt]
    t.average_traded_price = r[avg]
    t.volume_traded = vol
    t.total_sell_quantity = sell
    t.total_buy_quantity = buy
    t.ohlc = ohlc
    t.__class__ = QuoteTick
    return t  # type: ignore[no-any-return]


def _open_interest(data: bytes, pos: int, end: int, r: _Rounding) -> OpenInterest:
    seg, sid, oi = _OI.unpack_from(data, pos)
    t = _OiTwin()
    t.exchange_segment = _SEGMENT_NAMES[seg]
    t.security_id = sid
    t.oi = oi
    t.__class__ = OpenInterest
    return t  # type: ignore[no-any-return]


def _full(data: bytes, pos: int, end: int, r: _Rounding) -> FullTick:
    (seg, sid, last, qty, ltt, avg, vol, sell, buy, oi, oi_high, oi_low, o, c, h, low) = (
        _FULL_HEAD.unpack_from(data, pos)
    )
    depth = _DepthTwin()
    if end - pos == len(data):  # the message is this packet: keep it, no copy
        depth._raw = data
        depth._at = pos + _DEPTH_AT
    else:  # keep only the depth bytes, not the message's other packets
        depth._raw = data[pos + _DEPTH_AT : pos + _DEPTH_AT + _BID.size]
        depth._at = 0
    depth._rounding = r
    depth.__class__ = Depth
    ohlc = _new(Ohlc, (r[o], r[h], r[low], r[c]))
    t = _FullTwin()
    t.exchange_segment = _SEGMENT_NAMES[seg]
    t.security_id = sid
    t.last_price = r[last]
    t.last_traded_quantity = qty
    t.last_trade_time = _TIMES[ltt]
    t.average_traded_price = r[avg]
    t.volume_traded = vol
    t.total_sell_quantity = sell
    t.total_buy_quantity = buy
    t.oi = oi
    t.oi_day_high = oi_high
    t.oi_day_low = oi_low
    t.ohlc = ohlc
    t.depth = depth
    t.__class__ = FullTick
    return t  # type: ignore[no-any-return]


def _market_status(data: bytes, pos: int, end: int, r: _Rounding) -> MarketStatus:
    seg, sid = _STATUS.unpack_from(data, pos)
    t = _StatusTwin()
    t.exchange_segment = _SEGMENT_NAMES[seg]
    t.security_id = sid
    t.payload = data[pos + _HEADER : end]
    t.__class__ = MarketStatus
    return t  # type: ignore[no-any-return]


def _disconnect(data: bytes, pos: int, end: int, r: _Rounding) -> Disconnect:
    seg, sid, reason = _DISCONNECT.unpack_from(data, pos)
    t = _DisconnectTwin()
    t.exchange_segment = _SEGMENT_NAMES[seg]
    t.security_id = sid
    t.reason = reason
    t.__class__ = Disconnect
    return t  # type: ignore[no-any-return]


# -- binary layout: each packet's payload in wire order, for the structs and encoding ----

# How a wire value becomes a record's: as is; a rounded price; a wire time; five depth
# levels (30 values).
_INT, _PRICE, _TIME, _DEPTH = range(4)


@attrs.frozen
class _Field:
    name: str  # the record attribute it feeds ("ohlc.open": an attribute of an attribute)
    fmt: str  # struct code
    conv: int  # _INT, _PRICE, ...


_LTQ = _Field("last_traded_quantity", "H", _INT)
_LTT = _Field("last_trade_time", "I", _TIME)
_TRADE_FIELDS = (
    _Field("last_price", "f", _PRICE),
    _LTQ,
    _LTT,
    _Field("average_traded_price", "f", _PRICE),
    _Field("volume_traded", "I", _INT),
    _Field("total_sell_quantity", "I", _INT),
    _Field("total_buy_quantity", "I", _INT),
)
_OHLC_FIELDS = (
    _Field("ohlc.open", "f", _PRICE),
    _Field("ohlc.close", "f", _PRICE),
    _Field("ohlc.high", "f", _PRICE),
    _Field("ohlc.low", "f", _PRICE),
)


@attrs.frozen
class _Kind:
    """How one response code maps to a record."""

    cls: type
    fields: tuple[_Field, ...]
    build: Callable[[bytes, int, int, _Rounding], Any]
    variable: bool = False  # the packet's tail after the fields is the record's payload
    layout: struct.Struct = attrs.field(init=False)  # header's segment and id, then fields
    size: int = attrs.field(init=False)  # the packet's length on the wire

    def __attrs_post_init__(self) -> None:
        layout = struct.Struct("<3xBI" + "".join(f.fmt for f in self.fields))
        object.__setattr__(self, "layout", layout)
        object.__setattr__(self, "size", layout.size)


_KINDS: Final[dict[int, _Kind]] = {
    2: _Kind(TickerTick, (_Field("last_price", "f", _PRICE), _LTT), _ticker),
    6: _Kind(
        PrevClose,
        (_Field("previous_close", "f", _PRICE), _Field("previous_oi", "I", _INT)),
        _prev_close,
    ),
    4: _Kind(QuoteTick, (*_TRADE_FIELDS, *_OHLC_FIELDS), _quote),
    5: _Kind(OpenInterest, (_Field("oi", "I", _INT),), _open_interest),
    8: _Kind(
        FullTick,
        (
            *_TRADE_FIELDS,
            _Field("oi", "I", _INT),
            _Field("oi_day_high", "I", _INT),
            _Field("oi_day_low", "I", _INT),
            *_OHLC_FIELDS,
            _Field("depth", "100s", _DEPTH),
        ),
        _full,
    ),
    7: _Kind(MarketStatus, (), _market_status, variable=True),
    50: _Kind(Disconnect, (_Field("reason", "H", _INT),), _disconnect),
}
_KIND_OF: Final[dict[type, tuple[int, _Kind]]] = {
    kind.cls: (code, kind) for code, kind in _KINDS.items()
}
#: Response code -> its kind (None: a code without a layout).
_BY_CODE: Final[tuple[_Kind | None, ...]] = tuple(_KINDS.get(code) for code in range(256))
#: Response code -> the packet's length when its layout is fixed (0: unknown or variable).
_FIXED_SIZES: Final[tuple[int, ...]] = tuple(
    0 if kind is None or kind.variable else kind.size for kind in _BY_CODE
)
#: Response code -> its builder (None, typed away, only where the fixed size is 0, which
#: no message of 8 bytes or more matches).
_BUILDERS: Final = cast(
    "tuple[Callable[[bytes, int, int, _Rounding], Any], ...]",
    tuple(None if kind is None else kind.build for kind in _BY_CODE),
)
_TICKER: Final = _KINDS[2].layout
_PREV_CLOSE: Final = _KINDS[6].layout
_QUOTE: Final = _KINDS[4].layout
_OI: Final = _KINDS[5].layout
#: A full packet up to its depth (the depth is read on demand, see Depth).
_FULL_HEAD: Final = struct.Struct(_KINDS[8].layout.format.removesuffix("100s"))
_STATUS: Final = _KINDS[7].layout
_DISCONNECT: Final = _KINDS[50].layout
_SEGMENT_AND_ID: Final = struct.Struct("<3xBI")


# -- market feed messages -----------------------------------------------------------------


def _log_malformed(bad: list[MalformedPacket], what: str) -> None:
    """One WARNING per message, however many parts of it were malformed."""
    first = bad[0]
    log.warning(
        "skipped %d malformed part(s) of a %s; the first: %s (offset %d, length %d)",
        len(bad),
        what,
        first.reason,
        first.offset,
        first.length,
    )


def _as_bytes(data: object, function: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"{function} takes bytes, not {type(data).__name__}")


def decode_message(
    data: bytes | bytearray | memoryview,
    on_malformed: Callable[[MalformedPacket], None] | None = None,
    *,
    tick_sizes: Mapping[tuple[str, int], float] | None = None,
) -> list[FeedRecord]:
    """Decode one binary message of the market feed into records, in packet order.

    ``tick_sizes`` maps instrument keys (``(exchange_segment, security_id)``, as
    :attr:`TickerTick.key`) to tick sizes; an instrument's prices are rounded to as many
    decimals as its tick size has, at least 2 (others: 2, or 4 for currency segments).

    Never raises for any bytes: each malformed part (an unknown or undocumented response
    code, a packet shorter than its code's layout or than a header, a length running past
    the end) is skipped and reported as a :class:`MalformedPacket` to ``on_malformed``,
    one call each; without a callback, a message with malformed parts logs ONE warning
    giving their count and the first. Every well-formed packet is still returned. (An
    exception raised by ``on_malformed`` itself propagates.) ``TypeError`` when ``data``
    is not bytes-like; ``ValueError`` for a tick size that is no number.
    """
    if type(data) is not bytes:
        data = _as_bytes(data, "decode_message")
    size = len(data)
    if size >= _HEADER and tick_sizes is None:
        # Fast path: one packet of a known fixed layout, as Dhan's feed mostly sends.
        code = data[0]
        if size == _FIXED_SIZES[code] and data[1] | data[2] << 8 == size:
            if code == 2:  # the ticker (_ticker's lines): its most frequent packet, and
                # a call is an eighth of its decoding time
                seg, sid, last, ltt = _TICKER.unpack_from(data)
                t = _TickerTwin()
                t.exchange_segment = _SEGMENT_NAMES[seg]
                t.security_id = sid
                t.last_price = _SEGMENT_ROUNDING[seg][last]
                t.last_trade_time = _TIMES[ltt]
                t.__class__ = TickerTick
                return [t]
            return [_BUILDERS[code](data, 0, size, _SEGMENT_ROUNDING[data[3]])]
    if on_malformed is not None:
        return _walk(data, on_malformed, tick_sizes)
    bad: list[MalformedPacket] = []
    records = _walk(data, bad.append, tick_sizes)
    if bad:
        _log_malformed(bad, "feed message")
    return records


def decode_counted(
    data: bytes | bytearray | memoryview,
    *,
    tick_sizes: Mapping[tuple[str, int], float] | None = None,
) -> tuple[list[FeedRecord], int]:
    """:func:`decode_message` without logging: the records and how many malformed parts
    were skipped."""
    bad: list[MalformedPacket] = []
    records = decode_message(data, bad.append, tick_sizes=tick_sizes)
    return records, len(bad)


def _walk(
    data: bytes,
    report: Callable[[MalformedPacket], None],
    tick_sizes: Mapping[tuple[str, int], float] | None,
) -> list[FeedRecord]:
    """The general path: packets walked by their length, malformed ones reported."""
    records: list[FeedRecord] = []
    size = len(data)
    pos = 0
    while pos < size:
        if size - pos < _HEADER:
            reason = f"{size - pos} bytes after the last packet, fewer than a header"
            report(MalformedPacket(reason, pos, size - pos, data[pos:]))
            break
        code = data[pos]
        length = data[pos + 1] | data[pos + 2] << 8
        if length < _HEADER:
            reason = f"packet length {length} is shorter than its header: the walk stops"
            report(MalformedPacket(reason, pos, size - pos, data[pos:]))
            break
        end = pos + length
        if end > size:
            reason = f"packet length {length} runs past the end of the message"
            report(MalformedPacket(reason, pos, length, data[pos:]))
            break
        kind = _BY_CODE[code]
        if kind is None:
            reason = (
                "index packet (code 1): its payload is undocumented"
                if code == 1
                else f"unknown response code {code}"
            )
            report(MalformedPacket(reason, pos, length, data[pos:end]))
        elif length < kind.size:
            reason = f"code {code} packet of {length} bytes, its layout needs {kind.size}"
            report(MalformedPacket(reason, pos, length, data[pos:end]))
        else:
            if tick_sizes is None:
                rounding = _SEGMENT_ROUNDING[data[pos + 3]]
            else:
                seg, sid = _SEGMENT_AND_ID.unpack_from(data, pos)
                tick = tick_sizes.get((_SEGMENT_NAMES[seg], sid))
                rounding = _SEGMENT_ROUNDING[seg] if tick is None else _tick_rounding(tick)
            records.append(kind.build(data, pos, end, rounding))
        pos = end
    return records


def _attribute(record: object, name: str) -> Any:
    for part in name.split("."):
        record = getattr(record, part)
    return record


def encode_packet(record: FeedRecord) -> bytes:
    """One market feed packet for a record: the inverse of decoding it.

    Prices become float32 (decoding rounds them again); times (aware datetimes, or
    ``None`` for 0) become Indian wall-clock epoch seconds. ``ValueError`` for a value the
    wire cannot carry (negative, too large, a naive datetime, depth without 5 levels a
    side, an unknown segment name), ``TypeError`` for anything that is no feed record.
    """
    entry = _KIND_OF.get(type(record))
    if entry is None:
        raise TypeError(f"not a market feed record: {type(record).__name__}")
    code, kind = entry
    name = type(record).__name__
    values: list[Any] = [
        _segment_code(record.exchange_segment),
        _wire_int(record.security_id, f"{name}.security_id"),
    ]
    for f in kind.fields:
        what = f"{name}.{f.name}"
        value = _attribute(record, f.name)
        if f.conv == _PRICE:
            values.append(_wire_price(value, what))
        elif f.conv == _TIME:
            values.append(_wire_time(value, what))
        elif f.conv == _DEPTH:
            values.append(_DEPTH_VALUES.pack(*_depth_values(value)))
        else:
            values.append(_wire_int(value, what, _U16 if f.fmt == "H" else _U32))
    body = kind.layout.pack(*values)[3:]
    if kind.variable:
        payload = record.payload  # type: ignore[union-attr]
        if not isinstance(payload, bytes):
            raise ValueError(f"{name}.payload must be bytes")
        body += payload
    length = len(body) + 3
    if length > _U16:
        raise ValueError(f"a packet holds at most {_U16} bytes, this one {length}")
    return bytes((code, length & 0xFF, length >> 8)) + body


def _depth_values(depth: Depth) -> list[Any]:
    if len(depth.buy) != 5 or len(depth.sell) != 5:
        raise ValueError("depth needs exactly 5 buy and 5 sell levels")
    values: list[Any] = []
    for bid, ask in zip(depth.buy, depth.sell, strict=True):
        values.append(_wire_int(bid.quantity, "DepthLevel.quantity"))
        values.append(_wire_int(ask.quantity, "DepthLevel.quantity"))
        values.append(_wire_int(bid.orders, "DepthLevel.orders", _U16))
        values.append(_wire_int(ask.orders, "DepthLevel.orders", _U16))
        values.append(_wire_price(bid.price, "DepthLevel.price"))
        values.append(_wire_price(ask.price, "DepthLevel.price"))
    return values


def encode_message(records: Iterable[FeedRecord]) -> bytes:
    """One message of the records' packets, in order (see :func:`encode_packet`)."""
    return b"".join(map(encode_packet, records))


# -- 20-level depth messages ----------------------------------------------------------------

_DEPTH_HEAD: Final = struct.Struct("<HBBII")  # length, code, segment, security id, sequence
_DEPTH_ROW_FORMAT: Final = struct.Struct("<dII")
_REASON_AFTER_HEADER: Final = struct.Struct("<H")
_SIDES: Final[dict[int, Literal["buy", "sell"]]] = {41: "buy", 51: "sell"}
_SIDE_CODES: Final = {"buy": 41, "sell": 51}


def decode_depth_message(
    data: bytes | bytearray | memoryview,
    on_malformed: Callable[[MalformedPacket], None] | None = None,
) -> list[TwentyDepth | Disconnect]:
    """Decode one binary message of the 20-level depth feed, in packet order.

    Never raises for any bytes, like :func:`decode_message` (malformed parts reported to
    ``on_malformed`` or logged once per message). ``TypeError`` when ``data`` is not
    bytes-like.
    """
    data = _as_bytes(data, "decode_depth_message")
    if on_malformed is not None:
        return _walk_depth(data, on_malformed)
    bad: list[MalformedPacket] = []
    records = _walk_depth(data, bad.append)
    if bad:
        _log_malformed(bad, "depth message")
    return records


def _walk_depth(
    data: bytes, report: Callable[[MalformedPacket], None]
) -> list[TwentyDepth | Disconnect]:
    records: list[TwentyDepth | Disconnect] = []
    size = len(data)
    pos = 0
    while pos < size:
        if size - pos < _DEPTH_HEADER:
            reason = f"{size - pos} bytes after the last packet, fewer than a header"
            report(MalformedPacket(reason, pos, size - pos, data[pos:]))
            break
        length, code, seg, sid, sequence = _DEPTH_HEAD.unpack_from(data, pos)
        if length < _DEPTH_HEADER:
            reason = f"packet length {length} is shorter than its header: the walk stops"
            report(MalformedPacket(reason, pos, size - pos, data[pos:]))
            break
        end = pos + length
        if end > size:
            reason = f"packet length {length} runs past the end of the message"
            report(MalformedPacket(reason, pos, length, data[pos:]))
            break
        side = _SIDES.get(code)
        if side is not None:
            rows = (length - _DEPTH_HEADER) // _DEPTH_ROW
            start = pos + _DEPTH_HEADER
            levels = _DEPTH_ROW_FORMAT.iter_unpack(data[start : start + rows * _DEPTH_ROW])
            records.append(
                TwentyDepth(
                    _SEGMENT_NAMES[seg],
                    sid,
                    side,
                    sequence,
                    tuple(DepthLevel(qty, price, orders) for price, qty, orders in levels),
                )
            )
        elif code == 50:
            if length >= _DEPTH_HEADER + 2:
                (reason_code,) = _REASON_AFTER_HEADER.unpack_from(data, pos + _DEPTH_HEADER)
            else:
                reason_code = sequence
            records.append(Disconnect(_SEGMENT_NAMES[seg], sid, reason_code))
        else:
            reason = f"unknown depth response code {code}"
            report(MalformedPacket(reason, pos, length, data[pos:end]))
        pos = end
    return records


def encode_depth_message(records: Iterable[TwentyDepth | Disconnect]) -> bytes:
    """One 20-level depth message of the records' packets: the inverse of
    :func:`decode_depth_message`. A disconnect is written with its reason after the
    header (14 bytes). ``ValueError`` / ``TypeError`` as :func:`encode_packet`."""
    parts: list[bytes] = []
    for record in records:
        seg = _segment_code(record.exchange_segment)
        sid = _wire_int(record.security_id, "security_id")
        if isinstance(record, TwentyDepth):
            code = _SIDE_CODES.get(record.side)
            if code is None:
                raise ValueError(f"TwentyDepth.side={record.side!r} is neither buy nor sell")
            rows = b"".join(
                _DEPTH_ROW_FORMAT.pack(
                    _wire_price_64(level.price),
                    _wire_int(level.quantity, "DepthLevel.quantity"),
                    _wire_int(level.orders, "DepthLevel.orders"),
                )
                for level in record.levels
            )
            length = _DEPTH_HEADER + len(rows)
            if length > _U16:
                raise ValueError(f"a packet holds at most {_U16} bytes, this one {length}")
            sequence = _wire_int(record.sequence, "TwentyDepth.sequence")
            parts.append(_DEPTH_HEAD.pack(length, code, seg, sid, sequence) + rows)
        elif isinstance(record, Disconnect):
            reason = _wire_int(record.reason, "Disconnect.reason", _U16)
            head = _DEPTH_HEAD.pack(_DEPTH_HEADER + 2, 50, seg, sid, 0)
            parts.append(head + _REASON_AFTER_HEADER.pack(reason))
        else:
            raise TypeError(f"not a depth record: {type(record).__name__}")
    return b"".join(parts)


def _wire_price_64(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"DepthLevel.price={value!r} is not a price")
    return float(value)


# -- order updates (text messages) ----------------------------------------------------


@attrs.frozen
class FeedMessage:
    """A JSON message of the order-update socket that is no order update."""

    data: Any


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _upper_code(names: Mapping[str, str]) -> Callable[[object], str]:
    """Dhan's one-letter codes of live messages (``"B"``) to its REST names (``"BUY"``)."""

    def convert(value: object) -> str:
        text = _text(value).strip()
        return names.get(text.upper(), text)

    return convert


def _status(value: object) -> str:
    """``"Traded"``, ``"Part Traded"``, ``"TRADED"`` -> Dhan's REST spelling ``"TRADED"``."""
    return _text(value).strip().upper().replace(" ", "_")


def _number(kind: type[int] | type[float]) -> Callable[[object], Any]:
    def convert(value: object) -> Any:
        if isinstance(value, bool):
            return kind(0)
        if isinstance(value, int | float):
            number = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                return kind(0)
        if number != number or number in (float("inf"), float("-inf")):
            return kind(0)
        return kind(number)

    return convert


def _time(value: object) -> datetime.datetime | None:
    """``"2024-09-11 14:39:29"`` (IST) to an aware datetime; anything else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.year <= 1:  # Dhan's "0001-01-01 00:00:00": no time
        return None
    return parsed.replace(tzinfo=IST) if parsed.tzinfo is None else parsed.astimezone(IST)


#: (Exchange, one-letter Segment) of an order update -> its exchange segment.
_ORDER_SEGMENTS: Final[dict[tuple[str, str], ExchangeSegment]] = {
    ("NSE", "E"): ExchangeSegment.NSE_EQ,
    ("NSE", "D"): ExchangeSegment.NSE_FNO,
    ("NSE", "C"): ExchangeSegment.NSE_CURRENCY,
    ("BSE", "E"): ExchangeSegment.BSE_EQ,
    ("BSE", "D"): ExchangeSegment.BSE_FNO,
    ("BSE", "C"): ExchangeSegment.BSE_CURRENCY,
    ("MCX", "M"): ExchangeSegment.MCX_COMM,
}
_TXN_TYPES: Final = {"B": "BUY", "S": "SELL"}
_PRODUCTS: Final = {"C": "CNC", "I": "INTRADAY", "M": "MARGIN", "F": "MTF", "V": "CO", "B": "BO"}
_ORDER_TYPES: Final = {
    "LMT": "LIMIT",
    "MKT": "MARKET",
    "SL": "STOP_LOSS",
    "SLM": "STOP_LOSS_MARKET",
}


@attrs.frozen
class OrderUpdate:
    """An order update of Dhan's order-update socket (``{"Type": "order_alert",
    "Data": {...}}``), read from PascalCase (``OrderNo``: Dhan's docs) or camelCase
    (``orderNo``: live messages) keys; when both spellings of a field come, PascalCase's
    is read.

    ``status`` is upper case with underscores as Dhan's REST answers spell it
    (``"Part Traded"`` -> ``"PART_TRADED"``); ``transaction_type``, ``product_type`` and
    ``order_type`` are Dhan's REST names (``"B"`` -> ``"BUY"``, ``"C"`` -> ``"CNC"``,
    ``"LMT"`` -> ``"LIMIT"``; unknown codes as sent); times are aware IST datetimes
    (``None`` when absent). A value of the wrong type reads as the field's default.
    ``raw`` is the whole ``Data`` object as received, every field this record does not
    name included; it takes no part in equality.
    """

    order_id: str = ""
    exchange_order_id: str = ""
    correlation_id: str = ""
    status: str = ""
    transaction_type: str = ""
    exchange: str = ""
    segment: str = ""
    security_id: str = ""
    symbol: str = ""
    product_type: str = ""
    order_type: str = ""
    validity: str = ""
    quantity: int = 0
    traded_quantity: int = 0
    remaining_quantity: int = 0
    disclosed_quantity: int = 0
    price: float = 0.0
    trigger_price: float = 0.0
    traded_price: float = 0.0
    average_traded_price: float = 0.0
    order_time: datetime.datetime | None = None
    exchange_order_time: datetime.datetime | None = None
    last_updated_time: datetime.datetime | None = None
    reason: str = ""
    remarks: str = ""
    leg_no: int = 0
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def exchange_segment(self) -> ExchangeSegment | None:
        """The :class:`ExchangeSegment` of ``exchange`` and ``segment`` (``"NSE"`` and
        ``"D"`` are ``NSE_FNO``; a segment already spelt ``"NSE_FNO"`` is itself);
        ``None`` when they name none."""
        segment = _ORDER_SEGMENTS.get((self.exchange.upper(), self.segment.upper()))
        if segment is None and self.segment in ExchangeSegment._value2member_map_:
            return ExchangeSegment(self.segment)
        return segment

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrderUpdate:
        """Build from an order update's ``Data`` object (either key spelling). Never
        raises for a mapping with string keys."""
        pascal: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str) or not key:
                continue
            name = key[0].upper() + key[1:]
            if name == key or name not in pascal:  # PascalCase's value wins
                pascal[name] = value
        known: dict[str, Any] = {}
        for wire, (field, convert) in _ORDER_FIELDS.items():
            if wire in pascal:
                known[field] = convert(pascal[wire])
        return cls(**known, raw=dict(data))

    def to_dict(self, camel_case: bool = True) -> dict[str, Any]:
        """The ``Data`` object: :attr:`raw` with this record's fields written over it in
        Dhan's wire form, under the spelling ``raw`` uses (camelCase when it has none)."""
        out = dict(self.raw)
        for wire, (field, _) in _ORDER_FIELDS.items():
            camel = wire[0].lower() + wire[1:]
            key = wire if wire in out else camel if camel in out or camel_case else wire
            out[key] = _ORDER_WIRE.get(field, _same)(getattr(self, field))
        return out


def _same(value: object) -> object:
    return value


def _time_text(value: object) -> object:
    if isinstance(value, datetime.datetime):
        return value.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")
    return ""


def _wire_code(names: Mapping[str, str]) -> Callable[[object], object]:
    back = {name: code for code, name in names.items()}
    return lambda value: back.get(str(value), value)


#: Dhan's PascalCase key -> (OrderUpdate field, converter).
_ORDER_FIELDS: Final[dict[str, tuple[str, Callable[[object], Any]]]] = {
    "OrderNo": ("order_id", _text),
    "ExchOrderNo": ("exchange_order_id", _text),
    "CorrelationId": ("correlation_id", _text),
    "Status": ("status", _status),
    "TxnType": ("transaction_type", _upper_code(_TXN_TYPES)),
    "Exchange": ("exchange", _text),
    "Segment": ("segment", _text),
    "SecurityId": ("security_id", _text),
    "Symbol": ("symbol", _text),
    "Product": ("product_type", _upper_code(_PRODUCTS)),
    "OrderType": ("order_type", _upper_code(_ORDER_TYPES)),
    "Validity": ("validity", _text),
    "Quantity": ("quantity", _number(int)),
    "TradedQty": ("traded_quantity", _number(int)),
    "RemainingQuantity": ("remaining_quantity", _number(int)),
    "DiscQuantity": ("disclosed_quantity", _number(int)),
    "Price": ("price", _number(float)),
    "TriggerPrice": ("trigger_price", _number(float)),
    "TradedPrice": ("traded_price", _number(float)),
    "AvgTradedPrice": ("average_traded_price", _number(float)),
    "OrderDateTime": ("order_time", _time),
    "ExchOrderTime": ("exchange_order_time", _time),
    "LastUpdatedTime": ("last_updated_time", _time),
    "ReasonDescription": ("reason", _text),
    "Remarks": ("remarks", _text),
    "LegNo": ("leg_no", _number(int)),
}
#: OrderUpdate field -> how it is written on the wire (the others: as they are).
_ORDER_WIRE: Final[dict[str, Callable[[object], object]]] = {
    "transaction_type": _wire_code(_TXN_TYPES),
    "product_type": _wire_code(_PRODUCTS),
    "order_type": _wire_code(_ORDER_TYPES),
    "order_time": _time_text,
    "exchange_order_time": _time_text,
    "last_updated_time": _time_text,
}


def decode_text(message: str | bytes) -> OrderUpdate | FeedMessage | MalformedPacket:
    """Decode a text message of the order-update socket.

    ``{"Type": "order_alert", "Data": {...}}`` with an order number is an
    :class:`OrderUpdate`; any other JSON object a :class:`FeedMessage`. Never raises:
    text that is not UTF-8, not JSON, not an object, or an order alert without an
    object in ``Data`` or without an order number gives a :class:`MalformedPacket`
    (``offset`` 0, ``raw`` the message's bytes).
    """
    raw = b""
    try:
        if isinstance(message, str):
            raw = message.encode("utf-8", "surrogatepass")
        else:
            raw = bytes(message)
            message = raw.decode("utf-8")
        obj = json.loads(message)
    except (TypeError, ValueError, RecursionError) as exc:
        return MalformedPacket(f"text message is not JSON: {exc}", 0, len(raw), raw)
    if not isinstance(obj, dict):
        return MalformedPacket("text message is not a JSON object", 0, len(raw), raw)
    kind = obj.get("Type", obj.get("type"))
    if kind != "order_alert":
        return FeedMessage(obj)
    data = obj.get("Data", obj.get("data"))
    if not isinstance(data, dict):
        return MalformedPacket("order alert without an object in 'Data'", 0, len(raw), raw)
    update = OrderUpdate.from_dict(data)
    if not update.order_id:
        return MalformedPacket("order alert without an order number", 0, len(raw), raw)
    return update


def encode_text(record: OrderUpdate | FeedMessage, camel_case: bool = True) -> str:
    """The text message for a record: the inverse of :func:`decode_text`. An order update
    is written with camelCase keys, as live messages are (``camel_case=False``: Dhan's
    documented PascalCase), unless its :attr:`~OrderUpdate.raw` already spells them."""
    if isinstance(record, OrderUpdate):
        return json.dumps({"Type": "order_alert", "Data": record.to_dict(camel_case)})
    if isinstance(record, FeedMessage):
        return json.dumps(record.data)
    raise TypeError(f"not a text record: {type(record).__name__}")
