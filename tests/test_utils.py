"""utils: as_completed, gather, graceful shutdown on signals."""

from __future__ import annotations

import inspect
import os
import signal
from collections.abc import Coroutine
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from aio_trader.utils import as_completed, gather, graceful_shutdown, run_until_signal


async def test_results_arrive_as_each_finishes_with_their_names() -> None:
    events = {name: anyio.Event() for name in ("a", "b", "c")}

    async def job(name: str) -> str:
        await events[name].wait()
        return name.upper()

    async with as_completed({name: job(name) for name in events}) as results:
        received = []
        for name in ("b", "c", "a"):  # finish them in this order, one at a time
            events[name].set()
            received.append(await results.__anext__())
        with pytest.raises(StopAsyncIteration):
            await results.__anext__()
    assert received == [("b", "B"), ("c", "C"), ("a", "A")]


async def test_pairs_are_accepted_and_concurrency_is_bounded() -> None:
    running = peak = 0

    async def job(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01)
        running -= 1
        return n * n

    lazy = ((n, job(n)) for n in range(10))  # a lazy iterable of (key, awaitable)
    async with as_completed(lazy, limit=3) as results:
        got = {key: value async for key, value in results}
    assert got == {n: n * n for n in range(10)}
    assert peak == 3


async def test_an_exception_cancels_the_rest_and_is_raised_as_itself() -> None:
    cancelled: list[str] = []

    async def slow(name: str) -> str:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(name)
        return name

    async def bad() -> str:
        await anyio.sleep(0.01)
        raise ValueError("bad job")

    received: list[tuple[str, str]] = []

    async def consume() -> None:
        async with as_completed({"x": slow("x"), "bad": bad(), "y": slow("y")}) as results:
            async for pair in results:
                received.append(pair)

    with pytest.raises(ValueError, match="bad job"):
        await consume()
    assert received == []
    assert sorted(cancelled) == ["x", "y"]


async def test_the_raised_error_keeps_its_own_cause() -> None:
    async def job() -> int:
        try:
            raise OSError("the cause")
        except OSError as exc:
            raise RuntimeError("outer") from exc

    with pytest.raises(RuntimeError, match="outer") as caught:
        await gather(job())
    assert isinstance(caught.value.__cause__, OSError)
    assert str(caught.value.__cause__) == "the cause"


async def test_an_error_in_the_loop_body_is_raised_as_itself() -> None:
    async def job() -> int:
        return 1

    async def consume() -> None:
        async with as_completed({"one": job()}) as results:
            async for _ in results:
                raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        await consume()


async def test_breaking_out_cancels_the_rest_and_closes_unstarted_jobs() -> None:
    cancelled: list[int] = []

    async def job(n: int) -> int:
        if n == 0:
            return 0
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(n)
        return n

    coros: list[Coroutine[Any, Any, int]] = [job(n) for n in range(6)]
    async with as_completed(list(enumerate(coros)), limit=3) as results:
        async for key, _ in results:
            assert key == 0
            break
    # jobs 1-2 were running (then 3 took job 0's place); 4-5 never started
    assert sorted(cancelled) == [1, 2, 3]
    assert all(inspect.getcoroutinestate(c) == inspect.CORO_CLOSED for c in coros)


async def test_no_jobs_means_no_results() -> None:
    nothing: dict[str, Coroutine[Any, Any, int]] = {}
    async with as_completed(nothing) as results:
        assert [pair async for pair in results] == []


async def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        async with as_completed({}, limit=0):
            pass


async def test_cancelling_the_scope_cancels_every_job() -> None:
    cancelled: list[int] = []

    async def job(n: int) -> int:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.append(n)
        return n

    with anyio.move_on_after(0.05) as scope:
        async with as_completed({n: job(n) for n in range(3)}) as results:
            async for _ in results:
                pass
    assert scope.cancelled_caught
    assert sorted(cancelled) == [0, 1, 2]


async def test_gather_keeps_argument_order() -> None:
    async def job(n: int, delay: float) -> int:
        await anyio.sleep(delay)
        return n

    assert await gather(job(1, 0.03), job(2, 0.0), job(3, 0.01), limit=2) == [1, 2, 3]
    assert await gather() == []


async def test_gather_raises_the_first_error() -> None:
    async def fails() -> int:
        raise LookupError("nope")

    async def fine() -> int:
        return 1

    with pytest.raises(LookupError, match="nope"):
        await gather(fine(), fails())


async def test_a_signal_cancels_the_work_cleanly() -> None:
    cleaned_up = False
    with anyio.fail_after(30):  # a hang guard only
        async with graceful_shutdown() as shutdown:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                await anyio.sleep_forever()
            finally:
                cleaned_up = True
    assert shutdown.signal is signal.SIGTERM
    assert cleaned_up


async def test_without_a_signal_the_body_just_finishes() -> None:
    async with graceful_shutdown() as shutdown:
        await anyio.lowlevel.checkpoint()
    assert shutdown.signal is None


async def test_run_until_signal_reports_the_signal() -> None:
    async def main(started: list[bool]) -> None:
        started.append(True)
        os.kill(os.getpid(), signal.SIGINT)
        await anyio.sleep_forever()

    started: list[bool] = []
    with anyio.fail_after(30):  # a hang guard only
        assert await run_until_signal(main, started) is signal.SIGINT
    assert started == [True]

    async def quick() -> int:
        return 5

    assert await run_until_signal(quick) is None
