"""The broker-neutral feed core: the channel every feeder reads through, the overflow
policies and the one statistics record (and, below them, the connection engine).

Imports nothing from a broker package: a broker's feed (``aio_trader.kite.KiteFeed``)
is built on it.
"""

from __future__ import annotations

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

__all__ = [
    "Batches",
    "Channel",
    "FeedCounters",
    "FeedStatistics",
    "Overflow",
    "Sender",
    "make_channel",
    "never_a_record",
]
