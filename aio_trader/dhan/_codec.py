"""Dhan's codec (:class:`aio_trader._codec.Codec`): how the gateway, recordings and replays
walk, cut and decode Dhan's market feed messages and order-update texts. Registered as
``"dhan"``.

A message is packets walked by their length (little-endian 8-byte header: ``u8`` code,
``u16`` length with the header, ``u8`` segment, ``u32`` security id; see
:mod:`aio_trader.dhan.ticks`). A packet's **key** is ``(exchange_segment, security_id)``
(``("NSE_EQ", 1333)``, as :attr:`~aio_trader.dhan.ticks.TickerTick.key`), written as text
``"NSE_EQ:1333"``. **Modes**, poorest first: ``ticker`` (alias ``ltp``), ``quote``,
``full``.

What a packet is in each mode (:attr:`~aio_trader._codec.Packet.mode` says the poorest
mode it comes in):

==== ============== ====== ==================================================================
code packet         mode   cut for a consumer wanting its key in mode ``m``
==== ============== ====== ==================================================================
2    ticker         ticker kept (``m`` richer: kept as it came, counted ``poorer``)
4    quote          quote  ``ticker``: a ticker packet; ``full``: kept, counted ``poorer``
8    full           full   ``quote``: a quote packet, ``ticker``: a ticker packet
6    previous close ticker kept for any ``m`` (Dhan sends it on every subscription)
5    open interest  quote  kept for ``quote`` and ``full``, left out for ``ticker``
7    market status  None   kept for every consumer, whatever its keys (not an instrument's)
50   disconnect     None   never forwarded (the gateway's feed ends or reconnects on it)
==== ============== ====== ==================================================================

Cutting is not a truncation: a full packet's open interest sits before its OHLC, so a
full packet cut to quote is its first 34 bytes and its OHLC, under a quote header (the
bytes :func:`~aio_trader.dhan.ticks.encode_packet` writes for the same quote: prices are
carried bit for bit). A full packet cut to quote carries no OI packet: a quote consumer
of an instrument the gateway runs in full (for another consumer) sees no
:class:`~aio_trader.dhan.ticks.OpenInterest` for it. A packet of a code without a layout
(1, unknown codes, a packet shorter than its code's layout) is kept as it is for a wanted
key (the decoder reports it) and left out for any other. A broken structure (a length
under 8 or running past the end, trailing bytes) ends the walk and is counted in
:attr:`~aio_trader._codec.Cut.malformed`.

Text frames are the order-update socket's JSON: an ``order_alert`` is an
:class:`~aio_trader.dhan.ticks.OrderUpdate`, any other object a
:class:`~aio_trader.dhan.ticks.FeedMessage`. Records: :meth:`DhanCodec.key_of` is the
key of a tick (ticker, quote, full) and of a previous close; an OI packet, a market
status and the text records have none (a feed never drops nor conflates them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from aio_trader._codec import ColumnKind, Cut, Malformed, Packet, Walk, text_record, tick_row
from aio_trader.dhan._protocol import check_instruments
from aio_trader.dhan.constants import FeedMode
from aio_trader.dhan.ticks import (
    FullTick,
    MalformedPacket,
    OrderUpdate,
    PrevClose,
    QuoteTick,
    TickerTick,
    decode_message,
    decode_text,
    segment_name,
)

__all__ = ["CODEC", "DhanCodec"]

_HEADER: Final = 8
_TICKER, _QUOTE, _OI, _PREV, _STATUS, _FULL, _BYE = 2, 4, 5, 6, 7, 8, 50
#: Packet code -> (the poorest mode it comes in, the length of its layout).
_KINDS: Final[dict[int, tuple[str | None, int]]] = {
    _TICKER: ("ticker", 16),
    _QUOTE: ("quote", 50),
    _FULL: ("full", 162),
    _PREV: ("ticker", 16),
    _OI: ("quote", 12),
    _STATUS: (None, 8),
    _BYE: (None, 10),
}
_RANK: Final[dict[str, int]] = {"ticker": 0, "quote": 1, "full": 2}
#: The tick packets' codes by mode.
_TICK_MODE: Final[dict[int, str]] = {_TICKER: "ticker", _QUOTE: "quote", _FULL: "full"}

_TICK_COLUMNS: Final[tuple[tuple[str, ColumnKind], ...]] = (
    ("exchange_segment", "str"),
    ("security_id", "int"),
    ("mode", "str"),
    ("last_price", "float"),
    ("last_traded_quantity", "int"),
    ("average_traded_price", "float"),
    ("volume_traded", "int"),
    ("total_buy_quantity", "int"),
    ("total_sell_quantity", "int"),
    ("open", "float"),
    ("high", "float"),
    ("low", "float"),
    ("close", "float"),
    ("oi", "int"),
    ("last_trade_time", "time"),
)
_TICKS: Final = (TickerTick, QuoteTick, FullTick)
_KEYED: Final = (TickerTick, QuoteTick, FullTick, PrevClose)


def _key(frame: bytes, pos: int) -> tuple[str, int]:
    """The key of the packet at ``pos``."""
    return (segment_name(frame[pos + 3]), int.from_bytes(frame[pos + 4 : pos + 8], "little"))


def _head(code: int, length: int, packet: bytes) -> bytes:
    """A header of ``code`` and ``length`` for ``packet``'s instrument."""
    return bytes((code, length & 0xFF, length >> 8)) + packet[3:8]


def _cut(packet: bytes, code: int, mode: str) -> bytes:
    """A tick packet (code 2, 4 or 8, at least its layout long) in the poorer ``mode``."""
    if mode == "ticker":  # last price at 8, last trade time at 14, in quote and full alike
        return _head(_TICKER, 16, packet) + packet[8:12] + packet[14:18]
    # a full packet as quote: the trade fields, then the OHLC (after the three OI fields)
    return _head(_QUOTE, 50, packet) + packet[8:34] + packet[46:62]


class DhanCodec:
    """DhanHQ v2's market feed messages and order-update texts (see the module doc).
    Stateless: use :data:`CODEC`."""

    name: Final = "dhan"
    modes: Final = ("ticker", "quote", "full")
    default_mode: Final = "quote"
    tick_columns: Final = _TICK_COLUMNS

    def __repr__(self) -> str:
        return "<DhanCodec>"

    # -- what users pass -----------------------------------------------------------------

    def mode(self, value: object) -> str:
        try:
            return FeedMode(value)
        except ValueError:
            raise ValueError(
                f"unknown Dhan mode {value!r}: one of ticker (ltp), quote, full"
            ) from None

    def check_keys(self, keys: Iterable[Any]) -> list[Any]:
        try:
            return check_instruments(keys)
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def key_text(self, key: Any) -> str:
        segment, security_id = key
        return f"{segment}:{security_id}"

    def parse_key(self, text: str | bytes) -> tuple[str, int]:
        try:
            if isinstance(text, bytes):
                text = text.decode()
            segment, _, security_id = text.partition(":")
            return check_instruments([(segment, security_id)])[0]
        except (TypeError, ValueError):
            raise ValueError(f"not a Dhan instrument key: {text!r}") from None

    # -- messages ------------------------------------------------------------------------

    def walk(self, frame: bytes) -> Walk:
        size = len(frame)
        pos = 0
        packets: list[Packet] = []
        while pos < size:
            if size - pos < _HEADER:
                return Walk(tuple(packets), f"{size - pos} bytes after the last packet")
            length = frame[pos + 1] | frame[pos + 2] << 8
            if length < _HEADER:
                return Walk(tuple(packets), f"packet length {length} is shorter than a header")
            end = pos + length
            if end > size:
                return Walk(tuple(packets), f"packet length {length} runs past the end")
            code = frame[pos]
            kind = _KINDS.get(code)
            mode = kind[0] if kind is not None and length >= kind[1] else None
            packets.append(Packet(_key(frame, pos), mode, pos, end))
            pos = end
        return Walk(tuple(packets))

    def cut_packet(self, packet: bytes, mode: str) -> bytes:
        size = len(packet)
        code = packet[0] if size >= _HEADER else -1
        kind = _KINDS.get(code)
        if kind is None or kind[0] is None or size < kind[1]:
            raise ValueError(f"a Dhan packet of code {code}, {size} bytes, has no known mode")
        have = kind[0]
        if _RANK[mode] < _RANK[have]:
            if code not in _TICK_MODE:
                raise ValueError(f"a code {code} packet does not come in {mode} mode")
            return _cut(packet, code, mode)
        if _RANK[mode] > _RANK[have] and code in _TICK_MODE:
            raise ValueError(f"a {have} packet cannot be cut to the richer {mode} mode")
        return packet

    def cut(self, frame: bytes, wanted: Mapping[Any, str] | None) -> Cut:
        size = len(frame)
        if wanted is None:
            return Cut(frame if size else None, len(self.walk(frame).packets))
        pos = 0
        kept: list[bytes] = []
        count = poorer = malformed = 0
        changed = False
        get = wanted.get
        while pos < size:
            if size - pos < _HEADER:
                malformed += 1
                break
            length = frame[pos + 1] | frame[pos + 2] << 8
            end = pos + length
            if length < _HEADER or end > size:
                malformed += 1
                break
            count += 1
            start, pos = pos, end
            code = frame[start]
            if code == _STATUS:
                kept.append(frame[start:end])
                continue
            if code == _BYE:
                changed = True
                continue
            mode = get(_key(frame, start))
            if mode is None:
                changed = True
                continue
            kind = _KINDS.get(code)
            if kind is None or length < kind[1]:
                kept.append(frame[start:end])  # a layout unknown: the decoder reports it
                continue
            have = kind[0]
            assert have is not None
            rank, need = _RANK[mode], _RANK[have]
            if code not in _TICK_MODE:  # previous close, OI: with the modes they come in
                if rank >= need:
                    kept.append(frame[start:end])
                else:
                    changed = True
            elif rank == need:
                kept.append(frame[start:end])
            elif rank < need:
                kept.append(_cut(frame[start:end], code, mode))
                changed = True
            else:
                poorer += 1
                kept.append(frame[start:end])
        if not kept:
            return Cut(None, 0, poorer, malformed)
        if not changed and not malformed and len(kept) == count:
            return Cut(frame, count, poorer)
        return Cut(b"".join(kept), len(kept), poorer, malformed)

    def decode_binary(
        self, frame: bytes, on_malformed: Callable[[Malformed], None] | None = None
    ) -> list[Any]:
        return decode_message(frame, on_malformed)

    def decode_text(
        self, data: str | bytes, on_malformed: Callable[[Malformed], None] | None = None
    ) -> Any | None:
        return text_record(decode_text(data), MalformedPacket, on_malformed)

    # -- records ---------------------------------------------------------------------------

    def key_of(self, item: Any) -> Any | None:
        return item.key if isinstance(item, _KEYED) else None

    def is_order_update(self, item: Any) -> bool:
        return isinstance(item, OrderUpdate)

    def tick_row(self, item: Any) -> dict[str, Any] | None:
        if not isinstance(item, _TICKS):
            return None
        row = tick_row(item, _TICK_COLUMNS)
        row["exchange_segment"] = str(item.exchange_segment)  # the segment's name
        return row


#: The one Dhan codec.
CODEC: Final = DhanCodec()
