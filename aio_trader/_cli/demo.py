"""``aio-trader demo``: the library end to end on an embedded sandbox; no Kite account needed.

The command, and ``run_demo`` that it runs (the tests call it directly).

It does what a user's program does, through the public API only:

1. starts a :class:`~aio_trader.sandbox.Sandbox` in-process (a Kite-compatible server on
   loopback) on the running backend (asyncio or trio);
2. logs in with Kite Connect's flow: opens ``kite.login_url()`` (the sandbox's login page
   redirects at once with a ``request_token``, as Kite does after the user signs in), then
   ``kite.generate_session(request_token, api_secret)``;
3. reads the profile and the margins;
4. subscribes with :class:`~aio_trader.kite.KiteFeed` in full mode to an equity (NSE:INFY),
   an index (NIFTY 50) and the nearest NIFTY future found in the instruments dump, and shows
   their ticks: a live table on a terminal, or plain lines (``tick NSE:INFY last=...``);
5. places a market order (with ``market_protection=-1``, as Kite requires since April
   2026) and a limit order (``kite.place_order``) and shows their updates as they
   arrive over the WebSocket, then the positions; near the end, cancels the limit order;
6. stops after ``duration`` seconds, or at the first SIGINT/SIGTERM (Ctrl-C), cleanly: every
   connection is closed and the sandbox stopped before it returns.
"""

from __future__ import annotations

import datetime
import functools
import math
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Generic, Protocol, TextIO, TypeVar

import anyio
import attrs
import click
from rich.console import Console

from aio_trader._time import IST
from aio_trader.errors import DataException
from aio_trader.kite import Kite, KiteFeed
from aio_trader.kite._models import Instrument, Session
from aio_trader.kite.ticks import OrderUpdate
from aio_trader.utils import graceful_shutdown

from .connection import backend_option, follow_login_page, run
from .render import LiveScreen, Screen, TickBoard

if TYPE_CHECKING:
    from aio_trader.sandbox import Sandbox

__all__ = ["DemoSummary", "demo", "run_demo"]

#: The equity and the index the demo streams (the F&O contract is looked up).
EQUITY = (408065, "NSE", "INFY")
INDEX = (256265, "NSE", "NIFTY 50")
#: Seconds before the end at which the open limit order is cancelled.
_CANCEL_BEFORE_END = 1.5
#: Longest wait for an order's next state.
_ORDER_WAIT = 10.0
_TERMINAL = frozenset({"COMPLETE", "REJECTED", "CANCELLED"})


@attrs.frozen
class DemoSummary:
    """What a demo run saw: ticks per instrument label, order updates, the stopping signal."""

    ticks: dict[str, int]
    order_updates: int
    signal: str | None


# -- the command -----------------------------------------------------------------------------


@click.command()
@backend_option
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to run (Ctrl-C stops it sooner).",
)
@click.option(
    "--plain",
    "--headless",
    "plain",
    is_flag=True,
    help="Plain progressive lines instead of the live table (the default when not a terminal).",
)
@click.option(
    "--broker",
    type=click.Choice(["kite", "dhan"]),
    default="kite",
    show_default=True,
    help="Whose API the embedded sandbox speaks and the demo uses.",
)
def demo(backend: str, duration: float, plain: bool, broker: str) -> None:
    """Run the library end to end on an embedded sandbox: no Kite account needed.

    Logs in through the sandbox's Kite Connect login flow, reads the profile and margins,
    streams ticks of an equity, an index and a future in full mode, places a market and a
    limit order and shows their updates arriving over the WebSocket, then the positions.

    With --broker dhan: the same on an embedded Dhan sandbox (token check and profile, funds,
    ticks of NSE_EQ:1333, IDX_I:13 and a NIFTY future, two orders and their updates over the
    order-update socket, positions).
    """
    if broker == "dhan":
        from .dhan_demo import run_dhan_demo

        live = False if plain else None
        run(backend, functools.partial(run_dhan_demo, duration, backend=backend, live=live))
        return
    run(
        backend,
        functools.partial(run_demo, duration, backend=backend, live=False if plain else None),
    )


# -- what the demo does ------------------------------------------------------------------------


class _OrderState(Protocol):
    """What an order update of any broker carries (Kite's, Dhan's ``OrderUpdate``)."""

    @property
    def order_id(self) -> str: ...
    @property
    def status(self) -> str: ...


UpdateT = TypeVar("UpdateT", bound=_OrderState)


@attrs.define
class Orders(Generic[UpdateT]):
    """The latest update of each order, and an event renewed on every update (the Kite
    and the Dhan demo's)."""

    latest: dict[str, UpdateT] = attrs.field(factory=dict)
    changed: anyio.Event = attrs.field(factory=anyio.Event)
    count: int = 0

    def add(self, update: UpdateT) -> None:
        self.latest[update.order_id] = update
        self.count += 1
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_for(self, order_id: str, statuses: Iterable[str]) -> UpdateT | None:
        """The order's update once its status is one of ``statuses`` (None after a while)."""
        wanted = frozenset(statuses)
        with anyio.move_on_after(_ORDER_WAIT):
            while True:
                update = self.latest.get(order_id)
                if update is not None and update.status in wanted:
                    return update
                await self.changed.wait()
        return None


async def _login(kite: Kite, api_secret: str, screen: Screen) -> Session:
    """Kite Connect's login: the login page redirects with a request_token, exchanged here."""
    url = kite.login_url()
    request_token = await follow_login_page(url)
    screen.note(f"login: {url} redirected with a request_token")
    session = await kite.generate_session(request_token, api_secret)
    screen.note(f"session: generate_session(request_token, api_secret) -> {session.user_id}")
    return session


async def _account(kite: Kite, screen: Screen) -> None:
    profile = await kite.profile()
    screen.note(
        f"profile: {profile.user_id} {profile.user_name} ({profile.broker}), "
        f"exchanges {', '.join(profile.exchanges or ())}"
    )
    equity = await kite.margins("equity")
    cash = equity.available.cash if equity.available else None
    screen.note(f"margins: equity net {equity.net or 0:,.2f}, cash available {cash or 0:,.2f}")


def _nearest_future(instruments: list[Instrument], name: str) -> Instrument:
    """The future of ``name`` expiring next (the last one if all have expired)."""
    futures = sorted(
        (i for i in instruments if i.instrument_type == "FUT" and i.name == name),
        key=lambda i: i.expiry or datetime.date.max,
    )
    if not futures:
        raise DataException(f"no {name} future in the instruments dump", status_code=200)
    today = datetime.datetime.now(IST).date()
    live = [i for i in futures if i.expiry is None or i.expiry >= today]
    return (live or futures[-1:])[0]


async def _trade(
    kite: Kite,
    screen: Screen,
    board: TickBoard,
    orders: Orders[OrderUpdate],
    ticking: anyio.Event,
    deadline: float,
) -> None:
    """Place a market and a limit order, show positions, cancel the limit order near the end."""
    token, exchange, symbol = EQUITY
    with anyio.move_on_after(5):  # let every instrument tick first
        await ticking.wait()
    market = await kite.place_order(
        variety="regular",
        exchange=exchange,
        tradingsymbol=symbol,
        transaction_type="BUY",
        quantity=1,
        product="CNC",
        order_type="MARKET",
        market_protection=-1,  # Kite refuses market orders without it since April 2026
    )
    screen.note(f"order placed: MARKET BUY 1 {exchange}:{symbol} -> {market}")
    await orders.wait_for(market, _TERMINAL)
    last = board.ticks[token].last_price if token in board.ticks else 0.0
    price = max(0.05, math.floor(last * 0.99 / 0.05) * 0.05)
    limit = await kite.place_order(
        variety="regular",
        exchange=exchange,
        tradingsymbol=symbol,
        transaction_type="BUY",
        quantity=1,
        product="CNC",
        order_type="LIMIT",
        price=round(price, 2),
    )
    screen.note(f"order placed: LIMIT BUY 1 {exchange}:{symbol} @ {price:,.2f} -> {limit}")
    await orders.wait_for(limit, {"OPEN", *_TERMINAL})
    positions = await kite.positions()
    for position in positions.net or ():
        screen.note(
            f"position: {position.exchange}:{position.tradingsymbol} {position.product} "
            f"qty {position.quantity} avg {position.average_price or 0:,.2f} "
            f"pnl {position.pnl or 0:+,.2f}"
        )
    if not positions.net:
        screen.note("position: none")
    await anyio.sleep_until(deadline - _CANCEL_BEFORE_END)
    if orders.latest.get(limit, OrderUpdate()).status in _TERMINAL:
        return
    await kite.cancel_order("regular", limit)
    screen.note(f"order cancelled: {limit}")
    await orders.wait_for(limit, _TERMINAL)


async def _show_feed(
    feed: KiteFeed,
    screen: Screen,
    board: TickBoard,
    orders: Orders[OrderUpdate],
    ticking: anyio.Event,
) -> None:
    """Show every item of the feed; set ``ticking`` once every instrument has ticked."""
    async for item in feed:
        if isinstance(item, OrderUpdate):
            orders.add(item)
        if screen.show(item) and len(board.ticks) == len(board.labels):
            ticking.set()


async def _demo(
    sb: Sandbox, screen: Screen, board: TickBoard, orders: Orders[OrderUpdate], deadline: float
) -> None:
    login_page = f"{sb.root_url}/connect/login"
    async with Kite(sb.api_key, root=sb.root_url, login_root=login_page, token_cache=False) as kite:
        session = await _login(kite, sb.api_secret, screen)
        await _account(kite, screen)
        future = _nearest_future(await kite.instruments("NFO"), "NIFTY")
        board.labels[future.instrument_token] = f"NFO:{future.tradingsymbol}"
        access_token = session.access_token or sb.access_token
        async with KiteFeed(sb.api_key, access_token, root=sb.ticker_url) as feed:
            await feed.subscribe(list(board.labels), mode="full")
            screen.note("subscribed (full): " + ", ".join(board.labels.values()))
            ticking = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_show_feed, feed, screen, board, orders, ticking)
                await _trade(kite, screen, board, orders, ticking, deadline)
                await anyio.sleep_forever()


async def run_demo(
    duration: float = 30.0,
    *,
    backend: str = "asyncio",
    live: bool | None = None,
    out: TextIO | None = None,
) -> DemoSummary:
    """Run the demo for ``duration`` seconds (or until SIGINT/SIGTERM) and return a summary.

    ``backend``: the name of the event loop it runs on, for the display (``anyio.run``'s).
    ``live``: a rich live table (default: when ``out`` is a terminal), else plain lines.
    ``out``: where to write (default: standard output). Main thread only (signals).
    Raises what the library raises (``AioTraderError`` subclasses) if a step fails.
    Cancellation: everything stops cleanly (connections closed, sandbox stopped) and the
    cancellation propagates.
    """
    from aio_trader.sandbox import Sandbox, SandboxConfig  # not loaded by `aio-trader --help`

    out = sys.stdout if out is None else out
    board = TickBoard({EQUITY[0]: f"{EQUITY[1]}:{EQUITY[2]}", INDEX[0]: f"{INDEX[1]}:{INDEX[2]}"})
    orders = Orders[OrderUpdate]()
    console = Console(file=out)
    if live is None:
        live = console.is_terminal
    screen: Screen
    if live:
        # The first notes (sandbox, login, session, profile, margins, subscription) stay.
        screen = LiveScreen(console, board, "aio-trader demo (Ctrl-C to stop)", pinned=6)
    else:
        screen = Screen(out, board, tick_every=1.0)
    # The sandbox stays outside the cancelled scopes: it is stopped by leaving its block.
    async with screen.shown(), Sandbox(SandboxConfig()) as sb:
        screen.note(f"sandbox: Kite-compatible server at {sb.root_url} (on {backend})")
        deadline = anyio.current_time() + duration
        async with graceful_shutdown() as shutdown:
            with anyio.CancelScope(deadline=deadline):
                await _demo(sb, screen, board, orders, deadline)
    summary = DemoSummary(
        ticks={board.label(token): count for token, count in board.counts.items()},
        order_updates=orders.count,
        signal=shutdown.signal.name if shutdown.signal else None,
    )
    stopped = f"stopped by {summary.signal}" if summary.signal else f"ran {duration:g} s"
    counts = ", ".join(f"{label} {count}" for label, count in summary.ticks.items())
    print(
        f"demo finished ({stopped}): ticks {counts or 'none'}; "
        f"{summary.order_updates} order updates",
        file=out,
        flush=True,
    )
    return summary
