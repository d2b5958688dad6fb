"""A client-side rate limiter on anyio primitives (asyncio and trio).

``RateLimiter(Rate(10, 1), Rate(200, 60), Rate(5000, 86_400))`` admits a call only
when every one of its rates allows it, in one ``await limiter.acquire()`` (or
``async with limiter:``).

Semantics: a strict sliding window. For each ``Rate(count, period)``, no interval of
``period`` seconds, anywhere in time, holds more than ``count`` acquisitions. The
limiter keeps the last ``count`` acquisition times of each rate (a bounded deque) and
admits a call once the oldest of them is ``period`` old. Time is
``anyio.current_time()``, the event loop's monotonic clock.

Fairness: waiters are served first come, first served (one ``anyio.Lock``, which is
FIFO on both backends, queues them; only its holder sleeps until the next slot).

Cancellation: a slot is taken only at the instant ``acquire()`` returns, after its
last checkpoint, so a waiter cancelled anywhere in ``acquire()`` takes nothing and
the next waiter moves up.

Stamping at the write: ``await limiter.reserve()`` waits for the turn and the time as
``acquire()`` does, but takes nothing yet: it holds the queue and returns a
:class:`Reservation`, whose ``take()`` (synchronous) stamps the slot at that instant and
lets the next waiter in; ``release()`` (or leaving ``async with``) without ``take()``
gives the turn up with nothing taken. ``AsyncRequest`` takes its slot when the request's
first bytes are written, so time spent between the turn and the write (waiting for a
pooled connection, connecting, a busy event loop) never compresses the spacing the
server sees: two requests reach the wire at least the limiter's spacing apart.

Why not a library: aiolimiter (leaky bucket) and the other maintained limiters found
are asyncio-only; none runs on trio, and combined sliding windows are not their
model. This module is small and has no dependency beyond anyio and attrs.

A limiter binds to the first event loop that uses it: use one per ``anyio.run``.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType

import anyio
import attrs

__all__ = ["Rate", "RateLimiter", "RateLimiterStatistics", "Reservation"]


@attrs.frozen
class Rate:
    """At most ``count`` acquisitions in any ``period`` seconds."""

    count: int = attrs.field(validator=attrs.validators.ge(1))
    period: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))

    def __str__(self) -> str:
        return f"{self.count}/{self.period:g}s"


@attrs.frozen
class RateLimiterStatistics:
    """A snapshot of a ``RateLimiter``.

    ``acquired``: slots taken since creation; ``waiting``: tasks blocked in
    ``acquire()``; ``in_window``: for each rate, acquisitions in its current window.
    """

    rates: tuple[Rate, ...]
    acquired: int
    waiting: int
    in_window: tuple[int, ...]


class RateLimiter:
    """Admits calls so that each of ``rates`` holds; FIFO-fair; cancellation-safe."""

    def __init__(self, *rates: Rate, name: str = "") -> None:
        if not rates:
            raise ValueError("RateLimiter needs at least one Rate")
        for rate in rates:
            if not isinstance(rate, Rate):
                raise TypeError(f"expected Rate, got {type(rate).__name__}")
        self.rates = rates
        self.name = name
        self._times = tuple(deque[float](maxlen=rate.count) for rate in rates)
        self._lock = anyio.Lock()
        self._acquired = 0
        self._waiting = 0

    def __repr__(self) -> str:
        rates = ", ".join(map(str, self.rates))
        return f"RateLimiter({self.name!r}, {rates})" if self.name else f"RateLimiter({rates})"

    def _ready_at(self) -> float:
        """The earliest clock time at which every rate admits one more call."""
        ready = 0.0
        for rate, times in zip(self.rates, self._times, strict=True):
            if len(times) == rate.count:
                ready = max(ready, times[0] + rate.period)
        return ready

    async def acquire(self) -> float:
        """Wait for a slot and take it; returns the clock time at which it was taken.

        Always a checkpoint. Waiters are served in arrival order.
        Cancellation: raises the backend's cancellation and takes no slot.
        """
        reservation = await self.reserve()
        # No checkpoint from here on: the slot is taken iff acquire() returns.
        return reservation.take()

    async def reserve(self) -> Reservation:
        """Wait for the turn to take a slot, without taking it: the queue is held (no other
        waiter is admitted) until the returned reservation's ``take()`` or ``release()``.

        Call ``take()`` at the instant the guarded action happens (the request is
        written), ``release()`` if it never does (``async with`` releases on exit); both
        are synchronous and must run in the task that reserved. Always a checkpoint.
        Cancellation: raises the backend's cancellation, holds and takes nothing.
        """
        self._waiting += 1
        try:
            await self._lock.acquire()
            try:
                now, ready = anyio.current_time(), self._ready_at()
                while now < ready:  # a loop: a sleep may end a hair early on some clocks
                    await anyio.sleep(ready - now)
                    now = anyio.current_time()
            except BaseException:
                self._lock.release()
                raise
            return Reservation(self)
        finally:
            self._waiting -= 1

    def _stamp(self) -> float:
        # The holder of the queue only: every rate admits a call at any time from the
        # end of reserve() on (nothing else stamps meanwhile and the clock only advances).
        now = anyio.current_time()
        for times in self._times:
            times.append(now)
        self._acquired += 1
        self._lock.release()
        return now

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def statistics(self) -> RateLimiterStatistics:
        """A snapshot of the limiter's state. Call inside an event loop."""
        now = anyio.current_time()
        in_window = tuple(
            sum(1 for t in times if t > now - rate.period)
            for rate, times in zip(self.rates, self._times, strict=True)
        )
        return RateLimiterStatistics(self.rates, self._acquired, self._waiting, in_window)


class Reservation:
    """The turn to take one slot of a :class:`RateLimiter` (from ``reserve()``): ``take()``
    stamps it now, ``release()`` gives it up; the first of them ends the reservation and
    lets the next waiter in, later calls do nothing."""

    __slots__ = ("_limiter", "taken_at")

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter: RateLimiter | None = limiter
        #: The clock time the slot was taken at; None until ``take()``.
        self.taken_at: float | None = None

    def take(self) -> float:
        """Take the slot now (no checkpoint); returns the clock time it was taken at."""
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            self.taken_at = limiter._stamp()
        if self.taken_at is None:
            raise RuntimeError("this reservation was released without taking its slot")
        return self.taken_at

    def release(self) -> None:
        """Give the turn up without taking a slot (nothing happens once taken)."""
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._lock.release()

    async def __aenter__(self) -> Reservation:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
