"""One contract, every feeder: the same test bodies run over each factory in ``FACTORIES``.

A factory builds a :class:`Harness`: a feeder (not entered yet) over a real source (the
sandbox's ticker over loopback for ``KiteFeed`` and ``RawKiteFeed``, its Dhan sockets for
``DhanFeed`` and ``RawDhanFeed``, a gateway over a real ``redis-server`` for ``RedisFeed``
of either broker), the keys that tick there, and a way to make the source send an order
update. To add a feeder, write an async context manager with the :data:`Factory` signature
and append it to ``FACTORIES`` (see ``/work/notes/contract-ready.md``).

The contract (``AbstractFeeder``): arrival order (an order update after two ticks comes
after them), every receive a checkpoint (a busy body under ``move_on_after`` ends), each
overflow policy, a cancelled wait loses nothing, ``ClientClosedError`` before entry and
after exit (subscribing included), an error in the ``async with`` body comes out as itself,
and ``statistics()`` is the one :class:`~aio_trader.feed.FeedStatistics` record. No test
asserts an upper bound on wall time; ``HANG`` only guards against a hang.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.lowlevel
import attrs
import httpx
import pytest

from aio_trader._recording import Recorder
from aio_trader._time import IST
from aio_trader.abc import AbstractFeeder
from aio_trader.backoff import Backoff
from aio_trader.dhan import DhanFeed, RawDhanFeed
from aio_trader.dhan import OrderUpdate as DhanOrderUpdate
from aio_trader.dhan._codec import CODEC as DHAN_CODEC
from aio_trader.errors import ClientClosedError
from aio_trader.feed import FeedStatistics, Overflow
from aio_trader.kite import (
    Depth,
    DepthLevel,
    FullTick,
    Kite,
    KiteFeed,
    Ohlc,
    OrderUpdate,
    RawFrame,
    RawKiteFeed,
    decode_text,
    encode_frame,
    encode_text,
)
from aio_trader.kite._codec import CODEC as KITE_CODEC
from aio_trader.sandbox import Sandbox, SandboxConfig

HANG = 30.0
FAST = Backoff(base=0.05, factor=2.0, cap=0.2, max_attempts=5)


@attrs.define
class Harness:
    """One feeder under test and its source.

    ``feed`` is not entered. ``keys`` tick at the source once subscribed in ``mode``.
    ``order_update()`` makes the source send one order update (or more) now.
    ``is_order_update(item)`` and ``key_of(item)`` (a tick's instrument, ``None`` for a
    record) read the feeder's items. ``conflates``: the feeder offers ``conflate``.
    """

    feed: AbstractFeeder[Any, Any]
    keys: list[Hashable]
    mode: str
    order_update: Callable[[], Awaitable[None]]
    is_order_update: Callable[[Any], bool]
    key_of: Callable[[Any], Hashable | None]
    conflates: bool = True


class Factory(Protocol):
    """``async with factory(overflow=..., buffer_size=..., flat_out=...) as harness``.

    ``flat_out``: the source sends as fast as the feeder takes (for overflow tests);
    otherwise at a modest pace."""

    def __call__(
        self, *, overflow: str = "lossless", buffer_size: int = 10_000, flat_out: bool = False
    ) -> contextlib.AbstractAsyncContextManager[Harness]: ...


# -- the factories ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _sandbox(flat_out: bool) -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(tick_interval=0.0 if flat_out else 0.02)) as sb:
        yield sb


def _tradable(sb: Sandbox) -> list[Hashable]:
    tokens = [t for t, i in sb.state.market.instruments.items() if i.segment == "NSE"]
    return list(tokens[:5])


def _placer(sb: Sandbox) -> Callable[[], Awaitable[None]]:
    async def place() -> None:
        async with Kite(sb.api_key, sb.access_token, root=sb.root_url, token_cache=False) as kite:
            await kite.place_order(
                variety="regular",
                exchange="NSE",
                tradingsymbol="INFY",
                transaction_type="BUY",
                quantity=1,
                product="CNC",
                order_type="MARKET",
                market_protection=-1,
            )

    return place


@contextlib.asynccontextmanager
async def kite_feed(
    *, overflow: str = "lossless", buffer_size: int = 10_000, flat_out: bool = False
) -> AsyncIterator[Harness]:
    async with _sandbox(flat_out) as sb:
        feed = KiteFeed(
            sb.api_key,
            sb.access_token,
            root=sb.ticker_url,
            overflow=overflow,
            buffer_size=buffer_size,
            watchdog=2.0,
            backoff=FAST,
            stable_after=0.5,
        )
        yield Harness(
            feed,
            _tradable(sb),
            "full",
            _placer(sb),
            lambda item: isinstance(item, OrderUpdate),
            lambda item: None if isinstance(item, OrderUpdate) else item.instrument_token,
        )


def _raw_is_order_update(item: RawFrame) -> bool:
    return isinstance(item.data, str) and isinstance(decode_text(item.data), OrderUpdate)


@contextlib.asynccontextmanager
async def raw_kite_feed(
    *, overflow: str = "lossless", buffer_size: int = 10_000, flat_out: bool = False
) -> AsyncIterator[Harness]:
    async with _sandbox(flat_out) as sb:
        feed = RawKiteFeed(
            sb.api_key,
            sb.access_token,
            root=sb.ticker_url,
            overflow="lossless" if overflow == "conflate" else overflow,
            buffer_size=buffer_size,
            watchdog=2.0,
            backoff=FAST,
            stable_after=0.5,
        )
        yield Harness(
            feed,
            _tradable(sb),
            "full",
            _placer(sb),
            _raw_is_order_update,
            lambda item: None if isinstance(item.data, str) else "frame",
            conflates=False,
        )


@contextlib.asynccontextmanager
async def redis_feed(
    *, overflow: str = "lossless", buffer_size: int = 10_000, flat_out: bool = False
) -> AsyncIterator[Harness]:
    """A gateway's consumer: the sandbox's ticker -> ``Gateway`` -> a real ``redis-server``
    (started for the test) -> ``RedisFeed``."""
    from _redis import RedisServer

    from aio_trader.gateway import Gateway, RedisFeed

    server = RedisServer()
    await anyio.to_thread.run_sync(server.start)
    try:
        async with _sandbox(flat_out) as sb:
            prefix = f"contract-{uuid.uuid4().hex[:12]}"
            gateway = Gateway(
                sb.api_key,
                sb.access_token,
                root=sb.ticker_url,
                redis=server.url,
                prefix=prefix,
                poll=0.02,
                refresh=0.2,
            )
            feed = RedisFeed(
                server.url,
                "contract",
                prefix=prefix,
                overflow=overflow,
                buffer_size=buffer_size,
                heartbeat=0.1,
                timeout=1.0,
                block=0.2,
            )
            async with gateway:
                yield Harness(
                    feed,
                    _tradable(sb),
                    "full",
                    _placer(sb),
                    lambda item: isinstance(item, OrderUpdate),
                    KITE_CODEC.key_of,  # a FeedGap is a record too
                )
    finally:
        await anyio.to_thread.run_sync(server.close)


#: The replay's recording: ``_TICK_FRAMES`` frames of full ticks of ``_REPLAY_KEYS`` 20 ms
#: apart, then two order updates ``_GAP`` seconds apart, then a last frame that no test
#: reaches. Written once per process.
_TICK_FRAMES = 3000
_GAP = 1000.0
_REPLAY_KEYS: list[Hashable] = [n << 8 | 1 for n in range(1000, 1005)]  # NSE tokens
_RECORDING: list[Path] = []


def _recording() -> Path:
    if _RECORDING:
        return _RECORDING[0]
    folder = Path(tempfile.mkdtemp(prefix="aio-trader-contract-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "session.parquet"
    now = datetime.datetime.now(IST).replace(microsecond=0)
    level = DepthLevel(10, 100.0, 2)
    ticks = [
        FullTick(
            key, 100.0 + n, 5, 100.5, 1000, 40, 60, Ohlc(99.0, 105.0, 98.0, 100.0),
            now, 0, 0, 0, now, Depth((level,) * 5, (level,) * 5),
        )
        for n, key in enumerate(_REPLAY_KEYS)  # type: ignore[arg-type]
    ]  # fmt: skip
    frame, t0 = encode_frame(ticks), now.timestamp()
    with Recorder(path) as recorder:
        for n in range(_TICK_FRAMES):
            recorder.write(frame, t0 + n * 0.02)
        end = t0 + _TICK_FRAMES * 0.02
        recorder.write(encode_text(OrderUpdate(order_id="1", status="COMPLETE")), end + _GAP)
        recorder.write(encode_text(OrderUpdate(order_id="2", status="COMPLETE")), end + 2 * _GAP)
        recorder.write(frame, end + 1e9)
    _RECORDING.append(path)
    return path


@contextlib.asynccontextmanager
async def replay_feed(
    *, overflow: str = "lossless", buffer_size: int = 10_000, flat_out: bool = False
) -> AsyncIterator[Harness]:
    """A recording played back: in real time, or 100 times as fast (``flat_out``). The
    source "sends an order update now" by playing the recording a million times as fast:
    the next update is due within a few milliseconds (after the ticks before it)."""
    from aio_trader.replay import ReplayFeed

    path = await anyio.to_thread.run_sync(_recording)
    feed = ReplayFeed(
        path,
        speed=100.0 if flat_out else 1.0,
        overflow=overflow,
        buffer_size=buffer_size,
        subscriptions={},  # nothing until subscribed, as a live feed
    )

    async def order_update() -> None:
        feed.speed = 1e6
        await anyio.lowlevel.checkpoint()

    yield Harness(
        feed,
        _REPLAY_KEYS,
        "full",
        order_update,
        lambda item: isinstance(item, OrderUpdate),
        KITE_CODEC.key_of,
    )


async def _dhan_place(sb: Sandbox) -> None:
    """A LIMIT order through the sandbox's Dhan REST: its order-update socket tells."""
    body = {
        "dhanClientId": sb.client_id,
        "transactionType": "BUY",
        "exchangeSegment": "NSE_EQ",
        "productType": "CNC",
        "orderType": "LIMIT",
        "validity": "DAY",
        "securityId": "1594",
        "quantity": 1,
        "price": sb.state.market.last_price((1 << 32) | 1594),
    }
    headers = {"access-token": sb.access_token, "client-id": sb.client_id}
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{sb.root_url}/orders", json=body, headers=headers)
    assert answer.status_code == 200, answer.text


@contextlib.asynccontextmanager
async def dhan_feed(
    *, overflow: str = "lossless", buffer_size: int = 10_000, flat_out: bool = False
) -> AsyncIterator[Harness]:
    config = SandboxConfig(broker="dhan", tick_interval=0.0 if flat_out else 0.02)
    async with Sandbox(config) as sb:
        feed = DhanFeed(
            sb.client_id,
            sb.access_token,
            root=sb.feed_url,
            order_root=sb.order_feed_url,
            overflow=overflow,
            buffer_size=buffer_size,
            watchdog=2.0,
            backoff=FAST,
            stable_after=0.5,
        )
        keys: list[Hashable] = [("NSE_EQ", 1333), ("NSE_EQ", 11536), ("NSE_EQ", 2885)]
        keys += [("NSE_EQ", 1594), ("IDX_I", 13)]

        async def place() -> None:
            await _dhan_place(sb)

        yield Harness(
            feed,
            keys,
            "full",
            place,
            lambda item: isinstance(item, DhanOrderUpdate),
            lambda item: None if isinstance(item, DhanOrderUpdate) else item.key,
        )


def _raw_dhan_feed(sb: Sandbox, **kwargs: Any) -> RawDhanFeed:
    return RawDhanFeed(
        sb.client_id,
        sb.access_token,
        root=sb.feed_url,
        order_root=sb.order_feed_url,
        watchdog=2.0,
        backoff=FAST,
        stable_after=0.5,
        **kwargs,
    )


_DHAN_KEYS: list[Hashable] = [("NSE_EQ", 1333), ("NSE_EQ", 11536), ("NSE_EQ", 2885)]
_DHAN_KEYS += [("NSE_EQ", 1594), ("IDX_I", 13)]


def _raw_is_dhan_order_update(item: RawFrame) -> bool:
    return isinstance(item.data, str) and DHAN_CODEC.is_order_update(
        DHAN_CODEC.decode_text(item.data)
    )


@contextlib.asynccontextmanager
async def raw_dhan_feed(
    *, overflow: str = "lossless", buffer_size: int = 10_000, flat_out: bool = False
) -> AsyncIterator[Harness]:
    config = SandboxConfig(broker="dhan", tick_interval=0.0 if flat_out else 0.02)
    async with Sandbox(config) as sb:
        feed = _raw_dhan_feed(
            sb,
            overflow="lossless" if overflow == "conflate" else overflow,
            buffer_size=buffer_size,
        )

        async def place() -> None:
            await _dhan_place(sb)

        yield Harness(
            feed,
            _DHAN_KEYS,
            "full",
            place,
            _raw_is_dhan_order_update,
            lambda item: None if isinstance(item.data, str) else "frame",
            conflates=False,
        )


@contextlib.asynccontextmanager
async def redis_dhan_feed(
    *, overflow: str = "lossless", buffer_size: int = 10_000, flat_out: bool = False
) -> AsyncIterator[Harness]:
    """A gateway's consumer of Dhan's feed: the sandbox's Dhan sockets -> ``RawDhanFeed``
    -> ``Gateway`` -> a real ``redis-server`` -> ``RedisFeed(codec="dhan")``."""
    from _redis import RedisServer

    from aio_trader.gateway import Gateway, RedisFeed

    server = RedisServer()
    await anyio.to_thread.run_sync(server.start)
    try:
        config = SandboxConfig(broker="dhan", tick_interval=0.0 if flat_out else 0.02)
        async with Sandbox(config) as sb:
            prefix = f"contract-{uuid.uuid4().hex[:12]}"
            gateway = Gateway(
                feed=_raw_dhan_feed(sb), redis=server.url, prefix=prefix, poll=0.02, refresh=0.2
            )
            feed = RedisFeed(
                server.url,
                "contract",
                prefix=prefix,
                codec="dhan",
                overflow=overflow,
                buffer_size=buffer_size,
                heartbeat=0.1,
                timeout=1.0,
                block=0.2,
            )

            async def place() -> None:
                await _dhan_place(sb)

            async with gateway:
                yield Harness(
                    feed,
                    _DHAN_KEYS,
                    "full",
                    place,
                    DHAN_CODEC.is_order_update,
                    DHAN_CODEC.key_of,  # a FeedGap is a record too
                )
    finally:
        await anyio.to_thread.run_sync(server.close)


@contextlib.asynccontextmanager
async def paper_kite(
    *, overflow: str = "lossless", buffer_size: int = 10_000, flat_out: bool = False
) -> AsyncIterator[Harness]:
    """Paper trading on Kite: the sandbox's ticker -> ``KiteFeed`` (entered here) ->
    ``Paper``; an order update is a paper order placed through ``paper.broker``."""
    from aio_trader.paper import Paper

    async with (
        _sandbox(flat_out) as sb,
        KiteFeed(sb.api_key, sb.access_token, root=sb.ticker_url, backoff=FAST) as real,
    ):
        paper = Paper(real, overflow=overflow, buffer_size=buffer_size)

        async def place() -> None:  # a BUY LIMIT far below the market: it rests
            await paper.broker.place_order(
                "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=1.0
            )

        yield Harness(
            paper,
            _tradable(sb),
            "full",
            place,
            lambda item: isinstance(item, OrderUpdate),
            KITE_CODEC.key_of,
        )


@contextlib.asynccontextmanager
async def paper_dhan(
    *, overflow: str = "lossless", buffer_size: int = 10_000, flat_out: bool = False
) -> AsyncIterator[Harness]:
    """Paper trading on Dhan: the sandbox's Dhan market feed -> ``DhanFeed`` (entered
    here, without order updates) -> ``Paper``; an order update is a paper order."""
    from aio_trader.paper import Paper

    config = SandboxConfig(broker="dhan", tick_interval=0.0 if flat_out else 0.02)
    async with (
        Sandbox(config) as sb,
        DhanFeed(
            sb.client_id, sb.access_token, root=sb.feed_url, order_root=None, backoff=FAST
        ) as real,
    ):
        paper = Paper(real, overflow=overflow, buffer_size=buffer_size)

        async def place() -> None:  # a BUY LIMIT far below the market: it rests
            await paper.broker.place_order("1594", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=1.0)

        yield Harness(
            paper,
            _DHAN_KEYS,
            "full",
            place,
            DHAN_CODEC.is_order_update,
            DHAN_CODEC.key_of,
        )


#: Every feeder the contract runs over: append a factory to add one.
FACTORIES: list[Factory] = [
    kite_feed,
    raw_kite_feed,
    redis_feed,
    replay_feed,
    dhan_feed,
    raw_dhan_feed,
    redis_dhan_feed,
    paper_kite,
    paper_dhan,
]


@pytest.fixture(params=FACTORIES, ids=lambda factory: getattr(factory, "__name__", "?"))
def factory(request: pytest.FixtureRequest) -> Factory:
    return request.param  # type: ignore[no-any-return]


# -- helpers ---------------------------------------------------------------------------------


async def wait_for(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(HANG):
        while not condition():  # noqa: ASYNC110 (polling counters, nothing to wait on)
            await anyio.sleep(0.01)


async def read(feed: AbstractFeeder[Any, Any], count: int) -> list[Any]:
    items: list[Any] = []
    with anyio.fail_after(HANG):
        async for item in feed:
            items.append(item)
            if len(items) >= count:
                break
    return items


async def read_until(feed: AbstractFeeder[Any, Any], done: Callable[[Any], bool]) -> list[Any]:
    items: list[Any] = []
    with anyio.fail_after(HANG):
        async for item in feed:
            items.append(item)
            if done(item):
                return items
    raise AssertionError("the feed ended")


class Boom(Exception):
    pass


# -- the contract ----------------------------------------------------------------------------


async def test_an_order_update_after_ticks_comes_after_them(factory: Factory) -> None:
    async with factory() as h, h.feed as feed:
        await feed.subscribe(h.keys, h.mode)
        await wait_for(lambda: feed.statistics().buffered >= 2)  # not reading: they wait
        before = feed.statistics().buffered
        await h.order_update()
        items = await read_until(feed, h.is_order_update)
        first_update = next(n for n, item in enumerate(items) if h.is_order_update(item))
        # everything that waited when the order was placed comes before its update
        assert first_update >= before >= 2
        assert all(h.key_of(item) is not None for item in items[:before])


async def test_every_receive_is_a_checkpoint(factory: Factory) -> None:
    async with factory(flat_out=True) as h, h.feed as feed:
        await feed.subscribe(h.keys, h.mode)
        await wait_for(lambda: feed.statistics().buffered >= 10)
        got = 0
        with anyio.move_on_after(0.1) as scope:
            async for _ in feed:  # a busy body: it never awaits
                got += 1
        assert scope.cancelled_caught
        assert got > 0
        with anyio.move_on_after(0.1) as scope:
            async for batch in feed.batches(max_items=3):
                assert 1 <= len(batch) <= 3
        assert scope.cancelled_caught
        assert (await read(feed, 1))[0] is not None  # still usable


async def test_lossless_loses_nothing_and_holds_at_most_buffer_size(factory: Factory) -> None:
    async with factory(overflow="lossless", buffer_size=20, flat_out=True) as h, h.feed as feed:
        await feed.subscribe(h.keys, h.mode)
        await wait_for(lambda: feed.statistics().buffered >= 20)  # full: the source waits
        await h.order_update()  # behind the full buffer: it waits too, never dropped
        items = await read_until(feed, h.is_order_update)
        stats = feed.statistics()
        assert stats.dropped == 0
        assert stats.buffered <= 20
        assert len(items) > 20


async def test_drop_oldest_keeps_the_newest_and_never_drops_records(factory: Factory) -> None:
    async with factory(overflow="drop_oldest", buffer_size=10, flat_out=True) as h, h.feed as feed:
        await feed.subscribe(h.keys, h.mode)
        await wait_for(lambda: feed.statistics().dropped > 0)  # not reading: it overflowed
        assert feed.statistics().buffered == 10
        await h.order_update()
        items = await read_until(feed, h.is_order_update)  # the record was kept
        assert h.is_order_update(items[-1])
        assert feed.overflow is Overflow.DROP_OLDEST  # type: ignore[attr-defined]


async def test_conflate_keeps_one_tick_per_instrument(factory: Factory) -> None:
    async with factory(overflow="conflate", buffer_size=10, flat_out=True) as h:
        if not h.conflates:
            pytest.skip("this feeder does not conflate (its items are not keyed ticks)")
        async with h.feed as feed:
            await feed.subscribe(h.keys, h.mode)
            await wait_for(lambda: feed.statistics().dropped > 0)
            waiting = feed.statistics().buffered
            assert waiting <= len(h.keys)  # at most one per instrument (no record yet)
            batch = await anext(aiter(feed.batches(max_items=waiting)))
            keys = [h.key_of(item) for item in batch]
            assert len(set(keys)) == len(keys)
            await h.order_update()
            assert h.is_order_update((await read_until(feed, h.is_order_update))[-1])


async def test_a_cancelled_wait_loses_nothing(factory: Factory) -> None:
    async with factory() as h, h.feed as feed:
        # nothing subscribed: only order updates arrive, so every one is accounted for
        with anyio.move_on_after(0.05):
            await anext(aiter(feed))  # a wait cancelled with nothing there
        await h.order_update()
        await h.order_update()
        await wait_for(lambda: feed.statistics().buffered >= 2)
        waiting = feed.statistics().buffered
        got: list[Any] = []
        iterator = aiter(feed)
        with anyio.fail_after(HANG):
            while len(got) < waiting:
                with anyio.CancelScope() as scope:
                    scope.cancel()  # cancelled before it can take anything
                    got.append(await anext(iterator))
                got.append(await anext(iterator))
        assert len(got) == waiting  # every cancelled wait took nothing
        assert all(h.is_order_update(item) for item in got)


async def test_client_closed_error_before_entry_and_after_exit(factory: Factory) -> None:
    async with factory() as h:
        feed = h.feed
        with pytest.raises(ClientClosedError):
            await anext(aiter(feed))
        with pytest.raises(ClientClosedError):
            feed.batches()
        async with feed:
            await feed.subscribe(h.keys[:1], h.mode)
            await read(feed, 1)
        for call in (
            lambda: anext(aiter(feed)),
            lambda: anext(aiter(feed.batches())),
            lambda: feed.subscribe(h.keys[:1], h.mode),
            lambda: feed.unsubscribe(h.keys[:1]),
            lambda: feed.set_mode(h.mode, h.keys[:1]),
        ):
            with pytest.raises(ClientClosedError):
                await call()
        assert isinstance(ClientClosedError(), RuntimeError)


@pytest.mark.parametrize("when", ["entered", "reading"])
async def test_an_error_in_the_body_comes_out_as_itself(factory: Factory, when: str) -> None:
    async def body(h: Harness) -> None:
        async with h.feed as feed:
            await feed.subscribe(h.keys, h.mode)
            if when == "reading":
                await read(feed, 3)
            raise Boom("mine")

    async with factory() as h:
        with pytest.raises(Boom) as caught:  # not inside an exception group
            await body(h)
        assert str(caught.value) == "mine"


async def test_statistics_is_the_one_record(factory: Factory) -> None:
    async with factory() as h:
        assert isinstance(h.feed.statistics(), FeedStatistics)
        async with h.feed as feed:
            await feed.subscribe(h.keys, h.mode)
            items = await read(feed, 10)
            stats = feed.statistics()
        assert isinstance(stats, FeedStatistics)
        assert stats.frames >= 1
        assert stats.ticks >= 1
        assert stats.subscribed == len(h.keys)
        assert stats.dropped == 0
        assert stats.last_message_time is not None
        assert stats.last_message_time.utcoffset() is not None
        assert len(items) == 10
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            stats.frames = 0  # type: ignore[misc]
