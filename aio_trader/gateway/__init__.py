"""The tick gateway on Redis Streams, and recordings.

- :class:`Gateway`: one process owns a broker's feed (Kite's by default) and publishes
  every frame to Redis, each entry naming the frame's codec.
- :class:`RedisFeed`: any number of consumers, anywhere, read it through the feeder
  contract of :class:`~aio_trader.kite.KiteFeed` (``async for``, modes, overflow policies),
  decoding each entry with its codec.
- :class:`Recorder` / :func:`record`: a session's raw frames to Parquet (the format of
  ``aio_trader._recording``), replayed by :class:`aio_trader.replay.ReplayFeed`.

Needs the ``gateway`` extra (``pip install 'aio-trader[gateway]'``: coredis, pyarrow).
Names are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aio_trader import _lazy

if TYPE_CHECKING:
    from aio_trader._recording import Recorder
    from aio_trader.gateway._consumer import FeedGap, RedisFeed, RedisFeedItem, RedisFeedStatistics
    from aio_trader.gateway._gateway import Gateway, GatewayStatistics
    from aio_trader.gateway._record import record
    from aio_trader.gateway._wire import FrameInfo

_EXPORTS: dict[str, str] = {
    "FeedGap": "aio_trader.gateway._consumer",
    "FrameInfo": "aio_trader.gateway._wire",
    "Gateway": "aio_trader.gateway._gateway",
    "GatewayStatistics": "aio_trader.gateway._gateway",
    "Recorder": "aio_trader._recording",
    "RedisFeed": "aio_trader.gateway._consumer",
    "RedisFeedItem": "aio_trader.gateway._consumer",
    "RedisFeedStatistics": "aio_trader.gateway._consumer",
    "record": "aio_trader.gateway._record",
}

__all__ = [
    "FeedGap",
    "FrameInfo",
    "Gateway",
    "GatewayStatistics",
    "Recorder",
    "RedisFeed",
    "RedisFeedItem",
    "RedisFeedStatistics",
    "record",
]

__getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
