"""The broker-neutral feed core: the connection engine every broker's WebSocket feed runs
on (:class:`FeedEngine` with a broker's :class:`FeedProtocol`), the channel every feeder
reads through (:func:`make_channel`, the :class:`Overflow` policies) and the one statistics
record (:class:`FeedStatistics`).

Imports nothing from a broker package: ``aio_trader.kite.KiteFeed`` is built on it. Names
are loaded on first use (the channel loads no HTTP or WebSocket stack; the engine does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aio_trader import _lazy

if TYPE_CHECKING:  # the names as mypy and IDEs see them
    from aio_trader.feed._channel import (
        Batches,
        Channel,
        FeedCounters,
        FeedStatistics,
        Overflow,
        Sender,
        make_channel,
        never_a_record,
    )
    from aio_trader.feed._engine import (
        ConnectionEvent,
        FeedConnected,
        FeedDisconnected,
        FeedEngine,
        RawFrame,
    )
    from aio_trader.feed._protocol import FeedProtocol, Handshake, Message

_NAMES = {
    "Batches": "aio_trader.feed._channel",
    "Channel": "aio_trader.feed._channel",
    "FeedCounters": "aio_trader.feed._channel",
    "FeedStatistics": "aio_trader.feed._channel",
    "Overflow": "aio_trader.feed._channel",
    "Sender": "aio_trader.feed._channel",
    "make_channel": "aio_trader.feed._channel",
    "never_a_record": "aio_trader.feed._channel",
    "ConnectionEvent": "aio_trader.feed._engine",
    "FeedConnected": "aio_trader.feed._engine",
    "FeedDisconnected": "aio_trader.feed._engine",
    "FeedEngine": "aio_trader.feed._engine",
    "RawFrame": "aio_trader.feed._engine",
    "FeedProtocol": "aio_trader.feed._protocol",
    "Handshake": "aio_trader.feed._protocol",
    "Message": "aio_trader.feed._protocol",
}

__all__ = [
    "Batches",
    "Channel",
    "ConnectionEvent",
    "FeedConnected",
    "FeedCounters",
    "FeedDisconnected",
    "FeedEngine",
    "FeedProtocol",
    "FeedStatistics",
    "Handshake",
    "Message",
    "Overflow",
    "RawFrame",
    "Sender",
    "make_channel",
    "never_a_record",
]

__getattr__, __dir__ = _lazy.exports(__name__, _NAMES, __all__)
