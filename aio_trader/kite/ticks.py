"""Kite Connect v3 tick codec: binary and text WebSocket frames to attrs records, and back.

Pure: bytes in, records out, no I/O. Decoding never raises for any input: a malformed
packet is skipped and reported as a :class:`MalformedPacket` (each to ``on_malformed``;
without it, one WARNING per frame with their count), while the frame's well-formed
packets are still returned.

Wire format (big-endian): a frame is a 2-byte packet count, then per packet a 2-byte
length and the packet. The packet's length tells its kind:

====== ================ =========================================================
length record          fields (byte offset)
====== ================ =========================================================
8      LtpTick          0 token, 4 last price
28     IndexQuoteTick   0 token, 4 last, 8 high, 12 low, 16 open, 20 close, 24 change
32     IndexFullTick    index quote + 28 exchange timestamp
44     QuoteTick        0 token, 4 last, 8 last qty, 12 avg price, 16 volume,
                        20 buy qty, 24 sell qty, 28 open, 32 high, 36 low, 40 close
184    FullTick         quote + 44 last trade time, 48 OI, 52 OI day high,
                        56 OI day low, 60 exchange timestamp, 64 depth: 10 entries
                        of 12 bytes (uint32 qty, uint32 price, uint16 orders, 2 pad),
                        5 buy then 5 sell
====== ================ =========================================================

Integers are unsigned 32-bit, as Kite's official Python client reads them. Prices are
the integer divided by the segment's divisor (:func:`segment_divisor`). The ``change``
bytes of index packets are ignored: ``change`` is derived from last and close, as the
official client does. Timestamps are epoch seconds; 0 means "none" (``None``).

Speed, plainly: records are ordinary frozen attrs classes. The decoder fills each one
through a mutable twin of the same layout (the codec's one interpreter trick, explained
and tested in ``aio_trader/_twins.py``), in one hand-written function per packet
kind. A full tick's :class:`Depth` keeps the packet's 120 depth bytes and builds a
side's five levels each time the side is read, so a decoded tick holds three objects
the garbage collector tracks (the tick, its ``Ohlc`` and its ``Depth``) and about 800
bytes, depth included. Timestamps go through a small cache (ticks of a frame share a few
seconds) and ``datetime.fromtimestamp`` on a miss. Decoded and constructed records are
indistinguishable: equality, hashing, repr, pickling and :func:`attrs.evolve` all see
the same values. Records are not weak-referenceable (no ``__weakref__`` slot).
"""

from __future__ import annotations

import datetime
import json
import logging
import struct
from collections.abc import Callable, Iterable, Mapping
from itertools import starmap
from typing import Any, ClassVar, Final, Literal, TypeAlias, cast

import attrs

from aio_trader._time import IST
from aio_trader._twins import mutable_twin

__all__ = [
    "Depth",
    "DepthLevel",
    "FeedError",
    "FeedMessage",
    "FullTick",
    "IndexFullTick",
    "IndexQuoteTick",
    "LtpTick",
    "MalformedPacket",
    "Ohlc",
    "OrderUpdate",
    "QuoteTick",
    "Tick",
    "decode_frame",
    "decode_text",
    "encode_frame",
    "encode_text",
    "segment_divisor",
]

log = logging.getLogger(__name__)

#: Segment (``instrument_token & 0xff``) of indices: index ticks are not tradable.
INDICES_SEGMENT: Final = 9

#: Price divisor per segment: CDS (3) 1e7; BCD (6) and NCO (12) 1e4; others 100.
_DIVISORS: Final[tuple[float, ...]] = tuple(
    {3: 10_000_000.0, 6: 10_000.0, 12: 10_000.0}.get(segment, 100.0) for segment in range(256)
)


def segment_divisor(segment_or_token: int) -> float:
    """The price divisor of a segment or of an instrument token (only its low byte counts).

    CDS (segment 3) 10,000,000; BCD (6) and NCO (12) 10,000; every other segment 100.
    """
    return _DIVISORS[segment_or_token & 0xFF]


# -- timestamps -----------------------------------------------------------------------

#: Epoch seconds -> IST datetime: ticks of one frame mostly share a few seconds. Bounded
#: by ``decode_frame``, which empties it before a frame when it holds more than
#: ``_TIMES_MAX``. The builders convert a timestamp ``x`` with, inline (a function call
#: would add a fifth to a miss)::
#:
#:     _cached_time(x) or (_remember_time(x, _fromtimestamp(x, IST)) if x else None)
#:
#: a hit is one dict lookup; a miss one ``datetime.fromtimestamp`` with the fixed IST
#: offset (the cheapest exact conversion: no local time zone lookup) and one insert; 0
#: (no time on the wire) is ``None``.
_TIMES: Final[dict[int, datetime.datetime]] = {}
_TIMES_MAX: Final = 4096
_cached_time: Final = _TIMES.get
_remember_time: Final = _TIMES.setdefault
_fromtimestamp: Final = datetime.datetime.fromtimestamp


def _epoch(value: datetime.datetime | None, what: str) -> int:
    if value is None:
        return 0
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")
    return int(value.timestamp())


# -- records --------------------------------------------------------------------------


@attrs.frozen(weakref_slot=False)
class Ohlc:
    """Open, high, low and close prices of the day."""

    open: float
    high: float
    low: float
    close: float

    def to_dict(self) -> dict[str, float]:
        """``{"open", "high", "low", "close"}``, as Kite's official client gives them."""
        return {"open": self.open, "high": self.high, "low": self.low, "close": self.close}


@attrs.frozen(weakref_slot=False)
class DepthLevel:
    """One level of market depth: quantity at a price, from ``orders`` orders."""

    quantity: int
    price: float
    orders: int

    def to_dict(self) -> dict[str, float]:
        """``{"quantity", "price", "orders"}``, as Kite's official client gives them."""
        return {"quantity": self.quantity, "price": self.price, "orders": self.orders}


@attrs.frozen(
    these={"buy": attrs.field(), "sell": attrs.field()}, slots=False, init=False, weakref_slot=False
)
class Depth:
    """Market depth: five bid levels (``buy``) and five offer levels (``sell``), best first.

    A decoded tick's depth keeps the packet's 120 depth bytes and builds a side's levels
    each time that side is read (equal every time, not the same tuple): levels cost
    nothing until read, and a tick does not keep them alive. Bind ``side = depth.buy``
    once to read a side's levels many times.
    """

    # attrs declares the fields (``these``) and makes eq, hash, repr and the frozen
    # __setattr__; the storage is ours: a constructed depth holds its two tuples, a
    # decoded one (made in ``_full``) its bytes and price divisor.
    __slots__ = ("_buy", "_divisor", "_raw", "_sell")
    _buy: tuple[DepthLevel, ...]
    _sell: tuple[DepthLevel, ...]
    _raw: bytes | None
    _divisor: float

    def __init__(self, buy: tuple[DepthLevel, ...], sell: tuple[DepthLevel, ...]) -> None:
        object.__setattr__(self, "_buy", buy)  # attrs' documented way into a frozen record
        object.__setattr__(self, "_sell", sell)
        object.__setattr__(self, "_raw", None)

    @property
    def buy(self) -> tuple[DepthLevel, ...]:
        """The five bid levels, best (highest price) first."""
        raw = self._raw
        return self._buy if raw is None else _depth_side(raw, 0, self._divisor)

    @property
    def sell(self) -> tuple[DepthLevel, ...]:
        """The five offer levels, best (lowest price) first."""
        raw = self._raw
        return self._sell if raw is None else _depth_side(raw, _SIDE_BYTES, self._divisor)

    def __reduce__(self) -> tuple[type[Depth], tuple[tuple[DepthLevel, ...], ...]]:
        return Depth, (self.buy, self.sell)

    def to_dict(self) -> dict[str, list[dict[str, float]]]:
        """``{"buy": [level, ...], "sell": [...]}`` with each level as a dict."""
        return {
            "buy": [level.to_dict() for level in self.buy],
            "sell": [level.to_dict() for level in self.sell],
        }


class _TickBase:
    """What every tick record shares: ``tradable`` and ``to_dict``."""

    __slots__ = ()
    instrument_token: int
    mode: ClassVar[Literal["ltp", "quote", "full"]]

    @property
    def tradable(self) -> bool:
        """False for indices (segment 9), which cannot be traded."""
        return self.instrument_token & 0xFF != INDICES_SEGMENT

    def to_dict(self) -> dict[str, Any]:
        """The dict Kite's official Python client (``KiteTicker``) gives for this packet.

        Same keys and values, except that timestamps are timezone-aware (IST) here and
        an epoch of 0 is ``None``. A migration aid: prefer the record's attributes.
        """
        out: dict[str, Any] = {"tradable": self.tradable, "mode": self.mode}
        for field in attrs.fields(cast("type[attrs.AttrsInstance]", type(self))):
            value = getattr(self, field.name)
            out[field.name] = value.to_dict() if isinstance(value, Ohlc | Depth) else value
            if field.name == "ohlc":
                out["change"] = getattr(self, "change")  # noqa: B009 (not on every kind)
        return out


class _WithOhlc(_TickBase):
    """Mixin of the kinds with ``ohlc``: ``change``."""

    __slots__ = ()
    last_price: float
    ohlc: Ohlc

    @property
    def change(self) -> float:
        """Percent change from the previous close, ``(last - close) * 100 / close``; 0 if none."""
        close = self.ohlc.close
        return (self.last_price - close) * 100 / close if close else 0.0


@attrs.frozen(weakref_slot=False)
class LtpTick(_TickBase):
    """``ltp`` mode: the last traded price only (8-byte packet)."""

    mode: ClassVar[Literal["ltp"]] = "ltp"
    instrument_token: int
    last_price: float


@attrs.frozen(weakref_slot=False)
class IndexQuoteTick(_WithOhlc):
    """``quote`` mode of an index (segment 9): last price and the day's OHLC (28 bytes)."""

    mode: ClassVar[Literal["quote"]] = "quote"
    instrument_token: int
    last_price: float
    ohlc: Ohlc


@attrs.frozen(weakref_slot=False)
class IndexFullTick(_WithOhlc):
    """``full`` mode of an index: index quote plus the exchange timestamp (32 bytes)."""

    mode: ClassVar[Literal["full"]] = "full"
    instrument_token: int
    last_price: float
    ohlc: Ohlc
    exchange_timestamp: datetime.datetime | None


@attrs.frozen(weakref_slot=False)
class QuoteTick(_WithOhlc):
    """``quote`` mode: prices, quantities and the day's OHLC (44 bytes)."""

    mode: ClassVar[Literal["quote"]] = "quote"
    instrument_token: int
    last_price: float
    last_traded_quantity: int
    average_traded_price: float
    volume_traded: int
    total_buy_quantity: int
    total_sell_quantity: int
    ohlc: Ohlc


@attrs.frozen(weakref_slot=False)
class FullTick(_WithOhlc):
    """``full`` mode: quote plus times, open interest and five levels of depth (184 bytes)."""

    mode: ClassVar[Literal["full"]] = "full"
    instrument_token: int
    last_price: float
    last_traded_quantity: int
    average_traded_price: float
    volume_traded: int
    total_buy_quantity: int
    total_sell_quantity: int
    ohlc: Ohlc
    last_trade_time: datetime.datetime | None
    oi: int
    oi_day_high: int
    oi_day_low: int
    exchange_timestamp: datetime.datetime | None
    depth: Depth


#: Any decoded tick; ``match`` on the class or read ``tick.mode``.
Tick: TypeAlias = LtpTick | IndexQuoteTick | IndexFullTick | QuoteTick | FullTick


@attrs.frozen
class MalformedPacket:
    """A packet or text message that could not be decoded; it was skipped.

    ``offset`` is where the bad part starts in the frame (the packet's length prefix;
    0 for text), ``length`` the packet's declared length (for a cut-off frame or
    trailing garbage: the number of bytes left), ``raw`` the undecodable bytes.
    """

    reason: str
    offset: int
    length: int
    raw: bytes = attrs.field(repr=lambda raw: f"<{len(raw)} bytes>")


# -- decoding: one plain function per packet kind ------------------------------------------
#
# Each takes a packet's unpacked wire values (in wire order) and fills a mutable twin of
# the record (see aio_trader/_twins.py for why, and the one rule it relies on). The
# encoder's table below lists the same wire order; the round-trip tests hold them together.

_OhlcTwin: Final = mutable_twin(Ohlc)
_LevelTwin: Final = mutable_twin(DepthLevel)
_DepthTwin: Final = mutable_twin(Depth)
_LtpTwin: Final = mutable_twin(LtpTick)
_IndexQuoteTwin: Final = mutable_twin(IndexQuoteTick)
_IndexFullTwin: Final = mutable_twin(IndexFullTick)
_QuoteTwin: Final = mutable_twin(QuoteTick)
_FullTwin: Final = mutable_twin(FullTick)

_SIDE_BYTES: Final = 60  # five levels of 12 bytes: uint32 qty, uint32 price, uint16 orders, pad
_SIDE = struct.Struct(">" + "IIH2x" * 5)


def _ohlc(open_: int, high: int, low: int, close: int, d: float) -> Ohlc:
    o = _OhlcTwin()
    o.open = open_ / d
    o.high = high / d
    o.low = low / d
    o.close = close / d
    o.__class__ = Ohlc
    return o  # type: ignore[no-any-return]


def _depth_side(raw: bytes, offset: int, d: float) -> tuple[DepthLevel, ...]:
    """One side's five levels from a depth's bytes (straight-line: it runs per read)."""
    q0, p0, o0, q1, p1, o1, q2, p2, o2, q3, p3, o3, q4, p4, o4 = _SIDE.unpack_from(raw, offset)
    l0 = _LevelTwin()
    l0.quantity, l0.price, l0.orders = q0, p0 / d, o0
    l0.__class__ = DepthLevel
    l1 = _LevelTwin()
    l1.quantity, l1.price, l1.orders = q1, p1 / d, o1
    l1.__class__ = DepthLevel
    l2 = _LevelTwin()
    l2.quantity, l2.price, l2.orders = q2, p2 / d, o2
    l2.__class__ = DepthLevel
    l3 = _LevelTwin()
    l3.quantity, l3.price, l3.orders = q3, p3 / d, o3
    l3.__class__ = DepthLevel
    l4 = _LevelTwin()
    l4.quantity, l4.price, l4.orders = q4, p4 / d, o4
    l4.__class__ = DepthLevel
    return (l0, l1, l2, l3, l4)


def _ltp(token: int, last: int) -> LtpTick:
    t = _LtpTwin()
    t.instrument_token = token
    t.last_price = last / _DIVISORS[token & 0xFF]
    t.__class__ = LtpTick
    return t  # type: ignore[no-any-return]


def _index_quote(token: int, last: int, high: int, low: int, open_: int, close: int) -> Tick:
    d = _DIVISORS[token & 0xFF]
    t = _IndexQuoteTwin()
    t.instrument_token = token
    t.last_price = last / d
    t.ohlc = _ohlc(open_, high, low, close, d)
    t.__class__ = IndexQuoteTick
    return t  # type: ignore[no-any-return]


def _index_full(
    token: int, last: int, high: int, low: int, open_: int, close: int, stamp: int
) -> Tick:
    d = _DIVISORS[token & 0xFF]
    t = _IndexFullTwin()
    t.instrument_token = token
    t.last_price = last / d
    t.ohlc = _ohlc(open_, high, low, close, d)
    t.exchange_timestamp = _cached_time(stamp) or (
        _remember_time(stamp, _fromtimestamp(stamp, IST)) if stamp else None
    )
    t.__class__ = IndexFullTick
    return t  # type: ignore[no-any-return]


def _quote(
    token: int,
    last: int,
    last_qty: int,
    average: int,
    volume: int,
    buy_qty: int,
    sell_qty: int,
    open_: int,
    high: int,
    low: int,
    close: int,
) -> Tick:
    d = _DIVISORS[token & 0xFF]
    t = _QuoteTwin()
    t.instrument_token = token
    t.last_price = last / d
    t.last_traded_quantity = last_qty
    t.average_traded_price = average / d
    t.volume_traded = volume
    t.total_buy_quantity = buy_qty
    t.total_sell_quantity = sell_qty
    ohlc = _OhlcTwin()
    ohlc.open = open_ / d
    ohlc.high = high / d
    ohlc.low = low / d
    ohlc.close = close / d
    ohlc.__class__ = Ohlc
    t.ohlc = ohlc
    t.__class__ = QuoteTick
    return t  # type: ignore[no-any-return]


def _full(
    token: int,
    last: int,
    last_qty: int,
    average: int,
    volume: int,
    buy_qty: int,
    sell_qty: int,
    open_: int,
    high: int,
    low: int,
    close: int,
    trade_time: int,
    oi: int,
    oi_high: int,
    oi_low: int,
    stamp: int,
    depth_bytes: bytes,
) -> Tick:
    d = _DIVISORS[token & 0xFF]
    depth = _DepthTwin()
    depth._raw = depth_bytes
    depth._divisor = d
    depth.__class__ = Depth
    t = _FullTwin()
    t.instrument_token = token
    t.last_price = last / d
    t.last_traded_quantity = last_qty
    t.average_traded_price = average / d
    t.volume_traded = volume
    t.total_buy_quantity = buy_qty
    t.total_sell_quantity = sell_qty
    ohlc = _OhlcTwin()
    ohlc.open = open_ / d
    ohlc.high = high / d
    ohlc.low = low / d
    ohlc.close = close / d
    ohlc.__class__ = Ohlc
    t.ohlc = ohlc
    t.last_trade_time = _cached_time(trade_time) or (
        _remember_time(trade_time, _fromtimestamp(trade_time, IST)) if trade_time else None
    )
    t.oi = oi
    t.oi_day_high = oi_high
    t.oi_day_low = oi_low
    t.exchange_timestamp = _cached_time(stamp) or (
        _remember_time(stamp, _fromtimestamp(stamp, IST)) if stamp else None
    )
    t.depth = depth
    t.__class__ = FullTick
    return t  # type: ignore[no-any-return]


# -- binary layout: the wire order of each packet, for the struct formats and encoding ------

# How wire values become a record's: as is; / divisor; epoch -> datetime; four prices to
# an Ohlc (wire order open, high, low, close; or high, low, open, close for indices); the
# raw depth bytes; ignored.
_INT, _PRICE, _TIME, _OHLC, _INDEX_OHLC, _DEPTH, _SKIP = range(7)
_OHLC_ORDER: Final = {
    _OHLC: ("open", "high", "low", "close"),
    _INDEX_OHLC: ("high", "low", "open", "close"),
}
_U16 = struct.Struct(">H")
_DEPTH_BYTES = struct.Struct(">" + "IIH2x" * 10)
_U32: Final = 0xFFFFFFFF


@attrs.frozen
class _Field:
    name: str  # the record attribute it feeds
    fmt: str  # struct code
    conv: int  # _INT, _PRICE, ...


_TOKEN = _Field("instrument_token", "I", _INT)
_LAST = _Field("last_price", "I", _PRICE)
_QUOTE_FIELDS = (
    _TOKEN,
    _LAST,
    _Field("last_traded_quantity", "I", _INT),
    _Field("average_traded_price", "I", _PRICE),
    _Field("volume_traded", "I", _INT),
    _Field("total_buy_quantity", "I", _INT),
    _Field("total_sell_quantity", "I", _INT),
    _Field("ohlc", "4I", _OHLC),
)
_INDEX_FIELDS = (
    _TOKEN,
    _LAST,
    _Field("ohlc", "4I", _INDEX_OHLC),
    _Field("change", "4x", _SKIP),
)


@attrs.frozen
class _Kind:
    """How one packet length maps to a record."""

    cls: type
    fields: tuple[_Field, ...]
    build: Callable[..., Tick]  # the packet's unpacked values -> the record
    packet: struct.Struct = attrs.field(init=False)
    framed: struct.Struct = attrs.field(init=False)  # with the 2-byte length prefix skipped

    def __attrs_post_init__(self) -> None:
        fmt = "".join(f.fmt for f in self.fields)
        object.__setattr__(self, "packet", struct.Struct(">" + fmt))
        object.__setattr__(self, "framed", struct.Struct(">2x" + fmt))


_KINDS: Final[dict[int, _Kind]] = {
    8: _Kind(LtpTick, (_TOKEN, _LAST), _ltp),
    28: _Kind(IndexQuoteTick, _INDEX_FIELDS, _index_quote),
    32: _Kind(
        IndexFullTick, (*_INDEX_FIELDS, _Field("exchange_timestamp", "I", _TIME)), _index_full
    ),
    44: _Kind(QuoteTick, _QUOTE_FIELDS, _quote),
    184: _Kind(
        FullTick,
        (
            *_QUOTE_FIELDS,
            _Field("last_trade_time", "I", _TIME),
            _Field("oi", "I", _INT),
            _Field("oi_day_high", "I", _INT),
            _Field("oi_day_low", "I", _INT),
            _Field("exchange_timestamp", "I", _TIME),
            _Field("depth", "120s", _DEPTH),
        ),
        _full,
    ),
}
_KIND_OF: Final[dict[type, _Kind]] = {kind.cls: kind for kind in _KINDS.values()}


# -- binary frames ---------------------------------------------------------------------


def _log_malformed(bad: list[MalformedPacket]) -> None:
    """One WARNING per frame, however many parts of it were malformed."""
    first = bad[0]
    log.warning(
        "skipped %d malformed part(s) of a tick frame; the first: %s (offset %d, length %d)",
        len(bad),
        first.reason,
        first.offset,
        first.length,
    )


def decode_frame(
    frame: bytes | bytearray | memoryview,
    on_malformed: Callable[[MalformedPacket], None] | None = None,
) -> list[Tick]:
    """Decode one binary WebSocket frame into tick records, in packet order.

    Frames shorter than 2 bytes are heartbeats: ``[]``. Never raises for any input:
    each malformed part (unknown packet length, a length running past the end, fewer
    packets than the count says, bytes after the last packet) is skipped and reported
    as a :class:`MalformedPacket` to ``on_malformed``, one call each; without a
    callback, a frame with malformed parts logs ONE warning giving their count and the
    first. Every well-formed packet is still returned. (An exception raised by
    ``on_malformed`` itself propagates.) ``TypeError`` when ``frame`` is not bytes-like
    (``decode_frame(5)`` would otherwise read five zero bytes).
    """
    if not isinstance(frame, bytes):
        if not isinstance(frame, (bytearray, memoryview)):
            raise TypeError(f"decode_frame takes bytes, not {type(frame).__name__}")
        frame = bytes(frame)
    size = len(frame)
    if size < 2:
        return []
    if len(_TIMES) > _TIMES_MAX:
        _TIMES.clear()
    count = frame[0] << 8 | frame[1]
    if size >= 4:
        # Fast path: every packet of one known length, as when all are in one mode.
        length = frame[2] << 8 | frame[3]
        kind = _KINDS.get(length)
        stride = length + 2
        if (
            kind is not None
            and size == 2 + count * stride
            and frame[2::stride] == bytes((frame[2],)) * count
            and frame[3::stride] == bytes((frame[3],)) * count
        ):
            return list(starmap(kind.build, kind.framed.iter_unpack(memoryview(frame)[2:])))
    return _decode_mixed(frame, count, on_malformed)


def _truncated(frame: bytes, pos: int, index: int, count: int) -> MalformedPacket:
    return MalformedPacket(
        f"frame ends after {index} of the {count} packets it announces",
        pos,
        len(frame) - pos,
        frame[pos:],
    )


def _decode_mixed(
    frame: bytes, count: int, on_malformed: Callable[[MalformedPacket], None] | None
) -> list[Tick]:
    """The general path: packets of any lengths, malformed ones reported and skipped."""
    if on_malformed is not None:
        return _decode_packets(frame, count, on_malformed)
    bad: list[MalformedPacket] = []
    ticks = _decode_packets(frame, count, bad.append)
    if bad:
        _log_malformed(bad)
    return ticks


def _decode_packets(
    frame: bytes, count: int, report: Callable[[MalformedPacket], None]
) -> list[Tick]:
    ticks: list[Tick] = []
    size = len(frame)
    pos = 2
    for index in range(count):
        start = pos + 2
        if start > size:
            report(_truncated(frame, pos, index, count))
            return ticks
        length = frame[pos] << 8 | frame[pos + 1]
        end = start + length
        if end > size:
            reason = f"packet length {length} runs past the end of the frame"
            report(MalformedPacket(reason, pos, length, frame[start:]))
            return ticks
        kind = _KINDS.get(length)
        if kind is None:
            reason = f"unknown packet length {length}"
            report(MalformedPacket(reason, pos, length, frame[start:end]))
        else:
            ticks.append(kind.build(*kind.packet.unpack_from(frame, start)))
        pos = end
    if pos < size:
        reason = f"{size - pos} bytes after the last of the {count} packets"
        report(MalformedPacket(reason, pos, size - pos, frame[pos:]))
    return ticks


def _wire_price(value: float, divisor: float, what: str) -> int:
    try:
        wire = round(value * divisor)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what}={value!r} is not a finite price") from None
    return _wire_int(wire, what)


def _wire_int(value: int, what: str, limit: int = _U32) -> int:
    if not isinstance(value, int) or not 0 <= value <= limit:
        raise ValueError(f"{what}={value!r} does not fit the wire format (an int in 0..{limit})")
    return value


def _encode_packet(tick: Tick) -> bytes:
    kind = _KIND_OF.get(type(tick))
    if kind is None:
        raise TypeError(f"not a tick record: {type(tick).__name__}")
    divisor = segment_divisor(tick.instrument_token)
    values: list[int | bytes] = []
    for f in kind.fields:
        what = f"{type(tick).__name__}.{f.name}"
        if f.conv == _INT:
            values.append(_wire_int(getattr(tick, f.name), what))
        elif f.conv == _PRICE:
            values.append(_wire_price(getattr(tick, f.name), divisor, what))
        elif f.conv == _TIME:
            values.append(_wire_int(_epoch(getattr(tick, f.name), what), what))
        elif f.conv in _OHLC_ORDER:
            ohlc: Ohlc = getattr(tick, "ohlc")  # noqa: B009 (not on every kind)
            for name in _OHLC_ORDER[f.conv]:
                values.append(_wire_price(getattr(ohlc, name), divisor, f"{what}.{name}"))
        elif f.conv == _DEPTH:
            values.append(_encode_depth(getattr(tick, "depth"), divisor))  # noqa: B009
    return kind.packet.pack(*values)


def _encode_depth(depth: Depth, divisor: float) -> bytes:
    if len(depth.buy) != 5 or len(depth.sell) != 5:
        raise ValueError("depth needs exactly 5 buy and 5 sell levels")
    values: list[int] = []
    for level in (*depth.buy, *depth.sell):
        values.append(_wire_int(level.quantity, "DepthLevel.quantity"))
        values.append(_wire_price(level.price, divisor, "DepthLevel.price"))
        values.append(_wire_int(level.orders, "DepthLevel.orders", 0xFFFF))
    return _DEPTH_BYTES.pack(*values)


def encode_frame(ticks: Iterable[Tick]) -> bytes:
    """Encode tick records as one binary frame: the inverse of :func:`decode_frame`.

    Prices are rounded to the segment's tick unit; timestamps (timezone-aware, or
    ``None`` for 0) to whole seconds; the change bytes of index packets are zero.
    Raises ``ValueError`` for a value the wire cannot carry (negative, too large,
    a naive datetime, depth without 5 levels a side, more than 65535 packets) and
    ``TypeError`` for anything that is not a tick record.
    """
    packets = [_encode_packet(tick) for tick in ticks]
    if len(packets) > 0xFFFF:
        raise ValueError(f"a frame holds at most 65535 packets, got {len(packets)}")
    parts = [_U16.pack(len(packets))]
    for packet in packets:
        parts.append(_U16.pack(len(packet)))
        parts.append(packet)
    return b"".join(parts)


# -- text frames -----------------------------------------------------------------------


def _opt_str(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"expected a string or null, got {type(value).__name__}")


def _str(value: object) -> str:
    return _opt_str(value) or ""


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _opt_time(value: object) -> datetime.datetime | None:
    """Kite's ``"2022-03-03 09:24:25"`` (IST) or ISO 8601 text to an aware IST datetime."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a timestamp string, got {type(value).__name__}")
    parsed = datetime.datetime.fromisoformat(value)
    return parsed.replace(tzinfo=IST) if parsed.tzinfo is None else parsed.astimezone(IST)


def _time_text(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


def _meta(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {type(value).__name__}")
    return value


@attrs.frozen
class OrderUpdate:
    """An order postback pushed on the feed (``{"type": "order", "data": {...}}``).

    Fields are Kite's postback fields; timestamps are aware IST datetimes. Keys this
    record does not know are kept in ``extra`` so :meth:`to_dict` gives them back.
    """

    order_id: str = ""
    exchange_order_id: str | None = None
    parent_order_id: str | None = None
    status: str = ""
    status_message: str | None = None
    status_message_raw: str | None = None
    order_timestamp: datetime.datetime | None = None
    exchange_update_timestamp: datetime.datetime | None = None
    exchange_timestamp: datetime.datetime | None = None
    variety: str = ""
    exchange: str = ""
    tradingsymbol: str = ""
    instrument_token: int = 0
    order_type: str = ""
    transaction_type: str = ""
    validity: str = ""
    product: str = ""
    quantity: int = 0
    disclosed_quantity: int = 0
    price: float = 0.0
    trigger_price: float = 0.0
    average_price: float = 0.0
    filled_quantity: int = 0
    pending_quantity: int = 0
    cancelled_quantity: int = 0
    unfilled_quantity: int = 0
    market_protection: float = 0.0
    user_id: str = ""
    placed_by: str = ""
    app_id: int = 0
    tag: str | None = None
    guid: str | None = None
    checksum: str = attrs.field(default="", repr=False)
    meta: dict[str, Any] = attrs.field(factory=dict, hash=False)
    extra: dict[str, Any] = attrs.field(factory=dict, hash=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrderUpdate:
        """Build from a postback dict; raises ``ValueError`` when a field has the wrong type."""
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            convert = _ORDER_CONVERTERS.get(key)
            if convert is None:
                extra[key] = value
            else:
                try:
                    known[key] = convert(value)
                except (TypeError, ValueError, OverflowError) as exc:
                    raise ValueError(f"order update field {key!r}: {exc}") from None
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The postback dict: Kite's field names, timestamps as ``"YYYY-MM-DD HH:MM:SS"``."""
        out: dict[str, Any] = {}
        for field in attrs.fields(OrderUpdate):
            if field.name != "extra":
                value = getattr(self, field.name)
                is_time = isinstance(value, datetime.datetime)
                out[field.name] = _time_text(value) if is_time else value
        out.update(self.extra)
        return out


_ORDER_CONVERTERS: Final[dict[str, Callable[[Any], Any]]] = {
    field.name: (
        _opt_time
        if "timestamp" in field.name
        else {
            "str": _str,
            "str | None": _opt_str,
            "int": _int,
            "float": _float,
            "dict[str, Any]": _meta,
        }[str(field.type)]
    )
    for field in attrs.fields(OrderUpdate)
    if field.name != "extra"
}


@attrs.frozen
class FeedError:
    """An error message from Kite on the feed (``{"type": "error", "data": "..."}``)."""

    message: str


@attrs.frozen
class FeedMessage:
    """Any other message from Kite (``{"type": "message", "data": ...}``)."""

    data: Any


def decode_text(message: str | bytes) -> OrderUpdate | FeedError | FeedMessage | MalformedPacket:
    """Decode a text frame: ``{"type": "order" | "error" | "message", "data": ...}``.

    Never raises: text that is not UTF-8, not JSON, not an object, of an unknown
    ``type``, or an order whose fields have the wrong types gives a
    :class:`MalformedPacket` (``offset`` 0, ``raw`` the message's bytes).
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
        return MalformedPacket(f"text frame is not JSON: {exc}", 0, len(raw), raw)
    kind = obj.get("type") if isinstance(obj, dict) else None
    data = obj.get("data") if isinstance(obj, dict) else None
    if kind == "order" and isinstance(data, dict):
        try:
            return OrderUpdate.from_dict(data)
        except ValueError as exc:
            return MalformedPacket(str(exc), 0, len(raw), raw)
    if kind == "error":
        return FeedError(data if isinstance(data, str) else json.dumps(data))
    if kind == "message":
        return FeedMessage(data)
    reason = f"text frame of unknown type {kind!r}" if kind is not None else "no message type"
    if kind == "order":
        reason = "order message without an object in 'data'"
    return MalformedPacket(reason, 0, len(raw), raw)


def encode_text(record: OrderUpdate | FeedError | FeedMessage) -> str:
    """The text frame for a record: the inverse of :func:`decode_text`."""
    if isinstance(record, OrderUpdate):
        payload: dict[str, Any] = {"type": "order", "data": record.to_dict()}
    elif isinstance(record, FeedError):
        payload = {"type": "error", "data": record.message}
    elif isinstance(record, FeedMessage):
        payload = {"type": "message", "data": record.data}
    else:
        raise TypeError(f"not a text record: {type(record).__name__}")
    return json.dumps(payload)
