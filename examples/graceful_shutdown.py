"""Graceful shutdown: SIGINT (Ctrl-C) or SIGTERM cancels the work cleanly.

``aio_trader.utils.graceful_shutdown`` turns the first SIGINT/SIGTERM into a
cancellation of its block: every ``finally`` and ``async with`` exit runs (the feed's
sockets close, the sandbox stops), and the program ends normally with exit status 0, no
traceback. A second signal during the clean-up gets the default behaviour back.

    .venv/bin/python examples/graceful_shutdown.py                 # until Ctrl-C
    .venv/bin/python examples/graceful_shutdown.py --backend trio  # the same, on trio
"""

from __future__ import annotations

import argparse

import anyio
from _common import Target, connect, parser

from aio_trader.kite import Tick
from aio_trader.utils import graceful_shutdown


async def stream(target: Target, seconds: float | None) -> int:
    """Print ticks until cancelled (or for ``seconds``); returns how many were seen."""
    seen = 0
    async with target.feed() as feed:
        await feed.subscribe([408065, 2953217, 256265], mode="quote")
        try:
            with anyio.move_on_after(seconds if seconds is not None else float("inf")):
                async for item in feed:
                    if isinstance(item, Tick):
                        seen += 1
                        if seen == 1:
                            print("streaming: press Ctrl-C to stop", flush=True)
                        print(
                            f"{item.instrument_token:>9} {item.last_price:>10.2f}",
                            flush=True,
                        )
        finally:
            # Runs on Ctrl-C too: the cancellation unwinds through here.
            print(f"closing the feed after {seen} ticks", flush=True)
    return seen


async def main(args: argparse.Namespace) -> None:
    # The embedded sandbox (the server side) stays outside: only our work is cancelled.
    async with connect(args) as target, graceful_shutdown() as shutdown:
        await stream(target, args.seconds)
    if shutdown.signal is not None:
        print(f"stopped cleanly by {shutdown.signal.name}")
    else:
        print("finished")


if __name__ == "__main__":
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--seconds", type=float, help="stop by itself after this long")
    cli.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    arguments = cli.parse_args()
    anyio.run(main, arguments, backend=arguments.backend)
