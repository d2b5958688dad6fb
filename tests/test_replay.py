# ruff: noqa: F811  (the fixtures are imported from _redis, then requested by name)
"""Recordings and their replay: record -> ``ReplayFeed`` yields what the live feed yielded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pyarrow.parquet as pq
import pytest
from _redis import RedisServer, prefix, redis  # noqa: F401 (fixtures)
from test_gateway import HANG_GUARD, INFY, NIFTY, TCS, Reader, consumer, gateway, until

from aio_trader.gateway import Recorder, record
from aio_trader.kite import FeedMessage, RawKiteFeed, Tick, decode_frame, encode_text
from aio_trader.replay import ReplayFeed
from aio_trader.sandbox import Sandbox, SandboxConfig


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(tick_interval=0.02)) as sandbox:
        yield sandbox


async def replayed(path: Path, **kwargs: Any) -> list[tuple[int, Any]]:
    subscribe = kwargs.pop("subscribe", None)
    if subscribe is not None:  # from the first frame on (the replay starts once entered)
        kwargs["subscriptions"] = {t: mode for mode, tokens in subscribe.items() for t in tokens}
    out: list[tuple[int, Any]] = []
    async with ReplayFeed(path, **kwargs) as feed:
        async for item in feed:
            assert feed.last_frame is not None
            out.append((feed.last_frame.seq, item))
    return out


async def test_a_gateway_recording_replays_what_a_consumer_yielded(
    sb: Sandbox, redis: RedisServer, prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "session.parquet"
    plan = {"full": [INFY], "quote": [NIFTY], "ltp": [TCS]}
    recorded = 30  # frames 1..30 of the stream: the recorder stops there by itself
    async with gateway(sb, redis, prefix), consumer(redis, prefix, "live") as feed:
        reader = Reader(feed)
        done = anyio.Event()

        async def recorder() -> None:
            await record(path, redis=redis.url, prefix=prefix, start="oldest", frames=recorded)
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(recorder)
            tg.start_soon(reader.run)
            for mode, tokens in plan.items():
                await feed.subscribe(tokens, mode)
            # an item of a later frame was yielded: every frame up to ``recorded`` is whole
            # (arrival order), whenever the reader is stopped after this
            await until(lambda: bool(reader.ticks) and reader.ticks[-1][0] > recorded)
            with anyio.fail_after(HANG_GUARD):
                await done.wait()
            tg.cancel_scope.cancel()
    live = [(s, item) for (s, _, _), item in zip(reader.ticks, reader.items, strict=True)]
    live = [(s, item) for s, item in live if s <= recorded]
    lo = live[0][0]
    replay = [(s, i) for s, i in await replayed(path, speed=None, subscribe=plan) if lo <= s]
    assert len(live) >= 40
    assert replay == live
    # without a subscription: every instrument the gateway carried, in its richest mode
    everything = await replayed(path, speed=None)
    modes = {(item.instrument_token, item.mode) for _, item in everything}
    assert modes >= {(INFY, "full"), (NIFTY, "quote"), (TCS, "ltp")}  # (quote before a switch)
    assert {token for token, _ in modes} == {INFY, NIFTY, TCS}


async def test_a_direct_recording_replays_every_frame_decoded(sb: Sandbox, tmp_path: Path) -> None:
    path, ticks_path = tmp_path / "direct.parquet", tmp_path / "ticks.parquet"
    live: list[Any] = []
    async with RawKiteFeed(sb.api_key, sb.access_token, root=sb.ticker_url) as feed:
        await feed.subscribe([INFY, TCS], "full")
        await feed.subscribe([NIFTY], "ltp")
        with (
            Recorder(path, ticks=ticks_path, row_group=7) as recorder,
            anyio.fail_after(HANG_GUARD),
        ):
            async for frame in feed:
                recorder.write(frame.data, frame.received, frame.connection)
                data = frame.data
                live.extend(decode_frame(data) if isinstance(data, bytes) else [data])
                if recorder.frames >= 30:
                    break
            message = FeedMessage("recorded text frame")
            recorder.write(encode_text(message))
            live.append(message)
    replay = [item for _, item in await replayed(path, speed=None)]
    assert replay[:-1] == live[:-1]
    assert isinstance(replay[-1], FeedMessage)
    assert replay[-1].data == "recorded text frame"
    table = pq.read_table(ticks_path)
    ticks = [item for item in live if isinstance(item, Tick)]
    assert table.num_rows == len(ticks)
    assert table.column("instrument_token").to_pylist() == [t.instrument_token for t in ticks]
    assert table.column("last_price").to_pylist() == [t.last_price for t in ticks]


async def test_record_from_a_feed_and_replay_in_time(sb: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "timed.parquet"
    async with RawKiteFeed(sb.api_key, sb.access_token, root=sb.ticker_url) as feed:
        await feed.subscribe([INFY], "ltp")
        with anyio.fail_after(HANG_GUARD):
            assert await record(path, feed=feed, frames=12) == 12
    received = pq.read_table(path).column("received").cast("int64").to_pylist()
    span = (received[-1] - received[0]) / 1e6
    assert span > 0
    start = anyio.current_time()
    items = await replayed(path, speed=4.0)
    assert anyio.current_time() - start >= span / 4 * 0.9  # paced: never faster than asked
    assert len(items) >= 12
    assert {item.instrument_token for _, item in items} == {INFY}


async def test_replay_settings_and_misuse(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="speed"):
        ReplayFeed(tmp_path / "x.parquet", speed=0)
    feed = ReplayFeed(tmp_path / "x.parquet")
    with pytest.raises(RuntimeError, match="enter"):
        feed.__aiter__()
    with pytest.raises(FileNotFoundError):
        await feed.__aenter__()
    with pytest.raises(ValueError, match="row_group"):
        Recorder(tmp_path / "y.parquet", row_group=0)
    with pytest.raises(ValueError, match="not both"):
        await record(tmp_path / "z.parquet")
