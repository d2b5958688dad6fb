"""Backoff policy and the retry loop, on ``anyio.sleep``.

``Backoff`` is a frozen policy: wait ``base`` seconds before the first retry, multiply
by ``factor`` for each further one, never more than ``cap``; ``max_attempts`` bounds
the attempts (``None``: unbounded). The defaults wait 3, 6, 12, 24, 30, 30 seconds
between 7 attempts. ``jitter`` (0 to 1, default 0) shortens each actual wait by a random
fraction up to ``jitter``, so that several clients (or a feed's connections) that failed
together do not retry in lockstep: a wait lies in ``[(1 - jitter) * delay, delay]``.

Two ways to use it, one shared path:

- ``await retry(fn, backoff=..., retryable=...)`` for a single operation (REST calls);
- an ``Attempts`` counter (``backoff.attempts()``) for a loop that lives on, like a
  feed's reconnect loop: ``failed()`` counts a failure and says whether to go on,
  ``await sleep()`` waits, ``succeeded()`` marks a good connection so that the count
  starts again once it has stayed up for ``stable_after`` seconds.

Every wait is ``anyio.sleep``: an enclosing cancel scope stops a retry loop at once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import anyio
import attrs

__all__ = ["Attempts", "Backoff", "retry"]

T = TypeVar("T")

log = logging.getLogger(__name__)

_ge = attrs.validators.ge
_DEFAULT_ATTEMPTS: int | None = 7


@attrs.frozen
class Backoff:
    """Exponential backoff: ``min(base * factor**n, cap)`` before retry ``n`` (from 0).

    ``max_attempts`` counts every attempt, the first included; ``None`` never gives up.
    ``jitter`` (0 to 1) randomises the actual waits (:meth:`wait`); :meth:`delay` and
    :meth:`delays` stay the deterministic schedule. Invalid values raise ``ValueError``.
    """

    base: float = attrs.field(default=3.0, validator=_ge(0))
    factor: float = attrs.field(default=2.0, validator=_ge(1))
    cap: float = attrs.field(default=30.0, validator=_ge(0))
    max_attempts: int | None = attrs.field(
        default=_DEFAULT_ATTEMPTS, validator=attrs.validators.optional(_ge(1))
    )
    jitter: float = attrs.field(
        default=0.0, validator=[_ge(0), attrs.validators.le(1)], kw_only=True
    )

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0 is the first retry)."""
        if retry < 0:
            raise ValueError(f"retry must be >= 0, got {retry!r}")
        # Stop multiplying once past the cap, so huge retry numbers cannot overflow.
        delay = self.base
        for _ in range(retry):
            if delay >= self.cap:
                break
            delay *= self.factor
        return min(delay, self.cap)

    def wait(self, retry: int, *, rng: Callable[[], float] = random.random) -> float:
        """The actual wait before retry ``retry``: :meth:`delay` shortened by a random
        fraction up to ``jitter`` (``rng()`` in ``[0, 1)``); exactly ``delay`` without jitter.
        """
        delay = self.delay(retry)
        return delay * (1.0 - self.jitter * rng()) if self.jitter else delay

    def delays(self) -> Iterator[float]:
        """The waits between attempts, in order: ``max_attempts - 1`` of them (endless if None)."""
        n = 0
        while self.max_attempts is None or n < self.max_attempts - 1:
            yield self.delay(n)
            n += 1

    def attempts(self, *, stable_after: float | None = None) -> Attempts:
        """A fresh failure counter over this policy (see ``Attempts``)."""
        return Attempts(self, stable_after=stable_after)


@attrs.define
class Attempts:
    """A mutable failure counter over a ``Backoff``, for loops that retry for a long time.

    ``failed()`` counts a failure and returns True while another attempt is allowed;
    ``await sleep()`` then waits ``delay``: the policy's wait for the failures counted so
    far, drawn once per failure (with the policy's jitter).
    ``succeeded()`` marks a success: with ``stable_after=None`` the count resets at
    once; otherwise it resets on the next ``failed()`` only if at least
    ``stable_after`` seconds passed since the success (so a connection that drops
    right after connecting keeps backing off). ``reset()`` resets unconditionally.
    """

    policy: Backoff
    stable_after: float | None = None
    failures: int = attrs.field(default=0, init=False)
    _up_since: float | None = attrs.field(default=None, init=False, repr=False)
    _wait: float | None = attrs.field(default=None, init=False, repr=False)

    @property
    def exhausted(self) -> bool:
        """True when no attempt is left."""
        limit = self.policy.max_attempts
        return limit is not None and self.failures >= limit

    def failed(self) -> bool:
        """Count one failed attempt; True when another attempt is allowed."""
        if self._up_since is not None:
            if (
                self.stable_after is not None
                and anyio.current_time() - self._up_since >= self.stable_after
            ):
                self.failures = 0
            self._up_since = None
        self.failures += 1
        self._wait = self.policy.wait(self.failures - 1)
        return not self.exhausted

    def succeeded(self) -> None:
        """Mark a successful attempt (for example: connected). Call inside an event loop."""
        if self.stable_after is None:
            self.reset()
        else:
            self._up_since = anyio.current_time()

    def reset(self) -> None:
        """Start counting from zero."""
        self.failures = 0
        self._up_since = None
        self._wait = None

    @property
    def delay(self) -> float:
        """The wait before the next attempt, given the failures counted so far (with jitter:
        the value drawn at the last ``failed()``, the same until the next one)."""
        if self._wait is None or self.failures == 0:
            return self.policy.delay(max(self.failures - 1, 0))
        return self._wait

    async def sleep(self) -> None:
        """Wait ``delay`` seconds.

        Cancellation: raises the backend's cancellation at once, counter unchanged.
        """
        await anyio.sleep(self.delay)


def _always(exc: Exception) -> bool:
    return True


async def retry(
    fn: Callable[[], Awaitable[T]],
    *,
    backoff: Backoff,
    retryable: Callable[[Exception], bool] = _always,
    on_retry: Callable[[Exception, int, float], None] | None = None,
) -> T:
    """Await ``fn()`` until it returns, retrying failures that ``retryable`` accepts.

    Returns what ``fn`` returns. An exception that is not retryable, or the last one
    when ``backoff.max_attempts`` are used up, is raised as is: never returns None
    in place of a result. ``on_retry(error, attempt, delay)`` is called before each
    wait (``attempt`` counts from 1). Only ``Exception``s are retried; cancellation
    and other ``BaseException``s go straight through.

    Cancellation: a cancel during ``fn`` or during a wait propagates at once; no
    further attempt is made.
    """
    attempts = backoff.attempts()
    while True:
        try:
            return await fn()
        except Exception as exc:
            if not retryable(exc) or not attempts.failed():
                raise
            if on_retry is not None:
                on_retry(exc, attempts.failures, attempts.delay)
            else:
                log.debug("retry %d in %.3g s after %r", attempts.failures, attempts.delay, exc)
            await attempts.sleep()
