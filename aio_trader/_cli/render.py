"""What the demo and the commands show: tick rows, the live tick board, tables, JSON lines.

One shared path: the live table (``TickBoard``) and the plain lines (``tick_line``) of
``aio-trader demo`` and ``aio-trader stream`` come from the same ``tick_cells``.
"""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
from rich.table import Table

from aio_trader.kite.ticks import (
    FullTick,
    IndexFullTick,
    IndexQuoteTick,
    OrderUpdate,
    QuoteTick,
    Tick,
)

__all__ = [
    "TICK_COLUMNS",
    "TickBoard",
    "json_line",
    "order_line",
    "plain",
    "record_table",
    "tick_cells",
    "tick_line",
]

#: The columns of a tick row, in order.
TICK_COLUMNS = ("last", "change", "volume", "bid", "ask")


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
    volume = f"{tick.volume_traded:,}" if isinstance(tick, QuoteTick | FullTick) else "-"
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
    """The latest tick of each instrument, in subscription order, as a rich ``Table``."""

    labels: dict[int, str]
    ticks: dict[int, Tick] = attrs.field(factory=dict)
    counts: dict[int, int] = attrs.field(factory=dict)

    def update(self, tick: Tick) -> None:
        self.ticks[tick.instrument_token] = tick
        self.counts[tick.instrument_token] = self.counts.get(tick.instrument_token, 0) + 1

    def label(self, token: int) -> str:
        return self.labels.get(token, str(token))

    def table(self, title: str | None = None) -> Table:
        table = Table(title=title, expand=False)
        table.add_column("instrument", no_wrap=True)
        for name in TICK_COLUMNS:
            table.add_column(name, justify="right")
        table.add_column("ticks", justify="right")
        for token in dict.fromkeys([*self.labels, *self.ticks]):
            tick = self.ticks.get(token)
            cells = tick_cells(tick) if tick is not None else dict.fromkeys(TICK_COLUMNS, "…")
            change = getattr(tick, "change", 0.0)
            if change:
                colour = "green" if change > 0 else "red"
                cells["change"] = f"[{colour}]{cells['change']}[/]"
            row = [cells[name] for name in TICK_COLUMNS]
            table.add_row(self.label(token), *row, str(self.counts.get(token, 0)))
        return table


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
    floats with two decimals."""
    table = Table(title=title)
    for header, _ in columns:
        table.add_column(header)
    for row in rows:
        cells = []
        for _, get in columns:
            value = get(row)
            if value is None:
                cells.append("-")
            elif isinstance(value, float):
                cells.append(f"{value:,.2f}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    return table
