"""The feed's slow-consumer buffer, by properties (both backends), and the feed's public names."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aio_trader.kite._feed as feed_module
from aio_trader.kite import LtpTick, OrderUpdate
from aio_trader.kite._feed import Overflow, _Buffer

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


def test_feed_module_all_is_pinned() -> None:
    assert sorted(feed_module.__all__) == [
        "DEFAULT_BACKOFF",
        "FeedItem",
        "FeedStatistics",
        "KITE_CONNECT_ROOT",
        "KITE_WEB_ROOT",
        "KiteFeed",
        "Overflow",
        "RawFrame",
        "RawKiteFeed",
    ]


async def read_all(buffer: _Buffer[object]) -> list[object]:
    items = []
    while len(buffer):
        items.append(await buffer.get())
    return items


@pytest.mark.anyio  # (hypothesis hides the coroutine from conftest's auto-marking)
@given(frames, sizes)
async def test_lossless_delivers_everything_in_order(
    batches: list[list[LtpTick]], size: int
) -> None:
    buffer: _Buffer[object] = _Buffer(Overflow.LOSSLESS, size)
    got: list[object] = []
    expected = [tick for batch in batches for tick in batch]

    async def consume() -> None:
        while len(got) < len(expected):
            got.append(await buffer.get())
            assert len(buffer) <= max(size, 12)  # never more than a frame past the bound

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            for batch in batches:
                await buffer.put_ticks(list(batch))
    assert got == expected
    assert buffer.dropped == 0


@pytest.mark.anyio  # (hypothesis hides the coroutine from conftest's auto-marking)
@given(frames, sizes)
async def test_drop_oldest_keeps_the_newest(batches: list[list[LtpTick]], size: int) -> None:
    buffer: _Buffer[object] = _Buffer(Overflow.DROP_OLDEST, size)
    for batch in batches:
        await buffer.put_ticks(list(batch))
    everything = [tick for batch in batches for tick in batch]
    assert await read_all(buffer) == everything[-size:]
    assert buffer.dropped == max(len(everything) - size, 0)


@pytest.mark.anyio  # (hypothesis hides the coroutine from conftest's auto-marking)
@given(frames, sizes)
async def test_conflate_keeps_the_newest_tick_per_instrument(
    batches: list[list[LtpTick]], size: int
) -> None:
    buffer: _Buffer[object] = _Buffer(Overflow.CONFLATE, size)
    for batch in batches:
        await buffer.put_ticks(list(batch))
    newest: dict[int, LtpTick] = {}
    for tick in (tick for batch in batches for tick in batch):
        newest[tick.instrument_token] = tick  # first arrival sets the place in line
    assert await read_all(buffer) == list(newest.values())
    assert buffer.dropped == sum(map(len, batches)) - len(newest)


@pytest.mark.anyio
@given(frames, st.sampled_from(list(Overflow)))
async def test_records_are_never_dropped_and_come_first(
    batches: list[list[LtpTick]], policy: Overflow
) -> None:
    buffer: _Buffer[object] = _Buffer(policy, 1000)
    update = OrderUpdate(order_id="1")
    for batch in batches:
        await buffer.put_ticks(list(batch))
    await buffer.put_record(update)
    items = await read_all(buffer)
    assert items[:1] == [update]
    assert update not in items[1:]


async def test_get_on_a_closed_buffer_stops_or_raises_its_error() -> None:
    buffer: _Buffer[object] = _Buffer(Overflow.LOSSLESS, 10)
    await buffer.put_ticks([LtpTick(1, 1.0)])
    buffer.close()
    assert len(buffer) == 0
    with pytest.raises(StopAsyncIteration):
        await buffer.get()
    failed: _Buffer[object] = _Buffer(Overflow.LOSSLESS, 10)
    failed.close(KeyError("boom"))
    with pytest.raises(KeyError, match="boom"):
        await failed.get()


async def test_cancelled_get_loses_nothing() -> None:
    buffer: _Buffer[object] = _Buffer(Overflow.LOSSLESS, 10)
    with anyio.move_on_after(0.05):
        await buffer.get()  # waits: nothing there
    await buffer.put_ticks([LtpTick(1, 1.0)])
    assert await buffer.get() == LtpTick(1, 1.0)
