"""The feed's channel (anyio memory object streams under three overflow policies), by
properties on both backends, and the feed module's public names."""

from __future__ import annotations

import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aio_trader.kite._feed as feed_module
from aio_trader.kite import FeedMessage, LtpTick, OrderUpdate
from aio_trader.kite._feed import _CHANNELS, Overflow, _Channel

#: Frames of ticks: (token, price) pairs, a few tokens so that they repeat.
frames = st.lists(
    st.lists(
        st.builds(LtpTick, st.integers(1, 6), st.integers(1, 10**6).map(float)),
        min_size=1,
        max_size=12,
    ),
    max_size=20,
)
sizes = st.integers(1, 30)
RECORDS = (OrderUpdate, FeedMessage)


def channel(policy: Overflow, size: int) -> _Channel[Any]:
    ch = _CHANNELS[policy](size, lambda item: isinstance(item, RECORDS))
    ch.open()
    return ch


def test_feed_module_all_is_pinned() -> None:
    assert sorted(feed_module.__all__) == [
        "ConnectionEvent",
        "DEFAULT_BACKOFF",
        "FeedConnected",
        "FeedDisconnected",
        "FeedItem",
        "FeedStatistics",
        "KITE_CONNECT_ROOT",
        "KITE_WEB_ROOT",
        "KiteFeed",
        "Overflow",
        "RawFrame",
        "RawKiteFeed",
    ]


def test_each_policy_is_built_on_a_memory_object_stream() -> None:
    for policy in Overflow:
        ch = channel(policy, 10)
        assert isinstance(ch._receive, anyio.streams.memory.MemoryObjectReceiveStream)
        with ch.sender() as send:  # one send clone per connection
            assert isinstance(send, anyio.streams.memory.MemoryObjectSendStream)
    assert channel(Overflow.LOSSLESS, 10)._receive.statistics().max_buffer_size == 10


async def read_all(ch: _Channel[Any]) -> list[object]:
    items = []
    while len(ch):
        items.append(await ch.get())
    return items


@pytest.mark.anyio  # (hypothesis hides the coroutine from conftest's auto-marking)
@given(frames, sizes)
async def test_lossless_delivers_everything_in_order(
    batches: list[list[LtpTick]], size: int
) -> None:
    ch = channel(Overflow.LOSSLESS, size)
    got: list[object] = []
    expected = [tick for batch in batches for tick in batch]

    async def consume() -> None:
        while len(got) < len(expected):
            got.append(await ch.get())
            assert len(ch) <= size  # the stream's bound holds

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            with ch.sender() as send:
                for batch in batches:
                    await ch.put_ticks(send, list(batch))
    assert got == expected
    assert ch.dropped == 0


@pytest.mark.anyio
@given(frames, sizes)
async def test_drop_oldest_keeps_the_newest(batches: list[list[LtpTick]], size: int) -> None:
    ch = channel(Overflow.DROP_OLDEST, size)
    with ch.sender() as send:
        for batch in batches:
            await ch.put_ticks(send, list(batch))
    everything = [tick for batch in batches for tick in batch]
    assert await read_all(ch) == everything[-size:]
    assert ch.dropped == max(len(everything) - size, 0)


@pytest.mark.anyio
@given(frames, sizes)
async def test_conflate_keeps_the_newest_tick_per_instrument(
    batches: list[list[LtpTick]], size: int
) -> None:
    ch = channel(Overflow.CONFLATE, size)
    with ch.sender() as send:
        for batch in batches:
            await ch.put_ticks(send, list(batch))
    newest: dict[int, LtpTick] = {}
    for tick in (tick for batch in batches for tick in batch):
        newest[tick.instrument_token] = tick  # first arrival sets the place in line
    assert await read_all(ch) == list(newest.values())
    assert ch.dropped == sum(map(len, batches)) - len(newest)


@pytest.mark.anyio
@given(frames, st.sampled_from([Overflow.DROP_OLDEST, Overflow.CONFLATE]), st.integers(1, 8))
async def test_records_are_never_dropped_and_keep_their_order(
    batches: list[list[LtpTick]], policy: Overflow, size: int
) -> None:
    ch = channel(policy, size)
    updates = [OrderUpdate(order_id=str(n)) for n in range(min(len(batches), size))]
    with ch.sender() as send:
        for n, batch in enumerate(batches):
            if n < len(updates):
                await ch.put_record(send, updates[n])  # at most size of them: never waits
            for tick in batch:
                await ch.put_ticks(send, [tick])
    items = await read_all(ch)
    assert [i for i in items if isinstance(i, OrderUpdate)] == updates


async def test_records_past_the_bound_make_the_writer_wait() -> None:
    for policy in Overflow:
        ch = channel(policy, 2)
        records = [OrderUpdate(order_id=str(n)) for n in range(3)]
        with ch.sender() as send, anyio.fail_after(10):
            await ch.put_record(send, records[0])
            await ch.put_record(send, records[1])
            with anyio.move_on_after(0.05) as scope:
                await ch.put_ticks(send, [LtpTick(1, 1.0), LtpTick(2, 1.0), LtpTick(3, 1.0)])
                await ch.put_record(send, records[2])
            assert scope.cancelled_caught, policy  # the reader would wait (TCP backpressure)
            assert [await ch.get(), await ch.get()] == records[:2], policy
            await ch.put_record(send, records[2])  # room again


async def test_get_on_a_closed_channel_stops_or_raises_its_error() -> None:
    for policy in Overflow:
        ch = channel(policy, 10)
        with ch.sender() as send:
            await ch.put_ticks(send, [LtpTick(1, 1.0)])
            ch.close()
            assert len(ch) == 0
            with pytest.raises(StopAsyncIteration):
                await ch.get()
        failed = channel(policy, 10)
        failed.close(KeyError("boom"))
        with pytest.raises(KeyError, match="boom"):
            await failed.get()


async def test_a_waiting_reader_ends_once_closed_and_the_senders_are_gone() -> None:
    ch = channel(Overflow.LOSSLESS, 10)
    send = ch.sender()
    ended = False

    async def read() -> None:
        nonlocal ended
        with pytest.raises(StopAsyncIteration):
            await ch.get()
        ended = True

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            ch.close()
            send.close()  # a connection task ends
    assert ended


@pytest.mark.parametrize("policy", list(Overflow))
async def test_cancelled_get_loses_nothing(policy: Overflow) -> None:
    ch = channel(policy, 10)
    with ch.sender() as send:
        with anyio.move_on_after(0.05) as scope:
            await ch.get()  # waits: nothing there
        assert scope.cancelled_caught
        await ch.put_ticks(send, [LtpTick(1, 1.0)])
        await ch.put_record(send, OrderUpdate(order_id="1"))
        with anyio.CancelScope() as cancelled:
            cancelled.cancel()
            await ch.get()  # a checkpoint: cancelled before taking anything
        assert cancelled.cancelled_caught
        assert await read_all(ch) == [LtpTick(1, 1.0), OrderUpdate(order_id="1")]


@pytest.mark.parametrize("policy", list(Overflow))
async def test_every_receive_is_a_checkpoint_a_busy_loop_ends_on_cancel(policy: Overflow) -> None:
    total = 20_000
    ch = channel(policy, total)
    with ch.sender() as send:
        # distinct instruments, so that conflate keeps them all: always an item waiting
        await ch.put_ticks(send, [LtpTick(token, 1.0) for token in range(1, total + 1)])
    taken = 0
    with anyio.move_on_after(0.2) as scope:
        async for _ in ch:
            taken += 1
            time.sleep(0.001)  # noqa: ASYNC251 (a busy body that never awaits: 20 s in all)
    assert scope.cancelled_caught  # the loop ended by the cancellation...
    assert 0 < taken < total  # ...with items still waiting
    assert len(ch) == total - taken  # nothing lost by the cancel


async def test_a_busy_consumer_lets_other_tasks_run() -> None:
    ch = channel(Overflow.LOSSLESS, 1000)
    with ch.sender() as send:
        await ch.put_ticks(send, [LtpTick(1, 1.0)] * 1000)
    runs = 0

    async def other() -> None:
        nonlocal runs
        while True:
            runs += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        for _ in range(100):
            await ch.get()  # no await in the body: only the receives yield
        assert runs >= 50  # the other task ran between receives
        tg.cancel_scope.cancel()
