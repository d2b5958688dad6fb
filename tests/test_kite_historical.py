"""Historical candles in bulk: chunking by Kite's per-interval maximum, concurrency at the
rate limit, progress, errors and cancellation, against the sandbox."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

from aio_trader._time import IST
from aio_trader.backoff import Backoff
from aio_trader.errors import InputException
from aio_trader.kite import EndpointGroup, Interval, Kite
from aio_trader.kite._broker import historical_chunks
from aio_trader.sandbox import Sandbox, SandboxConfig

SCALE = 10
TOKENS = [408065, 738561, 2953217, 341249]  # INFY, RELIANCE, TCS, HDFCBANK


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(seed=4, market_interval=None, rate_limit_scale=SCALE)
    async with Sandbox(config) as sb:
        yield sb


@pytest.fixture
async def kite(sb: Sandbox) -> AsyncIterator[Kite]:
    backoff = Backoff(base=0.01, cap=0.05, max_attempts=3)
    async with Kite(
        sb.api_key, sb.access_token, root=sb.root_url, backoff=backoff, rate_limit_scale=SCALE
    ) as kite:
        yield kite


def test_chunks_cover_the_range_without_overlap() -> None:
    start = datetime.datetime(2010, 1, 1, tzinfo=IST)
    end = datetime.datetime(2024, 12, 31, 15, 30, tzinfo=IST)
    chunks = historical_chunks(start, end, "day")
    assert len(chunks) == 3
    assert chunks[0][0] == start
    assert chunks[-1][1] == end
    for (a_start, a_end), (b_start, _) in itertools.pairwise(chunks):
        assert a_end - a_start == datetime.timedelta(days=2000)
        assert b_start - a_end == datetime.timedelta(seconds=1)
    minute = historical_chunks("2024-01-01", "2024-03-01 00:00:00", Interval.MINUTE)
    assert len(minute) == 1
    assert minute[0][0].tzinfo is not None
    assert len(historical_chunks(datetime.date(2024, 1, 1), "2024-06-01", "minute")) == 3
    # naive datetimes are IST wall clock
    naive = historical_chunks(datetime.datetime(2024, 1, 1, 9, 15), "2024-01-02", "day")
    assert naive[0][0] == datetime.datetime(2024, 1, 1, 9, 15, tzinfo=IST)


def test_chunks_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="after"):
        historical_chunks("2024-02-01", "2024-01-01", "day")
    with pytest.raises(ValueError, match="fortnight"):
        historical_chunks("2024-01-01", "2024-02-01", "fortnight")
    with pytest.raises(ValueError, match="unreadable"):
        historical_chunks("01/01/2024", "2024-02-01", "day")


async def test_bulk_splits_ranges_runs_at_the_limit_and_reports_progress(
    kite: Kite, sb: Sandbox
) -> None:
    progress: list[tuple[int, int]] = []
    started = anyio.current_time()
    result = await kite.historical_bulk(
        [*TOKENS, TOKENS[0]],  # a duplicate is fetched once
        "2010-01-01",
        "2024-12-31",
        "day",
        on_progress=lambda done, total: progress.append((done, total)),
    )
    elapsed = anyio.current_time() - started
    assert list(result) == TOKENS
    assert progress == [(n, 12) for n in range(1, 13)]
    assert sb.state.stats.refused_429["historical"] == 0
    # paced (no bursts): 12 requests need at least 11 gaps of 90 % of 1 / (3 * SCALE) s
    assert elapsed >= 11 * 0.9 / (3 * SCALE)
    for token, candles in result.items():
        assert candles, token
        stamps = [c.date for c in candles]
        assert stamps == sorted(set(stamps))
        assert stamps[0] >= datetime.datetime(2010, 1, 1, tzinfo=IST)
        assert stamps[-1] <= datetime.datetime(2024, 12, 31, tzinfo=IST)
    # the same candles as one request per chunk
    first_chunk = historical_chunks("2010-01-01", "2024-12-31", "day")[0]
    direct = await kite.historical_data(TOKENS[1], *first_chunk, "day")
    assert result[TOKENS[1]][: len(direct)] == direct


async def test_bulk_async_progress_and_oi(kite: Kite) -> None:
    seen: list[int] = []

    async def progress(done: int, total: int) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(done)

    result = await kite.historical_bulk(
        [8960258],
        "2026-11-02 09:15:00",
        "2026-11-03 15:30:00",
        Interval.MINUTE_15,
        oi=True,
        on_progress=progress,
    )
    assert seen == [1]
    assert all(candle.oi is not None for candle in result[8960258])


async def test_bulk_raises_the_first_error(kite: Kite, sb: Sandbox) -> None:
    with pytest.raises(InputException):
        await kite.historical_bulk([*TOKENS, 1], "2024-01-01", "2024-01-31", "day")
    with pytest.raises(ValueError, match="after"):
        await kite.historical_bulk(TOKENS, "2024-02-01", "2024-01-31", "day")


async def test_bulk_takes_no_rate_slot_it_has_no_connection_for(sb: Sandbox) -> None:
    # Twice the limit (60 at SCALE 10) would take slots for requests that then queue for
    # one of the 2 connections and reach the server late, in a burst.
    sb.faults.latency = 0.5
    async with (
        Kite(
            sb.api_key, sb.access_token, root=sb.root_url, rate_limit_scale=SCALE, max_connections=2
        ) as kite,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(kite.historical_bulk, TOKENS, "2024-01-01", "2024-03-31", "minute")
        await anyio.sleep(0.4)  # 4 x 2 chunks: 8 slots at 30/s would be taken by now
        assert kite._limiters[EndpointGroup.HISTORICAL].statistics().acquired == 2
        tg.cancel_scope.cancel()


async def test_bulk_cancellation_cancels_every_request(kite: Kite, sb: Sandbox) -> None:
    sb.faults.latency = 5
    with anyio.move_on_after(0.3) as scope:
        await kite.historical_bulk(TOKENS, "2024-01-01", "2024-01-31", "day")
    assert scope.cancelled_caught
    sb.faults.latency = 0
    assert (await kite.historical_bulk(TOKENS[:1], "2024-01-01", "2024-01-31", "day"))[TOKENS[0]]
