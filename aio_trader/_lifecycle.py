"""The order's whole life, once for every broker: wait for a final status, cancel all.

Each broker supplies what differs (how to read one order, its status, its final
statuses, how to cancel); the algorithms are here.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Collection, Iterable
from typing import TypeVar

import anyio

from .errors import AioTraderError

__all__ = ["cancel_open", "exit_positions", "wait_until_final"]

R = TypeVar("R")  # an order record


async def wait_until_final(
    read: Callable[[], Awaitable[R]],
    status: Callable[[R], str | None],
    final: Collection[str],
    timeout: float | None,  # noqa: ASYNC109 (the callers' documented deadline)
    updates: AsyncIterable[object] | None = None,
    is_final_update: Callable[[object], bool] | None = None,
) -> R:
    """The order (``read()``) once ``status`` is one of ``final``.

    Without ``updates``: reads again and again, with no sleep of its own (the client's
    rate limiter paces the reads). With ``updates`` (a feed): one read first (the order
    may be final already), then the feed's items until ``is_final_update(item)``, then
    reads until the order shows it (normally the first read). ``timeout`` (seconds,
    ``None``: no limit) raises ``TimeoutError``. Cancellation: propagates, nothing
    changes (only reads are sent).
    """
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be >= 0 or None")
    with anyio.fail_after(timeout):
        if updates is not None and is_final_update is not None:
            order = await read()
            if status(order) in final:
                return order
            async for item in updates:
                if is_final_update(item):
                    break
        while True:
            order = await read()
            if status(order) in final:
                return order
            await anyio.lowlevel.checkpoint()


async def cancel_open(
    orders: Iterable[R],
    order_id: Callable[[R], str | None],
    status: Callable[[R], str | None],
    final: Collection[str],
    cancel: Callable[[R], Awaitable[object]],
    latest: Callable[[str], Awaitable[R]],
) -> list[R]:
    """Cancel each of ``orders`` not yet final, one after another; the ones cancelled.

    A cancellation the broker refuses because the order finished meanwhile (its
    ``latest`` state is final) is skipped, not an error; any other refusal is raised.
    Cancellation: propagates; the orders before it are cancelled, the one in flight
    may or may not be.
    """
    cancelled: list[R] = []
    for order in orders:
        key = order_id(order)
        if key is None or status(order) in final:
            continue
        try:
            await cancel(order)
        except AioTraderError:
            if status(await latest(key)) in final:
                continue
            raise
        cancelled.append(order)
    return cancelled


P = TypeVar("P")  # a position record


async def exit_positions(
    positions: Iterable[P],
    net: Callable[[P], int | None],
    place_exit: Callable[[P, str, int], Awaitable[str]],
) -> list[str]:
    """For each position with a non-zero ``net`` quantity, ``place_exit(position, side,
    quantity)`` (``"SELL"`` a long, ``"BUY"`` a short, the absolute quantity), one after
    another; the order ids.

    Cancellation: propagates; the exits before it are placed, the one in flight may or
    may not be (its tag is the caller's way to find out).
    """
    placed: list[str] = []
    for position in positions:
        quantity = net(position) or 0
        if quantity:
            side = "SELL" if quantity > 0 else "BUY"
            placed.append(await place_exit(position, side, abs(quantity)))
    return placed
