"""Instruments by symbol (issue 19, §1), for Kite and Dhan against their sandboxes over real
loopback sockets: the index (lookups, F&O listing), its daily cache on disk (one download a
day, refresh, a corrupt file, concurrent callers, cancellation), and the errors raised
before any request."""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aio_trader._instruments import dump_day
from aio_trader.backoff import Backoff
from aio_trader.dhan import Dhan
from aio_trader.errors import ClientClosedError, InvalidInput, UnknownInstrument
from aio_trader.kite import Kite
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.toolkit import CACHE_DIR_ENV, Instrument, InstrumentIndex

FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)

#: Per broker: INFY's key, a NIFTY future's symbol, the NIFTY index's symbol and key.
EXPECTED: dict[str, dict[str, Any]] = {
    "kite": {
        "infy": 408065,
        "future": "NFO:NIFTY26DECFUT",
        "index": "NSE:NIFTY 50",
        "index_key": 256265,
    },
    "dhan": {
        "infy": ("NSE_EQ", "1594"),
        "future": "NFO:NIFTY-Dec2026-FUT",
        "index": "NSE:NIFTY",
        "index_key": ("IDX_I", "13"),
    },
}


@pytest.fixture(params=["kite", "dhan"])
def broker(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def sb(broker: str) -> AsyncIterator[Sandbox]:
    config = SandboxConfig(broker=broker, seed=3, market_interval=None, rate_limit_scale=50)
    async with Sandbox(config) as sandbox:
        yield sandbox


def client(sb: Sandbox, cache: Path | bool) -> Kite | Dhan:
    """A REST client of the sandbox's broker, keeping its instrument cache in ``cache``."""
    if sb.config.broker == "kite":
        return Kite(
            sb.api_key,
            sb.access_token,
            root=sb.root_url,
            backoff=FAST,
            rate_limit_scale=50,
            instrument_cache=cache,
        )
    return Dhan(
        client_id=sb.client_id,
        access_token=sb.access_token,
        root=sb.root_url,
        backoff=FAST,
        rate_limit_scale=50,
        instrument_cache=cache,
    )


def cache_files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.exists() else []


# -- lookups ---------------------------------------------------------------------------------


async def test_lookup_by_symbol_and_key(sb: Sandbox, broker: str, tmp_path: Path) -> None:
    expected = EXPECTED[broker]
    first_day = dump_day()
    async with client(sb, tmp_path) as rest:
        index = await rest.instrument_index()
    assert isinstance(index, InstrumentIndex)
    assert index.broker == broker
    assert index.day in (first_day, dump_day())  # (the test may straddle 08:30 IST)
    infy = index.get("NSE:INFY")
    assert isinstance(infy, Instrument)
    assert (infy.exchange, infy.tradingsymbol, infy.instrument_type) == ("NSE", "INFY", "EQ")
    assert infy.key == expected["infy"]
    assert infy.symbol == "NSE:INFY"
    assert (infy.lot_size, infy.tick_size) == (1, 0.05)
    assert (infy.underlying, infy.expiry, infy.strike) == (None, None, None)
    assert index.get("nse:infy") is infy  # case does not matter
    assert index.by_key(infy.key) is infy
    assert "NSE:INFY" in index
    assert "NSE:NOPE" not in index
    nifty = index.get(expected["index"])
    assert (nifty.instrument_type, nifty.exchange, nifty.key) == (
        "INDEX",
        "NSE",
        expected["index_key"],
    )
    future = index.get(expected["future"])
    assert future.instrument_type == "FUT"
    assert future.exchange == "NFO"
    assert future.underlying == "NIFTY"
    assert future.expiry == datetime.date(2026, 12, 29)
    assert future.lot_size == 75
    assert future.tick_size > 0
    # every instrument is found by its own symbol and key
    for instrument in index:
        assert index.get(instrument.symbol) is not None
        assert index.by_key(instrument.key).key == instrument.key
    # the sandbox's exchanges, in Kite's names for both brokers
    exchanges = {instrument.exchange for instrument in index}
    assert {"NSE", "BSE", "NFO", "BFO", "CDS", "MCX"} <= exchanges


async def test_derivatives_by_underlying_expiry_strike_and_type(
    sb: Sandbox, broker: str, tmp_path: Path
) -> None:
    async with client(sb, tmp_path) as rest:
        index = await rest.instrument_index()
    expiries = index.expiries("NIFTY")
    assert expiries == sorted(expiries)
    assert len(expiries) >= 2
    assert index.expiries("nifty") == expiries
    everything = index.derivatives("NIFTY")
    assert {i.instrument_type for i in everything} == {"FUT", "CE", "PE"}
    assert all(i.underlying == "NIFTY" and i.exchange == "NFO" for i in everything)
    assert [i.expiry for i in everything] == sorted(i.expiry for i in everything)  # type: ignore[type-var]
    first = expiries[0]
    calls = index.derivatives("NIFTY", expiry=first, option_type="CE")
    assert calls
    assert all(i.instrument_type == "CE" and i.expiry == first for i in calls)
    strikes = [i.strike for i in calls]
    assert strikes == sorted(strikes)  # type: ignore[type-var]
    assert all(i.lot_size == 75 and i.tick_size == 0.05 for i in calls)
    strike = calls[0].strike
    assert strike is not None
    pair = index.derivatives("NIFTY", expiry=first, strike=strike)
    assert {i.instrument_type for i in pair} <= {"CE", "PE"}
    assert all(i.strike == strike for i in pair)
    futures = index.derivatives("NIFTY", option_type="FUT")
    assert [i.expiry for i in futures] == expiries
    assert all(i.strike is None for i in futures)
    assert index.derivatives("NIFTY", exchange="BFO") == []
    assert index.derivatives("NOSUCH") == []
    assert index.expiries("NOSUCH") == []
    assert "NIFTY" in index.underlyings()
    with pytest.raises(ValueError, match="option_type"):
        index.derivatives("NIFTY", option_type="XX")
    with pytest.raises(TypeError, match="date"):
        index.derivatives("NIFTY", expiry="2026-12-29")  # type: ignore[arg-type]


async def test_unknown_or_exchangeless_symbols_raise_naming_them_without_requests(
    sb: Sandbox, broker: str, tmp_path: Path
) -> None:
    async with client(sb, tmp_path) as rest:
        index = await rest.instrument_index()
        before = sb.state.stats.requests
        with pytest.raises(UnknownInstrument) as caught:
            index.get("INFY")
        assert "'INFY'" in str(caught.value)
        assert "exchange" in str(caught.value)
        assert "NSE:INFY" in caught.value.suggestions
        assert caught.value.symbols == ("INFY",)
        assert isinstance(caught.value, InvalidInput)  # the category users catch
        with pytest.raises(UnknownInstrument, match="NSE:INFYY") as caught:
            index.get("NSE:INFYY")
        assert caught.value.suggestions[0] == "NSE:INFY"
        for bad in (":INFY", "NSE:", ""):
            with pytest.raises(UnknownInstrument):
                index.get(bad)
        with pytest.raises(TypeError):
            index.get(408065)  # type: ignore[arg-type]
        with pytest.raises(KeyError):
            index.by_key(1)
        assert sb.state.stats.requests == before  # nothing was sent


# -- the daily cache -------------------------------------------------------------------------


async def test_downloaded_once_a_day_then_read_from_memory_and_disk(
    sb: Sandbox, tmp_path: Path
) -> None:
    before = sb.state.stats.requests
    async with client(sb, tmp_path) as rest:
        first = await rest.instrument_index()
        assert sb.state.stats.requests == before + 1
        assert await rest.instrument_index() is first  # memory
        assert sb.state.stats.requests == before + 1
    files = cache_files(tmp_path)
    assert len(files) == 1
    assert files[0].suffix == ".json"
    async with client(sb, tmp_path) as other:  # a new client (or program) the same day
        second = await other.instrument_index()
    assert sb.state.stats.requests == before + 1  # read from the file, not downloaded
    assert list(second) == list(first)
    assert second.day == first.day


async def test_refresh_downloads_again(sb: Sandbox, tmp_path: Path) -> None:
    async with client(sb, tmp_path) as rest:
        first = await rest.instrument_index()
        before = sb.state.stats.requests
        again = await rest.instrument_index(refresh=True)
        assert sb.state.stats.requests == before + 1
        assert again is not first
        assert list(again) == list(first)
        assert await rest.instrument_index() is again


async def test_yesterdays_file_is_replaced(sb: Sandbox, tmp_path: Path) -> None:
    async with client(sb, tmp_path) as rest:
        await rest.instrument_index()
    (path,) = cache_files(tmp_path)
    record = json.loads(path.read_text())
    yesterday = datetime.date.fromisoformat(record["day"]) - datetime.timedelta(days=1)
    record["day"] = yesterday.isoformat()
    path.write_text(json.dumps(record))
    before = sb.state.stats.requests
    async with client(sb, tmp_path) as rest:
        index = await rest.instrument_index()
    assert sb.state.stats.requests == before + 1
    assert index.day == yesterday + datetime.timedelta(days=1)
    assert json.loads(path.read_text())["day"] == index.day.isoformat()


@pytest.mark.parametrize(
    "garbage",
    [
        b"{not json",
        b"\xff\xfe\x00",
        b'{"format": 1}',
        b"[]",
        b"",
    ],
)
async def test_a_corrupt_cache_file_is_discarded_with_a_warning(
    sb: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture, garbage: bytes
) -> None:
    async with client(sb, tmp_path) as rest:
        await rest.instrument_index()
    (path,) = cache_files(tmp_path)
    path.write_bytes(garbage)
    before = sb.state.stats.requests
    with caplog.at_level(logging.WARNING, logger="aio_trader._instruments"):
        async with client(sb, tmp_path) as rest:
            index = await rest.instrument_index()
    assert sb.state.stats.requests == before + 1
    assert index.get("NSE:INFY").symbol == "NSE:INFY"
    assert any("corrupt instrument cache" in r.getMessage() for r in caplog.records)
    assert json.loads(path.read_text())["format"] == 1  # written anew


async def test_a_row_of_the_wrong_shape_makes_the_file_corrupt(
    sb: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with client(sb, tmp_path) as rest:
        await rest.instrument_index()
    (path,) = cache_files(tmp_path)
    record = json.loads(path.read_text())
    record["instruments"][3][2] = "not a key"
    path.write_text(json.dumps(record))
    before = sb.state.stats.requests
    with caplog.at_level(logging.WARNING, logger="aio_trader._instruments"):
        async with client(sb, tmp_path) as rest:
            await rest.instrument_index()
    assert sb.state.stats.requests == before + 1
    assert "corrupt" in caplog.text


async def test_concurrent_callers_share_one_download(sb: Sandbox, tmp_path: Path) -> None:
    results: list[InstrumentIndex] = []
    before = sb.state.stats.requests
    async with client(sb, tmp_path) as rest:

        async def ask() -> None:
            results.append(await rest.instrument_index())

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(ask)
    assert sb.state.stats.requests == before + 1
    assert len(results) == 5
    assert all(index is results[0] for index in results)


async def test_concurrent_refreshes_share_one_download(sb: Sandbox, tmp_path: Path) -> None:
    async with client(sb, tmp_path) as rest:
        await rest.instrument_index()
        before = sb.state.stats.requests
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(lambda: rest.instrument_index(refresh=True))
    assert sb.state.stats.requests == before + 1


async def test_a_cancelled_download_leaves_no_file_and_nothing_in_memory(
    sb: Sandbox, tmp_path: Path
) -> None:
    async with client(sb, tmp_path) as rest:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await rest.instrument_index()
        assert scope.cancelled_caught
        assert cache_files(tmp_path) == []
        # cancelled at several points of a real download: a whole file, or none
        for steps in (1, 3, 10, 30, 100):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: rest.instrument_index(refresh=True))
                for _ in range(steps):
                    await anyio.lowlevel.checkpoint()
                tg.cancel_scope.cancel()
            files = cache_files(tmp_path)
            assert [f.suffix for f in files] in ([], [".json"])  # never a temporary file
            for path in files:
                assert json.loads(path.read_text())["broker"] == sb.config.broker
        before = sb.state.stats.requests
        index = await rest.instrument_index()  # works after a cancelled call
        assert index.get("NSE:INFY").symbol == "NSE:INFY"
        assert sb.state.stats.requests - before in (0, 1)


async def test_two_hosts_never_share_a_cache_file(broker: str, tmp_path: Path) -> None:
    counts = []
    for seed in (1, 2):
        config = SandboxConfig(broker=broker, seed=seed, market_interval=None)
        async with Sandbox(config) as sb:
            async with client(sb, tmp_path) as rest:
                await rest.instrument_index()
            counts.append(sb.state.stats.requests)
    assert counts == [1, 1]  # each host downloaded its own
    assert len(cache_files(tmp_path)) == 2


async def test_a_closed_client_gives_no_index_even_a_cached_one(
    sb: Sandbox, tmp_path: Path
) -> None:
    rest = client(sb, tmp_path)
    with pytest.raises(ClientClosedError):
        await rest.instrument_index()
    async with rest:
        await rest.instrument_index()
    with pytest.raises(ClientClosedError):
        await rest.instrument_index()
    assert len(cache_files(tmp_path)) == 1


async def test_memory_only_cache_writes_nothing(sb: Sandbox, tmp_path: Path) -> None:
    async with client(sb, False) as rest:
        index = await rest.instrument_index()
        assert await rest.instrument_index() is index
    assert cache_files(tmp_path) == []


def test_a_dump_day_starts_at_0830_ist() -> None:
    ist = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    day = datetime.date(2026, 12, 8)

    def at(hour: int, minute: int, second: int = 0) -> datetime.datetime:
        return datetime.datetime(2026, 12, 8, hour, minute, second, tzinfo=ist)

    assert dump_day(at(8, 29, 59)) == day - datetime.timedelta(days=1)
    assert dump_day(at(8, 30)) == day
    assert dump_day(at(23, 59)) == day
    assert dump_day(at(0, 0)) == day - datetime.timedelta(days=1)
    utc = datetime.datetime(2026, 12, 8, 3, 0, tzinfo=datetime.timezone.utc)  # 08:30 IST
    assert dump_day(utc) == day
    with pytest.raises(ValueError, match="aware"):
        dump_day(datetime.datetime(2026, 12, 8, 9, 0))


def test_the_cache_directory_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from aio_trader._instruments import cache_directory, default_cache_directory

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "here"))
    assert default_cache_directory() == tmp_path / "here"
    assert cache_directory(True) == tmp_path / "here"
    assert cache_directory(False) is None
    assert cache_directory(str(tmp_path)) == tmp_path
    assert cache_directory(tmp_path) == tmp_path
    with pytest.raises(ValueError, match="empty"):
        cache_directory("")
    monkeypatch.delenv(CACHE_DIR_ENV)
    assert default_cache_directory().name == "instruments"
    with pytest.raises(TypeError, match="instrument_cache"):
        Kite("key", "token", instrument_cache=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="instrument_cache"):
        Dhan(client_id="1", access_token="t", instrument_cache=3.5)  # type: ignore[arg-type]


# -- the index itself (no broker) ------------------------------------------------------------


def test_an_index_of_records() -> None:
    call = Instrument(
        exchange="NFO",
        tradingsymbol="X26DEC100CE",
        key=7,
        name="X",
        instrument_type="CE",
        underlying="X",
        expiry=datetime.date(2026, 12, 29),
        strike=100.0,
        lot_size=50,
        tick_size=0.05,
    )
    future = attrs_evolve(
        call, tradingsymbol="X26DECFUT", key=8, instrument_type="FUT", strike=None
    )
    stock = Instrument(exchange="NSE", tradingsymbol="X", key=9)
    index = InstrumentIndex([call, stock, future], broker="test")
    assert len(index) == 3
    assert list(index) == [call, stock, future]
    assert index.derivatives("x") == [future, call]  # futures first within an expiry
    assert index.derivatives("X", strike=100) == [call]
    assert index.get("NSE:X") is stock
    assert "test" in repr(index)
    with pytest.raises(TypeError):
        InstrumentIndex(["NSE:X"])  # type: ignore[list-item]


def attrs_evolve(instrument: Instrument, **changes: Any) -> Instrument:
    import attrs

    return attrs.evolve(instrument, **changes)


# -- the cache file: a round trip for any instruments ---------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_instruments = st.builds(
    Instrument,
    exchange=st.sampled_from(["NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX"]),
    tradingsymbol=_text,
    key=st.one_of(
        st.integers(min_value=1, max_value=2**32 - 1),
        st.tuples(st.sampled_from(["NSE_EQ", "IDX_I"]), st.integers(1, 10**6).map(str)),
    ),
    name=_text,
    instrument_type=st.sampled_from(["EQ", "INDEX", "FUT", "CE", "PE", "ETF"]),
    underlying=st.none() | _text,
    expiry=st.none() | st.dates(),
    strike=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    lot_size=st.integers(min_value=0, max_value=10**6),
    tick_size=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)


@settings(max_examples=50)
@given(st.lists(_instruments, max_size=20), st.sampled_from(["kite", "dhan"]))
def test_the_cache_file_gives_back_what_was_written(
    instruments: list[Instrument], broker: str
) -> None:
    import tempfile

    from aio_trader._instruments import IndexCache

    with tempfile.TemporaryDirectory() as directory:
        cache = IndexCache(broker, "http://127.0.0.1:1/instruments", Path(directory))
        day = datetime.date(2026, 12, 8)
        cache._write(InstrumentIndex(instruments, broker=broker, day=day))
        read = cache._read(day)
        assert read is not None
        assert list(read) == instruments
        assert read.day == day
        assert cache._read(day + datetime.timedelta(days=1)) is None  # stale, not corrupt
        assert cache.path is not None
        assert cache.path.exists()  # a stale file stays until replaced


# -- Dhan's scrip masters: both layouts, every segment ---------------------------------------


def test_dhans_two_scrip_master_layouts_give_the_same_index() -> None:
    from aio_trader.dhan._instruments import neutral_instruments
    from aio_trader.dhan._models import parse_instruments
    from aio_trader.sandbox._dhan._instruments import compact_csv, detailed_csv

    compact = neutral_instruments(parse_instruments(compact_csv()))
    detailed = neutral_instruments(parse_instruments(detailed_csv()))

    def shape(instrument: Instrument) -> tuple[Any, ...]:
        return (
            instrument.symbol,
            instrument.key,
            instrument.instrument_type,
            instrument.underlying,
            instrument.expiry,
            instrument.strike,
            instrument.lot_size,
            instrument.tick_size,
        )

    assert [shape(i) for i in detailed] == [shape(i) for i in compact]
    segments = {(i.exchange, i.key[0], i.instrument_type == "INDEX") for i in compact}  # type: ignore[index]
    assert segments >= {
        ("NSE", "NSE_EQ", False),
        ("NFO", "NSE_FNO", False),
        ("CDS", "NSE_CURRENCY", False),
        ("NSE", "IDX_I", True),
        ("BSE", "BSE_EQ", False),
        ("BFO", "BSE_FNO", False),
        ("BCD", "BSE_CURRENCY", False),
        ("BSE", "IDX_I", True),
        ("MCX", "MCX_COMM", False),
    }


def test_dhan_rows_of_an_unknown_segment_are_left_out() -> None:
    from aio_trader.dhan._instruments import neutral_instruments
    from aio_trader.dhan._models import parse_instruments

    text = (
        "SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_SMST_SECURITY_ID,SEM_INSTRUMENT_NAME,"
        "SEM_TRADING_SYMBOL,SEM_LOT_UNITS,SEM_EXPIRY_DATE,SEM_STRIKE_PRICE,"
        "SEM_OPTION_TYPE,SEM_TICK_SIZE,SM_SYMBOL_NAME\n"
        "NSE,E,1594,EQUITY,INFY,1.0,,,XX,0.05,INFOSYS\n"
        "NSE,Z,1,EQUITY,ODD,1,,,XX,0.05,ODD\n"
        "NSE,E,,EQUITY,NOID,1,,,XX,0.05,NOID\n"
        "NSE,D,35100,OPTSTK,INFY-Dec2026-1500-CE,400.0,2026-12-29 14:30:00,1500.0,CE,0.05,INFY\n"
    )
    infy, option = neutral_instruments(parse_instruments(text))
    assert (infy.symbol, infy.key, infy.lot_size, infy.underlying) == (
        "NSE:INFY",
        ("NSE_EQ", "1594"),
        1,
        None,
    )
    assert (option.symbol, option.instrument_type, option.underlying, option.strike) == (
        "NFO:INFY-Dec2026-1500-CE",
        "CE",
        "INFY",
        1500.0,
    )
    assert option.expiry == datetime.date(2026, 12, 29)
    assert option.lot_size == 400
