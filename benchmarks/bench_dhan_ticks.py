"""Dhan packet decoding: aio_trader's ``decode_message`` vs Dhan's official SDK
(``dhanhq.marketfeed.MarketFeed.process_data``, which dispatches to ``process_ticker``,
``process_quote``, ``process_full``, ...).

Both decode the same packets, one packet a message (the SDK reads only the first packet
of a message), 200 messages a row, in the same process, in interleaved rounds (ours,
theirs; then theirs, ours; ...), with the garbage collector on. Prints, per row, the
median microseconds per packet of each side with the spread over rounds
([lowest-highest]), and the median of the per-round ratios (theirs / ours: how many times
faster we are) with its spread. The machine's load average is printed first.

    .venv/bin/python benchmarks/bench_dhan_ticks.py [--rounds 11] [--seconds 0.05] [--memory]
                                                    [--profile]

Two packet sets: *realistic* (plausible NSE prices near a base on the 0.05 tick,
last trade times within a few seconds, so the time and price caches hit) and
*adversarial* (every integer random, prices random on a 0.01 grid up to 100,000, times
spread over 2015-2026: nearly every price and time a cache miss). ``+read`` rows decode
and then read every field of every record, all ten depth levels of a full packet
included (dict lookups for theirs); ``mixed`` is every packet kind in turn (ticker,
previous close, quote, OI, full). ``--memory`` adds the bytes retained per full tick with
its depth read (tracemalloc) and the objects the collector tracks per retained tick.
``--profile`` splits a realistic ``full+read`` into its parts, each timed alone in
interleaved rounds (the SDK's decoding and reading; our decoding, the reads of the tick's
own fields, the building of both depth sides, the reads of the thirty level fields), next
to the time an 8x ratio would allow.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import struct
import tracemalloc
from collections.abc import Callable
from typing import Any

from _rounds import header, interleaved, ratios, summary
from dhanhq.marketfeed import MarketFeed

from aio_trader.dhan.ticks import DepthLevel, FullTick, QuoteTick, TickerTick, decode_message

MESSAGES = 200
NOW = 1_733_300_000  # a Wednesday in December 2024, as Dhan's wall clock epoch

#: Dhan's parser without its constructor (which opens an event loop): ``process_*`` read
#: only their argument.
SDK = object.__new__(MarketFeed)


def _f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def make_packets(kind: str, adversarial: bool, seed: int = 7) -> list[bytes]:
    """``MESSAGES`` packets of one kind (``mixed``: every kind in turn)."""
    rng = random.Random(seed)
    kinds = ["ticker", "prev", "quote", "oi", "full"] if kind == "mixed" else [kind]

    def price(base: float) -> float:
        if adversarial:
            return rng.randrange(1, 10_000_000) / 100
        return base + rng.randrange(-40, 40) * 0.05

    def stamp() -> int:
        return (
            rng.randrange(1_420_070_400, 1_767_225_600) if adversarial else NOW - rng.randrange(3)
        )

    def u32() -> int:
        return rng.getrandbits(32) if adversarial else rng.randrange(1, 10**6)

    packets = []
    for i in range(MESSAGES):
        what = kinds[i % len(kinds)]
        head = (1, rng.randrange(1, 60_000) if not adversarial else rng.getrandbits(32))
        base = rng.randrange(100, 5000) * 1.0
        if what == "ticker":
            packets.append(struct.pack("<BHBIfI", 2, 16, *head, price(base), stamp()))
        elif what == "prev":
            packets.append(struct.pack("<BHBIfI", 6, 16, *head, price(base), u32()))
        elif what == "oi":
            packets.append(struct.pack("<BHBII", 5, 12, *head, u32()))
        else:
            trade = (price(base), rng.randrange(1, 500), stamp(), price(base), u32(), u32(), u32())
            ohlc = (price(base), 0.0, price(base + 5), price(base - 5))
            if what == "quote":
                packets.append(struct.pack("<BHBIfHIfIIIffff", 4, 50, *head, *trade, *ohlc))
            else:
                body = struct.pack("<fHIfIIIIIIffff", *trade, u32(), u32(), u32(), *ohlc)
                for level in range(5):
                    body += struct.pack(
                        "<IIHHff",
                        u32(),
                        u32(),
                        rng.randrange(1, 50),
                        rng.randrange(1, 50),
                        price(base - 0.05 * level),
                        price(base + 0.05 * level),
                    )
                packets.append(struct.pack("<BHBI", 8, 162, *head) + body)
    return packets


def read_ours(records: list[Any]) -> None:
    """Read every field of every record (the tuples are thrown away: reading is the point)."""
    for t in records:
        _ = (t.exchange_segment, t.security_id, t.last_price, t.last_trade_time)
        kind = type(t)
        if kind is QuoteTick or kind is FullTick:
            _ = (t.last_traded_quantity, t.average_traded_price, t.volume_traded)
            _ = (t.total_sell_quantity, t.total_buy_quantity)
            o = t.ohlc
            _ = (o.open, o.close, o.high, o.low)
        if kind is FullTick:
            _ = (t.oi, t.oi_day_high, t.oi_day_low)
            depth = t.depth
            for level in depth.buy:
                _ = (level.quantity, level.price, level.orders)
            for level in depth.sell:
                _ = (level.quantity, level.price, level.orders)


def read_theirs(record: dict[str, Any]) -> None:
    """The same reads on the SDK's dict."""
    t = record
    _ = (t["exchange_segment"], t["security_id"], t["LTP"], t["LTT"])
    kind = t["type"]
    if kind == "Quote Data" or kind == "Full Data":
        _ = (t["LTQ"], t["avg_price"], t["volume"])
        _ = (t["total_sell_quantity"], t["total_buy_quantity"])
        _ = (t["open"], t["close"], t["high"], t["low"])
    if kind == "Full Data":
        _ = (t["OI"], t["oi_day_high"], t["oi_day_low"])
        for level in t["depth"]:
            _ = (level["bid_quantity"], level["bid_price"], level["bid_orders"])
        for level in t["depth"]:
            _ = (level["ask_quantity"], level["ask_price"], level["ask_orders"])


def ours(packets: list[bytes], read: bool) -> None:
    """Decode (and read) message after message, each message's records dropped before the
    next, as a feed consumer does."""
    if read:
        for packet in packets:
            read_ours(decode_message(packet))
    else:
        for packet in packets:
            decode_message(packet)


def theirs(packets: list[bytes], read: bool) -> None:
    process = SDK.process_data
    if read:
        for packet in packets:
            read_theirs(process(packet))
    else:
        for packet in packets:
            process(packet)


def check_same(packets: list[bytes]) -> None:
    """Both decoders must agree before their speed is compared (the test suite compares
    every field on random packets; this checks the benchmark's own)."""
    for packet in packets:
        (record,) = decode_message(packet)
        sdk = SDK.process_data(packet)
        assert sdk["security_id"] == record.security_id
        if isinstance(record, TickerTick | QuoteTick | FullTick):
            assert math.isclose(float(sdk["LTP"]), record.last_price), (sdk, record)
            assert record.last_trade_time is not None
            assert record.last_trade_time.strftime("%H:%M:%S") == sdk["LTT"]
        if isinstance(record, FullTick):
            for level, bid in zip(sdk["depth"], record.depth.buy, strict=True):
                assert float(level["bid_price"]) == bid.price
                assert level["bid_quantity"] == bid.quantity


def retained(decode: Callable[[bytes], Any], packets: list[bytes]) -> tuple[float, float]:
    """Bytes and collector-tracked objects retained per full tick, depth read, kept alive."""
    gc.collect()
    tracked_before = len(gc.get_objects())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [decode(packet) for packet in packets]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    tracked = len(gc.get_objects()) - tracked_before - 1  # the list itself
    del kept
    return (after - before) / len(packets), tracked / len(packets)


def _ours_kept(packet: bytes) -> Any:
    (tick,) = decode_message(packet)
    _ = (tick.depth.buy, tick.depth.sell)  # read: the levels are built, and not kept
    return tick


def _theirs_kept(packet: bytes) -> Any:
    return SDK.process_data(packet)


def _read_fields(ticks: list[Any]) -> None:
    """The ``+read`` reads of a full tick's own fields (no depth)."""
    for t in ticks:
        _ = (t.exchange_segment, t.security_id, t.last_price, t.last_trade_time)
        _ = (t.last_traded_quantity, t.average_traded_price, t.volume_traded)
        _ = (t.total_sell_quantity, t.total_buy_quantity)
        o = t.ohlc
        _ = (o.open, o.close, o.high, o.low)
        _ = (t.oi, t.oi_day_high, t.oi_day_low)


def _read_dicts(dicts: list[dict[str, Any]]) -> None:
    for record in dicts:
        read_theirs(record)


def _build_sides(ticks: list[Any]) -> None:
    for t in ticks:
        depth = t.depth
        _ = (depth.buy, depth.sell)


def _read_levels(sides: list[Any]) -> None:
    """The ``+read`` reads of the ten levels, on sides already built."""
    for buy, sell in sides:
        for level in buy:
            _ = (level.quantity, level.price, level.orders)
        for level in sell:
            _ = (level.quantity, level.price, level.orders)


def _make_levels(values: list[list[tuple[int, float, int]]]) -> None:
    """Ten DepthLevels a packet from values already unpacked and rounded: what building
    the levels costs by itself."""
    new = tuple.__new__
    for levels in values:
        for level in levels:
            new(DepthLevel, level)


def profile(rounds: int, seconds: float) -> None:
    """Where a realistic ``full+read`` spends its time, part by part."""
    packets = make_packets("full", adversarial=False)
    ticks: list[Any] = [decode_message(packet)[0] for packet in packets]
    sides = [(t.depth.buy, t.depth.sell) for t in ticks]
    values = [[tuple(level) for level in buy + sell] for buy, sell in sides]
    dicts = [SDK.process_data(packet) for packet in packets]
    parts: dict[str, Callable[[], object]] = {
        "theirs: process_data": lambda: theirs(packets, read=False),
        "theirs: read every key": lambda: _read_dicts(dicts),
        "ours: decode_message": lambda: ours(packets, read=False),
        "ours: read the tick's fields": lambda: _read_fields(ticks),
        "ours: build both depth sides": lambda: _build_sides(ticks),
        "  of which 10 DepthLevels alone": lambda: _make_levels(values),
        "ours: read the 30 level fields": lambda: _read_levels(sides),
        "ours: full+read, whole": lambda: ours(packets, read=True),
    }
    times = interleaved(parts, rounds, seconds)
    per_packet = 1e6 / len(packets)
    medians = {name: summary([t * per_packet for t in v]).median for name, v in times.items()}
    print("profile of realistic full+read, us per packet, median [lowest-highest]:")
    for name, spans in times.items():
        print(f"  {name:<34}{summary([t * per_packet for t in spans]).format(3):>22}")
    theirs_total = medians["theirs: process_data"] + medians["theirs: read every key"]
    reads = medians["ours: read the tick's fields"] + medians["ours: read the 30 level fields"]
    print(
        f"  theirs decode+read {theirs_total:.3f} us: 8x allows {theirs_total / 8:.3f} us; "
        f"our reads alone (records already built) take {reads:.3f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="interleaved rounds per row")
    parser.add_argument("--seconds", type=float, default=0.05, help="time per side per round")
    parser.add_argument("--memory", action="store_true", help="also retained bytes per tick")
    parser.add_argument("--profile", action="store_true", help="also split full+read in parts")
    args = parser.parse_args()
    print(header("bench_dhan_ticks"))
    print(f"one packet a message, {MESSAGES} messages a row, {args.rounds} interleaved rounds;")
    print("median [lowest-highest]")
    print(f"{'packets':<12}{'kind':<13}{'ours us/packet':>22}{'theirs us/packet':>24}{'ratio':>20}")
    for adversarial in (False, True):
        label = "adversarial" if adversarial else "realistic"
        for row in ("ticker", "ticker+read", "quote", "quote+read", "full", "full+read", "mixed"):
            kind = row.removesuffix("+read")
            read = row.endswith("+read")
            packets = make_packets(kind, adversarial)
            check_same(packets)
            cases: dict[str, Callable[[], object]] = {
                "ours": lambda packets=packets, read=read: ours(packets, read),
                "theirs": lambda packets=packets, read=read: theirs(packets, read),
            }
            times = interleaved(cases, args.rounds, args.seconds)
            per_packet = 1e6 / len(packets)
            mine = summary([t * per_packet for t in times["ours"]])
            them = summary([t * per_packet for t in times["theirs"]])
            ratio = ratios(times["theirs"], times["ours"])
            print(
                f"{label:<12}{row:<13}{mine.format(3):>22}{them.format(3):>24}"
                f"{ratio.format(1, 'x'):>20}"
            )
    if args.memory:
        print("retained per full tick, depth read (tracemalloc), and collector-tracked objects:")
        for adversarial in (False, True):
            packets = make_packets("full", adversarial)
            ours_b, ours_n = retained(_ours_kept, packets)
            them_b, them_n = retained(_theirs_kept, packets)
            print(
                f"{'adversarial' if adversarial else 'realistic':<12} ours {ours_b:,.0f} B "
                f"({ours_n:.1f} tracked), theirs {them_b:,.0f} B ({them_n:.1f} tracked): "
                f"{them_b / ours_b:.1f}x smaller"
            )
    if args.profile:
        profile(args.rounds, args.seconds)


if __name__ == "__main__":
    main()
