"""DhanHQ API v2: the live feed (:class:`DhanFeed`: market feed and order updates;
:class:`DhanDepthFeed`: 20-level depth), the feed codec and its constants.

Names are loaded on first use (PEP 562 ``__getattr__``), so importing this package loads
nothing it does not use; the codec (:mod:`aio_trader.dhan.ticks`) is pure and loads no
HTTP or WebSocket library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aio_trader import _lazy

if TYPE_CHECKING:  # the names as mypy and IDEs see them
    from aio_trader.dhan._feed import DhanDepthFeed, DhanFeed
    from aio_trader.dhan.constants import (
        DEPTH20_MAX_INSTRUMENTS,
        FEED_MAX_CONNECTIONS,
        FEED_MAX_INSTRUMENTS,
        FEED_MAX_INSTRUMENTS_PER_MESSAGE,
        SESSION_DISCONNECT_REASONS,
        DhanEnum,
        DisconnectReason,
        ExchangeSegment,
        FeedMode,
        FeedRequestCode,
        FeedResponseCode,
    )
    from aio_trader.dhan.ticks import (
        Depth,
        DepthLevel,
        Disconnect,
        FeedMessage,
        FeedRecord,
        FullTick,
        MalformedPacket,
        MarketStatus,
        Ohlc,
        OpenInterest,
        OrderUpdate,
        PrevClose,
        QuoteTick,
        Tick,
        TickerTick,
        TwentyDepth,
        decode_counted,
        decode_depth_message,
        decode_message,
        decode_text,
        encode_depth_message,
        encode_message,
        encode_packet,
        encode_text,
        segment_name,
    )

#: public name -> the private module that defines it
_EXPORTS: dict[str, str] = {
    "DhanDepthFeed": "aio_trader.dhan._feed",
    "DhanFeed": "aio_trader.dhan._feed",
    "DEPTH20_MAX_INSTRUMENTS": "aio_trader.dhan.constants",
    "FEED_MAX_CONNECTIONS": "aio_trader.dhan.constants",
    "FEED_MAX_INSTRUMENTS": "aio_trader.dhan.constants",
    "FEED_MAX_INSTRUMENTS_PER_MESSAGE": "aio_trader.dhan.constants",
    "SESSION_DISCONNECT_REASONS": "aio_trader.dhan.constants",
    "DhanEnum": "aio_trader.dhan.constants",
    "DisconnectReason": "aio_trader.dhan.constants",
    "ExchangeSegment": "aio_trader.dhan.constants",
    "FeedMode": "aio_trader.dhan.constants",
    "FeedRequestCode": "aio_trader.dhan.constants",
    "FeedResponseCode": "aio_trader.dhan.constants",
    "Depth": "aio_trader.dhan.ticks",
    "DepthLevel": "aio_trader.dhan.ticks",
    "Disconnect": "aio_trader.dhan.ticks",
    "FeedMessage": "aio_trader.dhan.ticks",
    "FeedRecord": "aio_trader.dhan.ticks",
    "FullTick": "aio_trader.dhan.ticks",
    "MalformedPacket": "aio_trader.dhan.ticks",
    "MarketStatus": "aio_trader.dhan.ticks",
    "Ohlc": "aio_trader.dhan.ticks",
    "OpenInterest": "aio_trader.dhan.ticks",
    "OrderUpdate": "aio_trader.dhan.ticks",
    "PrevClose": "aio_trader.dhan.ticks",
    "QuoteTick": "aio_trader.dhan.ticks",
    "Tick": "aio_trader.dhan.ticks",
    "TickerTick": "aio_trader.dhan.ticks",
    "TwentyDepth": "aio_trader.dhan.ticks",
    "decode_counted": "aio_trader.dhan.ticks",
    "decode_depth_message": "aio_trader.dhan.ticks",
    "decode_message": "aio_trader.dhan.ticks",
    "decode_text": "aio_trader.dhan.ticks",
    "encode_depth_message": "aio_trader.dhan.ticks",
    "encode_message": "aio_trader.dhan.ticks",
    "encode_packet": "aio_trader.dhan.ticks",
    "encode_text": "aio_trader.dhan.ticks",
    "segment_name": "aio_trader.dhan.ticks",
}

__all__ = [
    "DEPTH20_MAX_INSTRUMENTS",
    "FEED_MAX_CONNECTIONS",
    "FEED_MAX_INSTRUMENTS",
    "FEED_MAX_INSTRUMENTS_PER_MESSAGE",
    "SESSION_DISCONNECT_REASONS",
    "Depth",
    "DepthLevel",
    "DhanDepthFeed",
    "DhanEnum",
    "DhanFeed",
    "Disconnect",
    "DisconnectReason",
    "ExchangeSegment",
    "FeedMessage",
    "FeedMode",
    "FeedRecord",
    "FeedRequestCode",
    "FeedResponseCode",
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

__getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
