"""Dhan's codec (``aio_trader.dhan._codec``): walking, cutting and decoding Dhan's
messages for the gateway, recordings and replays, as properties over random packets of
every kind and as examples."""

from __future__ import annotations

import datetime
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aio_trader._codec import Codec, Cut, get_codec
from aio_trader.dhan._codec import CODEC, DhanCodec
from aio_trader.dhan.ticks import (
    Depth,
    DepthLevel,
    Disconnect,
    FeedMessage,
    FeedRecord,
    FullTick,
    MarketStatus,
    Ohlc,
    OpenInterest,
    OrderUpdate,
    PrevClose,
    QuoteTick,
    TickerTick,
    decode_message,
    encode_message,
    encode_packet,
    encode_text,
)

MODES = ("ticker", "quote", "full")
RANK = {mode: n for n, mode in enumerate(MODES)}
U16, U32 = 2**16 - 1, 2**32 - 1
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
WALL_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=IST)
HDFC, TCS, NIFTY = ("NSE_EQ", 1333), ("NSE_EQ", 11536), ("IDX_I", 13)

# -- strategies: records whose values the wire carries exactly ------------------------------

keys = st.sampled_from([HDFC, TCS, NIFTY, ("NSE_FNO", 35001), ("MCX_COMM", 4)])
prices = st.integers(0, 10_000_000).map(lambda n: n / 100)
times = st.integers(0, U32).map(lambda s: WALL_EPOCH + datetime.timedelta(seconds=s) if s else None)
u16s, u32s = st.integers(0, U16), st.integers(0, U32)


@st.composite
def ticks(draw: st.DrawFn, key: tuple[str, int] | None = None) -> TickerTick | QuoteTick | FullTick:
    """A tick packet's record of any mode."""
    segment, sid = draw(keys) if key is None else key
    mode = draw(st.sampled_from(MODES))
    if mode == "ticker":
        return TickerTick(segment, sid, draw(prices), draw(times))
    trade: dict[str, Any] = dict(
        exchange_segment=segment,
        security_id=sid,
        last_price=draw(prices),
        last_traded_quantity=draw(u16s),
        last_trade_time=draw(times),
        average_traded_price=draw(prices),
        volume_traded=draw(u32s),
        total_sell_quantity=draw(u32s),
        total_buy_quantity=draw(u32s),
        ohlc=Ohlc(draw(prices), draw(prices), draw(prices), draw(prices)),
    )
    if mode == "quote":
        return QuoteTick(**trade)
    side = st.lists(st.builds(DepthLevel, u32s, prices, u16s), min_size=5, max_size=5)
    return FullTick(
        **trade,
        oi=draw(u32s),
        oi_day_high=draw(u32s),
        oi_day_low=draw(u32s),
        depth=Depth(draw(side), draw(side)),
    )


@st.composite
def records(draw: st.DrawFn) -> FeedRecord:
    """Any market feed record: a tick, or a previous close, OI, market status, disconnect."""
    segment, sid = draw(keys)
    kind = draw(st.sampled_from(["tick", "tick", "prev", "oi", "status", "bye"]))
    if kind == "prev":
        return PrevClose(segment, sid, draw(prices), draw(u32s))
    if kind == "oi":
        return OpenInterest(segment, sid, draw(u32s))
    if kind == "status":
        return MarketStatus("IDX_I", 0, draw(st.binary(max_size=8)))
    if kind == "bye":
        return Disconnect(segment, sid, draw(st.sampled_from([805, 807, 814])))
    return draw(ticks((segment, sid)))


def in_mode(tick: TickerTick | QuoteTick | FullTick, mode: str) -> FeedRecord:
    """The record Dhan sends for ``tick``'s instrument in the poorer ``mode``."""
    if RANK[mode] >= RANK[tick.mode]:
        return tick
    if mode == "ticker":
        return TickerTick(tick.exchange_segment, tick.security_id, tick.last_price,
                          tick.last_trade_time)  # fmt: skip
    assert isinstance(tick, FullTick)
    return QuoteTick(
        tick.exchange_segment, tick.security_id, tick.last_price, tick.last_traded_quantity,
        tick.last_trade_time, tick.average_traded_price, tick.volume_traded,
        tick.total_sell_quantity, tick.total_buy_quantity, tick.ohlc,
    )  # fmt: skip


def expected(record: FeedRecord, wanted: dict[Any, str]) -> tuple[list[FeedRecord], int]:
    """What a consumer wanting ``wanted`` gets of ``record`` (see the codec's table), and
    whether it came poorer than wanted."""
    if isinstance(record, MarketStatus):
        return [record], 0
    if isinstance(record, Disconnect):
        return [], 0
    mode = wanted.get(record.key)
    if mode is None:
        return [], 0
    if isinstance(record, PrevClose):
        return [record], 0
    if isinstance(record, OpenInterest):
        return ([record] if mode != "ticker" else []), 0
    return [in_mode(record, mode)], int(RANK[mode] > RANK[record.mode])


# -- the codec ------------------------------------------------------------------------------


def test_dhan_codec_is_registered_lazily_and_a_codec() -> None:
    assert get_codec("dhan") is CODEC
    assert isinstance(CODEC, DhanCodec)
    codec: Codec = CODEC
    assert (codec.name, codec.modes, codec.default_mode) == ("dhan", MODES, "quote")
    assert [codec.mode(m) for m in ("ltp", "TICKER", "quote", "full")] == [
        "ticker", "ticker", "quote", "full"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown Dhan mode"):
        codec.mode("depth")
    assert repr(codec) == "<DhanCodec>"


def test_keys_are_checked_and_written_as_text() -> None:
    assert CODEC.check_keys([("nse_eq", "1333"), HDFC, ("IDX_I", 13)]) == [HDFC, NIFTY]
    for bad in (HDFC, [("NSE_EQ",)], [("NOPE", 1)], [("NSE_EQ", 0)], [("NSE_EQ", "x")], 5):
        with pytest.raises(ValueError, match=r"segment|security id|pair"):
            CODEC.check_keys(bad)  # type: ignore[arg-type]
    for key in (HDFC, NIFTY, ("MCX_COMM", U32)):
        text = CODEC.key_text(key)
        assert CODEC.parse_key(text) == key
        assert CODEC.parse_key(text.encode()) == key
    assert CODEC.key_text(HDFC) == "NSE_EQ:1333"
    for bad_text in ("1333", "NSE_EQ:", "NOPE:1", "NSE_EQ:-1", "", b"\xff:1"):
        with pytest.raises(ValueError, match="not a Dhan instrument key"):
            CODEC.parse_key(bad_text)


@given(st.lists(records(), max_size=8))
def test_walk_finds_each_packet_with_its_key_and_mode(items: list[FeedRecord]) -> None:
    message = encode_message(items)
    walk = CODEC.walk(message)
    assert walk.broken is None
    assert [p.key for p in walk.packets] == [r.key for r in items]
    poorest = {TickerTick: "ticker", QuoteTick: "quote", FullTick: "full", PrevClose: "ticker"}
    poorest |= {OpenInterest: "quote", MarketStatus: None, Disconnect: None}  # type: ignore[dict-item]
    assert [p.mode for p in walk.packets] == [poorest[type(r)] for r in items]
    assert [message[p.start : p.end] for p in walk.packets] == [encode_packet(r) for r in items]


@given(ticks(), st.sampled_from(MODES))
def test_cutting_a_packet_to_a_mode_equals_encoding_that_mode(tick: Any, mode: str) -> None:
    packet = encode_packet(tick)
    if RANK[mode] > RANK[tick.mode]:
        with pytest.raises(ValueError, match="richer"):
            CODEC.cut_packet(packet, mode)
    else:
        assert CODEC.cut_packet(packet, mode) == encode_packet(in_mode(tick, mode))


def test_companion_packets_come_in_their_modes_only() -> None:
    prev = encode_packet(PrevClose("NSE_EQ", 1333, 1500.5, 0))
    oi = encode_packet(OpenInterest("NSE_FNO", 35001, 12_000))
    assert all(CODEC.cut_packet(prev, mode) == prev for mode in MODES)
    assert CODEC.cut_packet(oi, "quote") == CODEC.cut_packet(oi, "full") == oi
    with pytest.raises(ValueError, match="does not come in ticker"):
        CODEC.cut_packet(oi, "ticker")
    for no_mode in (encode_packet(MarketStatus("IDX_I", 0, b"")), b"\x01\x10\x00" + bytes(13)):
        with pytest.raises(ValueError, match="no known mode"):
            CODEC.cut_packet(no_mode, "full")


@given(st.lists(records(), max_size=8), st.data())
def test_cutting_a_message_equals_encoding_what_is_wanted(
    items: list[FeedRecord], data: st.DataObject
) -> None:
    chosen = data.draw(st.lists(keys, unique=True))
    wanted = {key: data.draw(st.sampled_from(MODES)) for key in chosen}
    cut = CODEC.cut(encode_message(items), wanted)
    want: list[FeedRecord] = []
    poorer = 0
    for record in items:
        got, late = expected(record, wanted)
        want += got
        poorer += late
    assert cut.malformed == 0
    assert cut.poorer == poorer
    assert cut.kept == len(want)
    assert cut.frame == (encode_message(want) if want else None)
    assert CODEC.decode_binary(cut.frame) == decode_message(cut.frame) if cut.frame else True


@given(st.lists(records(), min_size=1, max_size=8))
def test_a_message_wanted_whole_is_the_same_object(items: list[FeedRecord]) -> None:
    message = encode_message(items)
    assert CODEC.cut(message, None) == Cut(message, len(items))
    every = {r.key: "full" for r in items}
    if not any(isinstance(r, Disconnect | OpenInterest | PrevClose) for r in items) and all(
        getattr(r, "mode", "full") == "full" for r in items
    ):
        assert CODEC.cut(message, every).frame is message


@given(st.binary(max_size=300), st.dictionaries(keys, st.sampled_from(MODES)))
def test_cut_and_walk_never_raise_and_leave_a_well_formed_message(
    data: bytes, wanted: dict[Any, str]
) -> None:
    walk = CODEC.walk(data)
    cut = CODEC.cut(data, wanted)
    assert cut.kept <= len(walk.packets)
    assert bool(cut.malformed) == (walk.broken is not None)
    if cut.frame is not None:
        again = CODEC.walk(cut.frame)
        assert again.broken is None
        assert len(again.packets) == cut.kept
        CODEC.decode_binary(cut.frame, lambda bad: None)
    CODEC.decode_binary(data, lambda bad: None)


def test_unknown_packets_are_kept_for_a_wanted_key_and_broken_tails_counted() -> None:
    hdfc = encode_packet(TickerTick("NSE_EQ", 1333, 1500.5, None))
    index = b"\x01\x10\x00\x01" + struct.pack("<I", 1333) + bytes(8)  # code 1, no layout
    other = b"\x01\x10\x00\x01" + struct.pack("<I", 11536) + bytes(8)
    cut = CODEC.cut(hdfc + index + other, {HDFC: "ticker"})
    assert cut == Cut(hdfc + index, 2)
    bad: list[Any] = []
    assert CODEC.decode_binary(index, bad.append) == []
    assert "index packet" in bad[0].reason
    # a length running past the end: the good packets before it are kept
    broken = hdfc + b"\x02\x40\x00\x01" + struct.pack("<I", 1333)
    assert CODEC.walk(broken).broken is not None
    assert CODEC.cut(broken, {HDFC: "quote"}) == Cut(hdfc, 1, 1, 1)
    assert CODEC.cut(b"", {HDFC: "quote"}) == Cut(None, 0)
    assert CODEC.cut(b"", None) == Cut(None, 0)


def test_text_frames_decode_to_records_or_report_malformed() -> None:
    update = OrderUpdate.from_dict({"orderNo": "1001", "status": "TRADED"})
    text = encode_text(update)
    record = CODEC.decode_text(text)
    assert isinstance(record, OrderUpdate)
    assert record.order_id == "1001"
    assert CODEC.is_order_update(record)
    assert CODEC.key_of(record) is None
    assert CODEC.decode_text(text.encode()) == record
    message = CODEC.decode_text('{"type": "hello"}')
    assert isinstance(message, FeedMessage)
    assert not CODEC.is_order_update(message)
    bad: list[Any] = []
    assert CODEC.decode_text("not json", bad.append) is None
    assert CODEC.decode_text('{"Type": "order_alert", "Data": {}}', bad.append) is None
    assert CODEC.decode_text(b"\xff", bad.append) is None
    assert len(bad) == 3
    assert all(isinstance(b.reason, str) for b in bad)
    assert CODEC.decode_text("[1]") is None  # no callback: reported to nobody, never raised


@given(records())
def test_keys_of_records_and_tick_rows(record: FeedRecord) -> None:
    row = CODEC.tick_row(record)
    if isinstance(record, TickerTick | QuoteTick | FullTick):
        assert CODEC.key_of(record) == record.key
        assert row is not None
        assert list(row) == [name for name, _ in CODEC.tick_columns]
        assert (row["exchange_segment"], row["security_id"]) == record.key
        assert row["mode"] == record.mode
        assert row["last_price"] == record.last_price
        assert row["oi"] == getattr(record, "oi", None)
        ohlc = getattr(record, "ohlc", None)
        assert row["open"] == (None if ohlc is None else ohlc.open)
    else:
        assert row is None
        expected_key = record.key if isinstance(record, PrevClose) else None
        assert CODEC.key_of(record) == expected_key
