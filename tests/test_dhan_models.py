"""Dhan's records: the reference bodies round-trip, Dhan's names (typos included) read the
fields, unknown fields are kept, dates are aware IST datetimes."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from aio_trader._time import IST
from aio_trader.dhan import (
    ForeverOrder,
    FundLimits,
    Holding,
    LedgerEntry,
    MarginCalculation,
    OptionChain,
    Order,
    OrderResponse,
    Position,
    Trade,
)
from aio_trader.dhan._models import parse_candles, parse_dhan_datetime, parse_instruments
from aio_trader.errors import BrokerUnavailable

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "dhan-reference"

CASES: list[tuple[str, type[Any]]] = [
    ("get-current-orders-list", Order),
    ("get-order-by-id", Order),
    ("get-order-by-correlation-id", Order),
    ("get_all_trades", Trade),
    ("get_trade_book_by_orderid", Trade),
    ("get_trade_history", Trade),
    ("get_positions", Position),
    ("get-current-holdings", Holding),
    ("get_fund_limits", FundLimits),
    ("get_ledger_report", LedgerEntry),
    ("margin_calculator", MarginCalculation),
    ("get-forever-orders-list", ForeverOrder),
    ("place_order", OrderResponse),
    ("place_slice_order", OrderResponse),
    ("modify_pending_order", OrderResponse),
    ("cancel_given_order", OrderResponse),
]


@pytest.mark.parametrize(("name", "cls"), CASES)
def test_reference_bodies_round_trip(name: str, cls: type[Any]) -> None:
    if not REFERENCE.is_dir():
        pytest.skip("Dhan's reference bodies are not present (../shared/dhan-reference)")
    data = json.loads((REFERENCE / f"{name}.json").read_text())["data"]
    rows = data if isinstance(data, list) else [data]
    for row in rows:
        record = cls.from_dhan(row)
        back = record.to_dict()  # every declared field: the absent ones as None
        assert {key: value for key, value in back.items() if key in row} == row
        assert all(back[key] is None for key in set(back) - set(row))
        for key in row:
            if key not in record.extra:
                assert getattr(record, key) == getattr(record, _snake(key))


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def test_dhans_names_and_typos_read_the_fields() -> None:
    funds = FundLimits.from_dhan(
        {"dhanClientId": "1", "availabelBalance": 10.5, "receiveableAmount": 2, "newField": "x"}
    )
    assert funds.availabelBalance == funds.available_balance == funds.availabel_balance == 10.5
    assert funds.receivable_amount == 2.0
    assert funds.extra == {"newField": "x"}
    assert funds.newField == "x"
    assert "newField" not in repr(funds)
    assert funds.to_dict()["availabelBalance"] == 10.5
    with pytest.raises(AttributeError):
        _ = funds.noSuchField


def test_dates_are_aware_ist_and_dhans_empty_values_none() -> None:
    order = Order.from_dhan(
        {
            "createTime": "2026-12-01 09:15:02",
            "updateTime": "0001-01-01 00:00:00",
            "exchangeTime": "NA",
            "drvExpiryDate": "2026-12-29",
        }
    )
    assert order.create_time == datetime.datetime(2026, 12, 1, 9, 15, 2, tzinfo=IST)
    assert order.update_time is None
    assert order.exchange_time is None
    assert order.drv_expiry_date == datetime.date(2026, 12, 29)
    assert parse_dhan_datetime("2026-01-01T00:00:00.000") == datetime.datetime(
        2026, 1, 1, tzinfo=IST
    )
    assert parse_dhan_datetime("01/02/2026 10:00:00") == datetime.datetime(
        2026, 2, 1, 10, tzinfo=IST
    )
    unconvertible = Order.from_dhan({"createTime": "yesterday"})
    assert unconvertible.create_time is None
    assert unconvertible.extra == {"create_time": "yesterday"}


def test_candles_option_chain_and_instruments() -> None:
    stamp = int(datetime.datetime(2026, 12, 1, 9, 15, tzinfo=IST).timestamp())
    (candle,) = parse_candles(
        {
            "open": [1],
            "high": [2],
            "low": [0.5],
            "close": [1.5],
            "volume": [10],
            "timestamp": [stamp],
            "open_interest": [7],
        }
    )
    assert candle.date == datetime.datetime(2026, 12, 1, 9, 15, tzinfo=IST)
    assert (candle.open, candle.close, candle.volume, candle.oi) == (1.0, 1.5, 10, 7)
    assert parse_candles({}) == []
    with pytest.raises(BrokerUnavailable):
        parse_candles({"open": [1], "timestamp": [stamp]})
    chain = OptionChain.from_dhan(
        {
            "data": {
                "last_price": 25000,
                "oc": {"25000.000000": {"ce": {"last_price": 100, "greeks": {"delta": 0.5}}}},
            },
            "status": "success",
        }
    )
    assert chain.last_price == 25000.0
    assert chain.strikes[25000.0].ce is not None
    assert chain.strikes[25000.0].ce.greeks is not None
    assert chain.strikes[25000.0].ce.greeks.delta == 0.5
    compact = (
        "SEM_EXM_EXCH_ID,SEM_SMST_SECURITY_ID,SEM_TRADING_SYMBOL,SEM_NEW\nNSE,1333,HDFCBANK,x\n"
    )
    detailed = "EXCH_ID,SECURITY_ID,SYMBOL_NAME,SM_EXPIRY_DATE\nNSE,1333,HDFCBANK,2026-12-29\n"
    (row,) = parse_instruments(compact)
    assert (row.exchange, row.security_id, row.trading_symbol) == ("NSE", "1333", "HDFCBANK")
    assert row.extra == {"SEM_NEW": "x"}
    (other,) = parse_instruments(detailed)
    assert other.expiry_date is not None
    assert other.expiry_date.date() == datetime.date(2026, 12, 29)
