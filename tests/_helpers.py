"""Helpers the Kite feed tests share (test_feed.py, test_feed_lifecycle.py,
test_feed_engine.py): a sandbox with fast ticks, a feed on it with small watchdog and
backoff values, the sandbox's tradable tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aio_trader.backoff import Backoff
from aio_trader.kite import KiteFeed
from aio_trader.sandbox import Sandbox, SandboxConfig

#: Hang guard for waits that must end (never an assertion on speed).
HANG = 30.0
FAST = Backoff(base=0.05, factor=2.0, cap=0.2, max_attempts=5)


def feed_for(sb: Sandbox, **options: Any) -> KiteFeed:
    """A feed on the sandbox's ticker with small watchdog and backoff values; ``root`` and
    ``access_token`` may be given to point it elsewhere."""
    options.setdefault("watchdog", 2.0)
    options.setdefault("backoff", FAST)
    options.setdefault("stable_after", 0.5)
    options.setdefault("root", sb.ticker_url)
    access_token = options.pop("access_token", sb.access_token)
    return KiteFeed(sb.api_key, access_token, **options)


@asynccontextmanager
async def sandbox(**config: Any) -> AsyncIterator[Sandbox]:
    """A Kite sandbox ticking every 20 ms (``config``: ``SandboxConfig`` fields)."""
    config.setdefault("tick_interval", 0.02)
    async with Sandbox(SandboxConfig(**config)) as sb:
        yield sb


def tradable(sb: Sandbox, segment: str = "NSE") -> list[int]:
    """The tokens of the sandbox's instruments in ``segment``."""
    return [t for t, i in sb.state.market.instruments.items() if i.segment == segment]
