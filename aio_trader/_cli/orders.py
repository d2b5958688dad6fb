"""``aio-trader order place|modify|cancel|exit``: orders from the command line.

The options are ``Kite.place_order``'s / ``modify_order``'s parameters, spelled as options
(``--transaction-type``, ``--market-protection``, ...). Each command asks for confirmation
(unless ``--yes``, or ``--sandbox``: an embedded sandbox risks nothing), prints the order id,
then follows the order's status (updates over the feed, and its history read every few
seconds in case an update was missed) until it is final, or not at all with ``--no-wait``.
Ctrl-C stops the waiting, never the order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anyio
import attrs
import click

from aio_trader.kite import KiteFeed
from aio_trader.kite.ticks import OrderUpdate

from . import dhan
from .connection import (
    Client,
    Connection,
    connection_options,
    open_client,
    run,
    shutdown_on_signals,
)
from .render import order_line

__all__ = ["order"]

#: Order statuses after which nothing changes any more.
FINAL = frozenset({"COMPLETE", "REJECTED", "CANCELLED"})
#: Order types that need ``market_protection`` (Kite since April 2026).
UNPROTECTED = frozenset({"MARKET", "SL-M"})
#: Seconds between two reads of the order's history while waiting (a missed update).
HISTORY_EVERY = 2.0


@attrs.frozen
class _State:
    """What is shown of an order's state (a repeat of it is not shown again)."""

    status: str
    filled: int


def _upper(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return value.upper() if value else value


def _variety(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--variety",
        default="regular",
        show_default=True,
        type=click.Choice(["regular", "amo", "co", "iceberg", "auction"]),
        help="Order variety.",
    )(function)


def _waiting(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in (
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation."),
        click.option(
            "--no-wait", is_flag=True, help="Print the order id and stop (no status updates)."
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            help="Stop following the order after this many seconds (the order stays).",
        ),
    ):
        function = option(function)
    return function


def _confirm(conn: Connection, yes: bool, what: str) -> None:
    """Ask before anything is sent, unless ``--yes`` or on an embedded sandbox."""
    if yes or conn.sandbox:
        return
    target = conn.root or ("Dhan" if conn.broker == "dhan" else "Kite")
    click.confirm(f"{what} on {target}?", abort=True)


def _price_text(price: float | None) -> str:
    return "" if price is None else f" @ {price:,.2f}"


@click.group()
def order() -> None:
    """Place, modify, cancel or exit an order (the options are Kite.place_order's)."""


@order.command()
@connection_options
@_variety
@click.option("--exchange", callback=_upper, help="NSE, BSE, NFO, MCX, ... (required for Kite)")
@click.option("--tradingsymbol", help="e.g. INFY, NIFTY26DECFUT (required for Kite).")
@click.option(
    "--instrument",
    help="--broker dhan (instead of --exchange/--tradingsymbol): SEGMENT:SECURITY_ID, "
    "e.g. NSE_EQ:1333.",
)
@click.option(
    "--transaction-type",
    required=True,
    type=click.Choice(["BUY", "SELL"], case_sensitive=False),
    callback=_upper,
)
@click.option("--quantity", required=True, type=click.IntRange(min=1))
@click.option("--product", required=True, callback=_upper, help="CNC, MIS, NRML, MTF.")
@click.option(
    "--order-type",
    required=True,
    type=click.Choice(["MARKET", "LIMIT", "SL", "SL-M"], case_sensitive=False),
    callback=_upper,
)
@click.option("--price", type=float, help="Limit price (LIMIT, SL).")
@click.option("--trigger-price", type=float, help="Trigger price (SL, SL-M).")
@click.option(
    "--market-protection",
    type=float,
    help="Needed by MARKET and SL-M orders: -1 (automatic) or a percentage above 0 up to 100.",
)
@click.option("--validity", callback=_upper, help="DAY (default), IOC or TTL.")
@click.option("--validity-ttl", type=click.IntRange(min=1), help="Minutes, for TTL.")
@click.option("--disclosed-quantity", type=click.IntRange(min=0))
@click.option("--iceberg-legs", type=click.IntRange(min=2))
@click.option("--iceberg-quantity", type=click.IntRange(min=1))
@click.option("--auction-number")
@click.option("--tag", help="Your tag (letters and digits, at most 20); default: a fresh one.")
@_waiting
def place(conn: Connection, yes: bool, no_wait: bool, timeout: float | None, **fields: Any) -> None:
    """Place an order; prints its id, then its status updates until it is final.

    \b
    aio-trader order place --exchange NSE --tradingsymbol INFY --transaction-type BUY \\
        --quantity 1 --product CNC --order-type LIMIT --price 1500
    aio-trader order place --broker dhan --instrument NSE_EQ:1333 --transaction-type BUY \\
        --quantity 1 --product CNC --order-type LIMIT --price 1500
    """
    instrument = fields.pop("instrument")
    if conn.broker == "dhan":
        if fields["exchange"] or fields["tradingsymbol"]:
            raise click.UsageError(
                "--broker dhan names the instrument with --instrument SEGMENT:SECURITY_ID"
            )
        if instrument is None:
            raise click.UsageError("--broker dhan needs --instrument SEGMENT:SECURITY_ID")
        [(segment, security)] = dhan.parse_instruments([instrument])
        fields.update(exchange=segment, tradingsymbol=security)
    else:
        if instrument is not None:
            raise click.UsageError("--instrument is for --broker dhan")
        ctx = click.get_current_context()
        for name in ("exchange", "tradingsymbol"):
            if fields[name] is None:
                [param] = [p for p in ctx.command.params if p.name == name]
                raise click.MissingParameter(ctx=ctx, param=param)
    order_type = fields["order_type"]
    if order_type in UNPROTECTED and fields["market_protection"] is None:
        raise click.UsageError(
            f"{order_type} orders need --market-protection (-1: automatic, or a percentage "
            "above 0 up to 100), or use --order-type LIMIT --price PRICE: "
            + (
                "Dhan protects API market orders since March 2026"
                if conn.broker == "dhan"
                else "Kite refuses unprotected market orders since April 2026"
            )
        )
    if order_type in ("LIMIT", "SL") and fields["price"] is None:
        raise click.UsageError(f"{order_type} orders need --price")
    if order_type in ("SL", "SL-M") and fields["trigger_price"] is None:
        raise click.UsageError(f"{order_type} orders need --trigger-price")
    what = (
        f"{order_type} {fields['transaction_type']} {fields['quantity']} "
        f"{fields['exchange']}:{fields['tradingsymbol']} {fields['product']}"
        f"{_price_text(fields['price'])} ({fields['variety']})"
    )
    _confirm(conn, yes, f"Place {what}")
    values = {name: value for name, value in fields.items() if value is not None}
    if conn.broker == "dhan":
        run(conn.backend, dhan.act_and_follow, conn, dhan.placing(values, what), timeout, no_wait)
        return

    async def act(client: Client) -> str:
        order_id = await client.kite.place_order(**values)
        click.echo(f"order placed: {what} -> {order_id}")
        return order_id

    run(conn.backend, _act_and_follow, conn, act, timeout, no_wait)


@order.command()
@connection_options
@_variety
@click.option("--order-id", required=True)
@click.option("--parent-order-id", help="The parent order (second leg of a cover order).")
@click.option("--quantity", type=click.IntRange(min=1))
@click.option("--price", type=float)
@click.option(
    "--order-type",
    type=click.Choice(["MARKET", "LIMIT", "SL", "SL-M"], case_sensitive=False),
    callback=_upper,
)
@click.option("--trigger-price", type=float)
@click.option("--validity", callback=_upper)
@click.option("--disclosed-quantity", type=click.IntRange(min=0))
@click.option("--market-protection", type=float, help="Needed to turn it into MARKET/SL-M.")
@_waiting
def modify(
    conn: Connection, yes: bool, no_wait: bool, timeout: float | None, **fields: Any
) -> None:
    """Modify an open order; prints its id, then its status updates (until the next one
    after the change, or until it is final)."""
    if fields["order_type"] in UNPROTECTED and fields["market_protection"] is None:
        raise click.UsageError(
            f"{fields['order_type']} orders need --market-protection (-1: automatic, or a "
            "percentage above 0 up to 100), or keep a LIMIT order"
        )
    changes = {
        name: value
        for name, value in fields.items()
        if value is not None and name not in ("variety", "order_id", "parent_order_id")
    }
    if not changes:
        raise click.UsageError("nothing to change: give --quantity, --price, --order-type, ...")
    listed = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in changes.items())
    _confirm(conn, yes, f"Modify order {fields['order_id']}: {listed}")
    values = {name: value for name, value in fields.items() if value is not None}
    if conn.broker == "dhan":
        change = dhan.modifying(values, listed)
        run(conn.backend, dhan.act_and_follow, conn, change, timeout, no_wait, True)
        return

    async def act(client: Client) -> str:
        order_id = await client.kite.modify_order(**values)
        click.echo(f"order modified: {order_id} ({listed})")
        return order_id

    run(conn.backend, _act_and_follow, conn, act, timeout, no_wait, True)


def _cancel_command(name: str, verb: str, summary: str) -> click.Command:
    @click.command(name=name, help=summary)
    @connection_options
    @_variety
    @click.option("--order-id", required=True)
    @click.option("--parent-order-id", help="The parent order (second leg of a cover order).")
    @_waiting
    def command(
        conn: Connection,
        yes: bool,
        no_wait: bool,
        timeout: float | None,
        variety: str,
        order_id: str,
        parent_order_id: str | None,
    ) -> None:
        if conn.broker == "dhan":
            if name == "exit" or parent_order_id:
                raise click.UsageError(f"--broker dhan has no {name} of cover orders here")
            _confirm(conn, yes, f"{verb.capitalize()} order {order_id}")
            stop = dhan.cancelling(order_id)
            run(conn.backend, dhan.act_and_follow, conn, stop, timeout, no_wait)
            return
        _confirm(conn, yes, f"{verb.capitalize()} order {order_id} ({variety})")

        async def act(client: Client) -> str:
            method = client.kite.exit_order if name == "exit" else client.kite.cancel_order
            done = await method(variety, order_id, parent_order_id=parent_order_id)
            click.echo(f"order {verb}: {done}")
            return done

        run(conn.backend, _act_and_follow, conn, act, timeout, no_wait)

    return command


order.add_command(
    _cancel_command("cancel", "cancelled", "Cancel an open order; then its updates until final.")
)
order.add_command(
    _cancel_command("exit", "exited", "Exit a cover order; then its updates until final.")
)


async def _act_and_follow(
    conn: Connection,
    act: Callable[[Client], Any],
    follow_for: float | None,
    no_wait: bool,
    next_update_only: bool = False,
) -> None:
    """Open the client (and the feed, before acting, so no update is missed), act, then
    show the order's states until final (or the first one after a modification)."""
    async with open_client(conn) as client:
        if no_wait:
            await _acting(act, client)
            return
        async with client.feed() as feed:
            order_id = await _acting(act, client)
            click.echo("following its status (Ctrl-C stops following; the order stays)")
            deadline = math.inf if follow_for is None else anyio.current_time() + follow_for
            final: _State | None = None
            async with shutdown_on_signals():
                with anyio.CancelScope(deadline=deadline) as scope:
                    final = await _follow(client, feed, order_id, next_update_only)
            if scope.cancelled_caught and follow_for is not None:
                click.echo(f"stopped following order {order_id} after {follow_for:g} s")
    if final is not None and final.status == "REJECTED":
        raise click.ClickException(f"order {order_id} was rejected (see its message above)")


async def _acting(act: Callable[[Client], Any], client: Client) -> str:
    """``act(client)``; a ``ValueError`` (the client refused the values before any
    request: a tag too long, a MARKET order without protection) is a usage error."""
    try:
        return str(await act(client))
    except ValueError as error:
        raise click.UsageError(str(error)) from None


async def _follow(
    client: Client, feed: KiteFeed, order_id: str, next_update_only: bool
) -> _State | None:
    """Print each new state of ``order_id`` (from the feed, or from its history every
    ``HISTORY_EVERY`` s) until it is final (or, with ``next_update_only``, the first one);
    returns that last state."""
    shown: set[_State] = set()
    done = anyio.Event()
    last: list[_State] = []

    def show(state: _State, line: str) -> None:
        if state not in shown:
            shown.add(state)
            click.echo(line)
        if state.status in FINAL or next_update_only:
            last.append(state)
            done.set()

    async def updates() -> None:
        async for item in feed:
            if isinstance(item, OrderUpdate) and item.order_id == order_id:
                show(_State(item.status, item.filled_quantity), order_line(item))

    async def history() -> None:
        while True:
            states = await client.kite.order_history(order_id)
            if states:
                latest = states[-1]
                filled = latest.filled_quantity or 0
                line = f"order {order_id} {latest.status} filled {filled}/{latest.quantity}"
                if filled and latest.average_price:
                    line += f" at {latest.average_price:,.2f}"
                if latest.status_message:
                    line += f" ({latest.status_message})"
                show(_State(str(latest.status), filled), line)
            await anyio.sleep(HISTORY_EVERY)

    async with anyio.create_task_group() as tg:
        tg.start_soon(updates)
        tg.start_soon(history)
        await done.wait()
        tg.cancel_scope.cancel()
    return last[0] if last else None
