"""Kite's codec (:class:`aio_trader._codec.Codec`): how the gateway, recordings and replays
walk, cut and decode Kite's frames. Registered as ``"kite"``.

Kite's packet of a richer mode starts with the packet of a poorer one (an 8-byte ltp
packet is the start of a 44-byte quote packet and of a 184-byte full one; an index's
28-byte quote packet is the start of its 32-byte full one), so cutting a packet down to
a poorer mode is a truncation. A packet's length tells its mode (see
:mod:`aio_trader.kite.ticks`); a packet of another length is of a layout this codec does
not know: :meth:`KiteCodec.cut` keeps it, as it is, for a wanted instrument (the decoder
then reports it as malformed) and leaves it out for any other. A packet too short to
hold an instrument token (under 4 bytes) and a frame whose structure breaks (a length
running past the end, fewer packets than announced, bytes after the last) are left out
and counted in :attr:`~aio_trader._codec.Cut.malformed`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from aio_trader._codec import ColumnKind, Cut, Malformed, Packet, Walk, text_record, tick_row
from aio_trader.kite.constants import Mode
from aio_trader.kite.ticks import (
    FullTick,
    IndexFullTick,
    IndexQuoteTick,
    LtpTick,
    MalformedPacket,
    OrderUpdate,
    QuoteTick,
    decode_frame,
    decode_text,
)

__all__ = ["CODEC", "KiteCodec"]

#: Packet length -> mode.
_MODE_OF: Final[dict[int, str]] = {8: "ltp", 28: "quote", 32: "full", 44: "quote", 184: "full"}
#: (mode, index packet?) -> the packet's length in that mode.
_LENGTH: Final[dict[tuple[str, bool], int]] = {
    ("ltp", False): 8,
    ("ltp", True): 8,
    ("quote", False): 44,
    ("quote", True): 28,
    ("full", False): 184,
    ("full", True): 32,
}
_INDEX_LENGTHS: Final = frozenset((28, 32))
_RANK: Final[dict[str, int]] = {"ltp": 0, "quote": 1, "full": 2}

_TICK_COLUMNS: Final[tuple[tuple[str, ColumnKind], ...]] = (
    ("instrument_token", "int"),
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
    ("change", "float"),
    ("oi", "int"),
    ("last_trade_time", "time"),
    ("exchange_timestamp", "time"),
)
_TICKS: Final = (FullTick, QuoteTick, LtpTick, IndexQuoteTick, IndexFullTick)


class KiteCodec:
    """Kite Connect v3's frames (see the module doc). Stateless: use :data:`CODEC`."""

    name: Final = "kite"
    modes: Final = ("ltp", "quote", "full")
    default_mode: Final = "quote"
    tick_columns: Final = _TICK_COLUMNS

    def __repr__(self) -> str:
        return "<KiteCodec>"

    # -- what users pass -----------------------------------------------------------------

    def mode(self, value: object) -> str:
        try:
            return Mode(value)
        except ValueError:
            raise ValueError(f"unknown Kite mode {value!r}: one of ltp, quote, full") from None

    def check_keys(self, keys: Iterable[Any]) -> list[Any]:
        if isinstance(keys, int | str | bytes):
            raise ValueError(f"tokens must be an iterable of ints, got {type(keys).__name__}")
        out = list(dict.fromkeys(keys))
        for key in out:
            if not isinstance(key, int) or isinstance(key, bool) or not 0 < key <= 0xFFFFFFFF:
                raise ValueError(f"instrument tokens are positive 32-bit ints, got {key!r}")
        return out

    def key_text(self, key: Any) -> str:
        return str(key)

    def parse_key(self, text: str | bytes) -> int:
        try:
            key = int(text)
        except ValueError:
            raise ValueError(f"not an instrument token: {text!r}") from None
        self.check_keys([key])
        return key

    # -- frames --------------------------------------------------------------------------

    def walk(self, frame: bytes) -> Walk:
        size = len(frame)
        if size < 2:
            return Walk(())
        count = frame[0] << 8 | frame[1]
        pos = 2
        packets: list[Packet] = []
        for index in range(count):
            if pos + 2 > size:
                return Walk(tuple(packets), f"frame ends after {index} of {count} packets")
            length = frame[pos] << 8 | frame[pos + 1]
            start, end = pos + 2, pos + 2 + length
            if end > size:
                return Walk(tuple(packets), f"packet length {length} runs past the end")
            if length < 4:
                return Walk(tuple(packets), f"packet of {length} bytes holds no token")
            token = int.from_bytes(frame[start : start + 4], "big")
            packets.append(Packet(token, _MODE_OF.get(length), start, end))
            pos = end
        if pos != size:
            return Walk(tuple(packets), f"{size - pos} bytes after the last packet")
        return Walk(tuple(packets))

    def cut_packet(self, packet: bytes, mode: str) -> bytes:
        length = len(packet)
        have = _MODE_OF.get(length)
        if have is None:
            raise ValueError(f"a Kite packet of {length} bytes has no known mode")
        if _RANK[mode] > _RANK[have]:
            raise ValueError(f"a {have} packet cannot be cut to the richer {mode} mode")
        return packet[: _LENGTH[mode, length in _INDEX_LENGTHS]]

    def cut(self, frame: bytes, wanted: Mapping[Any, str] | None) -> Cut:
        size = len(frame)
        if size < 2:
            return Cut(None, 0)
        count = frame[0] << 8 | frame[1]
        if wanted is None:
            return Cut(frame, count)
        pos = 2
        kept: list[bytes] = []
        poorer = malformed = 0
        changed = False
        get = wanted.get
        for _ in range(count):
            if pos + 2 > size:
                malformed += 1
                break
            length = frame[pos] << 8 | frame[pos + 1]
            start = pos + 2
            end = start + length
            if end > size:
                malformed += 1
                break
            pos = end
            if length < 4:
                malformed += 1
                changed = True
                continue
            mode = get(int.from_bytes(frame[start : start + 4], "big"))
            if mode is None:
                changed = True
                continue
            have = _MODE_OF.get(length)
            if have is None or mode == have:
                kept.append(frame[start - 2 : end])
            elif _RANK[mode] < _RANK[have]:
                want = _LENGTH[mode, length in _INDEX_LENGTHS]
                kept.append(want.to_bytes(2, "big") + frame[start : start + want])
                changed = True
            else:
                poorer += 1
                kept.append(frame[start - 2 : end])
        else:
            if pos != size:
                malformed += 1
        if not kept:
            return Cut(None, 0, poorer, malformed)
        if not changed and not malformed and len(kept) == count:
            return Cut(frame, count, poorer)
        return Cut(len(kept).to_bytes(2, "big") + b"".join(kept), len(kept), poorer, malformed)

    def decode_binary(
        self, frame: bytes, on_malformed: Callable[[Malformed], None] | None = None
    ) -> list[Any]:
        return decode_frame(frame, on_malformed)

    def decode_text(
        self, data: str | bytes, on_malformed: Callable[[Malformed], None] | None = None
    ) -> Any | None:
        return text_record(decode_text(data), MalformedPacket, on_malformed)

    # -- records ---------------------------------------------------------------------------

    def key_of(self, item: Any) -> Any | None:
        return item.instrument_token if isinstance(item, _TICKS) else None

    def is_order_update(self, item: Any) -> bool:
        return isinstance(item, OrderUpdate)

    def tick_row(self, item: Any) -> dict[str, Any] | None:
        if not isinstance(item, _TICKS):
            return None
        return tick_row(item, _TICK_COLUMNS)


#: The one Kite codec.
CODEC: Final = KiteCodec()
