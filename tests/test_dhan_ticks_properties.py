"""Property tests of the Dhan codec: round trips, any bytes never raise, and differential
tests against Dhan's official SDK (``dhanhq``: its ``MarketFeed.process_*`` and
``FullDepth.process_20_depth_data`` parse single packets, no network).

The documented differences from the SDK, allowed field by field:

- prices: the SDK formats every float32 price as text with 2 decimals; ours are floats
  rounded to 2 decimals (the same number), 4 for currency segments (within 0.005);
- the last trade time: the SDK gives the UTC clock as ``"HH:MM:SS"`` text; ours is an
  aware datetime whose clock reads the same (IST-labelled), ``None`` for 0;
- the segment: the SDK gives the byte; ours its name (:func:`segment_name`);
- 20-level depth: the SDK reads the security id signed (ids below 2**31 are drawn).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aio_trader.dhan.constants import ExchangeSegment
from aio_trader.dhan.ticks import (
    Depth,
    DepthLevel,
    Disconnect,
    FeedMessage,
    FeedRecord,
    FullTick,
    MalformedPacket,
    MarketStatus,
    Ohlc,
    OpenInterest,
    OrderUpdate,
    PrevClose,
    QuoteTick,
    TickerTick,
    TwentyDepth,
    decode_counted,
    decode_depth_message,
    decode_message,
    decode_text,
    encode_depth_message,
    encode_message,
    encode_packet,
    encode_text,
    segment_name,
)

dhanhq_marketfeed = pytest.importorskip("dhanhq.marketfeed")
dhanhq_fulldepth = pytest.importorskip("dhanhq.fulldepth")

#: The SDK's parsers, without their constructors (which make an event loop): the
#: ``process_*`` methods read only their argument.
SDK_FEED = object.__new__(dhanhq_marketfeed.MarketFeed)
SDK_FEED.on_close = None  # read by its disconnect handler
SDK_DEPTH = object.__new__(dhanhq_fulldepth.FullDepth)

U16 = 2**16 - 1
U32 = 2**32 - 1
CURRENCY = (3, 7)
WALL_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=5.5)))

# -- strategies ---------------------------------------------------------------------------

segment_bytes = st.sampled_from([0, 1, 2, 3, 4, 5, 7, 8]) | st.integers(0, 255)
segments = segment_bytes.map(segment_name)
security_ids = st.integers(0, U32)
u16s = st.integers(0, U16)
u32s = st.integers(0, U32)


def wire_time(seconds: int) -> datetime.datetime | None:
    return WALL_EPOCH + datetime.timedelta(seconds=seconds) if seconds else None


times = u32s.map(wire_time)


@st.composite
def prices_of(draw: st.DrawFn, segment: str) -> float:
    """A price that survives float32 and the segment's rounding exactly."""
    if segment in ("NSE_CURRENCY", "BSE_CURRENCY"):
        return draw(st.integers(0, 1_000_000)) / 10_000
    return draw(st.integers(0, 10_000_000)) / 100


@st.composite
def records(draw: st.DrawFn) -> FeedRecord:
    """Any market feed record whose values the wire carries exactly."""
    segment = draw(segments)
    sid = draw(security_ids)
    price = prices_of(segment)
    kind = draw(st.sampled_from(["ticker", "prev", "quote", "oi", "full", "status", "bye"]))
    if kind == "ticker":
        return TickerTick(segment, sid, draw(price), draw(times))
    if kind == "prev":
        return PrevClose(segment, sid, draw(price), draw(u32s))
    if kind == "oi":
        return OpenInterest(segment, sid, draw(u32s))
    if kind == "status":
        return MarketStatus(segment, sid, draw(st.binary(max_size=40)))
    if kind == "bye":
        return Disconnect(segment, sid, draw(st.sampled_from([805, 806, 807, 808]) | u16s))
    trade: dict[str, Any] = dict(
        exchange_segment=segment,
        security_id=sid,
        last_price=draw(price),
        last_traded_quantity=draw(u16s),
        last_trade_time=draw(times),
        average_traded_price=draw(price),
        volume_traded=draw(u32s),
        total_sell_quantity=draw(u32s),
        total_buy_quantity=draw(u32s),
        ohlc=Ohlc(draw(price), draw(price), draw(price), draw(price)),
    )
    if kind == "quote":
        return QuoteTick(**trade)
    levels = st.builds(DepthLevel, u32s, price, u16s)
    side = st.lists(levels, min_size=5, max_size=5).map(tuple)
    return FullTick(
        **trade,
        oi=draw(u32s),
        oi_day_high=draw(u32s),
        oi_day_low=draw(u32s),
        depth=Depth(draw(side), draw(side)),
    )


# Raw packets with every field random (any float32 bit pattern: NaN, infinities, huge).
_f32 = st.integers(0, U32).map(lambda bits: struct.unpack("<f", struct.pack("<I", bits))[0])


@st.composite
def raw_packets(draw: st.DrawFn, code: int | None = None) -> bytes:
    """A well-formed packet of a documented code, every field random."""
    code = draw(st.sampled_from([2, 4, 5, 6, 7, 8, 50])) if code is None else code
    head = (draw(segment_bytes), draw(security_ids))
    if code in (2, 6):
        body = struct.pack("<fI", draw(_f32), draw(u32s))
    elif code == 5:
        body = struct.pack("<I", draw(u32s))
    elif code == 50:
        body = struct.pack("<H", draw(u16s))
    elif code == 7:
        body = draw(st.binary(max_size=16))
    else:
        f = _f32
        trade = (draw(f), draw(u16s), draw(u32s), draw(f), draw(u32s), draw(u32s), draw(u32s))
        if code == 4:
            body = struct.pack("<fHIfIIIffff", *trade, *(draw(f) for _ in range(4)))
        else:
            body = struct.pack(
                "<fHIfIIIIIIffff",
                *trade,
                *(draw(u32s) for _ in range(3)),
                *(draw(f) for _ in range(4)),
            )
            for _ in range(5):
                body += struct.pack("<IIHHff", draw(u32s), draw(u32s), draw(u16s), draw(u16s),
                                    draw(f), draw(f))  # fmt: skip
    return struct.pack("<BHBI", code, 8 + len(body), *head) + body


# -- round trips ----------------------------------------------------------------------------


@given(st.lists(records(), max_size=8))
def test_decode_inverts_encode(items: list[FeedRecord]) -> None:
    message = encode_message(items)
    assert decode_counted(message) == (items, 0)
    assert encode_message(decode_message(message)) == message


@given(st.lists(raw_packets(), min_size=1, max_size=6))
def test_several_packets_a_message_decode_as_each_alone(packets: list[bytes]) -> None:
    records_, bad = decode_counted(b"".join(packets))
    assert bad == 0
    alone = [decode_counted(packet) for packet in packets]
    assert all(count == 0 and len(one) == 1 for one, count in alone)
    assert same(records_, [one[0] for one, _ in alone])


@given(segment_bytes, security_ids, _f32 | st.integers(0, 10**9).map(lambda n: n / 10_000), u32s)
def test_a_lone_ticker_decodes_alike_on_the_fast_path_and_the_walk(
    segment: int, sid: int, price: float, ltt: int
) -> None:
    """decode_message builds a message of one ticker packet inline on its fast path;
    ``tick_sizes`` sends it down the general walk (``_ticker``): both agree, currency
    prices (four decimals) and float32 oddities included."""
    packet = struct.pack("<BHBIfI", 2, 16, segment, sid, price, ltt)
    fast = decode_counted(packet)
    walked = decode_counted(packet, tick_sizes={})
    assert fast[1] == walked[1] == 0
    assert same(fast[0], walked[0])


def same(a: list[Any], b: list[Any]) -> bool:
    """Equal, NaN prices included (a NaN is not equal to itself)."""
    return len(a) == len(b) and all(repr(x) == repr(y) for x, y in zip(a, b, strict=True))


@given(st.lists(raw_packets(), min_size=1, max_size=4))
def test_packets_reencode_to_their_bytes_up_to_price_rounding(packets: list[bytes]) -> None:
    """Decoding then encoding changes nothing but prices, which move by less than the
    rounding unit (NaN and infinities stay as they are)."""
    for packet in packets:
        (record,) = decode_message(packet)
        again = encode_packet(record)
        assert len(again) == len(packet)
        assert again[:8] == packet[:8]
        (twice,) = decode_message(again)
        assert repr(twice) == repr(record)


@given(st.lists(st.builds(TwentyDepth, segments, st.integers(0, 2**31 - 1),
                          st.sampled_from(["buy", "sell"]), u32s,
                          st.lists(st.builds(DepthLevel, u32s, st.floats(allow_nan=False), u32s),
                                   max_size=20).map(tuple)), max_size=4))  # fmt: skip
def test_depth_decode_inverts_encode(items: list[TwentyDepth]) -> None:
    message = encode_depth_message(items)
    bad: list[MalformedPacket] = []
    assert decode_depth_message(message, bad.append) == items
    assert bad == []


# -- never raises -----------------------------------------------------------------------------


@given(st.binary(max_size=400))
def test_any_bytes_decode_to_records_or_counted_skips(data: bytes) -> None:
    bad: list[MalformedPacket] = []
    records_ = decode_message(data, bad.append)
    assert all(isinstance(r, FeedRecord.__args__) for r in records_)  # type: ignore[attr-defined]
    assert decode_counted(data)[1] == len(bad)
    for part in bad:
        assert 0 <= part.offset < len(data)
        assert part.raw == data[part.offset : part.offset + len(part.raw)]
    depth = decode_depth_message(data, bad.append)
    assert all(isinstance(r, TwentyDepth | Disconnect) for r in depth)
    assert isinstance(decode_text(data), OrderUpdate | FeedMessage | MalformedPacket)


@given(st.lists(raw_packets(), min_size=1, max_size=4), st.data())
def test_corrupted_messages_keep_their_good_packets(
    packets: list[bytes], data: st.DataObject
) -> None:
    """A packet with an unknown code, or a message cut short, loses only what is broken."""
    index = data.draw(st.integers(0, len(packets) - 1))
    broken = bytearray(packets[index])
    broken[0] = data.draw(st.sampled_from([0, 1, 3, 9, 41, 255]))
    message = b"".join(packets[:index]) + bytes(broken) + b"".join(packets[index + 1 :])
    records_, bad = decode_counted(message)
    assert bad == 1
    assert len(records_) == len(packets) - 1
    whole = b"".join(packets)
    cut = data.draw(st.integers(1, len(whole) - 1))
    records_, bad = decode_counted(whole[:cut])
    ends = [sum(map(len, packets[: i + 1])) for i in range(len(packets))]
    assert len(records_) == sum(end <= cut for end in ends)
    assert bad == (0 if cut in ends else 1)


def test_only_bytes_like_input_is_an_error() -> None:
    for bad in (5, "text", None, [1, 2]):
        with pytest.raises(TypeError):
            decode_message(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            decode_depth_message(bad)  # type: ignore[arg-type]
    packet = encode_packet(OpenInterest("NSE_FNO", 42, 7))
    assert decode_message(bytearray(packet)) == decode_message(memoryview(packet))


@given(st.text() | st.binary())
def test_any_text_decodes_to_a_record(message: str | bytes) -> None:
    assert isinstance(decode_text(message), OrderUpdate | FeedMessage | MalformedPacket)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)


@given(st.dictionaries(st.text(max_size=20), json_scalars, max_size=12), st.text(min_size=1))
def test_order_alerts_with_any_fields_never_raise(data: dict[str, Any], order_no: str) -> None:
    data["orderNo"] = order_no
    update = decode_text(encode_text(FeedMessage({"Type": "order_alert", "Data": data})))
    assert isinstance(update, OrderUpdate)
    assert update.order_id == order_no or "OrderNo" in data
    assert decode_text(encode_text(update)) == update


# -- differential: Dhan's official SDK ----------------------------------------------------------


def sdk_price(text: str, ours: float, segment: int) -> bool:
    theirs = float(text)
    if math.isnan(theirs):
        return math.isnan(ours)
    if segment in CURRENCY:
        return math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=0.005 + 1e-9)
    return ours == theirs


def sdk_time(text: str, ours: datetime.datetime | None) -> bool:
    if ours is None:
        return text == "00:00:00"  # our None is the SDK's epoch 0
    return ours.strftime("%H:%M:%S") == text and ours.utcoffset() == datetime.timedelta(hours=5.5)


def mismatches(packet: bytes) -> list[str]:
    """Field by field, our record against the SDK's dict for one packet."""
    (ours,) = decode_message(packet)
    with contextlib.redirect_stdout(io.StringIO()):  # the SDK prints on disconnect packets
        theirs = SDK_FEED.process_data(packet)
    seg = packet[3]
    if isinstance(ours, MarketStatus):
        return [] if theirs == "Markets Open" else [f"status: {theirs!r}"]
    if isinstance(ours, Disconnect):
        return [] if theirs is None else [f"disconnect: {theirs!r}"]
    bad = []
    if segment_name(theirs["exchange_segment"]) != ours.exchange_segment:
        bad.append("exchange_segment")
    if theirs["security_id"] != ours.security_id:
        bad.append("security_id")
    checks: list[tuple[str, Any, str]] = []  # (their key, our value, how)
    if isinstance(ours, TickerTick):
        checks = [("LTP", ours.last_price, "price"), ("LTT", ours.last_trade_time, "time")]
    elif isinstance(ours, PrevClose):
        checks = [("prev_close", ours.previous_close, "price"), ("prev_OI", ours.previous_oi, "")]
    elif isinstance(ours, OpenInterest):
        checks = [("OI", ours.oi, "")]
    elif isinstance(ours, QuoteTick | FullTick):
        checks = [
            ("LTP", ours.last_price, "price"),
            ("LTQ", ours.last_traded_quantity, ""),
            ("LTT", ours.last_trade_time, "time"),
            ("avg_price", ours.average_traded_price, "price"),
            ("volume", ours.volume_traded, ""),
            ("total_sell_quantity", ours.total_sell_quantity, ""),
            ("total_buy_quantity", ours.total_buy_quantity, ""),
            ("open", ours.ohlc.open, "price"),
            ("close", ours.ohlc.close, "price"),
            ("high", ours.ohlc.high, "price"),
            ("low", ours.ohlc.low, "price"),
        ]
    if isinstance(ours, FullTick):
        checks += [
            ("OI", ours.oi, ""),
            ("oi_day_high", ours.oi_day_high, ""),
            ("oi_day_low", ours.oi_day_low, ""),
        ]
        for i, (level, bid, ask) in enumerate(
            zip(theirs["depth"], ours.depth.buy, ours.depth.sell, strict=True)
        ):
            pairs = [
                (level["bid_quantity"] == bid.quantity, "bid_quantity"),
                (level["ask_quantity"] == ask.quantity, "ask_quantity"),
                (level["bid_orders"] == bid.orders, "bid_orders"),
                (level["ask_orders"] == ask.orders, "ask_orders"),
                (sdk_price(level["bid_price"], bid.price, seg), "bid_price"),
                (sdk_price(level["ask_price"], ask.price, seg), "ask_price"),
            ]
            bad += [f"depth[{i}].{name}" for ok, name in pairs if not ok]
    for key, value, how in checks:
        if how == "price":
            ok = sdk_price(theirs[key], value, seg)
        elif how == "time":
            ok = sdk_time(theirs[key], value)
        else:
            ok = theirs[key] == value
        if not ok:
            bad.append(f"{key}: theirs {theirs[key]!r}, ours {value!r}")
    return bad


@pytest.mark.parametrize("code", [2, 4, 5, 6, 7, 8, 50])
@given(data=st.data())
def test_every_field_agrees_with_the_official_sdk(code: int, data: st.DataObject) -> None:
    packet = data.draw(raw_packets(code))
    assert mismatches(packet) == []


@given(st.lists(records(), min_size=1, max_size=1))
def test_plausible_records_agree_with_the_official_sdk(items: list[FeedRecord]) -> None:
    assert mismatches(encode_message(items)) == []


@st.composite
def raw_depth_packets(draw: st.DrawFn) -> bytes:
    rows = b"".join(
        struct.pack("<dII", draw(st.floats(width=64)), draw(u32s), draw(u32s)) for _ in range(20)
    )
    code = draw(st.sampled_from([41, 51]))
    head = struct.pack(
        "<HBBII", 12 + len(rows), code, draw(segment_bytes), draw(st.integers(0, 2**31 - 1)),
        draw(u32s),
    )  # fmt: skip
    return head + rows


@given(raw_depth_packets())
def test_depth_packets_agree_with_the_official_sdk(packet: bytes) -> None:
    (ours,) = decode_depth_message(packet)
    theirs = SDK_DEPTH.process_20_depth_data(packet, 0)
    assert isinstance(ours, TwentyDepth)
    assert segment_name(theirs["exchange_segment"]) == ours.exchange_segment
    assert theirs["security_id"] == ours.security_id
    assert theirs["type"] == {"buy": "Bid", "sell": "Ask"}[ours.side]
    assert len(theirs["depth"]) == len(ours.levels) == 20
    for row, level in zip(theirs["depth"], ours.levels, strict=True):
        assert row["quantity"] == level.quantity
        assert row["orders"] == level.orders
        assert row["price"] == level.price or (math.isnan(row["price"]) and math.isnan(level.price))


def test_the_sdk_swaps_two_disconnect_labels_we_do_not(capsys: pytest.CaptureFixture[str]) -> None:
    """The documented difference: Dhan's annexure says 808 is an authentication failure
    and 809 an invalid token; the SDK prints 808 as an invalid client id."""
    for code, theirs in ((808, "Invalid Client ID"), (809, "Authentication Failed")):
        packet = encode_packet(Disconnect(ExchangeSegment.NSE_EQ, 0, code))
        SDK_FEED.process_data(packet)
        assert theirs in capsys.readouterr().out
        (ours,) = decode_message(packet)
        assert isinstance(ours, Disconnect)
        assert ours.is_session_error
    assert decode_message(encode_packet(Disconnect("NSE_EQ", 0, 808)))[0].label.startswith(  # type: ignore[union-attr]
        "Authentication Failed"
    )
