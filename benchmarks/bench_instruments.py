"""Instrument dump parse rate: ``aio_trader.kite.parse_instruments`` vs the official client.

Builds a synthetic 100,000-row instruments CSV (Kite's columns; rows cycled from the
reference dump in ``../shared/kiteconnect-mocks/instruments_all.csv`` when present, else
from a few built-in rows of the same shape, with unique tokens and symbols and a mix of
expiring and non-expiring instruments) and parses it with both, in the same run.

    .venv/bin/python benchmarks/bench_instruments.py [--rows 100000] [--rounds 7]

The two parsers run in ``--rounds`` interleaved rounds (their order reversed every
other round), the garbage collector on (aio_trader never switches it off); each figure is
the median over rounds in rows/s with the spread [lowest-highest], and the ratio is the
median of the per-round ratios. The machine's load is printed first. The MF instruments
dump is measured the same way (``--mf``); ``--records`` adds the cost of the shared
``from_kite`` mechanism per JSON record (an order, a full quote) and the candle parse
rate against the official client's ``_format_historical``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _rounds import Summary, header

from aio_trader._time import IST
from aio_trader.kite._models import parse_instruments, parse_mf_instruments

MOCKS = Path(__file__).resolve().parents[2] / "shared" / "kiteconnect-mocks"

HEADER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
    "tick_size,lot_size,instrument_type,segment,exchange"
)
BUILTIN_ROWS = [
    "3813889,14898,CENTRALBK-BE,CENTRAL BANK OF INDIA,0.0,,0.0,0.05,1,EQ,NSE,NSE",
    "408065,1594,INFY,INFOSYS,0.0,,0.0,0.05,1,EQ,NSE,NSE",
    "12073986,47164,BANKNIFTY18JAN23500CE,,2528.4,2018-01-25,23500.0,0.05,40,CE,NFO-OPT,NFO",
    "13693186,53489,ADANIPORTS17DEC490PE,,80.65,2017-12-28,490.0,0.05,2500,PE,NFO-OPT,NFO",
    "53496327,208970,LEADMINI17DECFUT,LEADMINI,161.05,2017-12-29,0.0,0.05,1,FUT,MCX-FUT,MCX",
]
MF_HEADER = (
    "tradingsymbol,amc,name,purchase_allowed,redemption_allowed,minimum_purchase_amount,"
    "purchase_amount_multiplier,minimum_additional_purchase_amount,minimum_redemption_quantity,"
    "redemption_quantity_multiplier,dividend_type,scheme_type,plan,settlement_type,last_price,"
    "last_price_date"
)
MF_BUILTIN_ROWS = [
    "INF209K01157,BirlaSunLifeMutualFund_MF,Aditya Birla Sun Life Advantage Fund,1,1,1000.0,"
    "1.0,1000.0,0.001,0.001,payout,equity,regular,T3,106.8,2017-11-23",
    "INF209K01VH8,BirlaSunLifeMutualFund_MF,Aditya Birla Sun Life Advantage Fund - Direct Plan,"
    "1,1,1000.0,1.0,1000.0,0.001,0.001,growth,equity,direct,T3,453.46,2017-11-23",
]


def _seed(name: str, header: str, builtin: list[str]) -> tuple[str, list[list[str]]]:
    path = MOCKS / name
    if path.is_file():
        rows = list(csv.reader(io.StringIO(path.read_text())))
        return ",".join(rows[0]), [r for r in rows[1:] if r]
    return header, [next(csv.reader([line])) for line in builtin]


def synthetic_instruments(n: int) -> str:
    """An instruments CSV of ``n`` rows, tokens and symbols unique."""
    header, seed = _seed("instruments_all.csv", HEADER, BUILTIN_ROWS)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    out.write(header + "\n")
    for i in range(n):
        row = list(seed[i % len(seed)])
        row[0] = str(100_000 + i * 256 + 1)  # instrument_token
        row[1] = str(100_000 + i)  # exchange_token
        row[2] = f"{row[2]}{i}"
        writer.writerow(row)
    return out.getvalue()


def synthetic_mf_instruments(n: int) -> str:
    """A mutual fund instruments CSV of ``n`` rows."""
    header, seed = _seed("mf_instruments.csv", MF_HEADER, MF_BUILTIN_ROWS)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    out.write(header + "\n")
    for i in range(n):
        row = list(seed[i % len(seed)])
        row[0] = f"INF{i:09d}"
        writer.writerow(row)
    return out.getvalue()


ORDER: dict[str, Any] = {
    "placed_by": "XXXXXX", "order_id": "300000000000000", "exchange_order_id": "400000000000000",
    "parent_order_id": None, "status": "COMPLETE", "status_message": None,
    "status_message_raw": None, "order_timestamp": "2021-05-31 15:20:28",
    "exchange_update_timestamp": "2021-05-31 15:20:28",
    "exchange_timestamp": "2021-05-31 15:20:28", "variety": "regular", "modified": False,
    "exchange": "NSE", "tradingsymbol": "IOC", "instrument_token": 415745,
    "order_type": "LIMIT", "transaction_type": "BUY", "validity": "DAY", "product": "CNC",
    "quantity": 1, "disclosed_quantity": 0, "price": 109.4, "trigger_price": 0,
    "average_price": 109.4, "filled_quantity": 1, "pending_quantity": 0,
    "cancelled_quantity": 0, "market_protection": 0, "meta": {}, "tag": None,
    "guid": "XXXXXX",
}  # fmt: skip
_LEVEL = {"price": 1412.95, "quantity": 5191, "orders": 13}
QUOTE: dict[str, Any] = {
    "instrument_token": 408065, "timestamp": "2021-06-08 15:45:56",
    "last_trade_time": "2021-06-08 15:45:52", "last_price": 1412.95, "last_quantity": 5,
    "buy_quantity": 0, "sell_quantity": 5191, "volume": 7360198, "average_price": 1412.47,
    "oi": 0, "oi_day_high": 0, "oi_day_low": 0, "net_change": 0,
    "lower_circuit_limit": 1250.7, "upper_circuit_limit": 1528.6,
    "ohlc": {"open": 1396, "high": 1421.75, "low": 1395.55, "close": 1389.65},
    "depth": {"buy": [_LEVEL] * 5, "sell": [_LEVEL] * 5},
}  # fmt: skip


def per_call_us(call: Callable[[], Any], number: int, rounds: int) -> Summary:
    """Microseconds per call over ``rounds`` batches of ``number`` calls."""
    values = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            call()
        values.append((time.perf_counter() - start) / number * 1e6)
    return Summary(values)


def bench_records(official: Any, rounds: int) -> None:
    """The shared from_kite mechanism per record, and candles vs the official client."""
    from aio_trader.kite._models import Order, Quote, parse_candles

    order_us = per_call_us(lambda: Order.from_kite(ORDER), 20_000, rounds)
    quote_us = per_call_us(lambda: Quote.from_kite(QUOTE), 20_000, rounds)
    print(f"from_kite: Order {order_us.format(2, ' us')}/record ({len(ORDER)} fields), ", end="")
    print(f"Quote {quote_us.format(2, ' us')}/record (nested ohlc + 10 depth levels)")
    start = datetime.datetime(2024, 1, 1, 9, 15, tzinfo=IST)
    candles = {
        "candles": [
            [
                (start + datetime.timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S+0530"),
                1704.5, 1705, 1699.25, 1702.8, 2499 + i,
            ]
            for i in range(20_000)
        ]
    }  # fmt: skip
    report("candles", parse_candles, official._format_historical, candles, 20_000, rounds)


def rates(
    ours: Callable[[Any], list[Any]],
    theirs: Callable[[Any], list[Any]],
    text: Any,
    rows: int,
    rounds: int,
) -> tuple[list[float], list[float]]:
    """Rows per second of each parser, one value per round; the order alternates."""
    out: dict[str, list[float]] = {"ours": [], "theirs": []}
    parsers = [("ours", ours), ("theirs", theirs)]
    for index in range(rounds):
        for name, parse in parsers if index % 2 == 0 else reversed(parsers):
            start = time.perf_counter()
            result = parse(text)
            elapsed = time.perf_counter() - start
            assert len(result) == rows, (len(result), rows)
            del result  # freeing one result is not part of the next run
            out[name].append(rows / elapsed)
    return out["ours"], out["theirs"]


def report(
    name: str,
    ours: Callable[[Any], list[Any]],
    theirs: Callable[[Any], list[Any]],
    text: Any,
    rows: int,
    rounds: int,
) -> None:
    our_rates, their_rates = rates(ours, theirs, text, rows, rounds)
    mine, official = Summary(our_rates), Summary(their_rates)
    ratio = Summary([o / t for o, t in zip(our_rates, their_rates, strict=True)])
    print(f"{name}: {rows:,} rows, {rounds} interleaved rounds, median [lowest-highest]")
    print(f"  aio_trader: {mine.median:12,.0f} rows/s [{mine.low:,.0f}-{mine.high:,.0f}]")
    print(
        f"  kiteconnect: {official.median:11,.0f} rows/s [{official.low:,.0f}-{official.high:,.0f}]"
    )
    print(f"  ratio: {ratio.format(2, 'x')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--mf", action="store_true", help="also the MF instruments dump")
    parser.add_argument("--records", action="store_true", help="also from_kite and candles")
    args = parser.parse_args()

    from kiteconnect import KiteConnect  # the official client, same run

    official = KiteConnect(api_key="bench")
    cases: list[tuple[str, str, Callable[[str], list[Any]], Callable[[str], list[Any]]]] = [
        (
            "instruments",
            synthetic_instruments(args.rows),
            parse_instruments,
            official._parse_instruments,
        )
    ]
    if args.mf:
        cases.append(
            (
                "mf_instruments",
                synthetic_mf_instruments(args.rows),
                parse_mf_instruments,
                official._parse_mf_instruments,
            )
        )
    print(header("bench_instruments"))
    for name, text, ours, theirs in cases:
        report(name, ours, theirs, text, args.rows, args.rounds)
    if args.records:
        bench_records(official, args.rounds)


if __name__ == "__main__":
    main()
