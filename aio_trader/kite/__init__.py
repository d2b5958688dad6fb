"""Zerodha Kite Connect v3: REST client, WebSocket feed, tick codec and records."""

from aio_trader.kite.ticks import (
    Depth,
    DepthLevel,
    FeedError,
    FeedMessage,
    FullTick,
    IndexFullTick,
    IndexQuoteTick,
    LtpTick,
    MalformedPacket,
    Ohlc,
    OrderUpdate,
    QuoteTick,
    Tick,
    decode_frame,
    decode_text,
    encode_frame,
    encode_text,
    segment_divisor,
)

__all__ = [
    # ticks: the binary/text codec and its records
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
