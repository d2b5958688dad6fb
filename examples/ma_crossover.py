"""A moving-average crossover: one strategy, any broker.

The strategy (``trade``) sees only the neutral operations every broker has
(``aio_trader.trading``: ``last_prices``, ``submit``, ``follow``, ``net_positions``)
and a feed: it keeps a fast and a slow mean of the last traded prices, and when the
fast one crosses the slow one it turns the position round (long on a cross upwards,
short on a cross downwards) with a MARKET order, followed to completion through the
feed's order updates. Only ``open_account`` knows which broker it talks to.

    .venv/bin/python examples/ma_crossover.py --broker kite --max-orders 2
    .venv/bin/python examples/ma_crossover.py --broker dhan --seconds 60
    .venv/bin/python examples/ma_crossover.py --broker kite --paper

With ``--paper`` the orders are paper orders (``aio_trader.paper.Paper``): filled by a
local order engine at the ticks of the broker's feed, the strategy unchanged.

Without credentials it runs on the embedded sandbox of that broker. With them (Kite:
``KITE_API_KEY``, ``KITE_ACCESS_TOKEN``; Dhan: ``DHAN_CLIENT_ID``,
``DHAN_ACCESS_TOKEN``) it places REAL orders: it refuses to run without ``--live``.
"""

from __future__ import annotations

import argparse
import os
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from statistics import fmean
from typing import Any

import anyio

from aio_trader.abc import AbstractBroker, AbstractFeeder
from aio_trader.trading import OrderRequest, OrderStatus, Product, Side

#: What ``--broker`` takes: each one is wired in ``open_account``.
BROKERS = ("kite", "dhan")


async def trade(
    broker: AbstractBroker, feed: AbstractFeeder[Any, Any], args: argparse.Namespace
) -> None:
    """The strategy: the same code for every broker."""
    symbol = args.symbol
    fast: deque[float] = deque(maxlen=args.fast)
    slow: deque[float] = deque(maxlen=args.slow)
    last = (await broker.last_prices([symbol]))[symbol]
    print(f"{symbol} last price {last}; means of {args.fast} and {args.slow} ticks")
    await feed.subscribe([symbol], "ltp")  # every broker's feed takes symbols

    held = 0  # our net quantity: +quantity long, -quantity short
    placed = complete = 0
    trend = 0  # +1 fast above slow, -1 below
    with anyio.move_on_after(args.seconds):
        async for item in feed:
            # Every broker's ticks carry last_price; order updates and the like do not.
            price = getattr(item, "last_price", None)
            if price is None:
                continue
            fast.append(price)
            slow.append(price)
            if len(slow) < args.slow:
                continue
            gap = fmean(fast) - fmean(slow)
            now = (gap > 0) - (gap < 0)
            crossed = trend != 0 and now not in (0, trend)
            trend = now or trend
            if not crossed:
                continue
            side = Side.BUY if now > 0 else Side.SELL
            wanted = args.quantity if side is Side.BUY else -args.quantity
            quantity = abs(wanted - held)
            if quantity == 0:  # already there (the previous order did not fill)
                continue
            print(f"cross {'up' if now > 0 else 'down'} at {price}: {side} {quantity}")
            request = OrderRequest(
                symbol,
                side,
                quantity,
                product=args.product,
                market_protection=args.market_protection,
            )
            # The request's tag is known before sending: after a Ctrl-C here,
            # [o for o in await broker.order_book() if o.tag == request.tag] tells.
            order_id = await broker.submit(request)
            placed += 1
            done = await broker.follow(order_id, feed=feed, timeout=args.timeout)
            print(
                f"order {order_id} {side} {quantity} {symbol} {done.status}: "
                f"filled {done.filled_quantity} at {done.average_price}"
            )
            if done.status is OrderStatus.COMPLETE:
                complete += 1
                held = wanted
            for position in await broker.net_positions():
                if position.symbol == symbol:
                    print(f"position {symbol} {position.quantity} ({position.product})")
            if placed >= args.max_orders:
                break
    print(f"done: {placed} orders placed, {complete} complete, holding {held}")


@asynccontextmanager
async def open_account(
    args: argparse.Namespace,
) -> AsyncIterator[tuple[AbstractBroker, AbstractFeeder[Any, Any]]]:
    """The broker's REST client and feed, open; the one place that knows brokers.

    Without credentials in the environment, the broker's sandbox runs in this process.
    The feed gets the client's instrument index, so it takes symbols. With
    ``--paper``, the broker's feed drives a paper account: the one-line switch is at the
    end.
    """
    env = os.environ.get
    real = bool(env("KITE_API_KEY") if args.broker == "kite" else env("DHAN_CLIENT_ID"))
    if real and not args.live and not args.paper:
        raise SystemExit("this would place REAL orders: add --live if you mean it")
    async with AsyncExitStack() as stack:
        where: dict[str, Any] = {}  # a real account: the brokers' own addresses
        if not real:
            from aio_trader.sandbox import Sandbox

            sb = await stack.enter_async_context(
                Sandbox(broker=args.broker, tick_interval=0.05, market_interval=0.05)
            )
            print(f"embedded {args.broker} sandbox at {sb.root_url}", flush=True)
        if args.broker == "kite":
            from aio_trader.kite import Kite, KiteFeed

            key, token = env("KITE_API_KEY", ""), env("KITE_ACCESS_TOKEN", "")
            if not real:
                key, token = sb.api_key, sb.access_token
                where = {"rest": {"root": sb.root_url}, "feed": {"root": sb.ticker_url}}
            kite = Kite(key, token, **where.get("rest", {}))
            broker: AbstractBroker = await stack.enter_async_context(kite)
            index = await kite.instrument_index()
            feed: AbstractFeeder[Any, Any] = KiteFeed(
                key, token, instruments=index, **where.get("feed", {})
            )
        else:
            from aio_trader.dhan import Dhan, DhanFeed

            client, token = env("DHAN_CLIENT_ID", ""), env("DHAN_ACCESS_TOKEN", "")
            if not real:
                client, token = sb.client_id, sb.access_token
                where = {
                    "rest": {"root": sb.root_url},
                    "feed": {"root": sb.feed_url, "order_root": sb.order_feed_url},
                }
            dhan = Dhan(client, token, **where.get("rest", {}))
            broker = await stack.enter_async_context(dhan)
            index = await dhan.instrument_index()
            feed = DhanFeed(client, token, instruments=index, **where.get("feed", {}))
        await stack.enter_async_context(feed)
        if args.paper:  # the one-line switch: the same strategy, paper orders
            from aio_trader.paper import Paper

            # instruments=index: any of the account's instruments can be paper-traded
            paper = await stack.enter_async_context(
                Paper(feed, cash=1_000_000, instruments=index)
            )
            broker, feed = paper.broker, paper
            print(f"paper trading over the {args.broker} feed", flush=True)
        yield broker, feed


async def main(args: argparse.Namespace) -> None:
    async with open_account(args) as (broker, feed):
        await trade(broker, feed, args)


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--broker", choices=BROKERS, required=True)
    cli.add_argument("--symbol", default="NSE:INFY", help="EXCHANGE:TRADINGSYMBOL")
    cli.add_argument("--fast", type=int, default=3, help="ticks in the fast mean")
    cli.add_argument("--slow", type=int, default=8, help="ticks in the slow mean")
    cli.add_argument("--quantity", type=int, default=1)
    cli.add_argument("--product", type=Product, default=Product.MIS)
    cli.add_argument(
        "--market-protection",
        type=float,
        default=-1,
        help="MARKET orders need it: -1 the broker's automatic protection, or a %%",
    )
    cli.add_argument("--max-orders", type=int, default=2, help="stop after this many")
    cli.add_argument("--seconds", type=float, default=300, help="stop after this long")
    cli.add_argument("--timeout", type=float, default=30, help="per order, seconds")
    cli.add_argument("--live", action="store_true", help="allow real orders")
    cli.add_argument(
        "--paper", action="store_true", help="paper orders, filled at the feed's ticks"
    )
    cli.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    arguments = cli.parse_args()
    if not 0 < arguments.fast < arguments.slow:
        cli.error("--fast must be above 0 and below --slow")
    anyio.run(main, arguments, backend=arguments.backend)
