"""The tick codec: golden packets, byte offsets, records, malformed input, text messages."""

from __future__ import annotations

import base64
import copy
import datetime
import gc
import json
import logging
import pickle
import struct
from pathlib import Path
from typing import Any

import attrs
import pytest

import aio_trader.kite
from aio_trader._time import IST
from aio_trader.kite import ticks as codec
from aio_trader.kite.ticks import (
    Depth,
    DepthLevel,
    FeedError,
    FeedMessage,
    FullTick,
    IndexFullTick,
    IndexQuoteTick,
    LtpTick,
    MalformedPacket,
    Ohlc,
    OrderUpdate,
    QuoteTick,
    Tick,
    decode_frame,
    decode_text,
    encode_frame,
    encode_text,
    segment_divisor,
)

PINNED_API = {
    "Ohlc",
    "DepthLevel",
    "Depth",
    "LtpTick",
    "IndexQuoteTick",
    "IndexFullTick",
    "QuoteTick",
    "FullTick",
    "Tick",
    "OrderUpdate",
    "FeedError",
    "FeedMessage",
    "MalformedPacket",
    "decode_frame",
    "encode_frame",
    "decode_text",
    "encode_text",
    "segment_divisor",
}

# 2021-07-05 10:41:27 IST, the time in the mock packets.
T0 = 1_625_461_887
T0_IST = datetime.datetime(2021, 7, 5, 10, 41, 27, tzinfo=IST)


def frame_of(*packets: bytes) -> bytes:
    """A binary frame holding ``packets`` as they are."""
    return struct.pack(">H", len(packets)) + b"".join(
        struct.pack(">H", len(p)) + p for p in packets
    )


def decode_collecting(frame: bytes) -> tuple[list[Tick], list[MalformedPacket]]:
    bad: list[MalformedPacket] = []
    return decode_frame(frame, bad.append), bad


def packet(length: int, *fields: tuple[int, str, int]) -> bytes:
    """A packet of ``length`` zero bytes with each ``(offset, struct code, value)`` written."""
    buf = bytearray(length)
    for offset, code, value in fields:
        struct.pack_into(">" + code, buf, offset, value)
    return bytes(buf)


# -- the public surface ----------------------------------------------------------------


def test_public_api_is_pinned_and_reexported() -> None:
    assert set(codec.__all__) == PINNED_API
    for name in PINNED_API:
        assert getattr(aio_trader.kite, name) is getattr(codec, name)
        assert name in aio_trader.kite.__all__


def test_packet_table_matches_the_wire_lengths() -> None:
    assert {n: kind.packet.size for n, kind in codec._KINDS.items()} == {
        8: 8,
        28: 28,
        32: 32,
        44: 44,
        184: 184,
    }


def test_segment_divisor_by_segment_or_token() -> None:
    assert segment_divisor(3) == 10_000_000
    assert segment_divisor(6) == 10_000
    assert segment_divisor(12) == 10_000  # NCO, as Kite's official client
    for segment in (0, 1, 2, 4, 5, 7, 8, 9, 11, 255):
        assert segment_divisor(segment) == 100
    assert segment_divisor(1234 << 8 | 3) == 10_000_000  # a CDS token
    assert segment_divisor(408065) == 100  # NSE INFY


# -- golden: the real packets in kiteconnect-mocks ------------------------------------------


def mock_packet(mocks: Path, mode: str) -> bytes:
    return base64.b64decode((mocks / f"ticker_{mode}.packet").read_text())


def mock_json(mocks: Path, mode: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((mocks / f"ticker_{mode}.json").read_text())
    return data


#: The mock JSON (from another Kite client) names a few fields differently.
MOCK_NAMES = {
    "last_quantity": "last_traded_quantity",
    "average_price": "average_traded_price",
    "volume": "volume_traded",
    "buy_quantity": "total_buy_quantity",
    "sell_quantity": "total_sell_quantity",
    "timestamp": "exchange_timestamp",
}


def expected_from_mock(data: dict[str, Any]) -> dict[str, Any]:
    out = {MOCK_NAMES.get(key, key): value for key, value in data.items()}
    # Its "change" is not Kite's percent change (it is the same in both mocks although
    # their last prices differ), so it is checked against the formula instead.
    out.pop("change", None)
    for key in ("last_trade_time", "exchange_timestamp"):
        if key in out:
            out[key] = datetime.datetime.fromisoformat(out[key])
    return out


@pytest.mark.parametrize("mode", ["quote", "full"])
def test_golden_mock_packets(mocks: Path, mode: str) -> None:
    raw = mock_packet(mocks, mode)
    ticks, bad = decode_collecting(frame_of(raw))
    assert bad == []
    [tick] = ticks
    got = tick.to_dict()
    expected = expected_from_mock(mock_json(mocks, mode))
    assert {key: got[key] for key in expected} == expected
    close = tick.ohlc.close  # type: ignore[union-attr]
    assert got["change"] == (tick.last_price - close) * 100 / close
    assert encode_frame(ticks) == frame_of(raw)  # byte-exact inverse


def test_golden_full_packet_record(mocks: Path) -> None:
    [tick] = decode_frame(frame_of(mock_packet(mocks, "full")))
    assert isinstance(tick, FullTick)
    assert tick.mode == "full"
    assert tick.tradable
    assert tick.exchange_timestamp == tick.last_trade_time == T0_IST
    assert tick.exchange_timestamp.tzinfo is not None
    assert tick.depth.buy[0] == DepthLevel(quantity=5, price=1573.4, orders=1)
    assert tick.depth.sell[4] == DepthLevel(quantity=724, price=1573.95, orders=5)


def test_golden_ltp_is_the_quote_packet_head(mocks: Path) -> None:
    """Kite's LTP packet is the first 8 bytes of the quote packet."""
    [tick] = decode_frame(frame_of(mock_packet(mocks, "quote")[:8]))
    assert tick.to_dict() == mock_json(mocks, "ltp")


def test_golden_postback(mocks: Path) -> None:
    data = json.loads((mocks / "postback.json").read_text())
    update = decode_text(json.dumps({"type": "order", "data": data}))
    assert isinstance(update, OrderUpdate)
    assert update.order_id == "220303000308932"
    assert update.status == "COMPLETE"
    assert update.order_timestamp == datetime.datetime(2022, 3, 3, 9, 24, 25, tzinfo=IST)
    assert update.instrument_token == 779521
    assert update.average_price == 470.0
    assert update.to_dict() == data
    assert "checksum" not in repr(update)
    assert decode_text(encode_text(update)) == update


# -- every field at its byte offset ------------------------------------------------------

NSE = 0x00ABCD01  # segment 1, divisor 100
CDS = 0x00ABCD03  # segment 3, divisor 1e7
BCD = 0x00ABCD06  # segment 6, divisor 1e4
INDEX = 0x00ABCD09  # segment 9, not tradable


@pytest.mark.parametrize(("token", "divisor"), [(NSE, 100), (CDS, 1e7), (BCD, 1e4), (INDEX, 100)])
def test_ltp_offsets(token: int, divisor: float) -> None:
    [tick] = decode_frame(frame_of(packet(8, (0, "I", token), (4, "I", 123456789))))
    assert tick == LtpTick(instrument_token=token, last_price=123456789 / divisor)
    assert tick.mode == "ltp"
    assert tick.tradable is (token != INDEX)


@pytest.mark.parametrize("token", [INDEX, CDS])
def test_index_packet_offsets(token: int) -> None:
    d = segment_divisor(token)
    fields = [(0, "I", token), (4, "I", 1004), (8, "I", 1008), (12, "I", 1012), (16, "I", 1016)]
    fields += [(20, "I", 1020), (24, "I", 0xDEADBEEF)]  # 24: change, ignored
    [quote, full] = decode_frame(frame_of(packet(28, *fields), packet(32, *fields, (28, "I", T0))))
    ohlc = Ohlc(open=1016 / d, high=1008 / d, low=1012 / d, close=1020 / d)
    assert quote == IndexQuoteTick(instrument_token=token, last_price=1004 / d, ohlc=ohlc)
    assert full == IndexFullTick(
        instrument_token=token, last_price=1004 / d, ohlc=ohlc, exchange_timestamp=T0_IST
    )
    assert (quote.mode, full.mode) == ("quote", "full")
    assert quote.tradable is full.tradable is (token != INDEX)
    assert quote.change == (1004 / d - 1020 / d) * 100 / (1020 / d) == full.change
    assert quote.change == pytest.approx(-1.5686, abs=1e-4)


QUOTE_OFFSETS = [
    (4, "last_price", 100_004),
    (8, "last_traded_quantity", 8),
    (12, "average_traded_price", 100_012),
    (16, "volume_traded", 16),
    (20, "total_buy_quantity", 20),
    (24, "total_sell_quantity", 24),
]
OHLC_OFFSETS = [(28, "open", 100_028), (32, "high", 100_032), (36, "low", 100_036)]
OHLC_OFFSETS += [(40, "close", 100_040)]
FULL_OFFSETS = [(48, "oi", 48), (52, "oi_day_high", 52), (56, "oi_day_low", 56)]
PRICE_FIELDS = {"last_price", "average_traded_price"}


@pytest.mark.parametrize("token", [NSE, CDS, BCD])
def test_quote_and_full_offsets(token: int) -> None:
    d = segment_divisor(token)
    common = [(0, "I", token)] + [(o, "I", v) for o, _, v in QUOTE_OFFSETS + OHLC_OFFSETS]
    depth = []
    for level in range(10):
        base = 64 + 12 * level
        depth += [(base, "I", 1000 + level), (base + 4, "I", 200_000 + level)]
        depth += [(base + 8, "H", 60_000 + level), (base + 10, "H", 0xFFFF)]  # 10: padding
    full_fields = [(o, "I", v) for o, _, v in FULL_OFFSETS]
    full_fields += [(44, "I", T0 - 60), (60, "I", T0), *depth]
    quote, full = decode_frame(frame_of(packet(44, *common), packet(184, *common, *full_fields)))
    assert isinstance(quote, QuoteTick)
    assert isinstance(full, FullTick)
    for tick in (quote, full):
        assert tick.instrument_token == token
        for _, name, value in QUOTE_OFFSETS:
            assert getattr(tick, name) == (value / d if name in PRICE_FIELDS else value), name
        for _, name, value in OHLC_OFFSETS:
            assert getattr(tick.ohlc, name) == value / d, name
        assert tick.change == (100_004 / d - 100_040 / d) * 100 / (100_040 / d)
    assert full.last_trade_time == T0_IST - datetime.timedelta(seconds=60)
    assert full.exchange_timestamp == T0_IST
    for _, name, value in FULL_OFFSETS:
        assert getattr(full, name) == value
    levels = [DepthLevel(1000 + i, (200_000 + i) / d, 60_000 + i) for i in range(10)]
    assert full.depth == Depth(buy=tuple(levels[:5]), sell=tuple(levels[5:]))
    assert (quote.mode, full.mode) == ("quote", "full")


def test_zero_timestamps_and_close_decode_to_none_and_zero_change() -> None:
    [full] = decode_frame(frame_of(packet(184, (0, "I", NSE), (4, "I", 500))))
    assert isinstance(full, FullTick)
    assert full.last_trade_time is None
    assert full.exchange_timestamp is None
    assert full.change == 0.0
    [index] = decode_frame(frame_of(packet(32, (0, "I", INDEX), (4, "I", 500))))
    assert isinstance(index, IndexFullTick)
    assert index.exchange_timestamp is None
    assert index.change == 0.0


def test_timestamps_are_ist_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        [tick] = decode_frame(frame_of(packet(32, (0, "I", INDEX), (28, "I", T0))))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert isinstance(tick, IndexFullTick)
    assert tick.exchange_timestamp is not None
    assert tick.exchange_timestamp.utcoffset() == datetime.timedelta(hours=5, minutes=30)
    assert tick.exchange_timestamp.replace(tzinfo=None) == datetime.datetime(2021, 7, 5, 10, 41, 27)


def test_timestamp_cache_stays_bounded_and_exact() -> None:
    """Every timestamp distinct (a cache miss each): values exact, the cache bounded."""
    stamps = [T0 + 7 * i for i in range(1, 3 * codec._TIMES_MAX, 3)]
    for start in range(0, len(stamps), 500):
        chunk = stamps[start : start + 500]
        ticks = decode_frame(frame_of(*(packet(32, (0, "I", INDEX), (28, "I", s)) for s in chunk)))
        for tick, stamp in zip(ticks, chunk, strict=True):
            assert isinstance(tick, IndexFullTick)
            assert tick.exchange_timestamp == datetime.datetime.fromtimestamp(stamp, IST)
        assert len(codec._TIMES) <= codec._TIMES_MAX + 500  # emptied before a frame when full


# -- lazily decoded parts behave as plain fields -------------------------------------------


def full_tick() -> FullTick:
    level = DepthLevel(quantity=3, price=101.5, orders=2)
    return FullTick(
        instrument_token=NSE,
        last_price=101.25,
        last_traded_quantity=5,
        average_traded_price=100.0,
        volume_traded=1000,
        total_buy_quantity=40,
        total_sell_quantity=50,
        ohlc=Ohlc(open=99.0, high=102.0, low=98.5, close=100.0),
        last_trade_time=T0_IST,
        oi=7,
        oi_day_high=9,
        oi_day_low=1,
        exchange_timestamp=T0_IST,
        depth=Depth(buy=(level,) * 5, sell=(level,) * 5),
    )


def test_lazy_record_equals_constructed_record() -> None:
    built = full_tick()
    frame = encode_frame([built])
    # Before any lazy field was read, each way round, then once decoded.
    assert decode_frame(frame)[0] == built
    assert built == decode_frame(frame)[0]
    assert hash(decode_frame(frame)[0]) == hash(built)
    assert repr(decode_frame(frame)[0]) == repr(built)
    lazy = decode_frame(frame)[0]
    assert lazy.depth is lazy.depth  # one Depth per tick (its sides are built per read)  # type: ignore[union-attr]
    assert lazy == built
    assert hash(lazy) == hash(built)
    assert {decode_frame(frame)[0], built} == {built}


def test_decoded_depth_builds_its_levels_when_read() -> None:
    """A decoded depth keeps the packet's bytes: each read of a side builds equal levels,
    which the tick does not keep alive."""
    built = full_tick()
    depth = decode_frame(encode_frame([built]))[0].depth  # type: ignore[union-attr]
    assert type(depth) is Depth
    assert depth.buy == depth.buy == built.depth.buy
    assert depth.sell == built.depth.sell
    assert all(type(level) is DepthLevel for level in (*depth.buy, *depth.sell))
    assert depth.buy is not depth.buy  # built per read, not cached
    assert depth == built.depth
    assert hash(depth) == hash(built.depth)
    assert pickle.loads(pickle.dumps(depth)) == built.depth
    assert attrs.evolve(depth, sell=()) == Depth(buy=built.depth.buy, sell=())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        depth.buy = ()  # type: ignore[misc]
    with pytest.raises(AttributeError, match="no_such_side"):
        depth.no_such_side  # type: ignore[attr-defined]  # noqa: B018


def test_a_decoded_full_tick_keeps_no_levels_alive() -> None:
    """What makes a tick cheap to keep: after its depth is read, the tick still refers
    only to its own values, its Ohlc and a Depth of bytes (no level, no list, no dict)."""
    tick = decode_frame(encode_frame([full_tick()]))[0]
    assert isinstance(tick, FullTick)
    _ = (tick.depth.buy, tick.depth.sell, tick.ohlc)
    kept = [*gc.get_referents(tick), *gc.get_referents(tick.depth)]
    assert not [x for x in kept if isinstance(x, DepthLevel | tuple | list | dict)]
    tracked = [x for x in gc.get_referents(tick) if gc.is_tracked(x)]
    assert sorted(type(x).__name__ for x in tracked) == ["Depth", "Ohlc", "type"]


def test_decoding_never_switches_the_garbage_collector() -> None:
    frame = encode_frame([full_tick()] * 100)
    for enabled in (True, False):
        gc.enable() if enabled else gc.disable()
        try:
            assert len(decode_frame(frame)) == 100
            assert gc.isenabled() is enabled
        finally:
            gc.enable()


def test_lazy_record_copies_pickles_evolves() -> None:
    built = full_tick()
    frame = encode_frame([built])
    assert pickle.loads(pickle.dumps(decode_frame(frame)[0])) == built
    assert copy.copy(decode_frame(frame)[0]) == built
    assert copy.deepcopy(decode_frame(frame)[0]) == built
    assert attrs.asdict(decode_frame(frame)[0]) == attrs.asdict(built)
    lazy = decode_frame(frame)[0]
    assert attrs.evolve(lazy, oi=8) == attrs.evolve(built, oi=8)


def test_records_are_frozen_and_unknown_attributes_raise() -> None:
    lazy = decode_frame(encode_frame([full_tick()]))[0]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        lazy.last_price = 1.0  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        lazy.depth = None  # type: ignore[misc,assignment,union-attr]
    with pytest.raises(AttributeError, match="no_such_field"):
        lazy.no_such_field  # type: ignore[union-attr]  # noqa: B018
    with pytest.raises(AttributeError):
        LtpTick(instrument_token=1, last_price=1.0).ohlc  # type: ignore[attr-defined]  # noqa: B018


# -- to_dict: the shape of Kite's official client ---------------------------------------------


def test_to_dict_shapes() -> None:
    ltp = LtpTick(instrument_token=INDEX, last_price=5.0)
    assert ltp.to_dict() == {
        "tradable": False,
        "mode": "ltp",
        "instrument_token": INDEX,
        "last_price": 5.0,
    }
    full = full_tick().to_dict()
    assert list(full) == [
        "tradable",
        "mode",
        "instrument_token",
        "last_price",
        "last_traded_quantity",
        "average_traded_price",
        "volume_traded",
        "total_buy_quantity",
        "total_sell_quantity",
        "ohlc",
        "change",
        "last_trade_time",
        "oi",
        "oi_day_high",
        "oi_day_low",
        "exchange_timestamp",
        "depth",
    ]
    assert full["ohlc"] == {"open": 99.0, "high": 102.0, "low": 98.5, "close": 100.0}
    assert full["change"] == 1.25
    assert full["depth"]["buy"][0] == {"quantity": 3, "price": 101.5, "orders": 2}
    assert isinstance(full["depth"]["sell"], list)
    assert len(full["depth"]["sell"]) == 5


# -- malformed frames: reported, never raised ---------------------------------------------------

LTP = packet(8, (0, "I", NSE), (4, "I", 100))
LTP_TICK = LtpTick(instrument_token=NSE, last_price=1.0)


@pytest.mark.parametrize("frame", [b"", b"\x01"])
def test_heartbeats_decode_to_nothing(frame: bytes) -> None:
    assert decode_collecting(frame) == ([], [])


def test_empty_frame_decodes_to_nothing() -> None:
    assert decode_collecting(b"\x00\x00") == ([], [])


def test_unknown_packet_length_is_skipped_and_reported() -> None:
    junk = b"\x07" * 17
    ticks, bad = decode_collecting(frame_of(LTP, junk, LTP))
    assert ticks == [LTP_TICK, LTP_TICK]
    assert bad == [MalformedPacket("unknown packet length 17", offset=12, length=17, raw=junk)]


def test_count_larger_than_the_data_keeps_the_packets_present() -> None:
    frame = struct.pack(">H", 3) + frame_of(LTP, LTP)[2:]
    ticks, bad = decode_collecting(frame)
    assert ticks == [LTP_TICK, LTP_TICK]
    [report] = bad
    assert report.offset == len(frame)
    assert report.length == 0
    assert report.raw == b""
    assert "after 2 of the 3 packets" in report.reason


def test_length_running_past_the_end_is_reported() -> None:
    frame = frame_of(LTP, LTP)[:-3]
    ticks, bad = decode_collecting(frame)
    assert ticks == [LTP_TICK]
    assert bad == [
        MalformedPacket(
            "packet length 8 runs past the end of the frame", offset=12, length=8, raw=LTP[:5]
        )
    ]


def test_bytes_after_the_last_packet_are_reported() -> None:
    ticks, bad = decode_collecting(frame_of(LTP) + b"xyz")
    assert ticks == [LTP_TICK]
    assert bad == [
        MalformedPacket("3 bytes after the last of the 1 packets", offset=12, length=3, raw=b"xyz")
    ]


def test_a_lone_count_is_a_truncated_frame() -> None:
    ticks, bad = decode_collecting(b"\x00\x02\x00")
    assert ticks == []
    assert [(b.offset, b.length, b.raw) for b in bad] == [(2, 1, b"\x00")]


def test_malformed_packets_are_logged_without_a_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="aio_trader.kite.ticks"):
        assert decode_frame(frame_of(LTP, b"\x00" * 3)) == [LTP_TICK]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "unknown packet length 3" in record.getMessage()


def test_a_frame_of_malformed_packets_logs_once_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """65,535 empty packets: one WARNING for the frame, every one still to a callback."""
    frame = struct.pack(">H", 0xFFFF) + b"\x00\x00" * 0xFFFF
    with caplog.at_level(logging.WARNING, logger="aio_trader.kite.ticks"):
        assert decode_frame(frame) == []
    [record] = caplog.records
    assert "skipped 65535 malformed part(s)" in record.getMessage()
    assert "unknown packet length 0" in record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aio_trader.kite.ticks"):
        ticks, bad = decode_collecting(frame)
    assert ticks == []
    assert len(bad) == 0xFFFF
    assert caplog.records == []


def test_each_malformed_frame_logs_its_own_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aio_trader.kite.ticks"):
        for _ in range(3):
            assert decode_frame(frame_of(LTP, b"\x00" * 3, b"\x01" * 5)) == [LTP_TICK]
    assert len(caplog.records) == 3
    assert all("skipped 2 malformed part(s)" in r.getMessage() for r in caplog.records)


def test_malformed_packets_go_to_the_callback_not_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="aio_trader.kite.ticks"):
        ticks, bad = decode_collecting(frame_of(b"\x00" * 3))
    assert ticks == []
    assert len(bad) == 1
    assert caplog.records == []


def test_malformed_repr_does_not_dump_bytes() -> None:
    assert "<3 bytes>" in repr(MalformedPacket("r", 0, 3, b"abc"))


def test_decode_accepts_bytearray_and_memoryview() -> None:
    frame = frame_of(LTP)
    assert decode_frame(bytearray(frame)) == decode_frame(memoryview(frame)) == [LTP_TICK]


# -- encoding rejects what the wire cannot carry ----------------------------------------------


@pytest.mark.parametrize(
    "tick",
    [
        LtpTick(instrument_token=NSE, last_price=-0.01),
        LtpTick(instrument_token=NSE, last_price=43e6),
        LtpTick(instrument_token=-1, last_price=1.0),
        LtpTick(instrument_token=NSE, last_price=float("nan")),
        attrs.evolve(full_tick(), last_trade_time=datetime.datetime(2021, 1, 1)),  # naive
        attrs.evolve(full_tick(), oi=1.5),
        attrs.evolve(full_tick(), depth=Depth(buy=(), sell=())),
        attrs.evolve(full_tick(), depth=Depth(buy=(DepthLevel(1, 1.0, 70_000),) * 5, sell=())),
    ],
)
def test_encode_rejects_values_the_wire_cannot_carry(tick: Tick) -> None:
    with pytest.raises(ValueError, match=r"."):
        encode_frame([tick])


def test_encode_rejects_non_ticks_and_oversized_frames() -> None:
    with pytest.raises(TypeError, match="not a tick record"):
        encode_frame([Ohlc(1, 2, 3, 4)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="65535"):
        encode_frame([LTP_TICK] * 65536)
    assert len(decode_frame(encode_frame([LTP_TICK] * 65535))) == 65535


def test_encode_rounds_prices_to_the_tick_unit() -> None:
    [tick] = decode_frame(encode_frame([LtpTick(instrument_token=NSE, last_price=1573.149999)]))
    assert tick.last_price == 1573.15


# -- text frames ----------------------------------------------------------------------------


def test_text_error_and_message() -> None:
    assert decode_text('{"type": "error", "data": "bad token"}') == FeedError("bad token")
    assert decode_text(b'{"type": "error", "data": {"x": 1}}') == FeedError('{"x": 1}')
    assert decode_text('{"type": "message", "data": [1, "a"]}') == FeedMessage([1, "a"])
    assert json.loads(encode_text(FeedError("x"))) == {"type": "error", "data": "x"}
    assert json.loads(encode_text(FeedMessage({"a": 1}))) == {"type": "message", "data": {"a": 1}}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ('{"type": "order", "data": {"order_id": "1"', "not JSON"),
        (b"\xff\xfe", "not JSON"),
        ("[1, 2]", "no message type"),
        ('"just a string"', "no message type"),
        ('{"type": "bogus", "data": 1}', "unknown type 'bogus'"),
        ('{"data": 1}', "no message type"),
        ('{"type": "order", "data": "x"}', "without an object"),
        ('{"type": "order", "data": {"quantity": "ten"}}', "'quantity'"),
        ('{"type": "order", "data": {"order_timestamp": "yesterday"}}', "'order_timestamp'"),
        ('{"type": "order", "data": {"status": 5}}', "'status'"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
    ],
)
def test_bad_text_is_a_malformed_record(message: str | bytes, reason: str) -> None:
    result = decode_text(message)
    assert isinstance(result, MalformedPacket)
    assert reason in result.reason
    raw = message if isinstance(message, bytes) else message.encode()
    assert (result.offset, result.length, result.raw) == (0, len(raw), raw)


def test_order_update_keeps_unknown_fields() -> None:
    data = {"order_id": "1", "status": "OPEN", "new_field": [1, 2], "quantity": 5.0}
    update = OrderUpdate.from_dict(data)
    assert update.extra == {"new_field": [1, 2]}
    assert update.quantity == 5
    assert update.to_dict()["new_field"] == [1, 2]
    assert OrderUpdate.from_dict(update.to_dict()) == update


def test_order_update_accepts_iso_timestamps() -> None:
    update = OrderUpdate.from_dict({"exchange_timestamp": "2022-03-03T03:54:25+00:00"})
    assert update.exchange_timestamp == datetime.datetime(2022, 3, 3, 9, 24, 25, tzinfo=IST)
    assert update.to_dict()["exchange_timestamp"] == "2022-03-03 09:24:25"


def test_encode_text_rejects_other_records() -> None:
    with pytest.raises(TypeError):
        encode_text(LTP_TICK)  # type: ignore[arg-type]


@pytest.mark.parametrize("frame", [5, None, "abc", [0, 0], 2.0])
def test_decode_frame_refuses_what_is_not_bytes(frame: object) -> None:
    with pytest.raises(TypeError, match="decode_frame takes bytes"):
        decode_frame(frame)  # type: ignore[arg-type]


def test_decode_frame_takes_every_bytes_like() -> None:
    frame = encode_frame([LtpTick(instrument_token=408065, last_price=1.25)])
    assert decode_frame(bytearray(frame)) == decode_frame(memoryview(frame)) == decode_frame(frame)
