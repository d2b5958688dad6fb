"""``aio-trader gateway`` (the Kite feed published to Redis Streams) and ``aio-trader record``
(a gateway's stream to a Parquet recording). Both need the ``gateway`` extra."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import click

from aio_trader._cli.connection import (
    Connection,
    backend_option,
    connection_options,
    open_client,
    run,
    shutdown_on_signals,
)

__all__ = ["gateway", "record"]

_REDIS = click.option(
    "--redis",
    "redis_url",
    default="redis://127.0.0.1:6379",
    show_default=True,
    envvar="AIO_TRADER_REDIS",
    help="Redis URL (or AIO_TRADER_REDIS).",
)
_PREFIX = click.option(
    "--prefix", default="aio_trader", show_default=True, help="The gateway's Redis key prefix."
)
_DURATION = click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds to run (default: until Ctrl-C).",
)


def _check_redis(url: str) -> None:
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise click.BadParameter(
            f"{url!r} is not a redis://, rediss:// or unix:// URL", param_hint="--redis"
        )


def _gateway_extra() -> None:
    try:
        import coredis  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "the gateway needs the `gateway` extra: pip install 'aio-trader[gateway]'"
        ) from None


@click.command()
@connection_options
@_REDIS
@_PREFIX
@click.option(
    "--retention",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Frames Redis keeps (approximately: MAXLEN ~).",
)
@_DURATION
@click.option("--plain", is_flag=True, help="A status line a second instead of the live view.")
def gateway(
    conn: Connection,
    redis_url: str,
    prefix: str,
    retention: int,
    duration: float | None,
    plain: bool,
) -> None:
    """Own the broker's feed (Kite's, or Dhan's with --broker dhan) and publish every frame
    to Redis Streams for any number of consumers (``aio_trader.gateway.RedisFeed``), with a
    live status: consumers, instruments, frames/s, lag."""
    _check_redis(redis_url)
    _gateway_extra()
    live = not plain and sys.stdout.isatty()
    run(conn.backend, _run_gateway, conn, redis_url, prefix, retention, duration, live)


async def _run_gateway(
    conn: Connection,
    redis_url: str,
    prefix: str,
    retention: int,
    duration: float | None,
    live: bool,
) -> None:
    from aio_trader.gateway import Gateway

    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(shutdown_on_signals())
        if conn.broker == "dhan":
            from aio_trader._cli.dhan import open_dhan

            dhan = await stack.enter_async_context(open_dhan(conn))
            gateway = Gateway(
                feed=dhan.raw_feed(), redis=redis_url, prefix=prefix, retention=retention
            )
        else:
            client = await stack.enter_async_context(open_client(conn))
            c = client.conn
            credentials: dict[str, Any] = (
                {"user_id": c.user_id, "enctoken": c.enctoken}
                if c.enctoken
                else {"api_key": c.api_key, "access_token": c.access_token}
            )
            gateway = Gateway(
                **credentials,
                root=client.ticker_url,
                redis=redis_url,
                prefix=prefix,
                retention=retention,
            )
        async with gateway as gw:
            click.echo(f"gateway: publishing to {redis_url} under {prefix!r}; Ctrl-C stops")
            with anyio.move_on_after(duration if duration is not None else float("inf")):
                await _status(gw, live)
    click.echo("gateway stopped")


def _status_row(gw: Any, rate: float) -> dict[str, str]:
    stats = gw.statistics()
    return {
        "consumers": str(stats.consumers),
        "instruments": str(stats.instruments),
        "connections": str(stats.connections),
        "frames/s": f"{rate:.1f}",
        "published": str(stats.seq),
        "lag": str(stats.consumer_lag),
        "queued": str(stats.queued),
        "redis errors": str(stats.redis_errors),
    }


async def _status(gw: Any, live: bool) -> None:
    """A status line (or a rich live table) every second: consumers, instruments, rates."""
    last, then = gw.statistics().seq, time.monotonic()
    if not live:
        while True:
            await anyio.sleep(1.0)
            now, seq = time.monotonic(), gw.statistics().seq
            row = _status_row(gw, (seq - last) / (now - then))
            last, then = seq, now
            click.echo("  ".join(f"{k}={v}" for k, v in row.items()))
    from rich.live import Live
    from rich.table import Table

    def table(row: dict[str, str]) -> Table:
        view = Table(title="aio-trader gateway")
        for name in row:
            view.add_column(name, justify="right")
        view.add_row(*row.values())
        return view

    with Live(table(_status_row(gw, 0.0)), auto_refresh=False) as screen:
        while True:
            await anyio.sleep(1.0)
            now, seq = time.monotonic(), gw.statistics().seq
            screen.update(table(_status_row(gw, (seq - last) / (now - then))), refresh=True)
            last, then = seq, now


@click.command()
@backend_option
@_REDIS
@_PREFIX
@click.option(
    "--to",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Parquet file to write.",
)
@click.option(
    "--ticks",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also one row per decoded tick, in this Parquet file.",
)
@click.option(
    "--oldest", is_flag=True, help="Start with the oldest frame Redis keeps (default: new ones)."
)
@click.option("--frames", type=click.IntRange(min=1), default=None, help="Stop after N frames.")
@_DURATION
def record(
    backend: str,
    redis_url: str,
    prefix: str,
    path: Path,
    ticks: Path | None,
    oldest: bool,
    frames: int | None,
    duration: float | None,
) -> None:
    """Record a gateway's stream (raw frames with their receive times) to Parquet, for
    ``aio_trader.replay.ReplayFeed`` and ``aio-trader sandbox --replay``."""
    _check_redis(redis_url)
    _gateway_extra()
    written = run(backend, _run_record, redis_url, prefix, path, ticks, oldest, frames, duration)
    click.echo(f"recorded {written} frames to {path}")


async def _run_record(
    redis_url: str,
    prefix: str,
    path: Path,
    ticks: Path | None,
    oldest: bool,
    frames: int | None,
    duration: float | None,
) -> int:
    from aio_trader.gateway import record

    count = 0

    async def go() -> None:
        nonlocal count
        count = await record(
            path,
            redis=redis_url,
            prefix=prefix,
            start="oldest" if oldest else "new",
            frames=frames,
            ticks=ticks,
        )

    async with shutdown_on_signals():
        with anyio.move_on_after(duration if duration is not None else float("inf")) as scope:
            await go()
    if scope.cancelled_caught or not count:
        # cancelled: the recording was completed; count its rows
        import pyarrow.parquet as pq

        with contextlib.suppress(OSError):
            count = pq.ParquetFile(path).metadata.num_rows
    return count
