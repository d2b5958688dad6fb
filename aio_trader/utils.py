"""Structured-concurrency helpers that run on asyncio and trio.

- ``as_completed(jobs, limit=N)``: run awaitables with bounded concurrency and receive
  ``(key, result)`` pairs as each one finishes;
- ``gather(*awaitables, limit=N)``: the results in argument order;
- ``graceful_shutdown()`` / ``run_until_signal(fn)``: SIGINT / SIGTERM cancel the work
  cleanly (every ``finally`` and ``async with`` exit runs).

Errors: when a job (or the body of an ``async with``) raises, the rest is cancelled
and the error is raised as itself. Only when several errors happen together (two
jobs failing in the same instant) is an ``ExceptionGroup`` raised.
"""

from __future__ import annotations

import inspect
import signal
import sys
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import attrs
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream

if sys.version_info < (3, 11):  # anyio depends on the backport there
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["Shutdown", "as_completed", "gather", "graceful_shutdown", "run_until_signal"]

K = TypeVar("K")
T = TypeVar("T")

#: The signals that stop the work by default.
SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves


@asynccontextmanager
async def _unwrapped() -> AsyncIterator[None]:
    """Re-raise an exception group holding a single error as that error."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) != 1:
            raise
        # Raise the error itself, its own __cause__/__context__ intact (not the group's).
        error = leaves[0]
        context, suppress = error.__context__, error.__suppress_context__
        try:
            raise error
        finally:
            error.__context__, error.__suppress_context__ = context, suppress


def _close_unstarted(items: Iterator[tuple[K, Awaitable[T]]]) -> None:
    """Close coroutines that were never awaited, so none warns 'never awaited'."""
    for _, awaitable in items:
        if inspect.iscoroutine(awaitable):
            awaitable.close()


async def _run_all(
    items: Iterator[tuple[K, Awaitable[T]]],
    workers: int,
    send: MemoryObjectSendStream[tuple[K, T]],
) -> None:
    async def worker() -> None:
        # The workers share one iterator: each takes the next job when it is free.
        for key, awaitable in items:
            send.send_nowait((key, await awaitable))

    async with send, anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)


@asynccontextmanager
async def as_completed(
    jobs: Mapping[K, Awaitable[T]] | Iterable[tuple[K, Awaitable[T]]],
    *,
    limit: int | None = None,
) -> AsyncIterator[AsyncIterator[tuple[K, T]]]:
    """Run ``jobs`` (a mapping, or ``(key, awaitable)`` pairs) and yield ``(key, result)``
    pairs in the order they finish, at most ``limit`` at a time (``None``: all at once)::

        async with as_completed({s: kite.ltp([s]) for s in symbols}, limit=3) as results:
            async for symbol, ltp in results:
                ...

    The jobs run in a task group owned by the ``async with``; leaving it (for
    example after a ``break``) cancels the jobs still running, and coroutines never
    started are closed. It is a context manager, not a bare async iterator, because
    a task group must not stay open across the ``yield`` of an async generator.

    Raises: a job's exception cancels the others and is raised from the
    ``async with`` (see the module docstring for several at once). ``ValueError``
    for ``limit < 1``.

    Cancellation: cancelling the enclosing scope cancels every job.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit!r}")
    pairs = jobs.items() if isinstance(jobs, Mapping) else jobs
    if limit is None or isinstance(pairs, Collection):
        # Materialised: the coroutines exist already, so unstarted ones can be closed.
        pairs = list(pairs)
        close_unstarted = True
        limit = len(pairs) if limit is None else limit
    else:
        close_unstarted = False  # a lazy iterable may be endless: leave the rest alone
    items = iter(pairs)
    send, receive = anyio.create_memory_object_stream[tuple[K, T]](float("inf"))
    try:
        async with _unwrapped(), receive, anyio.create_task_group() as tg:
            tg.start_soon(_run_all, items, limit, send)
            try:
                yield receive
            finally:
                tg.cancel_scope.cancel()
    finally:
        if close_unstarted:
            _close_unstarted(items)


async def gather(*awaitables: Awaitable[T], limit: int | None = None) -> list[T]:
    """Await all of ``awaitables``, at most ``limit`` at a time; results in argument order.

    Raises the first error (the others are cancelled). Cancellation: cancels them all.
    """
    results: dict[int, T] = {}
    async with as_completed(enumerate(awaitables), limit=limit) as finished:
        async for index, value in finished:
            results[index] = value
    return [results[index] for index in range(len(awaitables))]


@attrs.define
class Shutdown:
    """The state of a ``graceful_shutdown()`` block.

    ``signal`` is the signal that stopped the work (``None`` while running, or when
    the body finished by itself); ``cancel_scope`` can also be cancelled by hand.
    """

    cancel_scope: anyio.CancelScope
    signal: signal.Signals | None = None


async def _watch_signals(
    shutdown: Shutdown,
    signals: tuple[signal.Signals, ...],
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    with anyio.open_signal_receiver(*signals) as received:
        task_status.started()
        async for signum in received:
            shutdown.signal = signal.Signals(signum)
            shutdown.cancel_scope.cancel()
            return


@asynccontextmanager
async def graceful_shutdown(
    signals: Iterable[signal.Signals] = SHUTDOWN_SIGNALS,
) -> AsyncIterator[Shutdown]:
    """Run the body until it finishes or one of ``signals`` arrives, then cancel it cleanly::

        async with graceful_shutdown() as shutdown:
            async with KiteFeed(...) as feed:
                async for tick in feed:
                    ...
        if shutdown.signal:
            print("stopped by", shutdown.signal.name)

    On the first signal the body is cancelled: its ``finally`` blocks and context
    exits run and the ``async with`` ends normally. While the block runs the signals
    are handled here; a second signal arriving during the clean-up gets the default
    behaviour again (e.g. ``KeyboardInterrupt``). Main thread only (signal handling).

    Cancellation: an outer cancellation propagates as usual.
    """
    async with _unwrapped(), anyio.create_task_group() as tg:
        shutdown = Shutdown(anyio.CancelScope())
        await tg.start(_watch_signals, shutdown, tuple(signals))
        try:
            with shutdown.cancel_scope:
                yield shutdown
        finally:
            tg.cancel_scope.cancel()


async def run_until_signal(
    fn: Callable[..., Awaitable[Any]],
    *args: Any,
    signals: Iterable[signal.Signals] = SHUTDOWN_SIGNALS,
) -> signal.Signals | None:
    """Await ``fn(*args)`` inside ``graceful_shutdown``; for ``anyio.run(run_until_signal, main)``.

    Returns the signal that stopped it, or ``None`` when ``fn`` finished by itself
    (its return value is discarded). Raises what ``fn`` raises.
    """
    async with graceful_shutdown(signals) as shutdown:
        await fn(*args)
    return shutdown.signal
