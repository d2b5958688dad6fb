"""Instrument dump parse rate: ``aio_trader.kite.parse_instruments`` vs the official client.

Builds a synthetic 100,000-row instruments CSV (Kite's columns; rows cycled from the
reference dump in ``../shared/kiteconnect-mocks/instruments_all.csv`` when present, else
from a few built-in rows of the same shape, with unique tokens and symbols and a mix of
expiring and non-expiring instruments) and parses it with both, in the same run.

    .venv/bin/python benchmarks/bench_instruments.py [--rows 100000] [--repeat 5]

Prints the best of ``--repeat`` runs for each parser, in rows/s, and the ratio. The MF
instruments dump is measured the same way (``--mf``).
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aio_trader.kite.models import parse_instruments, parse_mf_instruments

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


def best_rate(parse: Callable[[str], list[Any]], text: str, rows: int, repeat: int) -> float:
    """Rows per second of the fastest of ``repeat`` runs (checks the row count)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = parse(text)
        elapsed = time.perf_counter() - start
        assert len(result) == rows, (len(result), rows)
        del result  # freeing the previous result is not part of the next run
        best = min(best, elapsed)
    return rows / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mf", action="store_true", help="also the MF instruments dump")
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
    for name, text, ours, theirs in cases:
        our_rate = best_rate(ours, text, args.rows, args.repeat)
        their_rate = best_rate(theirs, text, args.rows, args.repeat)
        print(f"{name}: {args.rows:,} rows, best of {args.repeat}")
        print(f"  aio_trader parse_{name}: {our_rate:12,.0f} rows/s")
        print(f"  kiteconnect _parse_{name}: {their_rate:12,.0f} rows/s")
        print(f"  ratio: {our_rate / their_rate:.1f}x")


if __name__ == "__main__":
    main()
