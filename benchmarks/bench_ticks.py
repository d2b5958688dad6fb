"""Tick decoding: aio_trader's ``decode_frame`` vs Kite's official ``KiteTicker._parse_binary``.

Both decode the same frames (200 packets each) in the same process, in interleaved
rounds (ours, theirs; then theirs, ours; ...), with the garbage collector on. Prints,
per row, the median microseconds per tick of each side with the spread over rounds
([lowest-highest]), and the median of the per-round ratios (theirs / ours: how many
times faster we are) with its spread. The machine's load average is printed first.

    .venv/bin/python benchmarks/bench_ticks.py [--rounds 11] [--seconds 0.05] [--memory]

Two frame sets: *realistic* (plausible NSE ticks: prices near a base, timestamps within
a few seconds, so timestamp caches hit) and *adversarial* (every 32-bit field random,
timestamps spread over eleven years: every timestamp a cache miss, every integer a
new object). ``full+read`` decodes and then reads every field of every tick, all ten
depth levels included (dict lookups for theirs); ``mixed`` is a frame of every packet
kind (indices included), which takes the general path. ``--memory`` adds the bytes
retained per full tick with its depth read (tracemalloc) and the objects the collector
tracks per retained tick.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import random
import struct
import tracemalloc
from collections.abc import Callable
from typing import Any

from _rounds import header, interleaved, ratios, summary
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


def make_adversarial_frames(mode: str, seed: int = 11) -> list[bytes]:
    """Frames whose 32-bit fields are all random and whose timestamps span eleven years.

    Built as raw bytes (any uint32 is a valid field). Timestamps are never 0 (the
    official client would give 1970 where we give None), and the NCO/BCD/CDS divisors
    and index tokens come up as often as the random low byte makes them.
    """
    rng = random.Random(seed)
    lengths = {"ltp": [8], "quote": [44], "full": [184], "mixed": [8, 44, 184, 28, 32]}[mode]

    def u32() -> int:
        return rng.getrandbits(32)

    def stamp() -> int:
        return rng.randrange(1_420_070_400, 1_767_225_600)  # 2015 to 2026

    frames = []
    for _ in range(FRAMES):
        parts = [struct.pack(">H", PACKETS)]
        for i in range(PACKETS):
            length = lengths[i % len(lengths)]
            if length == 8:
                body = struct.pack(">II", u32(), u32())
            elif length in (28, 32):
                body = struct.pack(">7I", *(u32() for _ in range(7)))
                if length == 32:
                    body += struct.pack(">I", stamp())
            else:
                body = struct.pack(">11I", *(u32() for _ in range(11)))
                if length == 184:
                    body += struct.pack(">5I", stamp(), u32(), u32(), u32(), stamp())
                    body += b"".join(
                        struct.pack(">IIH2x", u32(), u32(), rng.getrandbits(16)) for _ in range(10)
                    )
            parts.append(struct.pack(">H", len(body)) + body)
        frames.append(b"".join(parts))
    return frames


def each_frame(
    frames: list[bytes],
    decode: Callable[[bytes], list[Any]],
    read: Callable[[list[Any]], None] | None,
) -> None:
    """Decode (and read) frame after frame, each frame's records dropped before the next
    frame, as a feed consumer does."""
    if read is None:
        for frame in frames:
            decode(frame)
    else:
        for frame in frames:
            read(decode(frame))


def check_same(frames: list[bytes], theirs: Callable[[bytes], list[dict[str, Any]]]) -> None:
    """Both decoders must agree before their speed is compared."""
    for frame in frames[:2]:
        ours = [t.to_dict() for t in decode_frame(frame)]
        for a, b in zip(ours, theirs(frame), strict=True):
            for key in ("last_trade_time", "exchange_timestamp"):
                if key in b:
                    b[key] = b[key].astimezone(IST)
            assert a == b, (a, b)


def retained(
    decode: Callable[[bytes], list[Any]], read: Callable[[Any], None], frames: list[bytes]
) -> tuple[float, float]:
    """Bytes and collector-tracked objects retained per full tick, depth read, ticks kept."""
    gc.collect()
    tracked_before = len(gc.get_objects())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = []
    for frame in frames:
        ticks = decode(frame)
        read(ticks)
        kept.append(ticks)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    count = len(frames) * PACKETS
    tracked = len(gc.get_objects()) - tracked_before - len(kept) - 1  # the lists themselves
    del kept
    return (after - before) / count, tracked / count


def read_depth_ours(ticks: list[Tick]) -> None:
    for t in ticks:
        assert isinstance(t, FullTick)
        _ = (t.depth.buy, t.depth.sell, t.ohlc)


def read_depth_theirs(ticks: list[dict[str, Any]]) -> None:
    for t in ticks:
        _ = (t["depth"]["buy"], t["depth"]["sell"], t["ohlc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="interleaved rounds per row")
    parser.add_argument("--seconds", type=float, default=0.05, help="time per side per round")
    parser.add_argument("--memory", action="store_true", help="also retained bytes per tick")
    args = parser.parse_args()
    ticker = KiteTicker("api_key", "access_token")  # never connects: only its parser is used
    theirs = ticker._parse_binary
    print(header("bench_ticks"))
    print(f"{PACKETS} packets a frame, {args.rounds} interleaved rounds; median [lowest-highest]")
    print(f"{'frames':<12}{'mode':<10}{'ours us/tick':>22}{'theirs us/tick':>24}{'ratio':>20}")
    for frames_kind in ("realistic", "adversarial"):
        for mode in ("ltp", "quote", "full", "full+read", "mixed"):
            base_mode = mode.removesuffix("+read")
            if frames_kind == "realistic":
                frames = make_frames(base_mode)
            else:
                frames = make_adversarial_frames(base_mode)
            check_same(frames, theirs)
            if mode == "full+read":
                cases: dict[str, Callable[[], object]] = {
                    "ours": lambda frames=frames: each_frame(frames, decode_frame, read_ours),
                    "theirs": lambda frames=frames: each_frame(frames, theirs, read_theirs),
                }
            else:
                cases = {
                    "ours": lambda frames=frames: each_frame(frames, decode_frame, None),
                    "theirs": lambda frames=frames: each_frame(frames, theirs, None),
                }
            times = interleaved(cases, args.rounds, args.seconds)
            per_tick = 1e6 / (len(frames) * PACKETS)
            ours = summary([t * per_tick for t in times["ours"]])
            them = summary([t * per_tick for t in times["theirs"]])
            ratio = ratios(times["theirs"], times["ours"])
            print(
                f"{frames_kind:<12}{mode:<10}{ours.format(3):>22}{them.format(3):>24}"
                f"{ratio.format(1, 'x'):>20}"
            )
    if args.memory:
        print("retained per full tick, depth read (tracemalloc), and collector-tracked objects:")
        for frames_kind, frames in (
            ("realistic", make_frames("full")),
            ("adversarial", make_adversarial_frames("full")),
        ):
            ours_b, ours_n = retained(decode_frame, read_depth_ours, frames)
            them_b, them_n = retained(theirs, read_depth_theirs, frames)
            print(
                f"{frames_kind:<12} ours {ours_b:,.0f} B ({ours_n:.1f} tracked), "
                f"theirs {them_b:,.0f} B ({them_n:.1f} tracked): {them_b / ours_b:.1f}x smaller"
            )


if __name__ == "__main__":
    main()
