"""The same code under asyncio and under trio.

aio_trader is written against anyio only, so ``main`` below runs unchanged on either
event loop, started here with each backend's own runner: ``asyncio.run(main())`` and
``trio.run(main)`` (``anyio.run(main, backend=...)`` does the same). Inside, a task
group runs two jobs at once: a tick stream and a REST poll.

    .venv/bin/python examples/backends.py                    # both, one after the other
    .venv/bin/python examples/backends.py --backend trio
"""

from __future__ import annotations

import argparse
import asyncio
import functools

import anyio
import sniffio
import trio
from _common import connect, parser

from aio_trader.kite import Tick

SYMBOL, TOKEN = "NSE:INFY", 408065


async def main(args: argparse.Namespace) -> None:
    backend = sniffio.current_async_library()
    async with connect(args) as target, target.kite() as kite, target.feed() as feed:
        profile = await kite.profile()
        print(f"[{backend}] logged in as {profile.user_name} ({profile.user_id})")
        await feed.subscribe([TOKEN], mode="quote")

        async def stream(ticks: int) -> None:
            seen = 0
            async for item in feed:
                if isinstance(item, Tick):
                    seen += 1
                    token, price = item.instrument_token, item.last_price
                    print(f"[{backend}] tick  {token} {price:.2f}")
                    if seen == ticks:
                        return

        async def poll(times: int) -> None:
            for _ in range(times):
                quote = (await kite.ltp(SYMBOL))[SYMBOL]
                print(f"[{backend}] ltp   {SYMBOL} {quote.last_price:.2f}")
                await anyio.sleep(0.5)

        async with anyio.create_task_group() as tg:
            tg.start_soon(stream, args.ticks)
            tg.start_soon(poll, 2)
    print(f"[{backend}] done: every task and socket closed")


def cli() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument(
        "--backend", choices=["asyncio", "trio", "both"], default="both"
    )
    options.add_argument(
        "--ticks", type=int, default=5, help="ticks to read per backend"
    )
    args = options.parse_args()
    if args.backend in ("asyncio", "both"):
        asyncio.run(main(args))
    if args.backend in ("trio", "both"):
        trio.run(functools.partial(main, args))


if __name__ == "__main__":
    cli()
