"""``aio-trader quote``, ``ltp``, ``instruments``, ``stream``, ``historical``."""

from __future__ import annotations

import contextlib
import csv
import importlib
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import anyio
import attrs
import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from aio_trader.kite._broker import historical_chunks
from aio_trader.kite._feed import Overflow
from aio_trader.kite._models import Candle, Instrument, LtpQuote, OhlcQuote
from aio_trader.kite.constants import Interval, Mode

from . import dhan
from .account import Column, show_records
from .connection import (
    Connection,
    check_instruments,
    connection_options,
    open_client,
    resolve_instruments,
    run,
    shutdown_on_signals,
)
from .render import JsonScreen, LiveScreen, Screen, TickBoard, grouped

__all__ = ["historical", "instruments", "ltp", "quote", "stream", "write_parquet"]

INSTRUMENTS_ARGUMENT = click.argument("instruments", nargs=-1, required=True)
#: Seconds after which ``stream`` names the instruments no tick arrived for.
SILENT_AFTER = 5.0


# -- quote, ltp ---------------------------------------------------------------------------------


@attrs.frozen
class _Keyed:
    """A quote with the key it was asked by (for ``--json``: ``{"instrument": key, ...}``)."""

    key: str
    record: LtpQuote

    def to_dict(self) -> dict[str, Any]:
        return {"instrument": self.key, **self.record.to_dict()}


def _best(side: str) -> Any:
    def get(row: _Keyed) -> float | None:
        depth = getattr(row.record, "depth", None)
        levels = getattr(depth, side, None) if depth is not None else None
        return levels[0].price if levels else None

    return get


def _change(row: _Keyed) -> str | None:
    quote = row.record
    if not isinstance(quote, OhlcQuote):
        return None
    close = quote.ohlc.close if quote.ohlc else None
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
    ("token", lambda r: r.record.instrument_token),
    ("last", lambda r: r.record.last_price),
)


def _check_instruments(conn: Connection, specs: Sequence[str]) -> None:
    """A usage error, before any I/O, unless ``specs`` name instruments as the broker's
    commands take them (Kite: ``EXCHANGE:SYMBOL`` or tokens; Dhan: ``SEGMENT:SECURITY_ID``)."""
    if conn.broker == "dhan":
        dhan.parse_instruments(specs)
    else:
        check_instruments(specs)


async def _quotes(conn: Connection, instruments: Sequence[str], full: bool, as_json: bool) -> None:
    rows: Sequence[Any]
    if conn.broker == "dhan":
        rows, missing, columns = await dhan.quotes(conn, instruments, full)
    else:
        async with open_client(conn) as client:
            kite = client.kite
            found = await (kite.quote(instruments) if full else kite.ltp(instruments))
        rows = [_Keyed(key, found[key]) for key in instruments if key in found]
        missing = [key for key in instruments if key not in found]
        columns = QUOTE_COLUMNS if full else LTP_COLUMNS
    show_records("quotes" if full else "last prices", rows, columns, as_json)
    if missing:
        raise click.ClickException(f"no quote for: {', '.join(missing)}")


@click.command()
@connection_options
@INSTRUMENTS_ARGUMENT
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def quote(conn: Connection, instruments: tuple[str, ...], as_json: bool) -> None:
    """Full quotes (last price, change, volume, best bid/ask, close, OI) of INSTRUMENTS.

    INSTRUMENTS: EXCHANGE:SYMBOL (NSE:INFY, "NSE:NIFTY 50") or instrument tokens; with
    --broker dhan, SEGMENT:SECURITY_ID (NSE_EQ:1333, IDX_I:13).
    """
    _check_instruments(conn, instruments)
    run(conn.backend, _quotes, conn, instruments, True, as_json, read_only=True)


@click.command()
@connection_options
@INSTRUMENTS_ARGUMENT
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def ltp(conn: Connection, instruments: tuple[str, ...], as_json: bool) -> None:
    """Last traded prices of INSTRUMENTS (EXCHANGE:SYMBOL or tokens; with --broker dhan,
    SEGMENT:SECURITY_ID)."""
    _check_instruments(conn, instruments)
    run(conn.backend, _quotes, conn, instruments, False, as_json, read_only=True)


# -- instruments ----------------------------------------------------------------------------------

#: The columns of Kite's instruments dump, in Kite's order.
INSTRUMENT_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)


def check_output(path: str) -> None:
    """A usage error (before anything is downloaded) unless ``path`` is ``-`` or a file
    that can be written: not a directory, in a directory that exists and is writable."""
    if path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise click.BadParameter(
            f"{path} is a directory: give a file in it, e.g. {target / 'out.csv'}",
            param_hint="--output",
        )
    parent = target.parent
    if not parent.is_dir():
        raise click.BadParameter(f"directory {parent} does not exist", param_hint="--output")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise click.BadParameter(f"directory {parent} is not writable", param_hint="--output")


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """A temporary file beside ``path`` to write; renamed to ``path`` when the block ends
    without an error (so a reader never sees half a file), removed otherwise."""
    target = Path(path)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        yield temp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def _output(path: str) -> Iterator[IO[str]]:
    """``path`` opened for writing text, replaced atomically (``-``: standard output)."""
    if path == "-":
        yield sys.stdout
        return
    with atomic_path(path) as temp, open(temp, "w", newline="", encoding="utf-8") as file:
        yield file


def write_instruments(rows: Sequence[Instrument], out: IO[str]) -> None:
    """``rows`` as Kite's instruments CSV (same columns, dates as ``YYYY-MM-DD``)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(INSTRUMENT_COLUMNS)
    for row in rows:
        values = row.to_dict()
        writer.writerow(["" if values[c] is None else values[c] for c in INSTRUMENT_COLUMNS])


async def _instruments(conn: Connection, exchange: str | None, path: str) -> None:
    if conn.broker == "dhan":
        table = await dhan.instruments(conn, exchange)
        with _output(path) as out:
            csv.writer(out, lineterminator="\n").writerows(table)
        rows: Sequence[Any] = table[1:]
    else:
        async with open_client(conn) as client:
            rows = await client.kite.instruments(exchange)
        with _output(path) as out:
            write_instruments(rows, out)
    where = "standard output" if path == "-" else path
    click.echo(f"{len(rows)} instruments written to {where}", err=True)


@click.command()
@connection_options
@click.argument("exchange", required=False)
@click.option(
    "-o", "--output", default="-", show_default=True, help="CSV file to write (-: stdout)."
)
def instruments(conn: Connection, exchange: str | None, output: str) -> None:
    """Download the instruments dump (every exchange, or EXCHANGE's) as CSV.

    With --broker dhan: Dhan's instrument list (every segment, or one: NSE_EQ, IDX_I, ...).
    """
    check_output(output)
    exchange = exchange.upper() if exchange else None
    if conn.broker == "dhan" and exchange is not None and exchange not in dhan.SEGMENTS:
        raise click.BadParameter(
            f"{exchange!r} is not a Dhan segment ({', '.join(dhan.SEGMENTS)})",
            param_hint="EXCHANGE",
        )
    run(conn.backend, _instruments, conn, exchange, output, read_only=True)


# -- stream -------------------------------------------------------------------------------------


async def _stream(
    conn: Connection,
    specs: Sequence[str],
    mode: str,
    view: str,
    count: int | None,
    duration: float | None,
    overflow: str,
) -> None:
    async with open_client(conn) as client:
        board = TickBoard(await resolve_instruments(client.kite, specs))
        screen: Screen
        if view == "json":
            screen = JsonScreen(sys.stdout, board, notes=sys.stderr)
        elif view == "live":
            screen = LiveScreen(
                Console(file=sys.stdout), board, "aio-trader stream (Ctrl-C to stop)"
            )
        else:
            screen = Screen(sys.stdout, board)
        deadline = math.inf if duration is None else anyio.current_time() + duration
        ticks = 0
        async with screen.shown(), shutdown_on_signals():
            with anyio.CancelScope(deadline=deadline):
                async with client.feed(overflow=overflow) as feed:
                    await feed.subscribe(list(board.labels), mode=mode)
                    screen.note(f"streaming {', '.join(board.labels.values())} ({mode} mode)")
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(_note_silent, screen, board)
                        async for item in feed:
                            if screen.show(item):
                                ticks += 1
                                if count is not None and ticks >= count:
                                    break
                        tg.cancel_scope.cancel()
        counts = ", ".join(
            f"{board.label(token)} {board.counts.get(token, 0)}" for token in board.labels
        )
        screen.note(f"stream finished: {ticks} ticks ({counts})")


async def _note_silent(screen: Screen, board: TickBoard) -> None:
    """After ``SILENT_AFTER`` seconds, name the instruments nothing arrived for (Kite's
    ticker sends nothing, and no error, for a token no instrument has)."""
    await anyio.sleep(SILENT_AFTER)
    silent = [board.label(token) for token in board.labels if not board.counts.get(token)]
    if silent:
        screen.note(
            f"no ticks for {', '.join(silent)} in {SILENT_AFTER:g} s: Kite sends none for an "
            "instrument token that does not exist (see `aio-trader instruments`), nor while "
            "its market is closed"
        )


@click.command()
@connection_options
@INSTRUMENTS_ARGUMENT
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=Mode.QUOTE.value,
    show_default=True,
    help="Tick mode.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON lines on stdout (for piping).")
@click.option("--plain", is_flag=True, help="Plain lines instead of the live table.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many ticks.")
@click.option(
    "--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds."
)
@click.option(
    "--overflow",
    type=click.Choice([o.value for o in Overflow]),
    default=Overflow.CONFLATE.value,
    show_default=True,
    help="What a slow consumer loses: nothing (lossless), the oldest ticks, or all but "
    "the latest tick of each instrument (conflate).",
)
def stream(
    conn: Connection,
    instruments: tuple[str, ...],
    mode: str,
    as_json: bool,
    plain: bool,
    count: int | None,
    duration: float | None,
    overflow: str,
) -> None:
    """Stream live ticks (and your order updates) of INSTRUMENTS until Ctrl-C.

    INSTRUMENTS: EXCHANGE:SYMBOL (resolved through the instruments dump) or tokens. A live
    table on a terminal; plain lines when piped or with --plain; JSON lines with --json
    (ticks as Kite's clients give them, plus "type" and "instrument"). With --broker dhan:
    SEGMENT:SECURITY_ID (NSE_EQ:1333), plain or JSON lines.
    """
    if as_json:
        view = "json"
    elif plain or not Console(file=sys.stdout).is_terminal:
        view = "plain"
    else:
        view = "live"
    _check_instruments(conn, instruments)
    if conn.broker == "dhan":
        args = (instruments, mode, view, count, duration, overflow)
        run(conn.backend, dhan.stream, conn, *args)
        return
    run(conn.backend, _stream, conn, instruments, mode, view, count, duration, overflow)


# -- historical ---------------------------------------------------------------------------------

#: Parquet writers tried in order: the first one installed is used.
PARQUET_LIBRARIES = ("pyarrow", "polars", "pandas")


def write_parquet(columns: dict[str, list[Any]], path: str) -> str:
    """Write ``columns`` to a Parquet file with pyarrow, polars or pandas, whichever is
    installed first; returns the library's name. ``click.ClickException`` when none can."""
    for name in PARQUET_LIBRARIES:
        try:
            if name == "pyarrow":
                pyarrow = importlib.import_module("pyarrow")
                parquet = importlib.import_module("pyarrow.parquet")
                parquet.write_table(pyarrow.table(columns), path)
            elif name == "polars":
                importlib.import_module("polars").DataFrame(columns).write_parquet(path)
            else:
                importlib.import_module("pandas").DataFrame(columns).to_parquet(path)
        except ImportError:
            continue
        return name
    raise click.ClickException(
        "Parquet output needs pyarrow, polars or pandas (with fastparquet): "
        "pip install pyarrow (or write CSV: --format csv)"
    )


def _write_parquet_atomically(columns: dict[str, list[Any]], path: str) -> str:
    with atomic_path(path) as temp:
        return write_parquet(columns, temp)


def _candle_columns(
    labels: dict[int, str], candles: dict[int, list[Candle]], oi: bool
) -> dict[str, list[Any]]:
    names = ["instrument", "instrument_token", "date", "open", "high", "low", "close", "volume"]
    columns: dict[str, list[Any]] = {name: [] for name in [*names, *(["oi"] if oi else [])]}
    for token, rows in candles.items():
        for candle in rows:
            columns["instrument"].append(labels[token])
            columns["instrument_token"].append(token)
            for name in names[2:]:
                columns[name].append(getattr(candle, name))
            if oi:
                columns["oi"].append(candle.oi)
    return columns


def _write_csv(columns: dict[str, list[Any]], path: str) -> None:
    with _output(path) as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in zip(*columns.values(), strict=True):
            writer.writerow(
                value.isoformat() if hasattr(value, "isoformat") else value for value in row
            )


async def _historical(
    conn: Connection,
    specs: Sequence[str],
    start: str,
    end: str,
    interval: str,
    continuous: bool,
    oi: bool,
    path: str,
    fmt: str,
    instrument_type: str | None = None,
) -> None:
    if conn.broker == "dhan":
        columns = await dhan.historical(conn, specs, start, end, interval, oi, instrument_type)
        await _write_candles(columns, path, fmt, len(dhan.parse_instruments(specs)), None)
        return
    progress = Progress(
        TextColumn("[bold]historical[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("requests"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
    )
    async with open_client(conn) as client:
        labels = await resolve_instruments(client.kite, specs)
        total = len(labels) * len(historical_chunks(start, end, interval))
        with progress:
            task = progress.add_task("historical", total=total)
            candles = await client.kite.historical_bulk(
                labels,
                start,
                end,
                interval,
                continuous=continuous,
                oi=oi,
                on_progress=lambda done, _total: progress.update(task, completed=done),
            )
    await _write_candles(_candle_columns(labels, candles, oi), path, fmt, len(labels), total)


async def _write_candles(
    columns: dict[str, list[Any]], path: str, fmt: str, instruments: int, requests: int | None
) -> None:
    rows = len(columns["date"])
    if fmt == "parquet":
        used = await anyio.to_thread.run_sync(_write_parquet_atomically, columns, path)
        where = f"{path} (Parquet, {used})"
    else:
        await anyio.to_thread.run_sync(_write_csv, columns, path)
        where = "standard output" if path == "-" else path
    sent = "" if requests is None else f", {requests} request(s)"
    click.echo(f"{rows} candles, {instruments} instrument(s){sent} -> {where}", err=True)


@click.command()
@connection_options
@INSTRUMENTS_ARGUMENT
@click.option("--from", "start", required=True, help="First day/time: YYYY-MM-DD[ HH:MM:SS] (IST).")
@click.option("--to", "end", required=True, help="Last day/time: YYYY-MM-DD[ HH:MM:SS] (IST).")
@click.option(
    "--interval",
    type=click.Choice([i.value for i in Interval]),
    default=Interval.DAY.value,
    show_default=True,
)
@click.option("--continuous", is_flag=True, help="Continuous data of expired futures.")
@click.option("--oi", is_flag=True, help="With open interest.")
@click.option(
    "--instrument-type",
    type=click.Choice(
        [
            "INDEX",
            "EQUITY",
            "FUTIDX",
            "FUTSTK",
            "OPTIDX",
            "OPTSTK",
            "FUTCOM",
            "OPTFUT",
            "FUTCUR",
            "OPTCUR",
        ],
        case_sensitive=False,
    ),
    help="--broker dhan: the instruments' type (default: INDEX for IDX_I, EQUITY for "
    "NSE_EQ/BSE_EQ).",
)
@click.option(
    "-o", "--output", default="-", show_default=True, help="File to write (-: CSV on stdout)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    help="Output format (default: from the file's suffix, .parquet/.pq, else CSV).",
)
def historical(
    conn: Connection,
    instruments: tuple[str, ...],
    start: str,
    end: str,
    interval: str,
    continuous: bool,
    oi: bool,
    output: str,
    fmt: str | None,
    instrument_type: str | None,
) -> None:
    """Download candles of INSTRUMENTS over any range, to CSV or Parquet.

    Ranges longer than Kite allows per request are split; all requests run concurrently at
    Kite's historical rate limit (3 per second), with a progress bar on stderr. One row per
    candle: instrument, instrument_token, date (IST), open, high, low, close, volume[, oi].

    With --broker dhan: SEGMENT:SECURITY_ID instruments, --interval day, minute, 5minute,
    15minute or 60minute; columns instrument, security_id, date, ...
    """
    try:
        historical_chunks(start, end, interval)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--from/--to") from None
    if fmt is None:
        fmt = "parquet" if Path(output).suffix.lower() in (".parquet", ".pq") else "csv"
    if fmt == "parquet" and output == "-":
        raise click.BadParameter("Parquet needs a file: -o candles.parquet", param_hint="--output")
    if instrument_type is not None:
        instrument_type = instrument_type.upper()
    if conn.broker == "dhan":
        dhan.check_historical(instruments, interval, instrument_type)
    elif instrument_type is not None:
        raise click.BadParameter("only with --broker dhan", param_hint="--instrument-type")
    else:
        check_instruments(instruments)
    check_output(output)
    run(
        conn.backend,
        _historical,
        conn,
        instruments,
        start,
        end,
        interval,
        continuous,
        oi,
        output,
        fmt,
        instrument_type,
        read_only=True,
    )
