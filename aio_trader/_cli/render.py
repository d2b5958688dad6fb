"""What the demo and the commands show: tick rows, the live tick board, tables, JSON lines.

One shared path: the live table (``TickBoard``) and the plain lines (``tick_line``) of
``aio-trader demo`` and ``aio-trader stream`` come from the same ``tick_cells``.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import enum
import json
import math
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import IO, Any

import anyio
import attrs
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from aio_trader.kite._feed import FeedItem
from aio_trader.kite.ticks import (
    FeedError,
    FeedMessage,
    FullTick,
    IndexFullTick,
    IndexQuoteTick,
    LtpTick,
    OrderUpdate,
    QuoteTick,
    Tick,
)

__all__ = [
    "TICK_COLUMNS",
    "JsonScreen",
    "LiveScreen",
    "Screen",
    "TickBoard",
    "grouped",
    "json_line",
    "order_line",
    "plain",
    "record_table",
    "tick_cells",
    "tick_line",
]

#: Text that reads as a number (``1,234``, ``+0.12%``): right-aligned in tables.
_NUMBER = re.compile(r"[+-]?[\d,]+(\.\d+)?%?")
#: Every kind of tick (``Tick``'s members), for ``isinstance``.
_TICK_TYPES = (LtpTick, IndexQuoteTick, IndexFullTick, QuoteTick, FullTick)
#: The columns of a tick row, in order.
TICK_COLUMNS = ("last", "change", "volume", "bid", "ask")


def grouped(value: int | None) -> str | None:
    """An integer with thousands separators (``1,234,567``), as quotes and ticks show volumes."""
    return None if value is None else f"{value:,}"


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def tick_cells(tick: Tick) -> dict[str, str]:
    """``TICK_COLUMNS`` of ``tick`` as text; ``-`` where its kind has no such field.

    Change is the percent change from the previous close; bid and ask are the best
    levels of the depth (full mode only).
    """
    change = "-"
    if isinstance(tick, IndexQuoteTick | IndexFullTick | QuoteTick | FullTick):
        change = f"{tick.change:+.2f}%"
    volume = "-"
    if isinstance(tick, QuoteTick | FullTick):
        volume = grouped(tick.volume_traded) or "-"
    bid = ask = "-"
    if isinstance(tick, FullTick):
        bid = _price(tick.depth.buy[0].price if tick.depth.buy else None)
        ask = _price(tick.depth.sell[0].price if tick.depth.sell else None)
    return {
        "last": _price(tick.last_price),
        "change": change,
        "volume": volume,
        "bid": bid,
        "ask": ask,
    }


def tick_line(label: str, tick: Tick) -> str:
    """One plain line for a tick: ``tick NSE:INFY last=1,540.05 change=+0.12% ...``."""
    cells = tick_cells(tick)
    return f"tick {label} " + " ".join(f"{name}={cells[name]}" for name in TICK_COLUMNS)


def order_line(update: OrderUpdate) -> str:
    """One plain line for an order update (status, fill, average price, message)."""
    what = f"{update.order_type} {update.transaction_type} {update.exchange}:{update.tradingsymbol}"
    text = (
        f"order update {update.order_id} {what} {update.status} "
        f"filled {update.filled_quantity}/{update.quantity}"
    )
    if update.filled_quantity:
        text += f" at {_price(update.average_price)}"
    if update.status_message:
        text += f" ({update.status_message})"
    return text


@attrs.define
class TickBoard:
    """The latest tick of each instrument, in subscription order, as a rich ``Table``.

    Kite's ticks by default; another broker's board overrides ``key`` (the instrument a
    tick is of), ``cells`` (its ``TICK_COLUMNS``) and ``change`` (its percent change)."""

    labels: dict[Any, str]
    ticks: dict[Any, Any] = attrs.field(factory=dict)
    counts: dict[Any, int] = attrs.field(factory=dict)

    @staticmethod
    def key(tick: Any) -> Any:
        """The instrument of ``tick``, as ``labels`` keys it."""
        return tick.instrument_token

    @staticmethod
    def cells(tick: Any) -> dict[str, str]:
        """``TICK_COLUMNS`` of ``tick`` as text."""
        return tick_cells(tick)

    @staticmethod
    def change(tick: Any) -> float:
        """The percent change of ``tick`` (0: none)."""
        return float(getattr(tick, "change", 0.0))

    def update(self, tick: Any) -> None:
        key = self.key(tick)
        self.ticks[key] = tick
        self.counts[key] = self.counts.get(key, 0) + 1

    def label(self, token: Any) -> str:
        return self.labels.get(token, str(token))

    def table(self, title: str | None = None) -> Table:
        """Instrument, ``TICK_COLUMNS`` and ``#``: the number of ticks received (a short
        header, so that the table fits 80 columns), one row each."""
        table = Table(title=title, expand=False)
        table.add_column("instrument", no_wrap=True)
        for name in (*TICK_COLUMNS, "#"):
            table.add_column(name, justify="right")
        for token in dict.fromkeys([*self.labels, *self.ticks]):
            tick = self.ticks.get(token)
            cells = self.cells(tick) if tick is not None else dict.fromkeys(TICK_COLUMNS, "…")
            change = self.change(tick) if tick is not None else 0.0
            if change:
                colour = "green" if change > 0 else "red"
                cells["change"] = f"[{colour}]{cells['change']}[/]"
            row = [cells[name] for name in TICK_COLUMNS]
            table.add_row(self.label(token), *row, f"{self.counts.get(token, 0):,}")
        return table


# -- screens: plain lines, JSON lines, a live view ------------------------------------------


class Screen:
    """Plain lines (for pipes, logs and tests): notes, ticks (at most one line per instrument
    per ``tick_every`` seconds; 0: every tick), order updates."""

    def __init__(self, out: IO[str], board: TickBoard, tick_every: float = 0.0) -> None:
        self.out = out
        self.board = board
        self.tick_every = tick_every
        self._last_shown: dict[int, float] = {}

    #: What a feed's items are (another broker's screen sets its own): order updates,
    #: notes (errors, messages), ticks; and how an order update reads as a line.
    order_types: tuple[type, ...] = (OrderUpdate,)
    note_types: tuple[type, ...] = (FeedError, FeedMessage)
    tick_types: tuple[type, ...] = _TICK_TYPES
    order_text: Callable[[Any], str] = staticmethod(order_line)

    def show(self, item: FeedItem | Any) -> bool:
        """Show one item of a feed (a tick also goes on the board); True if it was a tick.
        Items of kinds it does not know (newer feed records) are skipped."""
        if isinstance(item, self.order_types):
            self.order(item)
        elif isinstance(item, self.note_types):
            self.note(f"feed {type(item).__name__}: {item}")
        elif isinstance(item, self.tick_types):
            self.board.update(item)
            self.tick(item)
            return True
        return False

    def note(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def tick(self, tick: Any) -> None:
        now = anyio.current_time()
        token = self.board.key(tick)
        if now - self._last_shown.get(token, -math.inf) >= self.tick_every:
            self._last_shown[token] = now
            cells = self.board.cells(tick)
            line = " ".join(f"{name}={cells[name]}" for name in TICK_COLUMNS)
            self.note(f"tick {self.board.label(token)} {line}")

    def order(self, update: Any) -> None:
        self.note(self.order_text(update))

    @contextlib.asynccontextmanager
    async def shown(self) -> AsyncIterator[None]:
        yield


class JsonScreen(Screen):
    """One JSON object per line: ``{"type": "tick", "instrument": label, ...}`` (the tick as
    Kite's clients give it) or ``{"type": "order", ...}``; notes go to ``notes`` (stderr)."""

    def __init__(self, out: IO[str], board: TickBoard, notes: IO[str]) -> None:
        super().__init__(out, board)
        self.notes_out = notes

    def note(self, text: str) -> None:
        print(text, file=self.notes_out, flush=True)

    def tick(self, tick: Any) -> None:
        label = self.board.label(self.board.key(tick))
        self.line({"type": "tick", "instrument": label, **tick.to_dict()})

    def order(self, update: OrderUpdate) -> None:
        self.line({"type": "order", **update.to_dict()})

    def line(self, value: dict[str, Any]) -> None:
        print(json_line(value), file=self.out, flush=True)


class LiveScreen(Screen):
    """A rich ``Live`` view: notes, the tick table, the orders table; redrawn from the event
    loop ten times a second (no refresh thread). The notes panel shows the first ``pinned``
    notes (e.g. the login and the profile) for the whole run, then the latest ones."""

    #: How many of the latest notes the panel shows (below the pinned ones).
    RECENT = 8

    def __init__(self, console: Console, board: TickBoard, title: str, pinned: int = 0) -> None:
        super().__init__(console.file, board)
        self.console = console
        self.title = title
        self.pinned = pinned
        self.first: list[str] = []
        self.recent: collections.deque[str] = collections.deque(maxlen=self.RECENT)
        self.dropped = 0
        self.orders: dict[str, Any] = {}

    @property
    def notes(self) -> list[str]:
        """The panel's lines: the pinned notes, how many were left out, the latest ones."""
        gap = [f"… {self.dropped} more"] if self.dropped else []
        return [*self.first, *gap, *self.recent]

    def note(self, text: str) -> None:
        if len(self.first) < self.pinned:
            self.first.append(text)
            return
        if len(self.recent) == self.RECENT:
            self.dropped += 1
        self.recent.append(text)

    def tick(self, tick: Any) -> None:
        pass  # the board holds it; the next redraw shows it

    def order(self, update: Any) -> None:
        self.orders[update.order_id] = update
        self.note(self.order_text(update))

    @staticmethod
    def order_row(update: Any) -> list[str]:
        """A row of the orders table: order id, type, side, instrument, status, filled, avg."""
        return [
            update.order_id,
            update.order_type,
            update.transaction_type,
            f"{update.exchange}:{update.tradingsymbol}",
            update.status,
            f"{update.filled_quantity}/{update.quantity}",
            f"{update.average_price:,.2f}" if update.filled_quantity else "-",
        ]

    def render(self) -> Group:
        orders = Table(title="orders (updates over the WebSocket)")
        for name in ("order id", "type", "side", "instrument", "status", "filled", "avg"):
            orders.add_column(name)
        for update in self.orders.values():
            orders.add_row(*self.order_row(update))
        log = Panel(Text("\n".join(self.notes)), title=self.title)
        tables = [self.board.table("ticks")]
        if self.orders:
            tables.append(orders)
        return Group(log, *tables)

    @contextlib.asynccontextmanager
    async def shown(self) -> AsyncIterator[None]:
        with Live(self.render(), console=self.console, auto_refresh=False) as live:
            async with anyio.create_task_group() as tg:

                async def redraw() -> None:
                    while True:
                        live.update(self.render(), refresh=True)
                        await anyio.sleep(0.1)

                tg.start_soon(redraw)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
            live.update(self.render(), refresh=True)
        if not self.console.is_terminal:  # the last frame was printed without a line end
            self.console.line()


def plain(value: Any) -> Any:
    """``value`` made JSON-friendly: datetimes/dates as ISO text, enums as values, records
    and mappings as dicts, tuples as lists."""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return plain(to_dict())
    return value


def json_line(value: Any) -> str:
    """``value`` as one compact JSON line (see :func:`plain`)."""
    return json.dumps(plain(value), separators=(",", ":"), default=str)


def record_table(
    title: str,
    rows: Iterable[Any],
    columns: Sequence[tuple[str, Callable[[Any], Any]]],
) -> Table:
    """A table of ``rows``: one column per ``(header, getter)``; ``None`` shows as ``-``,
    floats with two decimals; columns of numbers are right-aligned."""
    values = [[get(row) for _, get in columns] for row in rows]
    table = Table(title=title)
    for index, (header, _) in enumerate(columns):
        cells = [row[index] for row in values if row[index] is not None]
        numeric = bool(cells) and all(
            (isinstance(v, int | float) and not isinstance(v, bool))
            or (isinstance(v, str) and _NUMBER.fullmatch(v) is not None)
            for v in cells
        )
        table.add_column(header, justify="right" if numeric else "left")
    for row in values:
        table.add_row(
            *("-" if v is None else f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row)
        )
    return table
