"""The ``aio-trader`` command line tool (needs the ``cli`` extra: click).

``main`` is a click group: each feature adds its subcommand with ``@main.command()``.
Subcommands import what they need lazily, so ``aio-trader --help`` stays fast and works
without the optional extras.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from aio_trader import __version__
from aio_trader._cli.commands import COMMANDS
from aio_trader._cli.connection import backend_option, run

if TYPE_CHECKING:
    from aio_trader.sandbox import Sandbox, SandboxConfig

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="aio-trader")
def main() -> None:
    """aio_trader: async clients for Indian stockbroker APIs, and a local Kite sandbox."""


# -- aio-trader sandbox ------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0: any free).",
)
@click.option("--api-key", default="sandbox_api_key", show_default=True)
@click.option("--api-secret", default="sandbox_api_secret", show_default=True)
@click.option("--access-token", default="sandbox_access_token", show_default=True)
@click.option("--user-id", default="AB1234", show_default=True, help="Kite Web user id.")
@click.option(
    "--password", default="sandbox-password", show_default=True, help="Kite Web password."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the market.")
@click.option("--tick-interval", default=0.25, show_default=True, type=float, help="Seconds.")
@click.option("--market-interval", default=0.25, show_default=True, type=float, help="Seconds.")
@click.option("--rate-limit-scale", default=1.0, show_default=True, type=float)
@click.option(
    "--order-ips",
    multiple=True,
    help="Static-IP whitelist for order requests (repeatable); others get 403. Default: off.",
)
@click.option("--orders-per-minute", default=200, show_default=True, type=int)
@click.option("--http-5xx-burst", default=0, type=int, help="Fault: the next N calls answer 503.")
@click.option("--latency", default=0.0, type=float, help="Fault: seconds added to REST answers.")
@click.option("--lose-order-reply", is_flag=True, help="Fault: book orders, drop the reply.")
@click.option("--ws-drop-every", default=None, type=float, help="Fault: drop tickers every N s.")
@click.option("--ws-malformed-binary", is_flag=True, help="Fault: broken binary frames.")
@click.option("--ws-malformed-text", is_flag=True, help="Fault: broken text frames.")
@click.option("--ws-silence", is_flag=True, help="Fault: the ticker sends nothing.")
@click.option("--session-expired", is_flag=True, help="Fault: tokens answer 403.")
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Serve this recording (aio-trader record) over the ticker instead of the market.",
)
@click.option(
    "--backend",
    type=click.Choice(["asyncio", "trio"]),
    default="asyncio",
    show_default=True,
    help="Event loop to serve on.",
)
def sandbox(backend: str, **options: Any) -> None:
    """Run a local Kite Connect v3 compatible server until Ctrl-C.

    Prints the REST root URL, the ticker URL and the credentials first.
    """
    try:
        import anyio

        from aio_trader.sandbox import Faults, SandboxConfig
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise click.ClickException(
            f"the sandbox needs the `sandbox` extra: pip install 'aio-trader[sandbox]' ({error})"
        ) from None
    fault_names = (
        "http_5xx_burst",
        "latency",
        "lose_order_reply",
        "ws_drop_every",
        "ws_malformed_binary",
        "ws_malformed_text",
        "ws_silence",
        "session_expired",
    )
    try:
        faults = Faults(**{name: options.pop(name) for name in fault_names})
        config = SandboxConfig(**options, faults=faults)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    try:
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(_serve_sandbox, config, backend=backend)
    except OSError as error:  # the address is taken, or not one of this machine's
        address = f"{config.host}:{config.port}"
        hint = " (another server uses it: pick another port, or --port 0 for any free one)"
        raise click.ClickException(
            f"cannot serve on {address}: {str(error.strerror or error).split(' (while')[0]}"
            + (hint if error.errno == errno.EADDRINUSE else "")
        ) from None
    click.echo("sandbox stopped")


def _banner(sb: Sandbox) -> str:
    config = sb.config
    return "\n".join(
        [
            f"REST root:    {sb.root_url}",
            f"Ticker:       {sb.ticker_url}?api_key={sb.api_key}&access_token={sb.access_token}",
            f"api_key:      {sb.api_key}",
            f"api_secret:   {sb.api_secret}",
            f"access_token: {sb.access_token}",
            f"Kite Web:     user_id={sb.user_id} password={sb.password} "
            f"totp_secret={config.totp_secret} enctoken={sb.enctoken}",
            f"Login:        {sb.root_url}/connect/login?api_key={sb.api_key}&v=3",
            "Serving until Ctrl-C.",
        ]
    )


async def _serve_sandbox(config: SandboxConfig) -> None:
    import anyio

    from aio_trader.sandbox import Sandbox

    async with Sandbox(config) as sb:
        click.echo(_banner(sb))
        sys.stdout.flush()
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    return
        except NotImplementedError:  # pragma: no cover - platforms without signal support
            await anyio.sleep_forever()


# -- aio-trader demo ---------------------------------------------------------------------------


@main.command()
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
def demo(backend: str, duration: float, plain: bool) -> None:
    """Run the library end to end on an embedded sandbox: no Kite account needed.

    Logs in through the sandbox's Kite Connect login flow, reads the profile and margins,
    streams ticks of an equity, an index and a future in full mode, places a market and a
    limit order and shows their updates arriving over the WebSocket, then the positions.
    """
    from aio_trader.demo import run_demo

    run(
        backend,
        functools.partial(run_demo, duration, backend=backend, live=False if plain else None),
    )


for _command in COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover - `python -m aio_trader.cli`
    main()
