"""``aio-trader login``, ``orders``, ``positions``, ``holdings``."""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio.to_thread
import attrs
import click
from rich.console import Console

from aio_trader.kite import Kite
from aio_trader.kite._session import KITE_LOGIN_URL, TokenCache, login_url

from . import dhan
from .connection import (
    Connection,
    LoginStore,
    connection_options,
    follow_login_page,
    login_options,
    open_client,
    open_target,
    parse_request_token,
    run,
)
from .render import json_line, record_table

__all__ = ["holdings", "login", "orders", "positions"]

#: The width tables are laid out in when the output is not a terminal.
_PIPE_WIDTH = 240
#: A table column: header and how to get the cell from a row.
Column = tuple[str, Callable[[Any], Any]]


# -- login ------------------------------------------------------------------------------------


@click.command()
@login_options
@click.option(
    "--web", is_flag=True, help="Kite Web login (user id, password, 2FA) instead of Kite Connect."
)
@click.option(
    "--api-secret",
    envvar="KITE_API_SECRET",
    show_envvar=True,
    help="Kite Connect api_secret (prompted, hidden, when missing).",
)
@click.option(
    "--request-token",
    help="The request_token Kite redirected with (or the whole redirect URL); prompted when "
    "missing.",
)
@click.option(
    "--password",
    envvar="KITE_PASSWORD",
    show_envvar=True,
    help="Kite Web password (prompted, hidden, when missing).",
)
@click.option(
    "--totp-secret",
    envvar="KITE_TOTP_SECRET",
    show_envvar=True,
    help="Base32 TOTP secret: the 2FA code is computed (needs the `totp` extra).",
)
@click.option(
    "--twofa",
    envvar="KITE_TWOFA",
    show_envvar=True,
    help="The 2FA code (prompted when neither this nor --totp-secret is given).",
)
@click.option(
    "--access-token",
    "token",
    help="--broker dhan: a token from Dhan's web app to check and store (env DHAN_ACCESS_TOKEN).",
)
@click.option("--pin", help="--broker dhan: your PIN, with --totp or --totp-secret.")
@click.option("--totp", help="--broker dhan: the TOTP code (or give --totp-secret).")
def login(
    conn: Connection,
    web: bool,
    api_secret: str | None,
    request_token: str | None,
    password: str | None,
    totp_secret: str | None,
    twofa: str | None,
    token: str | None,
    pin: str | None,
    totp: str | None,
) -> None:
    """Log in and store the session for the other commands (never printed).

    Kite Connect (default): prints the login page of your app's api_key; after you log in,
    Kite redirects to your redirect URL with a request_token: paste it (or the whole URL).
    It is exchanged with your api_secret for an access token, stored as JSON (mode 0600) in
    your config directory, valid until the end of the day.

    Kite Web (--web): user id, password and a 2FA code (or a TOTP secret); the enctoken is
    kept in the same directory.

    With --sandbox the embedded sandbox's credentials are used and its login page is
    followed automatically.

    Dhan (--broker dhan, --client-id): a token given with --access-token (or
    DHAN_ACCESS_TOKEN), or one made from --pin and --totp/--totp-secret, is checked and
    kept in Dhan's token store (JSON, mode 0600) until it expires.
    """
    if conn.broker == "dhan":
        if web:
            raise click.UsageError("--web is Kite's")
        if token is not None:
            conn = attrs.evolve(conn, access_token=token)
        source = click.get_current_context().get_parameter_source("totp_secret")
        secret = totp_secret if source is click.core.ParameterSource.COMMANDLINE else None
        secret = secret or os.environ.get("DHAN_TOTP_SECRET")  # not KITE_TOTP_SECRET
        run(conn.backend, dhan.login, conn, pin, totp, secret)
        return
    if token or pin or totp:
        raise click.UsageError("--access-token, --pin and --totp are for --broker dhan")
    if web:
        if not conn.sandbox:
            conn = attrs.evolve(conn, user_id=conn.user_id or click.prompt("Kite user id"))
            password = password or click.prompt("Password", hide_input=True)
        run(conn.backend, _web_login, conn, password, totp_secret, twofa)
        return
    if not conn.sandbox:
        api_key = conn.api_key or click.prompt("api_key")
        base = f"{conn.root.rstrip('/')}/connect/login" if conn.root else KITE_LOGIN_URL
        click.echo(f"Log in at: {login_url(api_key, base)}")
        request_token = parse_request_token(
            request_token
            or click.prompt("request_token (or the whole redirect URL)", hide_input=True)
        )
        api_secret = api_secret or click.prompt("api_secret", hide_input=True)
        conn = attrs.evolve(conn, api_key=api_key)
    run(conn.backend, _connect_login, conn, request_token, api_secret)


async def _connect_login(
    conn: Connection, request_token: str | None, api_secret: str | None
) -> None:
    async with open_target(conn) as target:
        api_key = conn.api_key
        if target.sandbox is not None:
            api_key, api_secret = target.sandbox.api_key, target.sandbox.api_secret
        kite = Kite(
            api_key,
            root=target.root,
            login_root=target.login_root or KITE_LOGIN_URL,
            token_cache=False,
        )
        async with kite:
            if request_token is None:
                click.echo(f"Log in at: {kite.login_url()}")
                request_token = await follow_login_page(kite.login_url())
                click.echo("The sandbox's login page redirected with a request_token.")
            session = await kite.generate_session(request_token, str(api_secret))
    path = await anyio.to_thread.run_sync(
        LoginStore().save,
        {
            "kind": "connect",
            "api_key": str(api_key),
            "access_token": str(session.access_token),
            "user_id": str(session.user_id),
        },
    )
    click.echo(
        f"Logged in to Kite Connect as {session.user_id} ({session.user_name}). "
        f"Access token stored in {path} until the end of the day (IST)."
    )


async def _web_login(
    conn: Connection, password: str | None, totp_secret: str | None, twofa: str | None
) -> None:
    async def ask_twofa() -> str:
        answer = await anyio.to_thread.run_sync(
            lambda: click.prompt("2FA code (TOTP or app code)", hide_input=True)
        )
        return str(answer)

    async with open_target(conn) as target:
        user_id = conn.user_id
        if target.sandbox is not None:
            sb = target.sandbox
            user_id, password, twofa = sb.user_id, sb.password, sb.config.twofa_value
        cache = TokenCache()
        kite = Kite(
            user_id=user_id,
            password=password,
            twofa=twofa if twofa or totp_secret else ask_twofa,
            totp_secret=totp_secret,
            root=target.root,
            token_cache=cache,
        )
        async with kite:
            profile = await kite.profile()
    await anyio.to_thread.run_sync(LoginStore().save, {"kind": "web", "user_id": str(user_id)})
    click.echo(
        f"Logged in to Kite Web as {profile.user_id} ({profile.user_name}). "
        f"Enctoken stored in {cache.path(str(user_id))} until the end of the day (IST)."
    )


# -- orders, positions, holdings ------------------------------------------------------------------


def _instrument(row: Any) -> str:
    return f"{row.exchange}:{row.tradingsymbol}"


def _time(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.strftime("%H:%M:%S")


ORDER_COLUMNS: Sequence[Column] = (
    ("order id", lambda o: o.order_id),
    ("time", lambda o: _time(o.order_timestamp)),
    ("instrument", _instrument),
    ("side", lambda o: o.transaction_type),
    ("type", lambda o: o.order_type),
    ("product", lambda o: o.product),
    ("qty", lambda o: o.quantity),
    ("filled", lambda o: o.filled_quantity),
    ("price", lambda o: o.price),
    ("avg", lambda o: o.average_price),
    ("status", lambda o: o.status),
    ("tag", lambda o: o.tag),
)
POSITION_COLUMNS: Sequence[Column] = (
    ("instrument", _instrument),
    ("product", lambda p: p.product),
    ("qty", lambda p: p.quantity),
    ("avg", lambda p: p.average_price),
    ("last", lambda p: p.last_price),
    ("pnl", lambda p: p.pnl),
    ("realised", lambda p: p.realised),
    ("unrealised", lambda p: p.unrealised),
)
HOLDING_COLUMNS: Sequence[Column] = (
    ("instrument", _instrument),
    ("qty", lambda h: h.quantity),
    ("avg", lambda h: h.average_price),
    ("last", lambda h: h.last_price),
    ("pnl", lambda h: h.pnl),
    ("day change %", lambda h: h.day_change_percentage),
)


def show_records(title: str, rows: Sequence[Any], columns: Sequence[Column], as_json: bool) -> None:
    """``rows`` as a rich table, or one JSON object per line (each record's ``to_dict``)."""
    if as_json:
        for row in rows:
            click.echo(json_line(row))
        return
    console = Console(file=sys.stdout)
    if not console.is_terminal:  # no width to fit: never truncate what goes to a file or pipe
        console = Console(file=sys.stdout, width=_PIPE_WIDTH)
    console.print(record_table(f"{title} ({len(rows)})", rows, columns))


def _records_command(
    name: str,
    summary: str,
    fetch: Callable[[Kite], Awaitable[Sequence[Any]]],
    columns: Sequence[Column],
) -> click.Command:
    """A command that shows what ``fetch(kite)`` returns, as a table or JSON lines."""

    async def show(conn: Connection, as_json: bool) -> None:
        if conn.broker == "dhan":
            rows, shown = await dhan.records(conn, name)
        else:
            async with open_client(conn) as client:
                rows = await fetch(client.kite)
            shown = columns
        show_records(name, rows, shown, as_json)

    @click.command(name=name, help=summary)
    @connection_options
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
    def command(conn: Connection, as_json: bool) -> None:
        run(conn.backend, show, conn, as_json)

    return command


async def _orders(kite: Kite) -> Sequence[Any]:
    return await kite.orders()


async def _positions(kite: Kite) -> Sequence[Any]:
    return (await kite.positions()).net or ()


async def _holdings(kite: Kite) -> Sequence[Any]:
    return await kite.holdings()


orders = _records_command("orders", "Today's orders (the order book).", _orders, ORDER_COLUMNS)
positions = _records_command("positions", "Net positions.", _positions, POSITION_COLUMNS)
holdings = _records_command("holdings", "Holdings (long-term equity).", _holdings, HOLDING_COLUMNS)
