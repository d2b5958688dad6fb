"""Helpers the tests share: for the Kite feed tests (test_feed.py, test_feed_lifecycle.py,
test_feed_engine.py) a sandbox with fast ticks, a feed on it with small watchdog and
backoff values, the sandbox's tradable tokens; for the docs' tests, the reader of a page's
```python blocks."""

from __future__ import annotations

import re
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
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


# -- the docs' Python blocks ------------------------------------------------------------------

#: The repository's root (README.md, docs/, examples/).
ROOT = Path(__file__).parent.parent
_PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def python_blocks(page: str) -> list[str]:
    """The ```python blocks of ``page`` (a path from the repository's root, e.g.
    ``"docs/toolkit.md"``), in order, dedented (a block inside a list item is indented).
    Every test that reads the docs' code uses this one reader."""
    return [textwrap.dedent(block) for block in _PYTHON_BLOCK.findall((ROOT / page).read_text())]
