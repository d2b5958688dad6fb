"""Tick decoding: aio_trader's ``decode_frame`` vs Kite's official ``KiteTicker._parse_binary``.

Both decode the same frames (200 packets each) in the same run. Prints microseconds
per tick for each and the ratio (theirs / ours: how many times faster we are).

    .venv/bin/python benchmarks/bench_ticks.py [--seconds 0.3]

``full+read`` decodes and then reads every field of every tick, all ten depth levels
included (dict lookups for theirs); ``mixed`` is a frame of every packet kind
(indices included), which takes the general path instead of the one-kind fast path.
"""

from __future__ import annotations

import argparse
import datetime
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from kiteconnect import KiteTicker

from aio_trader._time import IST
from aio_trader.kite.ticks import (
    Depth,
    DepthLevel,
    FullTick,
    IndexFullTick,
    IndexQuoteTick,
    LtpTick,
    Ohlc,
    QuoteTick,
    Tick,
    decode_frame,
    encode_frame,
)

PACKETS = 200
FRAMES = 20
NOW = 1_625_461_887


def _price(rng: random.Random, base: int) -> float:
    return (base + rng.randrange(-500, 500)) / 100


def make_tick(mode: str, rng: random.Random, index: int) -> Tick:
    """A plausible NSE tick (or an index tick, for ``index-*`` modes)."""
    segment = 9 if mode.startswith("index") else 1
    token = (rng.randrange(1, 60_000) << 8) | segment
    base = rng.randrange(10_000, 500_000)
    last = _price(rng, base)
    if mode == "ltp":
        return LtpTick(instrument_token=token, last_price=last)
    ohlc = Ohlc(
        _price(rng, base), _price(rng, base + 600), _price(rng, base - 600), _price(rng, base)
    )
    now = datetime.datetime.fromtimestamp(NOW - index % 3, IST)
    if mode == "index-quote":
        return IndexQuoteTick(instrument_token=token, last_price=last, ohlc=ohlc)
    if mode == "index-full":
        return IndexFullTick(
            instrument_token=token, last_price=last, ohlc=ohlc, exchange_timestamp=now
        )
    quote: dict[str, Any] = dict(
        instrument_token=token,
        last_price=last,
        last_traded_quantity=rng.randrange(1, 500),
        average_traded_price=_price(rng, base),
        volume_traded=rng.randrange(10**7),
        total_buy_quantity=rng.randrange(10**6),
        total_sell_quantity=rng.randrange(10**6),
        ohlc=ohlc,
    )
    if mode == "quote":
        return QuoteTick(**quote)

    def side(sign: int) -> tuple[DepthLevel, ...]:
        return tuple(
            DepthLevel(
                rng.randrange(1, 5000), (base + sign * 5 * (i + 1)) / 100, rng.randrange(1, 40)
            )
            for i in range(5)
        )

    return FullTick(
        **quote,
        last_trade_time=now - datetime.timedelta(seconds=rng.randrange(3)),
        oi=rng.randrange(10**6),
        oi_day_high=rng.randrange(10**6),
        oi_day_low=rng.randrange(10**6),
        exchange_timestamp=now,
        depth=Depth(side(-1), side(1)),
    )


def make_frames(mode: str, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    kinds = ["ltp", "quote", "full", "index-quote", "index-full"]
    frames = []
    for _ in range(FRAMES):
        modes = [kinds[i % 5] if mode == "mixed" else mode for i in range(PACKETS)]
        frames.append(encode_frame(make_tick(m, rng, i) for i, m in enumerate(modes)))
    return frames


def read_ours(ticks: list[Tick]) -> None:
    """Read every field of every tick (the tuples are thrown away: reading is the point)."""
    for t in ticks:
        assert isinstance(t, FullTick)
        _ = (t.instrument_token, t.mode, t.tradable, t.last_price, t.last_traded_quantity)
        _ = (t.average_traded_price, t.volume_traded, t.total_buy_quantity, t.total_sell_quantity)
        o = t.ohlc
        _ = (o.open, o.high, o.low, o.close, t.change, t.last_trade_time, t.oi, t.oi_day_high)
        _ = (t.oi_day_low, t.exchange_timestamp)
        for level in t.depth.buy:
            _ = (level.quantity, level.price, level.orders)
        for level in t.depth.sell:
            _ = (level.quantity, level.price, level.orders)


def read_theirs(ticks: list[dict[str, Any]]) -> None:
    """The same reads on the official client's dicts."""
    for t in ticks:
        _ = (t["instrument_token"], t["mode"], t["tradable"], t["last_price"])
        _ = (t["last_traded_quantity"], t["average_traded_price"], t["volume_traded"])
        _ = (t["total_buy_quantity"], t["total_sell_quantity"])
        o = t["ohlc"]
        _ = (o["open"], o["high"], o["low"], o["close"], t["change"], t["last_trade_time"])
        _ = (t["oi"], t["oi_day_high"], t["oi_day_low"], t["exchange_timestamp"])
        for level in t["depth"]["buy"]:
            _ = (level["quantity"], level["price"], level["orders"])
        for level in t["depth"]["sell"]:
            _ = (level["quantity"], level["price"], level["orders"])


def per_tick_us(decode: Callable[[bytes], object], frames: list[bytes], seconds: float) -> float:
    """Best of several rounds (each about ``seconds / 5``), in microseconds per tick."""
    best = float("inf")
    deadline = time.perf_counter() + seconds
    rounds = 0
    while rounds < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        for frame in frames:
            decode(frame)
        best = min(best, time.perf_counter() - start)
        rounds += 1
    return best / (len(frames) * PACKETS) * 1e6


def check_same(frames: list[bytes], theirs: Callable[[bytes], list[dict[str, Any]]]) -> None:
    """Both decoders must agree before their speed is compared."""
    for frame in frames[:2]:
        ours = [t.to_dict() for t in decode_frame(frame)]
        for a, b in zip(ours, theirs(frame), strict=True):
            for key in ("last_trade_time", "exchange_timestamp"):
                if key in b:
                    b[key] = b[key].astimezone(IST)
            assert a == b, (a, b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="time per measurement")
    args = parser.parse_args()
    ticker = KiteTicker("api_key", "access_token")  # never connects: only its parser is used
    theirs = ticker._parse_binary
    rows = []
    for mode in ("ltp", "quote", "full", "full+read", "mixed"):
        frames = make_frames(mode.removesuffix("+read"))
        check_same(frames, theirs)
        if mode == "full+read":
            ours_us = per_tick_us(lambda f: read_ours(decode_frame(f)), frames, args.seconds)
            theirs_us = per_tick_us(lambda f: read_theirs(theirs(f)), frames, args.seconds)
        else:
            ours_us = per_tick_us(decode_frame, frames, args.seconds)
            theirs_us = per_tick_us(theirs, frames, args.seconds)
        rows.append((mode, ours_us, theirs_us, theirs_us / ours_us))
    print(f"Python {sys.version.split()[0]}, {PACKETS} packets a frame, best of rounds")
    print(f"{'mode':<10} {'ours us/tick':>13} {'theirs us/tick':>15} {'ratio':>7}")
    for mode, ours_us, theirs_us, ratio in rows:
        print(f"{mode:<10} {ours_us:>13.3f} {theirs_us:>15.3f} {ratio:>6.1f}x")


if __name__ == "__main__":
    main()
