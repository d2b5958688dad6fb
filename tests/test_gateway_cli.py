# ruff: noqa: F811  (the fixtures are imported from _redis, then requested by name)
"""``aio-trader gateway`` and ``aio-trader record`` run in a worker thread (their own event
loop, the gateway with its embedded sandbox) while the test's consumer reads Redis."""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import pyarrow.parquet as pq
from _redis import RedisServer, prefix, redis  # noqa: F401 (fixtures)
from click.testing import CliRunner, Result
from test_gateway import HANG_GUARD, INFY, Reader, consumer, until

from aio_trader._cli.group import main
from aio_trader.replay import ReplayFeed


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


async def test_gateway_and_record_commands_serve_a_consumer(
    redis: RedisServer, prefix: str, tmp_path: Path, anyio_backend: str
) -> None:
    cli_backend = anyio_backend  # the commands run on the test's backend, in their own loop
    path = tmp_path / "cli.parquet"
    common = ("--redis", redis.url, "--prefix", prefix, "--backend", cli_backend)
    gateway = functools.partial(
        invoke, "gateway", "--sandbox", *common, "--duration", "5", "--plain"
    )
    recorder = functools.partial(
        invoke,
        "record",
        *common,
        "--to",
        str(path),
        "--frames",
        "8",
        "--oldest",
        "--duration",
        "20",
    )
    results: dict[str, Result] = {}

    async def in_thread(name: str, command: functools.partial[Result]) -> None:
        results[name] = await anyio.to_thread.run_sync(command)

    async with consumer(redis, prefix, "cli") as feed, anyio.create_task_group() as tg:
        tg.start_soon(in_thread, "gateway", gateway)
        await feed.subscribe([INFY], "ltp")
        reader = Reader(feed)
        tg.start_soon(reader.run)
        await until(lambda: len(reader.ticks) >= 5)
        with anyio.fail_after(HANG_GUARD):
            while not results:  # noqa: ASYNC110 - the thread's result
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    # one CliRunner at a time (it swaps sys.stdout): the stream outlives the gateway
    await in_thread("record", recorder)
    assert results["gateway"].exit_code == 0, results["gateway"].output
    output = results["gateway"].output
    assert "consumers=1" in output
    assert "instruments=1" in output
    assert "gateway stopped" in output
    assert "sandbox_access_token" not in output
    assert results["record"].exit_code == 0, results["record"].output
    assert "recorded 8 frames" in results["record"].output
    assert pq.ParquetFile(path).metadata.num_rows == 8
    async with ReplayFeed(path, speed=None) as replay:
        items = [item async for item in replay]
    assert {item.instrument_token for item in items} == {INFY}


async def test_gateway_command_with_dhan_serves_a_dhan_consumer(
    redis: RedisServer, prefix: str, anyio_backend: str
) -> None:
    """``aio-trader gateway --broker dhan``: Dhan's feed (an embedded Dhan sandbox) behind the
    gateway; a consumer decoding with Dhan's codec gets its instrument's ticks."""
    from aio_trader.dhan import TickerTick

    common = ("--redis", redis.url, "--prefix", prefix, "--backend", anyio_backend)
    gateway = functools.partial(
        invoke, "gateway", "--broker", "dhan", "--sandbox", *common, "--duration", "5", "--plain"
    )
    results: dict[str, Result] = {}

    async def in_thread() -> None:
        results["gateway"] = await anyio.to_thread.run_sync(gateway)

    ticks: list[TickerTick] = []
    async with (
        consumer(redis, prefix, "cli-dhan", codec="dhan") as feed,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(in_thread)
        await feed.subscribe([("NSE_EQ", 1594)], "ticker")
        with anyio.fail_after(HANG_GUARD):
            async for item in feed:
                if isinstance(item, TickerTick):
                    ticks.append(item)
                    if len(ticks) >= 3:
                        break
        with anyio.fail_after(HANG_GUARD):
            while not results:  # noqa: ASYNC110 - the thread's result
                await anyio.sleep(0.05)
    assert {tick.key for tick in ticks} == {("NSE_EQ", 1594)}
    assert results["gateway"].exit_code == 0, results["gateway"].output
    output = results["gateway"].output
    assert "instruments=1" in output
    assert "gateway stopped" in output


def test_gateway_commands_refuse_a_bad_redis_url(tmp_path: Path) -> None:
    for args in (
        ["gateway", "--sandbox", "--redis", "localhost:6379"],
        ["record", "--redis", "localhost:6379", "--to", str(tmp_path / "x.parquet")],
    ):
        result = invoke(*args)
        assert result.exit_code == 2
        assert "redis://" in result.output


def test_sandbox_replay_option_needs_an_existing_file(tmp_path: Path) -> None:
    result = invoke("sandbox", "--replay", str(tmp_path / "missing.parquet"))
    assert result.exit_code == 2
    assert "--replay" in result.output
