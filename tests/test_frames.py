"""pandas and polars give the same columns, types and time zone (Asia/Kolkata) for the
same records: candles and instruments, full and empty."""

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
