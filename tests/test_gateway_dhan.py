# ruff: noqa: F811  (the fixtures are imported from _redis, then requested by name)
"""The gateway with Dhan's feed, end to end on both backends: the sandbox's Dhan sockets ->
``RawDhanFeed`` -> ``Gateway`` -> a real ``redis-server`` -> ``RedisFeed`` consumers, each
decoding with the codec every entry names (``"dhan"``); a recording of the stream replayed
through ``ReplayFeed`` yields what the live consumer did."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import coredis
import httpx
import pytest
from _redis import RedisServer, persistent_redis, prefix, redis  # noqa: F401 (fixtures)

from aio_trader.backoff import Backoff
from aio_trader.dhan import (
    Disconnect,
    ExchangeSegment,
    FullTick,
    OpenInterest,
    OrderUpdate,
    PrevClose,
    QuoteTick,
    RawDhanFeed,
    TickerTick,
    decode_message,
)
from aio_trader.dhan._codec import CODEC
from aio_trader.feed import RawFrame
from aio_trader.gateway import Gateway, RedisFeed, record
from aio_trader.replay import ReplayFeed
from aio_trader.sandbox import Sandbox, SandboxConfig

#: A guard against a hang only (a test that waits this long has failed anyway).
HANG_GUARD = 30.0
FAST = Backoff(base=0.05, factor=2.0, cap=0.2, max_attempts=5)
HDFC, TCS, NIFTY = ("NSE_EQ", 1333), ("NSE_EQ", 11536), ("IDX_I", 13)
TICKS = (TickerTick, QuoteTick, FullTick)
RANK = {"ticker": 0, "quote": 1, "full": 2}


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(broker="dhan", tick_interval=0.02)) as sandbox:
        yield sandbox


def future(sb: Sandbox) -> tuple[str, int]:
    """A derivative's key (its quote packets come with OI packets)."""
    token = next(
        token
        for token, instrument in sorted(sb.state.market.instruments.items())
        if instrument.instrument_type == "FUT"
    )
    return (ExchangeSegment.from_code(token >> 32).value, token & 0xFFFFFFFF)


def raw_feed(sb: Sandbox) -> RawDhanFeed:
    return RawDhanFeed(sb.client_id, sb.access_token, root=sb.feed_url,
                       order_root=sb.order_feed_url, backoff=FAST, stable_after=0.5)  # fmt: skip


def gateway(sb: Sandbox, server: RedisServer, prefix: str) -> Gateway:
    return Gateway(feed=raw_feed(sb), redis=server.url, prefix=prefix, poll=0.02, refresh=0.2)


def consumer(server: RedisServer, prefix: str, name: str) -> RedisFeed:
    return RedisFeed(server.url, name, prefix=prefix, codec="dhan", heartbeat=0.1, timeout=1.0,
                     block=0.2)  # fmt: skip


async def until(check: Callable[[], bool]) -> None:
    with anyio.fail_after(HANG_GUARD):
        while not check():  # noqa: ASYNC110 - polling other objects' state
            await anyio.sleep(0.01)


async def place_order(sb: Sandbox, security_id: str = "1594") -> str:
    """An order placed through the sandbox's Dhan REST (a LIMIT at the last price)."""
    body = {
        "dhanClientId": sb.client_id,
        "transactionType": "BUY",
        "exchangeSegment": "NSE_EQ",
        "productType": "CNC",
        "orderType": "LIMIT",
        "validity": "DAY",
        "securityId": security_id,
        "quantity": 1,
        "price": sb.state.market.last_price((1 << 32) | int(security_id)),
    }
    headers = {"access-token": sb.access_token, "client-id": sb.client_id}
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{sb.root_url}/orders", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["orderId"])


class Reader:
    """Reads a feed in a task, keeping (seq, item) of each item it yields."""

    def __init__(self, feed: RedisFeed) -> None:
        self.feed = feed
        self.items: list[tuple[int, Any]] = []

    async def run(self) -> None:
        async for item in self.feed:
            info = self.feed.last_frame
            assert info is not None
            self.items.append((info.seq, item))

    def ticks(self, key: Any = None) -> list[tuple[int, Any]]:
        return [(s, i) for s, i in self.items if isinstance(i, TICKS) and key in (None, i.key)]

    def orders(self) -> set[str]:
        return {item.order_id for _, item in self.items if isinstance(item, OrderUpdate)}


async def test_two_consumers_each_get_their_instruments_in_their_modes_and_order_updates(
    sb: Sandbox, redis: RedisServer, prefix: str
) -> None:
    fut = future(sb)
    plan = {
        "a": {HDFC: "full", fut: "quote"},
        "b": {HDFC: "ticker", NIFTY: "ticker", fut: "ticker"},
    }
    async with gateway(sb, redis, prefix) as gw, contextlib.AsyncExitStack() as stack:
        assert gw.codec is CODEC
        feeds = {n: await stack.enter_async_context(consumer(redis, prefix, n)) for n in plan}
        readers = {n: Reader(f) for n, f in feeds.items()}
        async with anyio.create_task_group() as tg:
            for name, reader in readers.items():
                tg.start_soon(reader.run)
                for key, mode in plan[name].items():
                    await feeds[name].subscribe([key], mode)
            union = {HDFC: "full", fut: "quote", NIFTY: "ticker"}
            await until(lambda: gw.subscriptions == union)
            assert gw.consumers == frozenset(plan)
            placed = await place_order(sb)

            def enough() -> bool:
                return all(
                    all(len(r.ticks(key)) >= 5 for key in plan[n]) and placed in r.orders()
                    for n, r in readers.items()
                ) and any(isinstance(i, OpenInterest) for _, i in readers["a"].items)

            await until(enough)
            tg.cancel_scope.cancel()
    for name, reader in readers.items():
        wanted = plan[name]
        keyed = [item for _, item in reader.items if hasattr(item, "key")]
        assert {item.key for item in keyed if isinstance(item, TICKS)} == set(wanted)
        assert {item.key for item in keyed if isinstance(item, PrevClose)} <= set(wanted)
        assert not any(isinstance(item, Disconnect) for item in keyed)
        for key, mode in wanted.items():
            modes = {item.mode for _, item in reader.ticks(key)}
            # its mode, or a poorer one before the gateway's mode switch took effect
            assert mode in modes
            assert all(RANK[m] <= RANK[mode] for m in modes)
        assert feeds[name].statistics().malformed == 0
    # b wants the poorest mode: every tick is a ticker, cut from the frames a read whole
    assert all(isinstance(item, TickerTick) for _, item in readers["b"].ticks())
    assert not any(isinstance(item, OpenInterest) for _, item in readers["b"].items)
    assert {i.key for _, i in readers["a"].items if isinstance(i, OpenInterest)} == {fut}
    full = {seq: item for seq, item in readers["a"].ticks(HDFC) if isinstance(item, FullTick)}
    same = [(full[s], t) for s, t in readers["b"].ticks(HDFC) if s in full]
    assert same
    for rich, poor in same:
        assert (poor.last_price, poor.last_trade_time) == (rich.last_price, rich.last_trade_time)
    # every entry names Dhan's codec
    async with coredis.Redis.from_url(redis.url, decode_responses=False) as client:
        entries = await client.xrange(f"{prefix}:frames", "-", "+")
    assert {entry.field_values[b"k"] for entry in entries} == {b"dhan"}
    assert any(b"t" in entry.field_values for entry in entries)  # the order updates


async def replayed(path: Path, **kwargs: Any) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    async with ReplayFeed(path, speed=None, **kwargs) as feed:
        assert feed.codec is CODEC
        async for item in feed:
            assert feed.last_frame is not None
            out.append((feed.last_frame.seq, item))
    return out


async def test_a_recorded_dhan_session_replays_what_the_live_consumer_yielded(
    sb: Sandbox, redis: RedisServer, prefix: str, tmp_path: Path
) -> None:
    path, ticks_path = tmp_path / "dhan.parquet", tmp_path / "ticks.parquet"
    plan = {HDFC: "full", NIFTY: "ticker", future(sb): "quote"}
    recorded = 40  # frames 1..40 of the stream: the recorder stops there by itself
    async with gateway(sb, redis, prefix), consumer(redis, prefix, "live") as feed:
        reader = Reader(feed)
        done = anyio.Event()

        async def recorder() -> None:
            await record(path, redis=redis.url, prefix=prefix, start="oldest", frames=recorded,
                         ticks=ticks_path, codec="dhan")  # fmt: skip
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(recorder)
            tg.start_soon(reader.run)
            for key, mode in plan.items():
                await feed.subscribe([key], mode)
            await until(lambda: len(reader.ticks()) >= 10)
            placed = await place_order(sb)
            # an item of a later frame was yielded: every frame up to ``recorded`` is whole
            # (arrival order), whenever the reader is stopped after this
            await until(lambda: bool(reader.items) and reader.items[-1][0] > recorded)
            with anyio.fail_after(HANG_GUARD):
                await done.wait()
            tg.cancel_scope.cancel()
    live = [(s, item) for s, item in reader.items if s <= recorded]
    lo = live[0][0]
    replay = [(s, i) for s, i in await replayed(path, subscriptions=plan) if lo <= s]
    assert len(live) >= 20
    assert replay == live
    if placed in reader.orders():  # placed before frame ``recorded``: replayed too
        assert any(isinstance(i, OrderUpdate) and i.order_id == placed for _, i in replay)
    # without a subscription: every frame as the gateway published it, decoded
    everything = await replayed(path)
    async with coredis.Redis.from_url(redis.url, decode_responses=False) as client:
        entries = await client.xrange(f"{prefix}:frames", "-", "+", count=recorded)
    want = []
    for entry in entries:
        fields = entry.field_values
        if b"b" in fields:
            want += [(int(fields[b"s"]), r) for r in decode_message(fields[b"b"])]
        else:
            want.append((int(fields[b"s"]), CODEC.decode_text(fields[b"t"])))
    assert everything == want
    # the ticks file has a row per tick, in Dhan's columns
    pyarrow = pytest.importorskip("pyarrow.parquet")
    rows = pyarrow.read_table(ticks_path).to_pylist()
    assert len(rows) == sum(isinstance(r, TICKS) for _, r in want)
    assert {(row["exchange_segment"], row["security_id"]) for row in rows} <= set(plan)


async def test_a_raw_dhan_feed_yields_messages_unchanged(sb: Sandbox) -> None:
    async with raw_feed(sb) as feed:
        await feed.subscribe([HDFC], "quote")
        placed = await place_order(sb)
        frames: list[RawFrame] = []
        with anyio.fail_after(HANG_GUARD):
            async for frame in feed:
                frames.append(frame)
                if isinstance(frame.data, str) and placed in frame.data:
                    break
        stats = feed.statistics()
    binary = [f for f in frames if isinstance(f.data, bytes)]
    records = [r for f in binary for r in decode_message(f.data)]  # type: ignore[arg-type]
    assert {type(r) for r in records} >= {PrevClose, QuoteTick}
    assert {r.key for r in records} == {HDFC}
    assert stats.ticks == len(records)
    assert stats.malformed == 0
    texts = [f for f in frames if isinstance(f.data, str)]
    assert texts[-1].connection == 1000  # the order-update socket
    update = CODEC.decode_text(texts[-1].data)
    assert isinstance(update, OrderUpdate)
    assert update.order_id == placed
    with pytest.raises(ValueError, match="conflate"):
        RawDhanFeed(sb.client_id, sb.access_token, overflow="conflate")


async def test_a_direct_recording_of_a_raw_dhan_feed_replays_every_message(
    sb: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "direct.parquet"
    async with raw_feed(sb) as feed:
        await feed.subscribe([HDFC, NIFTY], "full")
        with anyio.fail_after(HANG_GUARD):
            assert await record(path, feed=feed, frames=15, codec="dhan") == 15
    replay = await replayed(path)
    ticks = [item for _, item in replay if isinstance(item, TICKS)]
    assert {item.key for item in ticks} == {HDFC, NIFTY}
    assert all(isinstance(item, FullTick) for item in ticks)
    # subscribed in a poorer mode, the replay cuts each message down
    poorer = await replayed(path, subscriptions={NIFTY: "ticker"})
    assert [i for _, i in poorer if isinstance(i, TICKS)] == [
        TickerTick(i.exchange_segment, i.security_id, i.last_price, i.last_trade_time)
        for i in ticks
        if i.key == NIFTY
    ]


async def test_a_raw_dhan_feed_ends_on_dhans_session_disconnect(sb: Sandbox) -> None:
    from aio_trader.errors import SessionExpired

    async def run() -> None:
        async with raw_feed(sb) as feed:
            await feed.subscribe([HDFC], "ticker")
            async for frame in feed:
                if isinstance(frame.data, bytes):
                    break
            async with httpx.AsyncClient() as client:
                answer = await client.post(f"{sb.root_url}/__sandbox__/expire_session")
            assert answer.status_code == 200, answer.text
            with anyio.fail_after(HANG_GUARD):
                async for frame in feed:
                    assert not (isinstance(frame.data, bytes) and frame.data[0] == 50)

    with pytest.raises(SessionExpired) as caught:
        await run()
    assert caught.value.code == "807"


async def test_the_dhan_sandbox_serves_a_recording_cut_to_each_subscription(
    sb: Sandbox, tmp_path: Path
) -> None:
    from aio_trader.dhan import DhanFeed

    path = tmp_path / "served.parquet"
    async with raw_feed(sb) as raw:
        await raw.subscribe([HDFC, NIFTY], "full")
        with anyio.fail_after(HANG_GUARD):
            await record(path, feed=raw, frames=30, codec="dhan")
    recorded = [(s, i) for s, i in await replayed(path) if isinstance(i, FullTick)]
    want = {
        TickerTick(i.exchange_segment, i.security_id, i.last_price, i.last_trade_time)
        for _, i in recorded
        if i.key == HDFC
    }
    assert want
    config = SandboxConfig(broker="dhan", replay=str(path))
    async with Sandbox(config) as served:
        feed = DhanFeed(served.client_id, served.access_token, root=served.feed_url,
                        order_root=None, backoff=FAST)  # fmt: skip
        async with feed:
            await feed.subscribe([HDFC], "ticker")
            got: list[Any] = []
            with anyio.fail_after(HANG_GUARD):
                async for item in feed:
                    got.append(item)
                    if len(got) >= 10:
                        break
    assert {type(item) for item in got} <= {TickerTick, PrevClose}
    assert {item.key for item in got} == {HDFC}
    ticks = [item for item in got if isinstance(item, TickerTick)]
    assert ticks
    assert set(ticks) <= want  # the recorded full ticks, cut to ticker, for HDFC only
