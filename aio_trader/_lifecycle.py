"""The order's whole life, once for every broker: wait for a final status, cancel all.

Each broker supplies what differs (how to read one order, its status, its final
statuses, how to cancel); the algorithms are here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import TypeVar

import anyio

from .errors import AioTraderError

__all__ = ["cancel_open", "poll_until_final"]

R = TypeVar("R")  # an order record


async def poll_until_final(
    read: Callable[[], Awaitable[R]],
    status: Callable[[R], str | None],
    final: Collection[str],
    timeout: float | None,  # noqa: ASYNC109 (the callers' documented deadline)
) -> R:
    """Read the order (``read()``) until ``status`` is one of ``final``; return it.

    No sleep of its own: the client's rate limiter paces the reads. ``timeout``
    (seconds, ``None``: no limit) raises ``TimeoutError``. Cancellation: propagates,
    nothing changes (only reads are sent).
    """
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be >= 0 or None")
    with anyio.fail_after(timeout):
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
