"""Streaming with the ``conflate`` policy and a deliberately slow consumer.

With ``overflow="conflate"`` the feed keeps at most one waiting tick per instrument, the
newest: a consumer slower than the market skips the stale ticks and always sees the
current state of every instrument, and the socket keeps being read (the server is never
slowed down). Replaced ticks are counted in ``statistics().dropped``.

    .venv/bin/python examples/stream_conflated.py --seconds 5 --delay 0.05
"""

from __future__ import annotations

import anyio
from _common import connect, parser

from aio_trader.kite import Tick

#: INFY, RELIANCE, TCS, HDFCBANK, ICICIBANK, SBIN, ITC, AXISBANK, NIFTY 50, NIFTY BANK.
DEFAULT_TOKENS = (
    "408065,738561,2953217,341249,1270529,779521,424961,1510401,256265,260105"
)


async def main() -> None:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument(
        "--tokens", default=DEFAULT_TOKENS, help="instrument tokens, comma separated"
    )
    cli.add_argument("--mode", default="full", choices=["ltp", "quote", "full"])
    cli.add_argument("--seconds", type=float, default=5.0, help="how long to stream")
    cli.add_argument(
        "--delay", type=float, default=0.05, help="the consumer's work per tick"
    )
    args = cli.parse_args()
    tokens = [int(token) for token in args.tokens.split(",")]

    consumed = 0
    # tick_interval: the embedded sandbox sends a frame (a tick each) every 20 ms
    async with (
        connect(args, tick_interval=0.02) as target,
        target.feed(overflow="conflate") as feed,
    ):
        await feed.subscribe(tokens, mode=args.mode)
        with anyio.move_on_after(args.seconds):
            async for item in feed:
                if isinstance(item, Tick):
                    consumed += 1
                    if consumed % 7 == 0:  # a sample
                        print(f"{item.instrument_token:>9} {item.last_price:>10.2f}")
                    await anyio.sleep(args.delay)  # the slow work
        stats = feed.statistics()
    # Every tick received was either consumed, replaced by a newer one, still waits,
    # or was stale: sent in a richer mode than asked before a switch down took effect
    # (the quote ticks Kite sends before a full subscription takes effect are delivered,
    # counted in statistics().poorer_mode).
    print(
        f"received={stats.ticks} consumed={consumed} conflated={stats.dropped} "
        f"stale={stats.stale_mode} waiting={stats.buffered} "
        f"(at most one per instrument: {len(tokens)})"
    )


if __name__ == "__main__":
    anyio.run(main)
