# ruff: noqa: F811  (the fixtures are imported from _redis, then requested by name)
"""The tick gateway end to end: the sandbox's ticker -> ``Gateway`` -> a real ``redis-server``
-> ``RedisFeed`` consumers, on both backends.

Frames are compared by the gateway's sequence numbers: what the stream holds (read back
with XRANGE) against what each consumer yielded (``feed.last_frame.seq``).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import coredis
import pytest
from _redis import RedisServer, persistent_redis, prefix, redis  # noqa: F401 (fixtures)

from aio_trader.gateway import FeedGap, Gateway, RedisFeed
from aio_trader.kite import Mode, Tick, decode_frame
from aio_trader.kite._codec import CODEC as KITE_CODEC
from aio_trader.sandbox import Sandbox, SandboxConfig

#: A guard against a hang only (a test that waits this long has failed anyway).
HANG_GUARD = 30.0
INFY, RELIANCE, TCS, NIFTY = 408065, 738561, 2953217, 256265


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(tick_interval=0.02)) as sandbox:
        yield sandbox


def gateway(sb: Sandbox, server: RedisServer, prefix: str, **kwargs: Any) -> Gateway:
    kwargs.setdefault("poll", 0.02)
    kwargs.setdefault("refresh", 0.2)
    return Gateway(sb.api_key, sb.access_token, root=sb.ticker_url, redis=server.url,
                   prefix=prefix, **kwargs)  # fmt: skip


def consumer(server: RedisServer, prefix: str, name: str, **kwargs: Any) -> RedisFeed:
    kwargs.setdefault("heartbeat", 0.1)
    kwargs.setdefault("timeout", 1.0)
    kwargs.setdefault("block", 0.2)
    return RedisFeed(server.url, name, prefix=prefix, **kwargs)


async def until(check: Callable[[], bool]) -> None:
    with anyio.fail_after(HANG_GUARD):
        while not check():  # noqa: ASYNC110 - polling other objects' state
            await anyio.sleep(0.01)


async def published(server: RedisServer, prefix: str) -> dict[int, set[int]]:
    """seq -> the instrument tokens of that binary frame, for every entry the stream holds."""
    out: dict[int, set[int]] = {}
    async with coredis.Redis.from_url(server.url, decode_responses=False) as client:
        for entry in await client.xrange(f"{prefix}:frames", "-", "+"):
            fields = entry.field_values
            if b"b" in fields:
                ticks = decode_frame(fields[b"b"])
                out[int(fields[b"s"])] = {t.instrument_token for t in ticks}
    return out


class Reader:
    """Reads a feed in a task, keeping (seq, token, mode) of each tick it yields."""

    def __init__(self, feed: RedisFeed) -> None:
        self.feed = feed
        self.ticks: list[tuple[int, int, str]] = []
        self.items: list[Any] = []

    async def run(self) -> None:
        async for item in self.feed:
            self.items.append(item)
            if isinstance(item, Tick):
                info = self.feed.last_frame
                assert info is not None
                self.ticks.append((info.seq, item.instrument_token, item.mode))

    def seqs(self, token: int) -> list[int]:
        return [seq for seq, tok, _ in self.ticks if tok == token]


def missing(frames: dict[int, set[int]], reader: Reader, token: int, lo: int, hi: int) -> set[int]:
    """The frames in ``lo..hi`` with ``token`` whose tick the reader did not yield.

    The reader's last frame may be cut short where the test stopped it (every receive is a
    checkpoint, so a test can stop a reader between two items of a frame): it counts up to
    the frame before (the earlier ones are whole: items come in arrival order)."""
    hi = min(hi, reader.ticks[-1][0] - 1)
    want = {seq for seq, tokens in frames.items() if lo <= seq <= hi and token in tokens}
    return want - set(reader.seqs(token))


async def test_fan_out_each_consumer_gets_its_instruments_in_its_modes(
    sb: Sandbox, redis: RedisServer, prefix: str
) -> None:
    plan = {
        "a": ({INFY, RELIANCE}, "full"),
        "b": ({INFY, TCS}, "quote"),
        "c": ({RELIANCE, NIFTY}, "ltp"),
    }
    async with gateway(sb, redis, prefix) as gw, contextlib.AsyncExitStack() as stack:
        feeds = {n: await stack.enter_async_context(consumer(redis, prefix, n)) for n in plan}
        for name, (tokens, mode) in plan.items():
            await feeds[name].subscribe(tokens, mode)
        union = {INFY: Mode.FULL, RELIANCE: Mode.FULL, TCS: Mode.QUOTE, NIFTY: Mode.LTP}
        await until(lambda: gw.subscriptions == union)
        assert gw.consumers == frozenset(plan)
        readers = {n: Reader(f) for n, f in feeds.items()}
        async with anyio.create_task_group() as tg:
            for reader in readers.values():
                tg.start_soon(reader.run)

            def enough() -> bool:
                return all(all(len(r.seqs(t)) >= 5 for t in plan[n][0]) for n, r in readers.items())

            await until(enough)
            tg.cancel_scope.cancel()
        rank = {"ltp": 0, "quote": 1, "full": 2}
        for name, reader in readers.items():
            tokens, mode = plan[name]
            assert {tok for _, tok, _ in reader.ticks} == tokens
            # its mode, or a poorer one before the gateway's mode switch took effect
            # (delivered and counted: the one visible change)
            modes = Counter(m for _, _, m in reader.ticks)
            assert mode in modes
            assert all(rank[m] <= rank[mode] for m in modes)
            poorer = sum(n for m, n in modes.items() if m != mode)
            assert feeds[name].statistics().poorer_mode >= poorer
            assert feeds[name].statistics().stale_mode == 0  # cut down, never dropped
            assert all(isinstance(item, Tick) for item in reader.items)
        # the same frame cut down to each mode: b's quote ticks of INFY are a's full ones
        full = {
            (s, t): i for (s, t, _), i in zip(readers["a"].ticks, readers["a"].items, strict=True)
        }
        same = 0
        for (seq, tok, _), tick in zip(readers["b"].ticks, readers["b"].items, strict=True):
            if (seq, tok) in full:
                rich = full[seq, tok]
                assert (tick.last_price, tick.volume_traded, tick.ohlc) == (
                    rich.last_price, rich.volume_traded, rich.ohlc)  # fmt: skip
                same += 1
        assert same > 0
        # a consumer leaving shrinks the union; the next one drops its instruments too
        await feeds["c"].close()
        await until(lambda: NIFTY not in gw.subscriptions)
        assert gw.subscriptions == {INFY: Mode.FULL, RELIANCE: Mode.FULL, TCS: Mode.QUOTE}
        await feeds["a"].close()
        # the gateway unsubscribes RELIANCE, then switches INFY down: two Kite messages
        await until(lambda: gw.subscriptions == {INFY: Mode.QUOTE, TCS: Mode.QUOTE})
        assert gw.consumers == frozenset({"b"})


async def test_each_entry_carries_the_kite_connection_and_receive_time_of_its_frame(
    sb: Sandbox, redis: RedisServer, prefix: str
) -> None:
    # one instrument per connection: INFY and TCS come on two Kite connections
    options = {"max_instruments": 1}
    async with (
        gateway(sb, redis, prefix, feed_options=options) as gw,
        consumer(redis, prefix, "a") as feed,
    ):
        await feed.subscribe([INFY, TCS], "ltp")
        await until(lambda: gw.subscriptions == {INFY: Mode.LTP, TCS: Mode.LTP})
        reader = Reader(feed)
        connections: dict[int, set[int]] = {}
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader.run)
            await until(lambda: all(len(reader.seqs(t)) >= 3 for t in (INFY, TCS)))
            tg.cancel_scope.cancel()
        assert gw.feed.statistics().connections == 2
        async with coredis.Redis.from_url(redis.url, decode_responses=False) as client:
            entries = await client.xrange(f"{prefix}:frames", "-", "+")
        before = time.time()
        for entry in entries:
            fields = entry.field_values
            if b"b" in fields:
                tokens = {t.instrument_token for t in decode_frame(fields[b"b"])}
                connections.setdefault(int(fields[b"c"]), set()).update(tokens)
                assert 0 < before - float(fields[b"r"]) < HANG_GUARD  # the feed's time.time()
    assert set(connections) == {0, 1}
    assert connections[0] | connections[1] == {INFY, TCS}
    assert not connections[0] & connections[1]  # each instrument on its own connection
    assert reader.feed.last_frame is not None
    assert reader.feed.last_frame.connection in (0, 1)


async def test_a_dead_consumer_stops_counting_after_its_timeout(
    sb: Sandbox, redis: RedisServer, prefix: str
) -> None:
    async with gateway(sb, redis, prefix) as gw, consumer(redis, prefix, "alive") as alive:
        await alive.subscribe([INFY], "ltp")
        async with coredis.Redis.from_url(redis.url) as client:
            # a consumer that crashed: wishes and a heartbeat that is never renewed
            await client.sadd(f"{prefix}:consumers", ["ghost"])
            await client.hset(f"{prefix}:wants:ghost", {str(TCS): "full"})
            await client.set(f"{prefix}:alive:ghost", "1", px=300)
            await client.incr(f"{prefix}:wishes")
        await until(lambda: TCS in gw.subscriptions)
        assert gw.consumers == {"alive", "ghost"}
        await until(lambda: TCS not in gw.subscriptions)
        assert gw.subscriptions == {INFY: Mode.LTP}
        assert gw.consumers == {"alive"}


async def test_a_gateway_and_a_consumer_left_by_a_cancellation_close_everything(
    sb: Sandbox, redis: RedisServer, prefix: str
) -> None:
    """Left by a cancelled scope (a Ctrl-C), the gateway and the consumer close their
    task groups and Redis clients in their own task: on trio an exit that stopped half-way
    left a nursery open ("Nursery misnesting"), the client's pool never closed."""
    with anyio.fail_after(HANG_GUARD), anyio.CancelScope() as outer:
        async with gateway(sb, redis, prefix) as gw:
            with anyio.CancelScope() as inner:
                async with consumer(redis, prefix, "a") as feed:
                    await feed.subscribe([INFY], "ltp")
                    async for item in feed:
                        if isinstance(item, Tick):
                            inner.cancel()
            assert inner.cancelled_caught
            outer.cancel()
            await anyio.sleep_forever()
    assert outer.cancelled_caught
    assert repr(gw).endswith(" closed>")
    assert gw.statistics().frames > 0


async def test_a_restarted_consumer_resumes_where_it_stopped(
    sb: Sandbox, redis: RedisServer, prefix: str
) -> None:
    tokens = [INFY, TCS]
    async with (
        gateway(sb, redis, prefix) as gw,
        consumer(redis, prefix, "keeper", buffer_size=1) as keeper,
    ):
        await keeper.subscribe(tokens, "full")  # keeps the instruments subscribed meanwhile
        first = Reader(consumer(redis, prefix, "a"))
        async with first.feed:
            await first.feed.subscribe(tokens, "full")
            async with anyio.create_task_group() as tg:
                tg.start_soon(first.run)
                await until(lambda: len(first.ticks) >= 15)
                tg.cancel_scope.cancel()  # killed mid-stream, maybe in the middle of a frame
        killed_at = first.ticks[-1][0]
        await until(lambda: gw.statistics().seq >= killed_at + 10)  # frames it is not reading
        second = Reader(consumer(redis, prefix, "a"))
        async with second.feed:
            await second.feed.subscribe(tokens, "full")
            async with anyio.create_task_group() as tg:
                tg.start_soon(second.run)
                target = gw.statistics().seq + 5
                await until(lambda: bool(second.ticks) and second.ticks[-1][0] >= target)
                tg.cancel_scope.cancel()
        assert second.feed.statistics().gaps == 0
    frames = await published(redis, prefix)
    both = Reader(first.feed)
    both.ticks = first.ticks + second.ticks
    lo, hi = first.ticks[0][0], second.ticks[-1][0]
    for token in tokens:
        assert missing(frames, both, token, lo, hi) == set()
    twice = {seq for (seq, _tok), n in Counter((s, t) for s, t, _ in both.ticks).items() if n > 1}
    assert twice <= {killed_at}  # only the frame it was in the middle of, as documented
    assert not any(isinstance(item, FeedGap) for item in first.items + second.items)


async def test_a_gateway_restart_loses_nothing(
    sb: Sandbox, redis: RedisServer, prefix: str
) -> None:
    async with consumer(redis, prefix, "a") as feed:
        reader = Reader(feed)
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader.run)
            await feed.subscribe([INFY, NIFTY], "quote")
            async with gateway(sb, redis, prefix) as gw1:
                await until(lambda: len(reader.ticks) >= 10)
                epoch, stopped_at = gw1.statistics().epoch, gw1.statistics().seq
            async with gateway(sb, redis, prefix) as gw2:
                assert gw2.statistics().epoch == epoch  # numbering continues
                await until(lambda: bool(reader.ticks) and reader.ticks[-1][0] >= stopped_at + 10)
            tg.cancel_scope.cancel()
        assert feed.statistics().gaps == 0
        assert feed.statistics().duplicates == 0
    frames = await published(redis, prefix)
    lo, hi = reader.ticks[0][0], reader.ticks[-1][0]
    assert set(range(lo, hi + 1)) <= set(frames)  # the stream itself has no hole
    for token in (INFY, NIFTY):
        assert missing(frames, reader, token, lo, hi) == set()
    assert len(reader.ticks) == len(set((s, t) for s, t, _ in reader.ticks))


async def test_a_redis_restart_with_persistence_loses_nothing(
    sb: Sandbox, persistent_redis: RedisServer, prefix: str
) -> None:
    server = persistent_redis
    async with gateway(sb, server, prefix) as gw, consumer(server, prefix, "a") as feed:
        reader = Reader(feed)
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader.run)
            await feed.subscribe([INFY, RELIANCE], "full")
            await until(lambda: len(reader.ticks) >= 10)
            await anyio.to_thread.run_sync(server.stop)
            down = gw.feed.statistics().frames
            await until(lambda: gw.feed.statistics().frames >= down + 5)  # they wait meanwhile
            await anyio.to_thread.run_sync(server.start)
            target = gw.statistics().seq + 5
            await until(lambda: bool(reader.ticks) and reader.ticks[-1][0] >= target)
            tg.cancel_scope.cancel()
        stats = feed.statistics()
        assert stats.gaps == 0
        assert gw.statistics().redis_errors + stats.reconnects > 0  # it did see Redis go
    frames = await published(server, prefix)
    lo, hi = reader.ticks[0][0], reader.ticks[-1][0]
    assert set(range(lo, hi + 1)) <= set(frames)
    for token in (INFY, RELIANCE):
        assert missing(frames, reader, token, lo, hi) == set()
    assert len(reader.ticks) == len(set((s, t) for s, t, _ in reader.ticks))


@pytest.mark.parametrize("overflow", ["lossless", "drop_oldest", "conflate"])
async def test_a_slow_consumer_under_each_overflow_policy(
    sb: Sandbox, redis: RedisServer, prefix: str, overflow: str
) -> None:
    tokens = {INFY, TCS}
    async with (
        gateway(sb, redis, prefix) as gw,
        consumer(redis, prefix, "slow", overflow=overflow, buffer_size=3) as feed,
    ):
        await feed.subscribe(tokens, "ltp")
        await until(lambda: gw.subscriptions.keys() == tokens)
        start = gw.statistics().seq
        await until(lambda: gw.statistics().seq >= start + 30)  # 30 frames while not reading
        stats = feed.statistics()
        if overflow == "lossless":
            assert stats.buffered <= 3 + len(tokens)  # the backlog waits in Redis
            # and shows as lag, on the consumer and on the gateway
            await until(lambda: feed.statistics().lag >= 20 and gw.statistics().consumer_lag >= 20)
        elif overflow == "conflate":
            assert stats.buffered <= len(tokens)
        else:
            assert stats.buffered <= 3
        reader = Reader(feed)
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader.run)
            target = gw.statistics().seq
            await until(lambda: bool(reader.ticks) and reader.ticks[-1][0] >= target)
            tg.cancel_scope.cancel()
        stats = feed.statistics()
    frames = await published(redis, prefix)
    lo, hi = reader.ticks[0][0], reader.ticks[-1][0]
    lost = set().union(*(missing(frames, reader, t, lo, hi) for t in tokens))
    if overflow == "lossless":
        # ltp is the poorest mode: every packet cuts down to it, none is poorer nor dropped
        assert lost == set()
        assert stats.stale_mode == stats.poorer_mode == 0
        assert stats.dropped == 0
    else:
        assert stats.dropped > 0
        assert reader.ticks[0][0] >= start + 20  # the oldest were dropped, the newest kept
        # every tick decoded was yielded, dropped, or is still waiting: none vanished
        assert stats.ticks == len(reader.ticks) + stats.dropped + stats.buffered


async def test_a_consumer_behind_past_retention_sees_a_counted_gap(
    sb: Sandbox, redis: RedisServer, prefix: str
) -> None:
    async with (
        gateway(sb, redis, prefix, retention=10) as gw,
        consumer(redis, prefix, "keeper", overflow="drop_oldest", buffer_size=1) as keeper,
    ):
        await keeper.subscribe([INFY], "ltp")
        first = Reader(consumer(redis, prefix, "late"))
        async with first.feed:
            await first.feed.subscribe([INFY], "ltp")
            async with anyio.create_task_group() as tg:
                tg.start_soon(first.run)
                await until(lambda: len(first.ticks) >= 3)
                tg.cancel_scope.cancel()
        left_at = first.feed.last_frame
        assert left_at is not None
        await until(lambda: gw.statistics().seq >= left_at.seq + 60)  # > retention while away
        second = Reader(consumer(redis, prefix, "late"))
        async with second.feed:
            await second.feed.subscribe([INFY], "ltp")
            async with anyio.create_task_group() as tg:
                tg.start_soon(second.run)
                await until(lambda: len(second.ticks) >= 1)
                tg.cancel_scope.cancel()
        gaps = [item for item in second.items if isinstance(item, FeedGap)]
        assert len(gaps) == 1
        gap = gaps[0]
        assert second.items[0] == gap  # before anything else: never silence
        assert gap.after_seq is not None
        assert gap.after_seq >= left_at.seq
        assert gap.missed == gap.next_seq - gap.after_seq - 1 > 0
        stats = second.feed.statistics()
        assert (stats.gaps, stats.missed_frames) == (1, gap.missed)
        assert second.ticks[0][0] >= gap.next_seq


async def test_an_expired_session_stops_the_gateway_with_token_exception(
    redis: RedisServer, prefix: str
) -> None:
    from aio_trader.errors import TokenException

    async def run(gw: Gateway) -> None:
        async with gw:  # the feed's first connection fails: raised here, as itself
            await anyio.sleep_forever()

    async with Sandbox(SandboxConfig(tick_interval=0.02)) as sb:
        sb.faults.session_expired = True
        gw = gateway(sb, redis, prefix)
        with anyio.fail_after(HANG_GUARD), pytest.raises(TokenException):
            await run(gw)
        assert gw.statistics().frames == 0


async def test_cancelling_a_wait_for_the_next_item_loses_nothing(
    sb: Sandbox, redis: RedisServer, prefix: str
) -> None:
    async with gateway(sb, redis, prefix), consumer(redis, prefix, "patient") as feed:
        with anyio.move_on_after(0.1) as scope:
            await feed.__anext__()  # nothing subscribed yet: it waits
        assert scope.cancelled_caught
        await feed.subscribe([INFY], "ltp")
        reader = Reader(feed)
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader.run)
            await until(lambda: len(reader.ticks) >= 5)
            tg.cancel_scope.cancel()
        seqs = reader.seqs(INFY)
        frames = await published(redis, prefix)
        assert missing(frames, reader, INFY, seqs[0], seqs[-1]) == set()


async def test_close_ends_the_iteration_of_another_task(redis: RedisServer, prefix: str) -> None:
    async with consumer(redis, prefix, "closing") as feed:
        items: list[object] = []

        async def read() -> None:
            items.extend([item async for item in feed])

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.sleep(0.05)
            await feed.close()  # the reader's async for ends; this block goes on
        assert items == []
        await feed.close()  # idempotent
        with pytest.raises(RuntimeError, match="enter"):
            await feed.subscribe([INFY])


async def test_settings_and_misuse(redis: RedisServer, prefix: str) -> None:
    with pytest.raises(ValueError, match="name"):
        RedisFeed(redis.url, "has space")
    with pytest.raises(ValueError, match="redis"):
        RedisFeed("localhost:6379", "x")
    with pytest.raises(TypeError, match="redis"):
        RedisFeed(6379, "x")
    with pytest.raises(ValueError, match="timeout"):
        RedisFeed(redis.url, "x", heartbeat=2.0, timeout=1.0)
    with pytest.raises(ValueError, match="retention"):
        Gateway("k", "t", redis=redis.url, retention=0)
    feed = consumer(redis, prefix, "early")
    with pytest.raises(RuntimeError, match="enter"):
        await feed.subscribe([INFY])
    with pytest.raises(RuntimeError, match="enter"):
        feed.__aiter__()
    async with feed:
        with pytest.raises(ValueError, match="tokens"):
            await feed.subscribe([0])
        with pytest.raises(ValueError, match="not subscribed"):
            await feed.set_mode("full", [INFY])
        await feed.subscribe([INFY], "ltp")
        await feed.set_mode("full", [INFY])
        assert feed.subscriptions == {INFY: Mode.FULL}
        await feed.unsubscribe([INFY, TCS])
        assert feed.subscriptions == {}
    assert "secret" not in repr(Gateway("k", "secret", redis=redis.url))


@pytest.mark.parametrize("name", ["Gateway", "RedisFeed", "Recorder"])
def test_a_missing_extra_says_what_to_install(name: str) -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['coredis'] = sys.modules['pyarrow'] = None\n"
        f"from aio_trader.gateway import {name}"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "pip install 'aio-trader[gateway]'" in done.stderr


CRASHING_CONSUMER = r"""
import sys, anyio
from aio_trader.gateway import RedisFeed
from aio_trader.kite import Tick

async def main(url, prefix, tokens):
    async with RedisFeed(url, "crashing", prefix=prefix, heartbeat=0.1, timeout=1.0,
                         block=0.2) as feed:
        await feed.subscribe(tokens, "full")
        async for item in feed:
            if isinstance(item, Tick):
                sys.stdout.write(f"{feed.last_frame.seq} {item.instrument_token}\n")
                sys.stdout.flush()  # before the next item is asked for (that acknowledges)

anyio.run(main, sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3:]], backend=BACKEND)
"""


async def test_a_killed_consumer_process_resumes_at_least_once(
    sb: Sandbox, redis: RedisServer, prefix: str, anyio_backend: str
) -> None:
    import sys

    from anyio.streams.buffered import BufferedByteReceiveStream

    tokens = [INFY, TCS]
    async with (
        gateway(sb, redis, prefix) as gw,
        consumer(redis, prefix, "keeper", overflow="drop_oldest", buffer_size=1) as keeper,
    ):
        await keeper.subscribe(tokens, "full")
        first: list[tuple[int, int]] = []
        process = await anyio.open_process(
            [sys.executable, "-c", f"BACKEND = {anyio_backend!r}\n" + CRASHING_CONSUMER,
             redis.url, prefix, *map(str, tokens)]
        )  # fmt: skip
        try:
            assert process.stdout is not None
            lines = BufferedByteReceiveStream(process.stdout)
            with anyio.fail_after(HANG_GUARD):
                while len(first) < 20:
                    seq, token = (await lines.receive_until(b"\n", 100)).split()
                    first.append((int(seq), int(token)))
        finally:
            process.kill()  # SIGKILL: no close, no last acknowledgement
            await process.wait()
        killed_at = gw.statistics().seq
        second = Reader(consumer(redis, prefix, "crashing"))
        async with second.feed:
            await second.feed.subscribe(tokens, "full")
            async with anyio.create_task_group() as tg:
                tg.start_soon(second.run)
                await until(lambda: bool(second.ticks) and second.ticks[-1][0] >= killed_at + 5)
                tg.cancel_scope.cancel()
    frames = await published(redis, prefix)
    both = Reader(second.feed)
    both.ticks = [(s, t, "full") for s, t in first] + second.ticks
    lo, hi = first[0][0], second.ticks[-1][0]
    for token in tokens:
        assert missing(frames, both, token, lo, hi) == set()
    counts = Counter((s, t) for s, t, _ in both.ticks)
    again = [pair for pair in first if counts[pair] > 1]
    # what came twice is the tail of what the killed process yielded (read, unacknowledged)
    assert again == first[len(first) - len(again) :]


class CountingCodec:
    """Kite's codec under another name, counting what it decodes: a second broker's codec
    as far as the gateway and its consumers can tell."""

    name = "counting-kite"

    def __init__(self) -> None:
        self.binary = 0

    def __getattr__(self, attribute: str) -> Any:
        return getattr(KITE_CODEC, attribute)

    def decode_binary(self, frame: bytes, on_malformed: Any = None) -> list[Any]:
        self.binary += 1
        return KITE_CODEC.decode_binary(frame, on_malformed)


async def test_any_feed_and_codec_each_entry_naming_its_codec(
    sb: Sandbox, redis: RedisServer, prefix: str
) -> None:
    from aio_trader._codec import register_codec
    from aio_trader.kite import RawKiteFeed

    codec = CountingCodec()
    register_codec(codec.name, codec)  # type: ignore[arg-type]
    raw = RawKiteFeed(sb.api_key, sb.access_token, root=sb.ticker_url)
    with pytest.raises(ValueError, match="not both"):
        Gateway(sb.api_key, feed=raw, codec=codec.name, redis=redis.url)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="codec"):
        Gateway(feed=raw, redis=redis.url)
    gw = Gateway(feed=raw, codec=codec.name, redis=redis.url, prefix=prefix, poll=0.02)
    assert gw.codec is codec
    async with gw, consumer(redis, prefix, "a") as feed:  # the consumer's codec: Kite's
        reader = Reader(feed)
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader.run)
            await feed.subscribe([INFY], "quote")
            await until(lambda: len(reader.ticks) >= 3)
            tg.cancel_scope.cancel()
    assert codec.binary >= 3  # each entry decoded with the codec it names
    assert {tok for _, tok, _ in reader.ticks} == {INFY}
    async with coredis.Redis.from_url(redis.url, decode_responses=False) as client:
        entries = await client.xrange(f"{prefix}:frames", "-", "+")
    assert entries
    assert {entry.field_values[b"k"] for entry in entries} == {b"counting-kite"}


async def test_a_default_gateway_names_kite_in_every_entry(
    sb: Sandbox, redis: RedisServer, prefix: str
) -> None:
    async with gateway(sb, redis, prefix) as gw, consumer(redis, prefix, "a") as feed:
        assert gw.codec is KITE_CODEC
        await feed.subscribe([INFY], "ltp")
        await until(lambda: gw.statistics().frames >= 2)
    async with coredis.Redis.from_url(redis.url, decode_responses=False) as client:
        entries = await client.xrange(f"{prefix}:frames", "-", "+")
    assert {entry.field_values[b"k"] for entry in entries} == {b"kite"}


async def publish(server: RedisServer, prefix: str, frames: list[bytes | str]) -> None:
    """Append entries as a gateway does (epoch 1, seq 1, 2, 3 ...), without a gateway."""
    from aio_trader.gateway._wire import entry_fields

    async with coredis.Redis.from_url(server.url, decode_responses=False) as client:
        for seq, data in enumerate(frames, 1):
            fields = entry_fields(b"1", seq, time.time(), 0, b"kite", data)
            await client.xadd(f"{prefix}:frames", fields)  # type: ignore[arg-type]


def two_ticks_then_an_order() -> tuple[list[bytes | str], list[Any]]:
    from aio_trader.kite import LtpTick, OrderUpdate, encode_frame, encode_text

    first, second = LtpTick(INFY, 1.0), LtpTick(TCS, 2.0)
    update, third = OrderUpdate(order_id="1"), LtpTick(INFY, 3.0)
    frames: list[bytes | str] = [
        encode_frame([first, second]),
        encode_text(update),
        encode_frame([third]),
    ]
    return frames, [first, second, update, third]


@pytest.mark.parametrize("overflow", ["lossless", "drop_oldest", "conflate"])
async def test_items_come_in_arrival_order_and_every_receive_is_a_checkpoint(
    redis: RedisServer, prefix: str, overflow: str
) -> None:
    frames, expected = two_ticks_then_an_order()
    async with consumer(redis, prefix, "order", start="oldest", overflow=overflow) as feed:
        await feed.subscribe([INFY, TCS], "ltp")
        await publish(redis, prefix, frames)
        await until(lambda: feed.statistics().frames + feed.statistics().text_frames == 3)
        for _ in range(3):  # items wait, yet a cancelled wait for one raises at once
            with anyio.CancelScope() as scope:
                scope.cancel()
                await feed.__anext__()
            assert scope.cancelled_caught
        got = [await feed.__anext__() for _ in range(len(expected) - (overflow == "conflate"))]
    if overflow == "conflate":  # INFY's newest tick took its place in line; none later
        assert got == [expected[3], expected[1], expected[2]]
    else:
        assert got == expected  # the order update after the two ticks before it


async def test_an_entry_is_acknowledged_once_its_items_were_read(
    redis: RedisServer, prefix: str
) -> None:
    frames, expected = two_ticks_then_an_order()
    async with consumer(redis, prefix, "acks", start="oldest") as feed:
        await feed.subscribe([INFY, TCS], "ltp")
        await publish(redis, prefix, frames)
        await until(lambda: feed.statistics().frames + feed.statistics().text_frames == 3)
        assert await feed.__anext__() == expected[0]
        assert await feed.__anext__() == expected[1]  # the first entry's last item
        assert feed.statistics().acked == 0
        assert await feed.__anext__() == expected[2]  # asking for more acknowledges it
        await until(lambda: feed.statistics().acked == 1)  # sent with the next heartbeat
    async with coredis.Redis.from_url(redis.url, decode_responses=False) as client:
        pending = await client.xpending(f"{prefix}:frames", "acks")
    # on close, the order update's entry was acknowledged too (read); the last was not
    assert pending.pending == 1


async def test_a_tick_in_a_poorer_mode_than_asked_is_delivered_and_counted_in_poorer_mode(
    redis: RedisServer, prefix: str
) -> None:
    # issue 17: as KiteFeed does; stale_mode counts only ticks dropped, and a consumer
    # drops none (a richer packet is cut down to its mode)
    from aio_trader.kite import FullTick, LtpTick, Ohlc, QuoteTick, encode_frame

    quote = QuoteTick(INFY, 1.5, 1, 1.5, 10, 1, 1, Ohlc(1.0, 2.0, 0.5, 1.25))
    async with consumer(redis, prefix, "poorer", start="oldest") as feed:
        await feed.subscribe([INFY], "full")
        await feed.subscribe([TCS], "ltp")
        await publish(redis, prefix, [encode_frame([quote, LtpTick(TCS, 2.0)])])
        with anyio.fail_after(HANG_GUARD):
            got = [await feed.__anext__(), await feed.__anext__()]
        stats = feed.statistics()
    assert got == [quote, LtpTick(TCS, 2.0)]  # the quote tick as it came, not a FullTick
    assert not isinstance(got[0], FullTick)
    assert (stats.poorer_mode, stats.stale_mode, stats.ticks) == (1, 0, 2)
