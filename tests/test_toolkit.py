"""aio_trader.toolkit: tick-size rounding, bars from ticks, the NSE calendar; the
sandbox's candles skip NSE holidays (through Kite's historical endpoint)."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _helpers import python_blocks
from hypothesis import given
from hypothesis import strategies as st

from aio_trader._time import IST
from aio_trader.dhan import ticks as dhan_ticks
from aio_trader.kite import Kite
from aio_trader.kite.ticks import Depth, DepthLevel, FullTick, Ohlc
from aio_trader.toolkit import (
    MARKET_CLOSE,
    MARKET_OPEN,
    NSE_HOLIDAYS,
    PRE_OPEN_END,
    PRE_OPEN_START,
    Bar,
    BarBuilder,
    bars_from,
    holiday_name,
    is_trading_day,
    next_trading_day,
    previous_trading_day,
    round_to_tick,
    session_close,
    session_open,
)

D = datetime.date

# -- rounding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "tick", "mode", "expected"),
    [
        (101.03, 0.05, "nearest", 101.05),
        (101.02, 0.05, "nearest", 101.0),
        (101.025, 0.05, "nearest", 101.05),  # half way: up
        (101.03, 0.05, "down", 101.0),
        (101.01, 0.05, "up", 101.05),
        (101.05, 0.05, "up", 101.05),
        (101.05, 0.05, "down", 101.05),
        (2.675, 0.01, "nearest", 2.68),  # the float 2.675 is below 2.675; as written: up
        (0.30000000000000004, 0.1, "nearest", 0.3),
        (1234.56, 1, "down", 1234.0),
        (-1.03, 0.05, "down", -1.05),
        (99.9975, 0.0025, "nearest", 99.9975),
        (7, decimal.Decimal("0.25"), "up", 7.0),
    ],
)
def test_round_to_tick_examples(price: float, tick: float, mode: Any, expected: float) -> None:
    assert round_to_tick(price, tick, mode) == expected


def test_round_to_tick_refuses_bad_input() -> None:
    for tick in (0, 0.0, -0.05, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tick"):
            round_to_tick(100.0, tick)
    with pytest.raises(ValueError, match="price"):
        round_to_tick(float("nan"), 0.05)
    with pytest.raises(ValueError, match="mode"):
        round_to_tick(100.0, 0.05, "sideways")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        round_to_tick("100", 0.05)  # type: ignore[arg-type]


TICKS = st.sampled_from([0.05, 0.01, 0.1, 0.25, 0.5, 1.0, 5.0, 0.0025, 0.0001])
PRICES = st.decimals(min_value=-(10**6), max_value=10**7, places=4).map(float)


def _exact(value: float) -> decimal.Decimal:
    return decimal.Decimal(repr(value))


@given(price=PRICES, tick=TICKS, mode=st.sampled_from(["nearest", "up", "down"]))
def test_round_to_tick_properties(price: float, tick: float, mode: Any) -> None:
    result = round_to_tick(price, tick, mode)
    exact, step = _exact(result), _exact(tick)
    assert exact % step == 0  # a multiple of the tick, as written
    distance = abs(exact - _exact(price))
    assert distance < step if mode != "nearest" else distance * 2 <= step
    if mode == "up":
        assert exact >= _exact(price)
    if mode == "down":
        assert exact <= _exact(price)
    assert round_to_tick(result, tick, mode) == result  # idempotent
    assert round_to_tick(result, tick, "nearest") == result


# -- calendar ----------------------------------------------------------------------------


def test_holiday_table_facts() -> None:
    for year in (2025, 2026):
        days = [day for day in NSE_HOLIDAYS if day.year == year]
        assert all(day.weekday() < 5 for day in days), "a weekend is no trading holiday"
    assert len([d for d in NSE_HOLIDAYS if d.year == 2025]) == 14
    # NSE's list: 15 days, 5 of them Fridays, none in Feb, Jul, Aug; then a closure for
    # the municipal elections in Maharashtra (Thursday 15 January)
    in_2026 = [d for d in NSE_HOLIDAYS if d.year == 2026 and d != D(2026, 1, 15)]
    assert holiday_name(D(2026, 1, 15)) is not None
    assert len(in_2026) == 15
    assert len([d for d in in_2026 if d.weekday() == 4]) == 5
    assert not [d for d in in_2026 if d.month in (2, 7, 8)]
    assert holiday_name(D(2025, 10, 21)) == "Diwali Laxmi Pujan"
    assert holiday_name(D(2026, 1, 26)) == "Republic Day"
    assert holiday_name(D(2026, 1, 27)) is None


def test_trading_days() -> None:
    assert is_trading_day(D(2025, 12, 24))
    assert not is_trading_day(D(2025, 12, 25))  # Christmas, a Thursday
    assert not is_trading_day(D(2025, 12, 27))  # Saturday
    assert next_trading_day(D(2026, 4, 2)) == D(2026, 4, 6)  # over Good Friday + weekend
    assert previous_trading_day(D(2026, 4, 6)) == D(2026, 4, 2)
    assert next_trading_day(D(2025, 10, 20)) == D(2025, 10, 23)  # over Diwali
    assert next_trading_day(D(2025, 12, 31)) == D(2026, 1, 1)  # NSE trades on 1 January
    aware = datetime.datetime(2025, 3, 13, 20, 0, tzinfo=datetime.timezone.utc)
    assert not is_trading_day(aware)  # 01:30 IST on 14 March (Holi)


def test_sessions() -> None:
    assert (datetime.time(9, 0), datetime.time(9, 8)) == (PRE_OPEN_START, PRE_OPEN_END)
    assert (datetime.time(9, 15), datetime.time(15, 30)) == (MARKET_OPEN, MARKET_CLOSE)
    opens = session_open(D(2026, 12, 7))
    assert opens == datetime.datetime(2026, 12, 7, 3, 45, tzinfo=datetime.timezone.utc)
    assert opens.utcoffset() == datetime.timedelta(hours=5, minutes=30)
    assert session_close(D(2026, 12, 7)) - opens == datetime.timedelta(hours=6, minutes=15)
    with pytest.raises(ValueError, match="not an NSE trading day"):
        session_open(D(2026, 12, 25))


def test_calendar_refuses_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="no NSE holiday table for 2024"):
        is_trading_day(D(2024, 6, 3))
    with pytest.raises(ValueError, match="2027"):
        next_trading_day(D(2026, 12, 31))  # the next one is in an unknown year
    with pytest.raises(ValueError, match="naive"):
        is_trading_day(datetime.datetime(2025, 6, 2, 10, 0))
    with pytest.raises(TypeError):
        is_trading_day("2025-06-02")  # type: ignore[arg-type]


# -- bars ----------------------------------------------------------------------------------


def kite_tick(hhmmss: str, price: float, volume: int, token: int = 408065) -> FullTick:
    """A Kite full tick on 1 December 2025 at ``hhmmss`` IST."""
    at = datetime.datetime.combine(D(2025, 12, 1), datetime.time.fromisoformat(hhmmss), IST)
    level = DepthLevel(quantity=0, price=0.0, orders=0)
    return FullTick(
        instrument_token=token,
        last_price=price,
        last_traded_quantity=7,
        average_traded_price=price,
        volume_traded=volume,
        total_buy_quantity=0,
        total_sell_quantity=0,
        ohlc=Ohlc(open=price, high=price, low=price, close=price),
        last_trade_time=at,
        oi=0,
        oi_day_high=0,
        oi_day_low=0,
        exchange_timestamp=at,
        depth=Depth(buy=(level,) * 5, sell=(level,) * 5),
    )


def dhan_tick(hhmmss: str, price: float, volume: int | None = None) -> Any:
    at = datetime.datetime.combine(D(2025, 12, 1), datetime.time.fromisoformat(hhmmss), IST)
    if volume is None:
        return dhan_ticks.TickerTick(
            exchange_segment="NSE_EQ", security_id=1333, last_price=price, last_trade_time=at
        )
    return dhan_ticks.QuoteTick(
        exchange_segment="NSE_EQ",
        security_id=1333,
        last_price=price,
        last_traded_quantity=3,
        last_trade_time=at,
        average_traded_price=price,
        volume_traded=volume,
        total_sell_quantity=0,
        total_buy_quantity=0,
        ohlc=dhan_ticks.Ohlc(open=price, high=price, low=price, close=price),
    )


def at(hhmm: str) -> datetime.datetime:
    return datetime.datetime.combine(D(2025, 12, 1), datetime.time.fromisoformat(hhmm), IST)


FIVE = datetime.timedelta(minutes=5)


def test_bars_from_kite_ticks_by_hand() -> None:
    builder = BarBuilder(FIVE)
    ticks = [
        kite_tick("09:15:01", 100.0, 1000),  # first tick seen: its last_traded_quantity, 7
        kite_tick("09:16:30", 101.5, 1200),
        kite_tick("09:19:59", 99.0, 1250),
        kite_tick("09:20:00", 99.5, 1300),  # closes 09:15-09:20
        kite_tick("09:17:00", 120.0, 1100),  # late: dropped, counted
        kite_tick("09:24:00", 98.0, 1400),
        kite_tick("09:31:00", 97.0, 1450),  # closes 09:20-09:25 (09:25-09:30 had no tick)
    ]
    closed = [bar for bar in map(builder.update, ticks) if bar is not None]
    assert closed == [
        Bar(408065, at("09:15"), at("09:20"), 100.0, 101.5, 99.0, 99.0, 7 + 200 + 50, 3),
        Bar(408065, at("09:20"), at("09:25"), 99.5, 99.5, 98.0, 98.0, 50 + 100, 2),
    ]
    assert builder.late == 1
    assert builder.flush() == [Bar(408065, at("09:30"), at("09:35"), 97.0, 97.0, 97.0, 97.0, 50, 1)]
    assert builder.flush() == []


def test_bars_from_dhan_ticks_and_many_instruments() -> None:
    builder = BarBuilder(datetime.timedelta(hours=1))
    assert builder.update(dhan_tick("09:10:00", 10.0, 500)) is None  # pre-open: 08:15 bar
    assert builder.update(kite_tick("10:00:00", 50.0, 10)) is None
    bar = builder.update(dhan_tick("09:15:00", 11.0, 520))
    assert bar == Bar(("NSE_EQ", 1333), at("08:15"), at("09:15"), 10.0, 10.0, 10.0, 10.0, 3, 1)
    assert builder.update(dhan_tick("10:14:59", 12.0, 600)) is None
    flushed = builder.flush()
    assert flushed == [
        Bar(("NSE_EQ", 1333), at("09:15"), at("10:15"), 11.0, 12.0, 11.0, 12.0, 20 + 80, 2),
        Bar(408065, at("09:15"), at("10:15"), 50.0, 50.0, 50.0, 50.0, 7, 1),
    ]


def test_bars_without_cumulative_volume_sum_quantities_and_a_new_day_resets() -> None:
    builder = BarBuilder(datetime.timedelta(minutes=1))
    builder.update(dhan_tick("09:15:00", 1.0))  # a ticker tick: no volume at all
    bar = builder.update(dhan_tick("09:16:00", 1.0))
    assert bar is not None
    assert bar.volume == 0
    daily = BarBuilder(datetime.timedelta(days=1))
    daily.update(kite_tick("15:00:00", 1.0, 5000))
    nextday = attrs_evolve_day(kite_tick("09:15:00", 2.0, 40))
    bar = daily.update(nextday)
    assert bar is not None
    assert bar.start == at("09:15")
    assert bar.volume == 7
    assert daily.flush()[0].volume == 40  # the cumulative dropped: a new day, from zero


def attrs_evolve_day(tick: FullTick) -> FullTick:
    import attrs

    moved = tick.exchange_timestamp + datetime.timedelta(days=1)  # type: ignore[operator]
    return attrs.evolve(tick, exchange_timestamp=moved, last_trade_time=moved)


def test_bar_builder_refuses_bad_input() -> None:
    for interval in (datetime.timedelta(0), datetime.timedelta(days=2)):
        with pytest.raises(ValueError, match="interval"):
            BarBuilder(interval)
    with pytest.raises(TypeError):
        BarBuilder(60)  # type: ignore[arg-type]
    from aio_trader.kite.ticks import LtpTick

    with pytest.raises(TypeError, match="full"):
        BarBuilder(FIVE).update(LtpTick(instrument_token=1, last_price=1.0))
    builder = BarBuilder(FIVE)
    untimed = dhan_ticks.TickerTick(
        exchange_segment="NSE_EQ", security_id=1, last_price=1.0, last_trade_time=None
    )
    assert builder.update(untimed) is None
    assert builder.untimed == 1
    assert builder.flush() == []


@given(
    seconds=st.lists(st.integers(0, 6 * 3600), min_size=1, max_size=40),
    minutes=st.sampled_from([1, 3, 5, 15, 30, 60, 75]),
)
def test_bars_partition_in_order_ticks(seconds: list[int], minutes: int) -> None:
    builder = BarBuilder(datetime.timedelta(minutes=minutes))
    base = at("09:15")
    closed: list[Bar] = []
    volume = 0
    for n, second in enumerate(sorted(seconds)):
        volume += n
        stamp = (base + datetime.timedelta(seconds=second)).time().isoformat()
        bar = builder.update(kite_tick(stamp, float(100 + n), volume))
        if bar is not None:
            closed.append(bar)
    closed += builder.flush()
    assert sum(bar.ticks for bar in closed) == len(seconds)
    assert sum(bar.volume for bar in closed) == 7 + volume  # nothing lost, nothing twice
    for bar in closed:
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert (bar.start - base) % datetime.timedelta(minutes=minutes) == datetime.timedelta(0)
    assert [bar.start for bar in closed] == sorted({bar.start for bar in closed})


async def test_bars_from_an_async_stream() -> None:
    async def feed() -> AsyncIterator[Any]:
        for tick in (
            kite_tick("09:15:00", 1.0, 10),
            kite_tick("09:21:00", 2.0, 20),
            kite_tick("09:22:00", 3.0, 25),
        ):
            yield tick

    bars = [bar async for bar in bars_from(feed(), FIVE)]
    assert [(b.start, b.open, b.close, b.volume) for b in bars] == [
        (at("09:15"), 1.0, 1.0, 7),
        (at("09:20"), 2.0, 3.0, 15),
    ]


# -- the sandbox's candles skip holidays --------------------------------------------------


async def test_sandbox_candles_skip_weekends_and_holidays() -> None:
    pytest.importorskip("starlette")
    from aio_trader.sandbox import Sandbox, SandboxConfig

    async with (
        Sandbox(SandboxConfig(seed=3, market_interval=None)) as sb,
        Kite(sb.api_key, sb.access_token, root=sb.root_url) as kite,
    ):
        days = await kite.historical_data(408065, "2025-10-17", "2025-10-27", "day")
        assert [c.date.date() for c in days] == [
            D(2025, 10, 17), D(2025, 10, 20), D(2025, 10, 23), D(2025, 10, 24), D(2025, 10, 27)
        ]  # fmt: skip
        minutes = await kite.historical_data(
            408065, "2026-03-02 09:00:00", "2026-03-04 16:00:00", "60minute"
        )
        assert {c.date.date() for c in minutes} == {D(2026, 3, 2), D(2026, 3, 4)}  # Holi
        assert all(is_trading_day(c.date) for c in days + minutes)


# -- the docs page's snippets run -----------------------------------------------------------


def _page_blocks() -> list[str]:
    return python_blocks("docs/toolkit.md")


def test_toolkit_page_snippets_run(capsys: pytest.CaptureFixture[str]) -> None:
    # the instrument index's snippets (a sandbox each) run in tests/test_symbols.py
    blocks = [block for block in _page_blocks() if "Sandbox" not in block]
    assert len(blocks) == 4
    for block in blocks:
        exec(compile(block, "docs/toolkit.md", "exec"), {})
    out = capsys.readouterr().out
    assert "exchange_timestamp or last_trade_time" in out
    assert "2026-04-02 09:15:00+05:30 2026-04-02 15:30:00+05:30" in out


async def test_toolkit_page_bars_snippet_prints_bars(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {}
    block = next(b for b in _page_blocks() if "async def print_bars" in b)
    exec(compile(block, "docs/toolkit.md", "exec"), namespace)

    async def feed() -> AsyncIterator[Any]:
        yield kite_tick("09:15:10", 10.0, 100)
        yield kite_tick("09:16:10", 11.0, 130)

    await namespace["print_bars"](feed())
    assert capsys.readouterr().out.splitlines() == [
        "408065 09:15:00 10.0 10.0 10.0 10.0 7",
        "408065 09:16:00 11.0 11.0 11.0 11.0 30",
    ]


def test_an_overtaken_tick_in_the_open_bar_adds_no_volume() -> None:
    builder = BarBuilder(FIVE)
    builder.update(kite_tick("09:15:00", 10.0, 1000))
    builder.update(kite_tick("09:16:02", 10.5, 1100))
    builder.update(kite_tick("09:16:01", 10.2, 1050))  # overtaken: applied, no volume
    builder.update(kite_tick("09:17:00", 10.4, 1100))  # a repeat of the cumulative
    (bar,) = builder.flush()
    assert (bar.open, bar.high, bar.low, bar.close) == (10.0, 10.5, 10.0, 10.4)
    assert (bar.volume, bar.ticks) == (7 + 100, 4)
    assert builder.late == 0


async def second_bars(feed: Any, kind: type, stamp: str) -> tuple[list[Bar], list[Any]]:
    """Two closed 1-second bars of the ``kind`` ticks of ``feed``, and the ticks seen."""
    import anyio

    seen: list[Any] = []

    async def ticks() -> AsyncIterator[Any]:
        async for item in feed:
            if isinstance(item, kind):
                seen.append(item)
                yield item

    bars: list[Bar] = []
    with anyio.fail_after(60):  # a hang guard, not a speed check
        async for bar in bars_from(ticks(), datetime.timedelta(seconds=1)):
            bars.append(bar)
            if len(bars) == 2:
                break
    by_second: dict[datetime.datetime, list[float]] = {}
    for tick in seen:
        at = getattr(tick, stamp)
        by_second.setdefault(at.replace(microsecond=0), []).append(tick.last_price)
    for bar in bars:
        group = by_second[bar.start]
        assert bar.end - bar.start == datetime.timedelta(seconds=1)
        assert (bar.open, bar.close, bar.ticks) == (group[0], group[-1], len(group))
        assert (bar.high, bar.low) == (max(group), min(group))
    assert bars[0].start < bars[1].start
    return bars, seen


async def test_bars_from_the_sandbox_kite_feed() -> None:
    """Second bars from a real KiteFeed (full mode) on the sandbox, checked against the
    ticks themselves grouped by second."""
    pytest.importorskip("starlette")
    from aio_trader.kite import KiteFeed
    from aio_trader.sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(tick_interval=0.02, market_interval=0.05)
    async with (
        Sandbox(config) as sb,
        KiteFeed(sb.api_key, sb.access_token, root=sb.ticker_url) as feed,
    ):
        await feed.subscribe([408065], "full")
        bars, _ = await second_bars(feed, FullTick, "exchange_timestamp")
    assert {bar.key for bar in bars} == {408065}


async def test_bars_from_the_sandbox_dhan_feed() -> None:
    """The same with Dhan's quote ticks (keyed by segment and security id)."""
    pytest.importorskip("starlette")
    from aio_trader.dhan import DhanFeed
    from aio_trader.sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(broker="dhan", tick_interval=0.02, market_interval=0.05)
    async with Sandbox(config) as sb:
        feed = DhanFeed(
            sb.client_id, sb.access_token, root=sb.feed_url, order_root=sb.order_feed_url
        )
        async with feed:
            await feed.subscribe([("NSE_EQ", 1333)], "quote")
            bars, seen = await second_bars(feed, dhan_ticks.QuoteTick, "last_trade_time")
    assert {bar.key for bar in bars} == {("NSE_EQ", 1333)}
    assert sum(bar.volume for bar in bars) <= seen[-1].volume_traded
