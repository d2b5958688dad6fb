"""pandas and polars give the same columns, types and time zone (Asia/Kolkata) for the
same records: candles and instruments, full and empty, of Kite (reference data) and Dhan
(from its sandbox, both backends)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from aio_trader._time import IST
from aio_trader.kite import (
    Candle,
    Instrument,
    parse_candles,
    parse_instruments,
    to_pandas,
    to_polars,
)

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")

#: polars dtype -> the pandas dtype of the same column.
SAME = {
    "Datetime(time_unit='us', time_zone='Asia/Kolkata')": "datetime64[us, Asia/Kolkata]",
    "Int64": ("int64", "Int64"),  # Int64: a column declared optional
    "Float64": "float64",
    "String": ("str", "object"),  # pandas 2 stores strings as object
    "Date": "object",
    "Boolean": ("bool", "boolean"),
}


def assert_same_frames(records: list[Any], record_type: type[Any]) -> None:
    pandas_frame = to_pandas(records, record_type)
    polars_frame = to_polars(records, record_type)
    assert list(pandas_frame.columns) == polars_frame.columns
    assert pandas_frame.shape == polars_frame.shape
    for name, dtype in polars_frame.schema.items():
        expected = SAME[repr(dtype) if isinstance(dtype, pl.Datetime) else str(dtype)]
        assert str(pandas_frame[name].dtype) in (
            expected if isinstance(expected, tuple) else (expected,)
        ), name
    for name in pandas_frame.columns:
        got = [None if pd.isna(v) else v for v in pandas_frame[name].tolist()]
        assert got == polars_frame[name].to_list(), name


def hand_candles() -> list[Candle]:
    first = datetime.datetime(2025, 12, 1, 9, 15, tzinfo=IST)
    utc = datetime.datetime(2025, 12, 1, 3, 46, tzinfo=datetime.timezone.utc)  # 09:16 IST
    return [
        Candle(date=first, open=1.0, high=2.0, low=0.5, close=1.5, volume=10, oi=None),
        Candle(date=utc, open=1.5, high=1.5, low=1.0, close=1.25, volume=0, oi=7),
    ]


def test_candles_by_hand() -> None:
    candles = hand_candles()
    assert_same_frames(candles, Candle)
    pandas_frame, polars_frame = to_pandas(candles), to_polars(candles)
    assert str(pandas_frame["date"].dt.tz) == "Asia/Kolkata"
    assert polars_frame.schema["date"] == pl.Datetime("us", "Asia/Kolkata")
    assert [t.isoformat() for t in pandas_frame["date"]] == [
        "2025-12-01T09:15:00+05:30",
        "2025-12-01T09:16:00+05:30",
    ]
    assert pandas_frame["oi"].isna().tolist() == [True, False]
    assert str(pandas_frame["oi"].dtype) == "Int64"


def test_empty_frames_have_the_same_columns_and_types() -> None:
    assert_same_frames([], Candle)
    assert_same_frames([], Instrument)


def test_reference_candles_and_instruments(mocks: Path) -> None:
    import json

    body = json.loads((mocks / "historical_oi.json").read_text())
    assert_same_frames(parse_candles(body["data"]), Candle)
    instruments = parse_instruments((mocks / "instruments_all.csv").read_text())
    assert_same_frames(instruments, Instrument)
    assert to_polars(instruments).schema["expiry"] == pl.Date


# -- Dhan: the same converter, the same columns and types, from the Dhan sandbox --------------


def test_one_converter_for_every_broker() -> None:
    from aio_trader import _frames, dhan, kite

    assert dhan.to_pandas is kite.to_pandas is _frames.to_pandas
    assert dhan.to_polars is kite.to_polars is _frames.to_polars


def test_dhan_empty_frames_have_the_same_columns_and_types() -> None:
    from aio_trader import dhan

    assert_same_frames([], dhan.Candle)
    assert_same_frames([], dhan.Instrument)
    assert to_polars([], dhan.Candle).schema["date"] == pl.Datetime("us", "Asia/Kolkata")
    assert str(to_pandas([], dhan.Instrument)["expiry_date"].dtype) == (
        "datetime64[us, Asia/Kolkata]"
    )


async def test_dhan_candles_from_the_sandbox(dhan_sandbox: Any) -> None:
    from aio_trader import dhan

    async with dhan.Dhan(
        client_id=dhan_sandbox.client_id,
        access_token=dhan_sandbox.access_token,
        root=dhan_sandbox.root_url,
    ) as client:
        daily = await client.daily_candles(
            "1333", "NSE_EQ", "EQUITY", datetime.date(2026, 11, 2), datetime.date(2026, 11, 7)
        )
        start = datetime.datetime(2026, 11, 2, 9, 15)
        minutes = await client.intraday_candles(
            "35001", "NSE_FNO", "FUTIDX", start, start + datetime.timedelta(minutes=30), oi=True
        )
    for candles in (daily, minutes):
        assert candles
        assert_same_frames(candles, dhan.Candle)
        pandas_frame, polars_frame = to_pandas(candles), to_polars(candles)
        assert list(pandas_frame.columns) == [
            "date",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "oi",
        ]
        assert str(pandas_frame["date"].dt.tz) == "Asia/Kolkata"
        assert polars_frame.schema["date"] == pl.Datetime("us", "Asia/Kolkata")
        assert pandas_frame["date"].tolist() == [c.date for c in candles]
        assert polars_frame["date"].to_list() == [c.date for c in candles]
        assert polars_frame.schema["volume"] == pl.Int64
        assert str(pandas_frame["volume"].dtype) == "int64"
    assert [t.isoformat() for t in to_pandas(minutes)["date"][:2]] == [
        "2026-11-02T09:15:00+05:30",
        "2026-11-02T09:16:00+05:30",
    ]


async def test_dhan_instruments_from_the_sandbox(dhan_sandbox: Any) -> None:
    from aio_trader import dhan

    async with dhan.Dhan(
        client_id=dhan_sandbox.client_id,
        access_token=dhan_sandbox.access_token,
        root=dhan_sandbox.root_url,
    ) as client:
        compact = await client.scrip_master()
        detailed = await client.scrip_master(detailed=True)
        futures = await client.instruments("NSE_FNO")
    for instruments in (compact, detailed, futures):
        assert_same_frames(instruments, dhan.Instrument)
    polars_frame = to_polars(futures)
    assert polars_frame.schema["expiry_date"] == pl.Datetime("us", "Asia/Kolkata")
    assert polars_frame.schema["strike_price"] == pl.Float64
    assert polars_frame.schema["security_id"] == pl.String
    assert polars_frame["expiry_date"].to_list() == [i.expiry_date for i in futures]
    expiries = [i.expiry_date for i in compact]
    assert None in expiries  # equities and indices: no expiry (NaT in pandas, null in polars)
    assert any(expiries)
    assert to_pandas(compact)["expiry_date"].tolist() == [
        pd.NaT if e is None else e for e in expiries
    ]
    assert to_polars(compact)["expiry_date"].to_list() == expiries
