"""``aio-trader demo --broker dhan``: the Dhan client end to end on an embedded Dhan sandbox.

As the Kite demo (:mod:`aio_trader._cli.demo`), through the public API only:

1. starts a :class:`~aio_trader.sandbox.Sandbox` speaking DhanHQ v2 on loopback;
2. checks the access token (``dhan.authorise()``: the profile) and reads the funds;
3. subscribes with :class:`~aio_trader.dhan.DhanFeed` in full mode to an equity
   (``NSE_EQ:1333``, HDFCBANK), an index (``IDX_I:13``, NIFTY) and the nearest NIFTY
   future of the instrument list, and shows their ticks (a live table on a terminal, else
   plain lines);
4. places a market order (``market_protection=-1``) and a limit order, shows their updates
   as they arrive over the order-update socket, then the positions; near the end, cancels
   the limit order;
5. stops after ``duration`` seconds, or at the first SIGINT/SIGTERM, cleanly.
"""

from __future__ import annotations

import datetime
import math
import sys
from typing import TextIO

import anyio
from rich.console import Console

from aio_trader._time import IST
from aio_trader.dhan import Dhan, DhanFeed, Instrument
from aio_trader.dhan.ticks import OrderUpdate
from aio_trader.utils import graceful_shutdown

from .demo import DemoSummary, Orders
from .dhan import FINAL, DhanBoard, DhanLiveScreen, PlainScreen
from .render import Screen

__all__ = ["run_dhan_demo"]

#: The equity and the index the demo streams (the NIFTY future is looked up).
EQUITY = ("NSE_EQ", 1333)
INDEX = ("IDX_I", 13)
#: Seconds before the end at which the open limit order is cancelled.
_CANCEL_BEFORE_END = 1.5


def _nearest_future(instruments: list[Instrument], name: str) -> Instrument | None:
    """The future of ``name`` expiring next (the last one if all have expired)."""
    futures = sorted(
        (
            i
            for i in instruments
            if i.instrument == "FUTIDX" and (i.trading_symbol or "").startswith(name + "-")
        ),
        key=lambda i: i.expiry_date or datetime.datetime.max.replace(tzinfo=IST),
    )
    if not futures:
        return None
    now = datetime.datetime.now(IST)
    live = [i for i in futures if i.expiry_date is None or i.expiry_date >= now]
    return (live or futures[-1:])[0]


async def _account(dhan: Dhan, screen: Screen) -> None:
    profile = await dhan.authorise()
    screen.note(
        f"login: access token of client {dhan.client_id} accepted "
        f"(profile: valid until {getattr(profile, 'token_validity', None) or '-'}, "
        f"segments {getattr(profile, 'active_segment', None) or '-'})"
    )
    funds = await dhan.fund_limits()
    screen.note(
        f"funds: available {funds.availabel_balance or 0:,.2f}, "
        f"start of day {funds.sod_limit or 0:,.2f}, used {funds.utilized_amount or 0:,.2f}"
    )


async def _trade(
    dhan: Dhan,
    screen: Screen,
    board: DhanBoard,
    orders: Orders[OrderUpdate],
    ticking: anyio.Event,
    deadline: float,
) -> None:
    """Place a market and a limit order, show positions, cancel the limit order near the end."""
    segment, security = EQUITY
    name = board.label(EQUITY)
    with anyio.move_on_after(5):  # let every instrument tick first
        await ticking.wait()
    market = await dhan.place_order(
        security, segment, "BUY", 1, "MARKET", "CNC", market_protection=-1
    )
    screen.note(f"order placed: MARKET BUY 1 {name} -> {market}")
    await orders.wait_for(market, FINAL)
    tick = board.ticks.get(EQUITY)
    last = tick.last_price if tick is not None else 0.0
    price = round(max(0.05, math.floor(last * 0.99 / 0.05) * 0.05), 2)
    limit = await dhan.place_order(security, segment, "BUY", 1, "LIMIT", "CNC", price=price)
    screen.note(f"order placed: LIMIT BUY 1 {name} @ {price:,.2f} -> {limit}")
    await orders.wait_for(limit, {"PENDING", *FINAL})
    positions = await dhan.positions()
    for position in positions:
        screen.note(
            f"position: {position.exchange_segment}:{position.trading_symbol} "
            f"{position.product_type} qty {position.net_qty} avg "
            f"{position.cost_price or position.buy_avg or 0:,.2f} "
            f"pnl {(position.realized_profit or 0) + (position.unrealized_profit or 0):+,.2f}"
        )
    if not positions:
        screen.note("position: none")
    await anyio.sleep_until(deadline - _CANCEL_BEFORE_END)
    latest = orders.latest.get(limit)
    if latest is not None and latest.status in FINAL:
        return
    await dhan.cancel_order(limit)
    screen.note(f"order cancelled: {limit}")
    await orders.wait_for(limit, FINAL)


async def _show_feed(
    feed: DhanFeed,
    screen: Screen,
    board: DhanBoard,
    orders: Orders[OrderUpdate],
    ticking: anyio.Event,
) -> None:
    """Show every item of the feed; set ``ticking`` once every instrument has ticked."""
    async for item in feed:
        if isinstance(item, OrderUpdate):
            orders.add(item)
        if screen.show(item) and len(board.ticks) >= len(board.labels):
            ticking.set()


async def _demo(
    root: str,
    feed_url: str,
    order_feed_url: str,
    client_id: str,
    access_token: str,
    screen: Screen,
    board: DhanBoard,
    orders: Orders[OrderUpdate],
    deadline: float,
) -> None:
    async with Dhan(client_id, access_token, root=root) as dhan:
        await _account(dhan, screen)
        future = _nearest_future(await dhan.instruments("NSE_FNO"), "NIFTY")
        if future is not None and future.security_id:
            board.labels[("NSE_FNO", int(future.security_id))] = (
                f"NSE_FNO:{future.security_id} ({future.trading_symbol})"
            )
        feed = DhanFeed(client_id, access_token, root=feed_url, order_root=order_feed_url)
        async with feed:
            await feed.subscribe(list(board.labels), mode="full")
            screen.note("subscribed (full): " + ", ".join(board.labels.values()))
            ticking = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_show_feed, feed, screen, board, orders, ticking)
                await _trade(dhan, screen, board, orders, ticking, deadline)
                await anyio.sleep_forever()


async def run_dhan_demo(
    duration: float = 30.0,
    *,
    backend: str = "asyncio",
    live: bool | None = None,
    out: TextIO | None = None,
) -> DemoSummary:
    """Run the Dhan demo for ``duration`` seconds (or until SIGINT/SIGTERM); as
    :func:`aio_trader._cli.demo.run_demo` (same arguments, same summary)."""
    from aio_trader.sandbox import Sandbox, SandboxConfig  # not loaded by `aio-trader --help`

    out = sys.stdout if out is None else out
    board = DhanBoard({EQUITY: f"{EQUITY[0]}:{EQUITY[1]}", INDEX: f"{INDEX[0]}:{INDEX[1]}"})
    orders = Orders[OrderUpdate]()
    console = Console(file=out)
    if live is None:
        live = console.is_terminal
    screen: Screen
    if live:
        screen = DhanLiveScreen(
            console, board, "aio-trader demo --broker dhan (Ctrl-C to stop)", pinned=4
        )
    else:
        screen = PlainScreen(out, board, tick_every=1.0)
    async with screen.shown(), Sandbox(SandboxConfig(broker="dhan")) as sb:
        screen.note(f"sandbox: Dhan-compatible server at {sb.root_url} (on {backend})")
        deadline = anyio.current_time() + duration
        async with graceful_shutdown() as shutdown:
            with anyio.CancelScope(deadline=deadline):
                await _demo(
                    sb.root_url,
                    sb.feed_url,
                    sb.order_feed_url,
                    sb.client_id,
                    sb.access_token,
                    screen,
                    board,
                    orders,
                    deadline,
                )
    summary = DemoSummary(
        ticks={board.label(key): count for key, count in board.counts.items()},
        order_updates=orders.count,
        signal=shutdown.signal.name if shutdown.signal else None,
    )
    stopped = f"stopped by {summary.signal}" if summary.signal else f"ran {duration:g} s"
    counts = ", ".join(f"{name} {count}" for name, count in summary.ticks.items())
    print(
        f"demo finished ({stopped}): ticks {counts or 'none'}; "
        f"{summary.order_updates} order updates",
        file=out,
        flush=True,
    )
    return summary
