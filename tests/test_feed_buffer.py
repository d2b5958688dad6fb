"""The feed's channel (anyio memory object streams under three overflow policies), by
properties on both backends, and the feed module's public names."""

from __future__ import annotations

import math
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aio_trader.kite._feed as feed_module
from aio_trader.feed._channel import Batches, Channel, Overflow, make_channel
from aio_trader.kite import FeedMessage, LtpTick, OrderUpdate

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


def channel(policy: Overflow, size: int) -> Channel[Any]:
    ch = make_channel(
        policy,
        size,
        is_record=lambda item: isinstance(item, RECORDS),
        key=lambda tick: tick.instrument_token,
    )
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
    # lossless counts its items itself (a producer ahead of the reader wakes once per
    # half of the size, not once per item): the stream has no bound of its own
    lossless = channel(Overflow.LOSSLESS, 10)
    assert (lossless.size, lossless._receive.statistics().max_buffer_size) == (10, math.inf)


async def read_all(ch: Channel[Any]) -> list[object]:
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
                    await ch.put_items(send, list(batch))
    assert got == expected
    assert ch.dropped == 0


@pytest.mark.anyio
@given(frames, sizes)
async def test_drop_oldest_keeps_the_newest(batches: list[list[LtpTick]], size: int) -> None:
    ch = channel(Overflow.DROP_OLDEST, size)
    with ch.sender() as send:
        for batch in batches:
            await ch.put_items(send, list(batch))
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
            await ch.put_items(send, list(batch))
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
                await ch.put_items(send, [tick])
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
                await ch.put_items(send, [LtpTick(1, 1.0), LtpTick(2, 1.0), LtpTick(3, 1.0)])
                await ch.put_record(send, records[2])
            assert scope.cancelled_caught, policy  # the reader would wait (TCP backpressure)
            assert [await ch.get(), await ch.get()] == records[:2], policy
            await ch.put_record(send, records[2])  # room again


async def test_get_on_a_closed_channel_stops_or_raises_its_error() -> None:
    for policy in Overflow:
        ch = channel(policy, 10)
        with ch.sender() as send:
            await ch.put_items(send, [LtpTick(1, 1.0)])
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
        await ch.put_items(send, [LtpTick(1, 1.0)])
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
        await ch.put_items(send, [LtpTick(token, 1.0) for token in range(1, total + 1)])
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
        await ch.put_items(send, [LtpTick(1, 1.0)] * 1000)
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


# -- batches: one checkpoint per list of the items already waiting --------------------------

#: A plan for one channel: frames of ticks, some preceded by a record (an order update).
plans = st.lists(st.tuples(st.booleans(), frames.map(lambda f: f[0] if f else [])), max_size=20)


def unread(policy: Overflow, size: int) -> Channel[Any]:
    """A channel to fill before reading: ``lossless`` would wait for room, so it gets all."""
    return channel(policy, 1000 if policy is Overflow.LOSSLESS else size)


async def fill(ch: Channel[Any], plan: list[tuple[bool, list[LtpTick]]]) -> None:
    """Put the plan's records and frames into ``ch`` (records: at most ``ch.size``)."""
    with ch.sender() as send:
        records = 0
        for n, (record, ticks) in enumerate(plan):
            if record and records < ch.size:
                records += 1
                await ch.put_record(send, OrderUpdate(order_id=str(n)))
            if ticks:
                await ch.put_items(send, list(ticks))


async def batches_of(ch: Channel[Any], max_items: int) -> list[list[object]]:
    out = []
    while len(ch):
        out.append(await ch.get_batch(max_items))
    return out


@pytest.mark.anyio
@given(plans, st.sampled_from(list(Overflow)), sizes, st.integers(1, 12))
async def test_batches_hold_what_per_item_reads_get_in_the_same_order(
    plan: list[tuple[bool, list[LtpTick]]], policy: Overflow, size: int, max_items: int
) -> None:
    per_item, batched = unread(policy, size), unread(policy, size)
    await fill(per_item, plan)
    await fill(batched, plan)
    expected = await read_all(per_item)
    got = await batches_of(batched, max_items)
    assert [item for batch in got for item in batch] == expected  # same items, same order
    assert all(1 <= len(batch) <= max_items for batch in got)
    assert all(len(batch) == max_items for batch in got[:-1])  # takes all that waits
    assert batched.dropped == per_item.dropped  # the same policy, the same drops
    assert len(batched) == 0


@pytest.mark.anyio
@given(plans, st.sampled_from(list(Overflow)), st.integers(1, 5))
async def test_per_item_and_batched_reads_mixed_keep_the_order(
    plan: list[tuple[bool, list[LtpTick]]], policy: Overflow, max_items: int
) -> None:
    reference, mixed = unread(policy, 8), unread(policy, 8)
    await fill(reference, plan)
    await fill(mixed, plan)
    expected = await read_all(reference)
    got: list[object] = []
    turn = 0
    while len(mixed):
        turn += 1
        if turn % 2:
            got.append(await mixed.get())
        else:
            got.extend(await mixed.get_batch(max_items))
    assert got == expected


async def test_records_taken_in_a_batch_make_room_for_the_writer() -> None:
    for policy in (Overflow.DROP_OLDEST, Overflow.CONFLATE):
        ch = channel(policy, 2)
        records = [OrderUpdate(order_id=str(n)) for n in range(4)]
        with ch.sender() as send, anyio.fail_after(10):
            await ch.put_record(send, records[0])
            await ch.put_items(send, [LtpTick(1, 1.0)])
            await ch.put_record(send, records[1])
            assert await ch.get_batch(10) == [records[0], LtpTick(1, 1.0), records[1]], policy
            await ch.put_record(send, records[2])  # room again: never waits
            await ch.put_record(send, records[3])
            assert await ch.get_batch(10) == records[2:], policy


@pytest.mark.parametrize("policy", list(Overflow))
async def test_a_cancelled_batch_loses_nothing(policy: Overflow) -> None:
    ch = channel(policy, 10)
    with ch.sender() as send:
        with anyio.move_on_after(0.05) as scope:
            await ch.get_batch(5)  # waits: nothing there
        assert scope.cancelled_caught
        await ch.put_items(send, [LtpTick(1, 1.0), LtpTick(2, 1.0)])
        await ch.put_record(send, OrderUpdate(order_id="1"))
        with anyio.CancelScope() as cancelled:
            cancelled.cancel()
            await ch.get_batch(5)  # a checkpoint: cancelled before taking anything
        assert cancelled.cancelled_caught
        assert len(ch) == 3
        assert await ch.get_batch(5) == [LtpTick(1, 1.0), LtpTick(2, 1.0), OrderUpdate("1")]


@pytest.mark.parametrize("policy", list(Overflow))
async def test_batches_of_a_closed_channel_stop_or_raise_its_error(policy: Overflow) -> None:
    ch = channel(policy, 10)
    with ch.sender() as send:
        await ch.put_items(send, [LtpTick(1, 1.0)])
        ch.close()
        with pytest.raises(StopAsyncIteration):
            await ch.get_batch(10)
    failed = channel(policy, 10)
    failed.close(KeyError("boom"))
    with pytest.raises(KeyError, match="boom"):
        await failed.get_batch(10)


@pytest.mark.parametrize("policy", list(Overflow))
async def test_every_batch_is_a_checkpoint_a_busy_loop_ends_on_cancel(policy: Overflow) -> None:
    total = 20_000
    ch = channel(policy, total)
    with ch.sender() as send:
        await ch.put_items(send, [LtpTick(token, 1.0) for token in range(1, total + 1)])
    taken = 0
    with anyio.move_on_after(0.2) as scope:
        async for batch in Batches(ch, 10):
            taken += len(batch)
            time.sleep(0.001)  # noqa: ASYNC251 (a busy body that never awaits: 2 s in all)
    assert scope.cancelled_caught  # the loop ended by the cancellation...
    assert 0 < taken < total  # ...with items still waiting
    assert len(ch) == total - taken  # nothing lost by the cancel


async def test_a_busy_batch_consumer_lets_other_tasks_run() -> None:
    ch = channel(Overflow.LOSSLESS, 1000)
    with ch.sender() as send:
        await ch.put_items(send, [LtpTick(1, 1.0)] * 1000)
    runs = 0

    async def other() -> None:
        nonlocal runs
        while True:
            runs += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        for _ in range(100):
            assert len(await ch.get_batch(5)) == 5  # only the waits for a batch yield
        assert runs >= 50  # the other task ran between batches
        tg.cancel_scope.cancel()


# -- broker-neutral: any hashable key, acknowledgements ------------------------------------


async def test_conflate_keys_may_be_any_hashable_and_records_pass_in_their_place() -> None:
    ch = make_channel(
        Overflow.CONFLATE, 10, is_record=lambda item: isinstance(item, str), key=lambda t: t[0]
    )
    ch.open()
    with ch.sender() as send:
        await ch.put_items(send, [(("NSE", 1), 1.0), (("NSE", 2), 1.0)])
        await ch.put_record(send, "order")
        await ch.put_items(send, [(("NSE", 1), 2.0)])
    assert await ch.get_batch(10) == [(("NSE", 1), 2.0), (("NSE", 2), 1.0), "order"]
    assert ch.dropped == 1


def test_conflate_without_a_key_function_is_refused() -> None:
    with pytest.raises(ValueError, match="key function"):
        make_channel(Overflow.CONFLATE, 10)


async def test_lossless_acknowledges_once_the_items_were_read_and_more_was_asked() -> None:
    acked: list[object] = []
    ch = make_channel(Overflow.LOSSLESS, 10, ack=acked.append)
    ch.open()
    with ch.sender() as send:
        await ch.put_items(send, [1, 2])
        await ch.put_ack(send, "entry-1")
        await ch.put_items(send, [3])
        await ch.put_ack(send, "entry-2")
        await ch.put_items(send, [4])
    assert [await ch.get(), await ch.get()] == [1, 2]
    assert acked == []  # the reader holds item 2: not done with it yet
    assert await ch.get() == 3
    assert acked == ["entry-1"]
    assert await ch.get_batch(10) == [4]  # asking again acknowledges entry-2 first
    assert acked == ["entry-1", "entry-2"]


async def test_lossless_acknowledges_a_batch_at_the_next_ask_and_on_close() -> None:
    acked: list[object] = []
    ch = make_channel(Overflow.LOSSLESS, 10, ack=acked.append)
    ch.open()
    with ch.sender() as send:
        await ch.put_items(send, [1, 2])
        await ch.put_ack(send, "a")
        await ch.put_items(send, [3])
        await ch.put_ack(send, "b")
        await ch.put_items(send, [4])
        await ch.put_ack(send, "c")
    assert await ch.get_batch(3) == [1, 2, 3]
    assert acked == []
    ch.close()  # items 1-3 were read: "a" (in the batch) and "b" (at the head) are done
    assert acked == ["a", "b"]


async def test_a_lossless_producer_waits_at_size_and_goes_on_once_half_was_read() -> None:
    ch = make_channel(Overflow.LOSSLESS, 4)
    ch.open()
    got: list[int] = []
    async with anyio.create_task_group() as tg:

        async def produce() -> None:
            with ch.sender() as send:
                await ch.put_items(send, list(range(10)))

        tg.start_soon(produce)
        await anyio.wait_all_tasks_blocked()
        assert len(ch) == 4  # full: the producer waits
        got.append(await ch.get())
        await anyio.wait_all_tasks_blocked()
        assert len(ch) == 3  # one taken: it still waits (no wake per item)
        got.append(await ch.get())
        await anyio.wait_all_tasks_blocked()
        assert len(ch) == 4  # half taken: it filled the room again
        while len(got) < 10:
            got.append(await ch.get())
            assert len(ch) <= 4
    assert got == list(range(10))


@pytest.mark.parametrize("ack", [None, print], ids=["plain", "acking"])
async def test_items_handed_to_a_waiting_reader_then_closed_are_dropped(ack: Any) -> None:
    ch = make_channel(Overflow.LOSSLESS, 10, ack=ack)
    ch.open()
    ended: list[bool] = []

    async def read() -> None:
        with pytest.raises(StopAsyncIteration):
            await ch.get()
        ended.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await anyio.wait_all_tasks_blocked()  # the reader waits in the stream
        with ch.sender() as send:
            await ch.put_items(send, [1, 2])  # handed to it; it has not run yet
            ch.close()
    assert ended == [True]  # closed: it gets nothing, and nothing is counted
    assert len(ch) == 0


async def test_acknowledgement_tokens_take_no_room_and_are_not_counted() -> None:
    acked: list[object] = []
    ch = make_channel(Overflow.LOSSLESS, 2, ack=acked.append)
    ch.open()
    with ch.sender() as send:
        await ch.put_items(send, [1])
        await ch.put_ack(send, "a")
        await ch.put_items(send, [2])  # the token took no room: this fits
        await ch.put_ack(send, "b")
        assert len(ch) == 2  # items only
        with anyio.CancelScope() as scope:
            scope.cancel()
            await ch.put_items(send, [3])  # full at 2 items: it would wait
        assert scope.cancelled_caught
        assert len(ch) == 2
        assert await ch.get_batch(10) == [1, 2]  # no token among them
        assert len(ch) == 0
        await ch.put_items(send, [3])
        assert await ch.get() == 3
    assert acked == ["a", "b"]


async def test_a_producer_waiting_for_room_resumes_once_an_item_is_read() -> None:
    ch = make_channel(Overflow.LOSSLESS, 1, ack=lambda token: None)
    ch.open()
    got: list[int] = []

    async def produce() -> None:
        with ch.sender() as send:
            for n in range(5):
                await ch.put_items(send, [n])
                await ch.put_ack(send, n)

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        for _ in range(5):
            got.append(await ch.get())
            assert len(ch) <= 1
    assert got == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("policy", [Overflow.DROP_OLDEST, Overflow.CONFLATE])
async def test_dropping_policies_acknowledge_at_once(policy: Overflow) -> None:
    acked: list[object] = []
    ch = make_channel(policy, 10, key=lambda tick: tick.instrument_token, ack=acked.append)
    ch.open()
    with ch.sender() as send:
        await ch.put_items(send, [LtpTick(1, 1.0)])
        await ch.put_ack(send, "entry")
    assert acked == ["entry"]
    assert await ch.get() == LtpTick(1, 1.0)
