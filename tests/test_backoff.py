"""Backoff policy, the retry loop and the Attempts counter."""

from __future__ import annotations

import itertools

import anyio
import pytest

from aio_trader.backoff import Attempts, Backoff, retry

TINY = Backoff(base=0.001, factor=2, cap=0.004, max_attempts=4)


def test_default_schedule_is_3_6_12_24_30_30() -> None:
    backoff = Backoff()
    assert (backoff.base, backoff.factor, backoff.cap) == (3.0, 2.0, 30.0)
    assert list(backoff.delays()) == [3, 6, 12, 24, 30, 30]
    assert [backoff.delay(n) for n in range(8)] == [3, 6, 12, 24, 30, 30, 30, 30]
    assert backoff.delay(10_000) == 30  # no overflow for huge retry numbers


def test_schedule_is_configurable_and_bounded() -> None:
    assert list(Backoff(base=1, factor=3, cap=10, max_attempts=5).delays()) == [1, 3, 9, 10]
    assert list(Backoff(max_attempts=1).delays()) == []
    endless = Backoff(base=0.5, max_attempts=None).delays()
    assert list(itertools.islice(endless, 8)) == [0.5, 1, 2, 4, 8, 16, 30, 30]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base": -1},
        {"cap": -0.1},
        {"factor": 0.5},
        {"max_attempts": 0},
        {"base": float("nan")},
    ],
)
def test_invalid_policy_is_a_value_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_negative_retry_number_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="retry"):
        Backoff().delay(-1)


async def test_retry_returns_the_result_after_failures() -> None:
    calls = 0
    seen: list[tuple[str, int, float]] = []

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise OSError(f"fail {calls}")
        return "ok"

    result = await retry(
        flaky, backoff=TINY, on_retry=lambda exc, n, delay: seen.append((str(exc), n, delay))
    )
    assert result == "ok"
    assert calls == 3
    assert seen == [("fail 1", 1, 0.001), ("fail 2", 2, 0.002)]


async def test_retry_gives_up_by_raising_the_last_error() -> None:
    calls = 0

    async def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise OSError(f"fail {calls}")

    with pytest.raises(OSError, match="fail 4"):
        await retry(always_fails, backoff=TINY)
    assert calls == TINY.max_attempts


async def test_not_retryable_errors_are_raised_at_once() -> None:
    calls = 0

    async def fails() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("no")

    with pytest.raises(KeyError):
        await retry(fails, backoff=TINY, retryable=lambda exc: isinstance(exc, OSError))
    assert calls == 1


async def test_base_exceptions_are_never_retried() -> None:
    class Stop(BaseException):
        pass

    calls = 0

    async def stops() -> None:
        nonlocal calls
        calls += 1
        raise Stop

    with pytest.raises(Stop):
        await retry(stops, backoff=TINY)
    assert calls == 1


async def test_cancel_during_a_wait_returns_at_once_without_another_attempt() -> None:
    calls = 0

    async def fails() -> None:
        nonlocal calls
        calls += 1
        raise OSError

    with anyio.move_on_after(0.2) as scope:
        await retry(fails, backoff=Backoff(base=60, max_attempts=3))
    assert scope.cancelled_caught
    assert calls == 1


def test_attempts_count_failures_and_give_up() -> None:
    attempts = TINY.attempts()
    assert (attempts.failures, attempts.exhausted, attempts.delay) == (0, False, 0.001)
    assert attempts.failed()
    assert attempts.delay == 0.001
    assert attempts.failed()
    assert attempts.delay == 0.002
    assert attempts.failed()
    assert not attempts.failed()  # the 4th failure uses up max_attempts=4
    assert attempts.exhausted
    attempts.reset()
    assert (attempts.failures, attempts.exhausted) == (0, False)


def test_unbounded_attempts_never_exhaust() -> None:
    attempts = Attempts(Backoff(max_attempts=None))
    assert all(attempts.failed() for _ in range(1000))
    assert attempts.delay == 30


async def test_success_resets_at_once_without_stable_after() -> None:
    attempts = TINY.attempts()
    attempts.failed()
    attempts.failed()
    attempts.succeeded()
    assert attempts.failures == 0


async def test_success_resets_only_after_a_stable_period() -> None:
    attempts = TINY.attempts(stable_after=0.05)
    attempts.failed()
    attempts.failed()
    attempts.succeeded()
    attempts.failed()  # dropped right after connecting: keeps backing off
    assert attempts.failures == 3
    attempts.succeeded()
    await anyio.sleep(0.06)
    attempts.failed()  # dropped after a stable period: counting starts again
    assert attempts.failures == 1


async def test_attempts_sleep_is_cancellable() -> None:
    attempts = Backoff(base=60).attempts()
    attempts.failed()
    with anyio.move_on_after(0.05) as scope:
        await attempts.sleep()
    assert scope.cancelled_caught
    assert attempts.failures == 1


# -- jitter -----------------------------------------------------------------------------------


def test_jitter_keeps_waits_within_the_schedule_and_spreads_them() -> None:
    policy = Backoff(base=1, factor=2, cap=8, max_attempts=None, jitter=0.5)
    assert list(itertools.islice(policy.delays(), 5)) == [1, 2, 4, 8, 8]  # unchanged schedule
    for retry_number in range(6):
        waits = [policy.wait(retry_number) for _ in range(50)]
        delay = policy.delay(retry_number)
        assert all(delay * 0.5 <= w <= delay for w in waits)
        assert len(set(waits)) > 1  # not in lockstep
    assert policy.wait(2, rng=lambda: 0.0) == 4
    assert policy.wait(2, rng=lambda: 0.5) == 3
    assert Backoff(base=1, jitter=0).wait(0) == 1  # no jitter: the schedule itself


def test_three_counters_failing_together_wait_differently() -> None:
    policy = Backoff(base=1, factor=2, cap=30, max_attempts=None, jitter=0.5)
    counters = [policy.attempts() for _ in range(3)]
    for counter in counters:
        counter.failed()
        counter.failed()
    delays = [counter.delay for counter in counters]
    assert len(set(delays)) == 3
    assert all(1 <= d <= 2 for d in delays)
    assert [counter.delay for counter in counters] == delays  # drawn once per failure


@pytest.mark.parametrize("jitter", [-0.1, 1.5, float("nan")])
def test_invalid_jitter_is_a_value_error(jitter: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        Backoff(jitter=jitter)
