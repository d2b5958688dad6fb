"""What every example shares: where to connect, a real Kite account or a sandbox.

Credentials come from flags or environment variables (``KITE_API_KEY``,
``KITE_ACCESS_TOKEN``, ``KITE_ROOT``, ``KITE_TICKER_URL``). Without an api key, the
example starts a local ``Sandbox`` in the same process (needs the ``sandbox`` extra) and
talks to it over loopback, exactly as it would to Kite.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs

from aio_trader.kite import Kite, KiteFeed


def parser(description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the connection flags (defaults from the environment)."""
    env = os.environ.get
    cli = argparse.ArgumentParser(description=description)
    cli.add_argument(
        "--api-key", default=env("KITE_API_KEY"), help="none: embedded sandbox"
    )
    cli.add_argument("--access-token", default=env("KITE_ACCESS_TOKEN"))
    cli.add_argument(
        "--root", default=env("KITE_ROOT"), help="REST root (default: Kite's)"
    )
    cli.add_argument(
        "--ticker-url", default=env("KITE_TICKER_URL"), help="default: Kite's"
    )
    return cli


@attrs.frozen
class Target:
    """Where to connect; ``sandbox`` is the embedded sandbox, if one was started."""

    api_key: str
    access_token: str = attrs.field(repr=False)
    root: str | None = None
    ticker_url: str | None = None
    sandbox: Any = None

    def kite(self, **options: Any) -> Kite:
        return Kite(self.api_key, self.access_token, root=self.root, **options)

    def feed(self, **options: Any) -> KiteFeed:
        return KiteFeed(
            self.api_key, self.access_token, root=self.ticker_url, **options
        )


@asynccontextmanager
async def connect(
    args: argparse.Namespace, **sandbox_config: Any
) -> AsyncIterator[Target]:
    """The account given by ``args``; without an api key, a sandbox started for the
    block (``sandbox_config``: ``SandboxConfig`` fields, e.g. ``tick_interval=0.05``).
    """
    if args.api_key:
        if not args.access_token:
            raise SystemExit(
                "--access-token (or KITE_ACCESS_TOKEN) is needed with --api-key"
            )
        yield Target(args.api_key, args.access_token, args.root, args.ticker_url)
        return
    from aio_trader.sandbox import Sandbox

    async with Sandbox(**sandbox_config) as sb:
        print(f"embedded sandbox at {sb.root_url}", flush=True)
        yield Target(sb.api_key, sb.access_token, sb.root_url, sb.ticker_url, sb)
