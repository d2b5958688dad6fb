"""Bulk historical download into one pandas DataFrame.

Looks the symbols up in the instrument list, then fetches every symbol's candles at once
with ``Kite.historical_bulk``: long ranges are split into Kite's maximum per request,
the requests run concurrently and are paced by the client's rate limiter (3 requests/s
for historical data), so there are no 429s. Needs the ``pandas`` extra.

    .venv/bin/python examples/historical_to_dataframe.py \
        --symbols INFY,TCS,RELIANCE --days 400
"""

from __future__ import annotations

import datetime
import time

import anyio
import pandas as pd
from _common import connect, parser

from aio_trader.kite import historical_chunks, to_pandas


async def main() -> None:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--symbols", default="INFY,TCS,RELIANCE,HDFCBANK,SBIN")
    cli.add_argument("--exchange", default="NSE")
    cli.add_argument("--interval", default="60minute", help="minute ... 60minute, day")
    cli.add_argument("--days", type=int, default=500, help="how far back")
    cli.add_argument("--out", help="also write the frame to this CSV or .parquet file")
    args = cli.parse_args()
    symbols = args.symbols.split(",")

    async with connect(args) as target, target.kite() as kite:
        tokens = {
            instrument.tradingsymbol: instrument.instrument_token
            for instrument in await kite.instruments(args.exchange)
            if instrument.tradingsymbol in symbols
        }
        missing = sorted(set(symbols) - set(tokens))
        if missing:
            raise SystemExit(f"unknown on {args.exchange}: {', '.join(missing)}")

        def progress(done: int, total: int) -> None:
            print(f"\rrequests {done}/{total}", end="", flush=True)

        to_date = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        from_date = to_date - datetime.timedelta(days=args.days)
        started = time.perf_counter()
        candles = await kite.historical_bulk(
            tokens.values(), from_date, to_date, args.interval, on_progress=progress
        )
        elapsed = time.perf_counter() - started
        requests = len(historical_chunks(from_date, to_date, args.interval)) * len(
            tokens
        )
        print(f"\n{requests} requests in {elapsed:.2f} s ({requests / elapsed:.2f}/s)")
        if target.sandbox is not None:
            refused = target.sandbox.state.stats.refused_429["historical"]
            print(f"refused by the sandbox's rate limit (429): {refused}")

    frame = pd.concat(
        {symbol: to_pandas(candles[token]) for symbol, token in tokens.items()},
        names=["symbol", "row"],
    ).reset_index(level="row", drop=True)
    summary = frame.groupby("symbol").agg(
        candles=("close", "size"),
        first=("date", "min"),
        last=("date", "max"),
        low=("low", "min"),
        high=("high", "max"),
        volume=("volume", "sum"),
    )
    print(f"{len(frame)} candles, columns: {', '.join(frame.columns)}")
    print(summary.to_string())
    if args.out:
        if args.out.endswith(".parquet"):
            frame.to_parquet(args.out)
        else:
            frame.to_csv(args.out)
        print(f"written to {args.out}")


if __name__ == "__main__":
    anyio.run(main)
