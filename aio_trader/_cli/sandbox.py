"""``aio-trader sandbox``: a local broker-compatible server until Ctrl-C.

``--broker`` picks the dialect the server speaks (one entry of ``BROKERS`` per broker);
``--rules`` picks the order rules (``RULES``). The sandbox is imported when the command
runs, so ``aio-trader --help`` does not load its server stack.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from aio_trader.sandbox import Sandbox, SandboxConfig

__all__ = ["BROKERS", "RULES", "sandbox"]


#: ``--rules`` choices: the order rules Kite applies since April 2026 (the default), or the
#: rules before them (MARKET orders without ``market_protection``, as Kite's own integration
#: tests and older programs place them). ``SandboxConfig(rules=...)`` takes the same names
#: (``aio_trader.sandbox.config.RULE_NAMES``: a test keeps the two equal).
RULES = ("2026", "before-2026")


def _kite_banner(sb: Sandbox) -> str:
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
        ]
    )


def _dhan_banner(sb: Sandbox) -> str:
    feed_query = f"?version=2&token={sb.access_token}&clientId={sb.client_id}&authType=2"
    return "\n".join(
        [
            f"REST root:     {sb.root_url}",
            f"Market feed:   {sb.feed_url}{feed_query}",
            f"Order updates: {sb.order_feed_url}",
            f"client_id:     {sb.client_id}",
            f"access_token:  {sb.access_token}",
        ]
    )


#: ``--broker`` choices: each broker whose dialect the sandbox speaks, with the lines it
#: prints once serving (URLs and credentials). A new broker's dialect is one entry here.
BROKERS: dict[str, Callable[[Sandbox], str]] = {
    "kite": _kite_banner,
    "dhan": _dhan_banner,
}


@click.command()
@click.option(
    "--broker",
    type=click.Choice(sorted(BROKERS)),
    default="kite",
    show_default=True,
    help="The broker whose API the sandbox speaks.",
)
@click.option(
    "--rules",
    type=click.Choice(RULES),
    default="2026",
    show_default=True,
    help="Order rules: since April 2026 (market protection, 10 orders/s...), or before.",
)
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
@click.option("--client-id", default="1000000001", show_default=True, help="Dhan client id.")
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
@click.option(
    "--orders-per-minute",
    default=None,
    type=click.IntRange(1),
    help="Orders a minute before 429 (default: the broker's, Kite 200, Dhan 250).",
)
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
def sandbox(backend: str, broker: str, rules: str, **options: Any) -> None:
    """Run a local broker-compatible server (Kite Connect v3 by default, or DhanHQ v2 with
    --broker dhan) until Ctrl-C.

    Prints the REST root URL, the feed URLs and the credentials first.
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
        config = SandboxConfig(**options, faults=faults, broker=broker, rules=rules)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    try:
        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(_serve_sandbox, config, BROKERS[broker], backend=backend)
    except OSError as error:  # the address is taken, or not one of this machine's
        address = f"{config.host}:{config.port}"
        hint = " (another server uses it: pick another port, or --port 0 for any free one)"
        raise click.ClickException(
            f"cannot serve on {address}: {str(error.strerror or error).split(' (while')[0]}"
            + (hint if error.errno == errno.EADDRINUSE else "")
        ) from None
    click.echo("sandbox stopped")


async def _serve_sandbox(config: SandboxConfig, banner: Callable[[Sandbox], str]) -> None:
    import anyio

    from aio_trader.sandbox import Sandbox

    async with Sandbox(config) as sb:
        click.echo(banner(sb) + "\nServing until Ctrl-C.")
        sys.stdout.flush()
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    return
        except NotImplementedError:  # pragma: no cover - platforms without signal support
            await anyio.sleep_forever()
