"""RateLimiter: sliding windows, combined rates, FIFO fairness, cancellation safety."""

from __future__ import annotations

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from aio_trader.ratelimit import Rate, RateLimiter, RateLimiterStatistics


def assert_windows_hold(times: list[float], rate: Rate) -> None:
    """No interval of ``rate.period`` holds more than ``rate.count`` of ``times``."""
    times = sorted(times)
    for first, later in zip(times, times[rate.count :], strict=False):
        assert later - first >= rate.period, (first, later, rate)


@pytest.mark.parametrize(("count", "period"), [(0, 1.0), (-1, 1.0), (1, 0.0), (1, -1.0)])
def test_invalid_rates_are_value_errors(count: int, period: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        Rate(count, period)


def test_limiter_needs_rates() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RateLimiter()
    with pytest.raises(TypeError, match="Rate"):
        RateLimiter((10, 1))  # type: ignore[arg-type]


def test_repr_names_the_rates() -> None:
    limiter = RateLimiter(Rate(10), Rate(200, 60), name="orders")
    assert repr(limiter) == "RateLimiter('orders', 10/1s, 200/60s)"


async def test_40_calls_at_200_per_second_never_exceed_any_window() -> None:
    # 200/s as 10 per 50 ms, combined with 25 per 250 ms: the floor for 40 calls is 0.3 s.
    rates = (Rate(10, 0.05), Rate(25, 0.25))
    limiter = RateLimiter(*rates)
    times: list[float] = []

    async def call() -> None:
        times.append(await limiter.acquire())

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for _ in range(40):
            tg.start_soon(call)
    elapsed = anyio.current_time() - start
    assert len(times) == 40
    for rate in rates:
        assert_windows_hold(times, rate)
    assert elapsed >= 0.3  # a lower bound only
    stats = limiter.statistics()
    assert (stats.acquired, stats.waiting) == (40, 0)


async def test_a_burst_within_the_rate_does_not_wait() -> None:
    limiter = RateLimiter(Rate(5, 60))
    times = [await limiter.acquire() for _ in range(5)]
    assert limiter.statistics().in_window == (5,)
    assert_windows_hold(times, Rate(5, 60))


async def test_waiters_are_served_first_come_first_served() -> None:
    limiter = RateLimiter(Rate(1, 0.02))
    order: list[int] = []

    async def call(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(call, n)
            await wait_all_tasks_blocked()  # each waiter queues before the next arrives
    assert order == list(range(8))


async def test_a_cancelled_waiter_takes_no_slot() -> None:
    # The 60-second rate has room for exactly one more call after the first one.
    limiter = RateLimiter(Rate(1, 0.5), Rate(2, 60))
    await limiter.acquire()
    scopes = [anyio.CancelScope(), anyio.CancelScope()]
    reached: list[int] = []

    async def waiter(n: int) -> None:
        with scopes[n]:
            await limiter.acquire()
            reached.append(n)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, 0)  # sleeps for the 0.5 s window, holding the queue's head
        await wait_all_tasks_blocked()
        tg.start_soon(waiter, 1)  # queued behind it
        await wait_all_tasks_blocked()
        assert limiter.statistics().waiting == 2
        scopes[0].cancel()
        scopes[1].cancel()
    assert reached == []
    stats = limiter.statistics()
    assert (stats.acquired, stats.waiting, stats.in_window[1]) == (1, 0, 1)
    # The slot both cancelled waiters wanted is still free (else this would wait 60 s).
    with anyio.fail_after(30):
        await limiter.acquire()
    assert limiter.statistics().in_window[1] == 2


async def test_cancelled_before_waiting_takes_no_slot() -> None:
    limiter = RateLimiter(Rate(1, 60))
    with anyio.CancelScope() as scope:
        scope.cancel()
        await limiter.acquire()  # a checkpoint even when a slot is free
        pytest.fail("not cancelled")
    assert limiter.statistics().acquired == 0


async def test_async_with_takes_a_slot() -> None:
    limiter = RateLimiter(Rate(3, 60))
    async with limiter:
        pass
    async with limiter:
        pass
    stats = limiter.statistics()
    assert stats == RateLimiterStatistics(
        rates=(Rate(3, 60),), acquired=2, waiting=0, in_window=(2,)
    )


# -- reserve / take / release: the slot is stamped when the guarded action happens --------


async def test_a_reservation_holds_the_turn_and_take_stamps_the_slot() -> None:
    limiter = RateLimiter(Rate(5, 60))
    taken: list[float] = []

    async def later() -> None:
        taken.append(await limiter.acquire())

    async with anyio.create_task_group() as tg:
        reservation = await limiter.reserve()
        tg.start_soon(later)
        await wait_all_tasks_blocked()
        # The turn is held: the next caller queues, and nothing is taken yet.
        assert (limiter.statistics().acquired, limiter.statistics().waiting) == (0, 1)
        stamped = reservation.take()
        assert reservation.taken_at == stamped
        assert reservation.take() == stamped  # taking again changes nothing
    assert limiter.statistics().acquired == 2
    assert taken[0] >= stamped


async def test_a_reservation_given_up_takes_nothing_and_lets_the_next_waiter_in() -> None:
    limiter = RateLimiter(Rate(1, 60))
    async with await limiter.reserve():
        pass  # left without take(): released
    reservation = await limiter.reserve()
    reservation.release()
    reservation.release()  # idempotent
    with pytest.raises(RuntimeError, match="released"):
        reservation.take()
    assert limiter.statistics().acquired == 0
    # The one slot of the minute is still free: this does not wait (else 60 s).
    with anyio.fail_after(30):
        await limiter.acquire()
    assert limiter.statistics().acquired == 1


async def test_a_reservation_left_by_an_error_is_released() -> None:
    limiter = RateLimiter(Rate(1, 60))
    with pytest.raises(LookupError):
        async with await limiter.reserve():
            raise LookupError
    with anyio.fail_after(30):
        await limiter.acquire()


async def test_a_cancelled_reserve_holds_nothing() -> None:
    limiter = RateLimiter(Rate(1, 60))
    await limiter.acquire()  # the minute's slot is gone: the next reserve waits 60 s
    with anyio.CancelScope() as scope:
        scope.cancel()
        await limiter.reserve()
    async with anyio.create_task_group() as tg:
        tg.start_soon(limiter.reserve)  # holds the turn while it sleeps for the slot
        await wait_all_tasks_blocked()
        assert limiter.statistics().waiting == 1
        tg.cancel_scope.cancel()
    stats = limiter.statistics()
    assert (stats.acquired, stats.waiting) == (1, 0)
    assert not limiter._lock.locked()  # the turn was given back
