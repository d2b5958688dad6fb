"""``--broker dhan``: the Dhan side of the ``aio-trader`` commands.

Each command checks its arguments as it does for Kite, then, when ``conn.broker`` is
``"dhan"``, hands over to the function of the same name here: the client and feed are
built from the credentials (:func:`open_dhan`), instruments are ``SEGMENT:SECURITY_ID``
(:func:`parse_instruments`: ``NSE_EQ:1333``, ``IDX_I:13``), and the Dhan records are shown
in the same table layout, with the same headers, as Kite's.

Credentials, first match wins: ``--client-id``/``--access-token``, ``DHAN_CLIENT_ID``/
``DHAN_ACCESS_TOKEN``, or the token :class:`~aio_trader.dhan.TokenStore` holds for the client
id (``aio-trader login --broker dhan`` stores one). ``--sandbox`` starts an embedded Dhan
sandbox and uses its credentials. Secrets are never printed.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import attrs
import click
from rich.console import Console

from aio_trader.dhan import Dhan, DhanFeed, Holding, RawDhanFeed, TokenStore
from aio_trader.dhan.constants import ExchangeSegment
from aio_trader.dhan.ticks import FullTick, OrderUpdate, QuoteTick, TickerTick

from .connection import Connection, shutdown_on_signals
from .render import LiveScreen, Screen, TickBoard, grouped, json_line

if TYPE_CHECKING:
    from aio_trader.sandbox import Sandbox

#: A table column: header and how to get the cell from a row (as ``account.Column``).
Column = tuple[str, Callable[[Any], Any]]

__all__ = [
    "DhanClient",
    "open_dhan",
    "parse_instruments",
]

#: Dhan's exchange segments, as instruments name them on the command line.
SEGMENTS = tuple(segment.value for segment in ExchangeSegment)
#: Order statuses after which nothing changes any more.
FINAL = frozenset({"TRADED", "REJECTED", "CANCELLED", "EXPIRED"})
#: Kite's spellings of order types and products, as Dhan names them.
ORDER_TYPES = {"SL": "STOP_LOSS", "SL-M": "STOP_LOSS_MARKET"}
PRODUCTS = {"MIS": "INTRADAY", "NRML": "MARGIN"}
#: Seconds between two reads of a followed order (a missed update).
ORDER_EVERY = 2.0
#: Where a Dhan-compatible server (``aio-trader sandbox --broker dhan``) serves its feeds.
FEED_PATH = "/feed"
ORDER_FEED_PATH = "/order-update"


# -- instruments ---------------------------------------------------------------------------------


def parse_instruments(specs: Sequence[str]) -> list[tuple[str, str]]:
    """``(exchange_segment, security_id)`` of each ``SEGMENT:SECURITY_ID`` spec, in order;
    a usage error (exit status 2, before any I/O) for anything else."""
    keys: list[tuple[str, str]] = []
    for spec in specs:
        segment, colon, security = spec.partition(":")
        segment = segment.strip().upper()
        security = security.strip()
        if not (colon and segment in SEGMENTS and security.isdigit() and security.isascii()):
            raise click.BadParameter(
                f"{spec!r}: give SEGMENT:SECURITY_ID (e.g. NSE_EQ:1333, IDX_I:13; segments: "
                f"{', '.join(SEGMENTS)})",
                param_hint="INSTRUMENTS",
            )
        keys.append((segment, str(int(security))))
    return list(dict.fromkeys(keys))


def label(segment: str, security_id: str | int) -> str:
    """``NSE_EQ:1333``."""
    return f"{segment}:{security_id}"


# -- the client ----------------------------------------------------------------------------------


@attrs.frozen
class DhanClient:
    """An open ``dhan`` client and the feed URLs of its server (None: Dhan's own)."""

    dhan: Dhan
    feed_url: str | None
    order_feed_url: str | None
    sandbox: Sandbox | None = None

    def _urls(self) -> dict[str, Any]:
        urls: dict[str, Any] = {}
        if self.feed_url:
            urls["root"] = self.feed_url
        if self.order_feed_url:
            urls["order_root"] = self.order_feed_url
        return urls

    def feed(self, **options: Any) -> DhanFeed:
        """A ``DhanFeed`` (market feed and order updates) for the same account and server;
        the token is read from the client on every (re)connect."""
        dhan = self.dhan
        return DhanFeed(dhan.client_id, lambda: str(dhan.access_token), **self._urls(), **options)

    def raw_feed(self) -> RawDhanFeed:
        """The same feed undecoded (``RawDhanFeed``), for the gateway."""
        dhan = self.dhan
        return RawDhanFeed(dhan.client_id, lambda: str(dhan.access_token), **self._urls())


def _no_credentials(what: str) -> click.UsageError:
    return click.UsageError(
        f"no Dhan {what}: give --client-id and --access-token (DHAN_CLIENT_ID and "
        "DHAN_ACCESS_TOKEN), log in with `aio-trader login --broker dhan`, or try it "
        "offline with --sandbox"
    )


@contextlib.asynccontextmanager
async def open_dhan(conn: Connection) -> AsyncIterator[DhanClient]:
    """A ``Dhan`` client on the target of ``conn``: an embedded Dhan sandbox (started here,
    stopped on exit), the ``--root`` server, or Dhan itself; with the flags' or the
    environment's credentials, else the token store's."""
    if conn.sandbox:
        try:
            from aio_trader.sandbox import Sandbox, SandboxConfig
        except ImportError as error:  # pragma: no cover - depends on the installed extras
            raise click.ClickException(
                f"--sandbox needs the `sandbox` extra: pip install 'aio-trader[sandbox]' ({error})"
            ) from None
        async with (
            Sandbox(SandboxConfig(broker="dhan")) as sb,
            Dhan(sb.client_id, sb.access_token, root=sb.root_url) as dhan,
        ):
            yield DhanClient(dhan, sb.feed_url, sb.order_feed_url, sb)
        return
    if not conn.client_id:
        raise _no_credentials("client id")
    options: dict[str, Any] = {}
    feed_url, order_feed_url = conn.ticker_url, None
    if conn.root:
        root = conn.root.rstrip("/")
        options["root"] = root if root.endswith("/v2") else root + "/v2"
        scheme, _, rest = root.partition("://")
        origin = ("wss" if scheme == "https" else "ws") + "://" + rest.split("/")[0]
        feed_url = feed_url or origin + FEED_PATH
        order_feed_url = origin + ORDER_FEED_PATH
    if not conn.access_token:
        options["token_store"] = TokenStore()
    async with Dhan(conn.client_id, conn.access_token, **options) as dhan:
        if not dhan.access_token:
            raise _no_credentials(f"access token for client id {conn.client_id}")
        yield DhanClient(dhan, feed_url, order_feed_url)


# -- tables --------------------------------------------------------------------------------------


def _instrument(row: Any) -> str:
    segment = getattr(row, "exchange_segment", None) or getattr(row, "exchange", None)
    return f"{segment}:{row.trading_symbol or row.security_id}"


def _time(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.strftime("%H:%M:%S")


def _holding_pnl(row: Holding) -> float | None:
    if row.last_traded_price is None or row.avg_cost_price is None or row.total_qty is None:
        return None
    return round((row.last_traded_price - row.avg_cost_price) * row.total_qty, 2)


ORDER_COLUMNS: Sequence[Column] = (
    ("order id", lambda o: o.order_id),
    ("time", lambda o: _time(o.create_time)),
    ("instrument", _instrument),
    ("side", lambda o: o.transaction_type),
    ("type", lambda o: o.order_type),
    ("product", lambda o: o.product_type),
    ("qty", lambda o: o.quantity),
    ("filled", lambda o: o.filled_qty),
    ("price", lambda o: o.price),
    ("avg", lambda o: o.average_traded_price),
    ("status", lambda o: o.order_status),
    ("tag", lambda o: o.correlation_id),
)
POSITION_COLUMNS: Sequence[Column] = (
    ("instrument", _instrument),
    ("product", lambda p: p.product_type),
    ("qty", lambda p: p.net_qty),
    ("avg", lambda p: p.cost_price if p.cost_price is not None else p.buy_avg),
    ("last", lambda p: None),
    (
        "pnl",
        lambda p: (
            None
            if p.realized_profit is None and p.unrealized_profit is None
            else round((p.realized_profit or 0.0) + (p.unrealized_profit or 0.0), 2)
        ),
    ),
    ("realised", lambda p: p.realized_profit),
    ("unrealised", lambda p: p.unrealized_profit),
)
HOLDING_COLUMNS: Sequence[Column] = (
    ("instrument", _instrument),
    ("qty", lambda h: h.total_qty),
    ("avg", lambda h: h.avg_cost_price),
    ("last", lambda h: h.last_traded_price),
    ("pnl", _holding_pnl),
    ("day change %", lambda h: None),
)
#: ``aio-trader orders|positions|holdings --broker dhan``: what to read, and its columns.
RECORDS: dict[str, tuple[Callable[[Dhan], Any], Sequence[Column]]] = {
    "orders": (lambda dhan: dhan.orders(), ORDER_COLUMNS),
    "positions": (lambda dhan: dhan.positions(), POSITION_COLUMNS),
    "holdings": (lambda dhan: dhan.holdings(), HOLDING_COLUMNS),
}


async def records(conn: Connection, name: str) -> tuple[Sequence[Any], Sequence[Column]]:
    """The rows of ``aio-trader NAME --broker dhan``, and their columns."""
    fetch, columns = RECORDS[name]
    async with open_dhan(conn) as client:
        rows = await fetch(client.dhan)
    return rows, columns


# -- quotes --------------------------------------------------------------------------------------


@attrs.frozen
class Keyed:
    """A quote with the instrument it was asked by (for ``--json``: ``{"instrument": ...}``)."""

    key: str
    security_id: str
    record: Any

    def to_dict(self) -> dict[str, Any]:
        return {"instrument": self.key, **self.record.to_dict()}


def _best(side: str) -> Callable[[Keyed], float | None]:
    def get(row: Keyed) -> float | None:
        depth = getattr(row.record, "depth", None)
        levels = getattr(depth, side, None) if depth is not None else None
        price: float | None = levels[0].price if levels else None
        return price

    return get


def _change(row: Keyed) -> str | None:
    quote = row.record
    close = quote.ohlc.close if getattr(quote, "ohlc", None) else None
    if not close or quote.last_price is None:
        return None
    return f"{(quote.last_price - close) * 100 / close:+.2f}%"


QUOTE_COLUMNS: Sequence[Column] = (
    ("instrument", lambda r: r.key),
    ("last", lambda r: r.record.last_price),
    ("change", _change),
    ("volume", lambda r: grouped(r.record.volume)),
    ("bid", _best("buy")),
    ("ask", _best("sell")),
    ("prev close", lambda r: r.record.ohlc.close if r.record.ohlc else None),
    ("oi", lambda r: r.record.oi),
)
LTP_COLUMNS: Sequence[Column] = (
    ("instrument", lambda r: r.key),
    ("token", lambda r: r.security_id),
    ("last", lambda r: r.record.last_price),
)


async def quotes(
    conn: Connection, specs: Sequence[str], full: bool
) -> tuple[list[Keyed], list[str], Sequence[Column]]:
    """Quotes (or last prices) of ``specs``: the rows found, the specs without a quote,
    the columns."""
    keys = parse_instruments(specs)
    async with open_dhan(conn) as client:
        dhan = client.dhan
        found: dict[tuple[str, str], Any] = await (dhan.quote(keys) if full else dhan.ltp(keys))
    rows = [Keyed(label(*key), key[1], found[key]) for key in keys if key in found]
    missing = [label(*key) for key in keys if key not in found]
    return rows, missing, QUOTE_COLUMNS if full else LTP_COLUMNS


# -- instruments ---------------------------------------------------------------------------------

#: The columns of Dhan's instrument list (the ``Instrument`` record's fields, in order).
INSTRUMENT_COLUMNS = (
    "exchange",
    "segment",
    "security_id",
    "instrument",
    "trading_symbol",
    "lot_size",
    "custom_symbol",
    "expiry_date",
    "strike_price",
    "option_type",
    "tick_size",
)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else value


async def instruments(conn: Connection, segment: str | None) -> list[list[Any]]:
    """The rows of the instrument list (every segment, or ``segment``'s), header first."""
    if segment is not None and segment not in SEGMENTS:
        raise click.BadParameter(
            f"{segment!r} is not a Dhan segment ({', '.join(SEGMENTS)})", param_hint="EXCHANGE"
        )
    async with open_dhan(conn) as client:
        rows = await client.dhan.instruments(segment)
    table: list[list[Any]] = [list(INSTRUMENT_COLUMNS)]
    for row in rows:
        values = [getattr(row, name) for name in INSTRUMENT_COLUMNS]
        table.append([_cell(value) for value in values])
    return table


# -- historical ----------------------------------------------------------------------------------

#: Kite's interval names as Dhan's intraday minutes (``day``: daily candles).
INTERVALS = {"minute": 1, "5minute": 5, "15minute": 15, "60minute": 60}
#: The instrument type a segment's instruments have, when it has one.
INSTRUMENT_TYPES = {"IDX_I": "INDEX", "NSE_EQ": "EQUITY", "BSE_EQ": "EQUITY"}


def check_historical(specs: Sequence[str], interval: str, instrument_type: str | None) -> None:
    """A usage error, before any I/O, for what Dhan's candles cannot give."""
    keys = parse_instruments(specs)
    if interval != "day" and interval not in INTERVALS:
        raise click.BadParameter(
            f"Dhan has no {interval} candles: day, {', '.join(INTERVALS)}",
            param_hint="--interval",
        )
    if instrument_type is None:
        for segment, security in keys:
            if segment not in INSTRUMENT_TYPES:
                raise click.BadParameter(
                    f"{label(segment, security)}: give --instrument-type (FUTIDX, OPTSTK, ...)",
                    param_hint="--instrument-type",
                )


async def historical(
    conn: Connection,
    specs: Sequence[str],
    start: str,
    end: str,
    interval: str,
    oi: bool,
    instrument_type: str | None,
) -> dict[str, list[Any]]:
    """Candles of ``specs`` as columns (instrument, security_id, date, open, high, low,
    close, volume[, oi])."""
    keys = parse_instruments(specs)
    names = ["instrument", "security_id", "date", "open", "high", "low", "close", "volume"]
    columns: dict[str, list[Any]] = {name: [] for name in [*names, *(["oi"] if oi else [])]}
    async with open_dhan(conn) as client:
        for segment, security in keys:
            kind = instrument_type or INSTRUMENT_TYPES[segment]
            if interval == "day":
                candles = await client.dhan.daily_candles(
                    security, segment, kind, start, end, oi=oi
                )
            else:
                candles = await client.dhan.intraday_candles(
                    security, segment, kind, start, end, INTERVALS[interval], oi=oi
                )
            for candle in candles:
                columns["instrument"].append(label(segment, security))
                columns["security_id"].append(security)
                for name in names[2:]:
                    columns[name].append(getattr(candle, name))
                if oi:
                    columns["oi"].append(candle.oi)
    return columns


# -- stream --------------------------------------------------------------------------------------

_TICKS = (TickerTick, QuoteTick, FullTick)


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def tick_cells(tick: Any) -> dict[str, str]:
    """last, change (from the day's close in the packet, when the tick has one), volume,
    bid, ask, as ``aio-trader stream`` shows them for Kite; ``-`` where the tick has none."""
    change = volume = bid = ask = "-"
    if isinstance(tick, QuoteTick | FullTick):
        volume = grouped(tick.volume_traded) or "-"
        close = tick.ohlc.close
        if close:
            change = f"{(tick.last_price - close) * 100 / close:+.2f}%"
    if isinstance(tick, FullTick):
        buy, sell = tick.depth.buy, tick.depth.sell
        bid = _price(buy[0].price if buy else None)
        ask = _price(sell[0].price if sell else None)
    return {
        "last": _price(tick.last_price),
        "change": change,
        "volume": volume,
        "bid": bid,
        "ask": ask,
    }


def _plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    return value


def tick_dict(tick: Any) -> dict[str, Any]:
    """A tick's fields as a mapping (for JSON lines)."""
    data: dict[str, Any] = _plain(tick)
    return data


def order_line(update: OrderUpdate) -> str:
    """One plain line for an order update (as Kite's: status, fill, average price, reason)."""
    what = (
        f"{update.order_type} {update.transaction_type} "
        f"{update.exchange_segment or update.exchange}:{update.symbol or update.security_id}"
    )
    text = (
        f"order update {update.order_id} {what} {update.status} "
        f"filled {update.traded_quantity}/{update.quantity}"
    )
    if update.traded_quantity:
        text += f" at {_price(update.average_traded_price)}"
    if update.reason:
        text += f" ({update.reason})"
    return text


def _change_of(tick: Any) -> float:
    close = tick.ohlc.close if isinstance(tick, QuoteTick | FullTick) else 0.0
    return float((tick.last_price - close) * 100 / close) if close else 0.0


class DhanBoard(TickBoard):
    """The tick board of Dhan's ticks, keyed ``(exchange_segment, security_id)``."""

    @staticmethod
    def key(tick: Any) -> Any:
        return (tick.exchange_segment, tick.security_id)

    @staticmethod
    def cells(tick: Any) -> dict[str, str]:
        return tick_cells(tick)

    @staticmethod
    def change(tick: Any) -> float:
        return _change_of(tick)


def _order_row(update: Any) -> list[str]:
    return [
        update.order_id,
        update.order_type,
        update.transaction_type,
        f"{update.exchange_segment or update.exchange}:{update.symbol or update.security_id}",
        update.status,
        f"{update.traded_quantity}/{update.quantity}",
        f"{update.average_traded_price:,.2f}" if update.traded_quantity else "-",
    ]


class PlainScreen(Screen):
    """Plain lines of Dhan's ticks and order updates (``aio-trader stream``'s layout)."""

    order_types = (OrderUpdate,)
    note_types = ()
    tick_types = _TICKS
    order_text = staticmethod(order_line)


class DhanLiveScreen(LiveScreen):
    """The live view (notes, tick table, orders table) of Dhan's feed."""

    order_types = (OrderUpdate,)
    note_types = ()
    tick_types = _TICKS
    order_text = staticmethod(order_line)
    order_row = staticmethod(_order_row)


class JsonLines(PlainScreen):
    """One JSON object per line: ``{"type": "tick", "instrument": "NSE_EQ:1333", ...}`` or
    ``{"type": "order", ...}``; notes go to ``notes`` (stderr)."""

    def __init__(self, out: TextIO, board: TickBoard, notes: TextIO) -> None:
        super().__init__(out, board)
        self.notes_out = notes

    def note(self, text: str) -> None:
        print(text, file=self.notes_out, flush=True)

    def tick(self, tick: Any) -> None:
        name = self.board.label(self.board.key(tick))
        self.line({"type": "tick", "instrument": name, **tick_dict(tick)})

    def order(self, update: Any) -> None:
        self.line({"type": "order", **update.to_dict()})

    def line(self, value: dict[str, Any]) -> None:
        print(json_line(value), file=self.out, flush=True)


#: Kite's tick modes as Dhan's.
MODES = {"ltp": "ticker", "quote": "quote", "full": "full"}


def board_of(keys: Sequence[tuple[str, str]]) -> DhanBoard:
    """A tick board of ``keys``, labelled ``SEGMENT:SECURITY_ID``."""
    return DhanBoard({(segment, int(sid)): label(segment, sid) for segment, sid in keys})


async def stream(
    conn: Connection,
    specs: Sequence[str],
    mode: str,
    view: str,
    count: int | None,
    duration: float | None,
    overflow: str,
) -> None:
    """``aio-trader stream --broker dhan``: a live table, plain lines or JSON lines."""
    board = board_of(parse_instruments(specs))
    screen: Screen
    if view == "json":
        screen = JsonLines(sys.stdout, board, notes=sys.stderr)
    elif view == "live":
        screen = DhanLiveScreen(
            Console(file=sys.stdout), board, "aio-trader stream (Ctrl-C to stop)"
        )
    else:
        screen = PlainScreen(sys.stdout, board)
    deadline = math.inf if duration is None else anyio.current_time() + duration
    ticks = 0
    async with open_dhan(conn) as client, screen.shown(), shutdown_on_signals():
        with anyio.CancelScope(deadline=deadline):
            async with client.feed(overflow=overflow) as feed:
                await feed.subscribe(list(board.labels), mode=MODES[mode])
                names = ", ".join(board.labels.values())
                screen.note(f"streaming {names} ({MODES[mode]} mode)")
                async for item in feed:
                    if screen.show(item):
                        ticks += 1
                        if count is not None and ticks >= count:
                            break
        counts = ", ".join(
            f"{name} {board.counts.get(key, 0)}" for key, name in board.labels.items()
        )
        screen.note(f"stream finished: {ticks} ticks ({counts})")


# -- login ---------------------------------------------------------------------------------------


async def login(
    conn: Connection, pin: str | None, totp: str | None, totp_secret: str | None
) -> None:
    """Get a token (the embedded sandbox's, the given one, or from the PIN and TOTP), check
    it, and keep it in the token store for the other commands."""
    store = TokenStore()
    if conn.sandbox:
        async with open_dhan(conn) as client:
            profile = await client.dhan.profile()
            client_id = client.dhan.client_id
            await store.asave(client_id, str(client.dhan.access_token))
    else:
        if not conn.client_id:
            raise _no_credentials("client id")
        client_id = conn.client_id
        options: dict[str, Any] = {"token_store": store}
        if conn.root:
            root = conn.root.rstrip("/")
            options["root"] = root if root.endswith("/v2") else root + "/v2"
        if not conn.access_token:
            if not pin or not (totp or totp_secret):
                raise click.UsageError(
                    "Dhan login needs --access-token (DHAN_ACCESS_TOKEN), or --pin with "
                    "--totp or --totp-secret"
                )
            options.update(pin=pin, totp=totp, totp_secret=totp_secret)
        async with Dhan(client_id, conn.access_token, **options) as dhan:
            profile = await dhan.profile()
            if conn.access_token:
                await store.asave(client_id, conn.access_token)
    click.echo(
        f"Logged in to Dhan as {profile.dhan_client_id or client_id}. Access token stored "
        f"in {store.path(client_id)} until it expires."
    )


# -- orders --------------------------------------------------------------------------------------


async def act_and_follow(
    conn: Connection,
    act: Callable[[Dhan], Any],
    follow_for: float | None,
    no_wait: bool,
    next_update_only: bool = False,
) -> None:
    """Open the client (and the order-update feed, before acting, so no update is
    missed), act, then show the order's states until final (or the first one after a
    modification). A ``ValueError`` of the client (refused before any request) is a
    usage error; a rejected order ends with exit status 1."""
    final: str | None = None
    async with open_dhan(conn) as client:
        if no_wait:
            await _acting(act, client.dhan)
            return
        async with client.feed() as feed:
            order_id = await _acting(act, client.dhan)
            click.echo("following its status (Ctrl-C stops following; the order stays)")
            deadline = math.inf if follow_for is None else anyio.current_time() + follow_for
            async with shutdown_on_signals():
                with anyio.CancelScope(deadline=deadline) as scope:
                    final = await _follow(client.dhan, feed, order_id, next_update_only)
            if scope.cancelled_caught and follow_for is not None:
                click.echo(f"stopped following order {order_id} after {follow_for:g} s")
    if final == "REJECTED":
        raise click.ClickException(f"order {order_id} was rejected (see its message above)")


async def _acting(act: Callable[[Dhan], Any], dhan: Dhan) -> str:
    try:
        return str(await act(dhan))
    except ValueError as error:
        raise click.UsageError(str(error)) from None


async def _follow(dhan: Dhan, feed: DhanFeed, order_id: str, next_update_only: bool) -> str | None:
    shown: set[tuple[str, int]] = set()
    done = anyio.Event()
    last: list[str] = []

    def show(status: str, filled: int, line: str) -> None:
        if (status, filled) not in shown:
            shown.add((status, filled))
            click.echo(line)
        if status in FINAL or next_update_only:
            last.append(status)
            done.set()

    async def updates() -> None:
        async for item in feed:
            if isinstance(item, OrderUpdate) and item.order_id == order_id:
                show(item.status, item.traded_quantity, order_line(item))

    async def reads() -> None:
        while True:
            order = await dhan.order(order_id)
            filled = order.filled_qty or 0
            line = f"order {order_id} {order.order_status} filled {filled}/{order.quantity}"
            if filled and order.average_traded_price:
                line += f" at {order.average_traded_price:,.2f}"
            if order.oms_error_description:
                line += f" ({order.oms_error_description})"
            show(str(order.order_status), filled, line)
            await anyio.sleep(ORDER_EVERY)

    async with anyio.create_task_group() as tg:
        tg.start_soon(updates)
        tg.start_soon(reads)
        await done.wait()
        tg.cancel_scope.cancel()
    return last[0] if last else None


def _order_type(value: str) -> str:
    return ORDER_TYPES.get(value, value)


def placing(values: dict[str, Any], what: str) -> Callable[[Dhan], Any]:
    """What ``aio-trader order place --broker dhan`` does with the command's values (Kite's
    names: ``exchange`` is the segment, ``tradingsymbol`` the security id)."""
    variety = values.get("variety", "regular")
    if variety not in ("regular", "amo"):
        raise click.BadParameter("--broker dhan: regular or amo", param_hint="--variety")
    for name in ("validity_ttl", "iceberg_legs", "iceberg_quantity", "auction_number"):
        if name in values:
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(f"{flag} is Kite's, not Dhan's")
    arguments: dict[str, Any] = {
        "security_id": values["tradingsymbol"],
        "exchange_segment": values["exchange"],
        "transaction_type": values["transaction_type"],
        "quantity": values["quantity"],
        "order_type": _order_type(values["order_type"]),
        "product_type": PRODUCTS.get(values["product"], values["product"]),
        "after_market_order": variety == "amo",
    }
    for name in ("price", "trigger_price", "disclosed_quantity", "validity", "market_protection"):
        if name in values:
            arguments[name] = values[name]
    if "tag" in values:
        arguments["correlation_id"] = values["tag"]

    async def act(dhan: Dhan) -> str:
        order_id = await dhan.place_order(**arguments)
        click.echo(f"order placed: {what} -> {order_id}")
        return order_id

    return act


def modifying(values: dict[str, Any], listed: str) -> Callable[[Dhan], Any]:
    """What ``aio-trader order modify --broker dhan`` does (Dhan wants the order type: the
    order's own when not given)."""
    order_id = values["order_id"]
    names = ("quantity", "price", "trigger_price", "disclosed_quantity", "validity")
    arguments: dict[str, Any] = {
        name: values[name] for name in (*names, "market_protection") if name in values
    }

    async def act(dhan: Dhan) -> str:
        order_type = values.get("order_type")
        if order_type is None:
            order_type = (await dhan.order(order_id)).order_type
        done = await dhan.modify_order(order_id, _order_type(str(order_type)), **arguments)
        click.echo(f"order modified: {done} ({listed})")
        return done

    return act


def cancelling(order_id: str) -> Callable[[Dhan], Any]:
    """What ``aio-trader order cancel --broker dhan`` does."""

    async def act(dhan: Dhan) -> str:
        done = await dhan.cancel_order(order_id)
        click.echo(f"order cancelled: {done}")
        return done

    return act
