"""Property tests of the tick codec: round trips, Kite's own parser, any input never raises."""

from __future__ import annotations

import datetime
import json
import struct
from typing import Any

import attrs
from hypothesis import assume, given
from hypothesis import strategies as st
from kiteconnect import KiteTicker
from strategies import json_values, text_records, tick_lists, ticks

from aio_trader._time import IST
from aio_trader.kite.ticks import (
    FeedError,
    FeedMessage,
    MalformedPacket,
    OrderUpdate,
    Tick,
    decode_frame,
    decode_text,
    encode_frame,
    encode_text,
)

ORDER_KEYS = [field.name for field in attrs.fields(OrderUpdate)]
TICK_TYPES = Tick.__args__  # type: ignore[attr-defined]
#: Kite's official client; it connects only on ``connect()``, its parser is pure.
OFFICIAL = KiteTicker("api_key", "access_token")


def decode_collecting(frame: bytes) -> tuple[list[Tick], list[MalformedPacket]]:
    bad: list[MalformedPacket] = []
    return decode_frame(frame, bad.append), bad


def packet_spans(frame: bytes) -> list[tuple[int, int]]:
    """(start of length prefix, end of packet) of each packet of a well-formed frame."""
    spans, pos = [], 2
    for _ in range(struct.unpack_from(">H", frame)[0]):
        end = pos + 2 + struct.unpack_from(">H", frame, pos)[0]
        spans.append((pos, end))
        pos = end
    return spans


@given(tick_lists())
def test_decode_inverts_encode(ticks_: list[Tick]) -> None:
    frame = encode_frame(ticks_)
    assert decode_collecting(frame) == (ticks_, [])
    assert encode_frame(decode_frame(frame)) == frame


def official(value: Any, key: str = "") -> Any:
    """Kite's dict with its naive local timestamps made aware IST, epoch 0 as None."""
    if isinstance(value, dict):
        return {k: official(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [official(v) for v in value]
    if isinstance(value, datetime.datetime):
        return None if value == datetime.datetime.fromtimestamp(0) else value.astimezone(IST)
    assert key not in ("last_trade_time", "exchange_timestamp") or value is None
    return value


@given(tick_lists())
def test_to_dict_equals_the_official_parser(ticks_: list[Tick]) -> None:
    frame = encode_frame(ticks_)
    theirs = [official(d) for d in OFFICIAL._parse_binary(frame)]
    ours = [tick.to_dict() for tick in decode_frame(frame)]
    assert len(ours) == len(theirs) == len(ticks_)
    for mine, kite in zip(ours, theirs, strict=True):
        assert mine.keys() == kite.keys()
        for key in kite:
            assert mine[key] == kite[key], key


@given(
    st.lists(
        st.sampled_from([8, 28, 32, 44, 184]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
        max_size=8,
    )
)
def test_any_packet_bytes_equal_the_official_parser(packets: list[bytes]) -> None:
    """Adversarial input: every 32-bit field random (any segment, any timestamp, any
    depth), decoded as the official client does; depth read twice gives equal levels."""
    frame = struct.pack(">H", len(packets))
    frame += b"".join(struct.pack(">H", len(p)) + p for p in packets)
    theirs = [official(d) for d in OFFICIAL._parse_binary(frame)]
    ticks_ = decode_frame(frame)
    assert [tick.to_dict() for tick in ticks_] == theirs
    for tick in ticks_:
        depth = getattr(tick, "depth", None)
        if depth is not None:
            assert depth.to_dict() == depth.to_dict() == theirs[ticks_.index(tick)]["depth"]


@given(st.binary(max_size=600))
def test_any_bytes_decode_without_raising(frame: bytes) -> None:
    ticks_, bad = decode_collecting(frame)
    assert all(isinstance(tick, TICK_TYPES) for tick in ticks_)
    assert all(isinstance(b, MalformedPacket) for b in bad)
    if len(frame) >= 2 and not bad:
        assert encode_frame(ticks_) == frame


@st.composite
def framed_junk(draw: st.DrawFn) -> bytes:
    """Frames with a plausible structure: a count, then (length, bytes) of mixed sizes."""
    sizes = st.sampled_from([0, 1, 7, 8, 9, 28, 32, 44, 183, 184, 185, 300])
    packets = draw(st.lists(sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n))))
    count = draw(st.integers(0, 0xFFFF) | st.just(len(packets)))
    lengths = [draw(st.integers(0, 0xFFFF) | st.just(len(p))) for p in packets]
    body = b"".join(struct.pack(">H", n) + p for n, p in zip(lengths, packets, strict=True))
    return struct.pack(">H", count) + body + draw(st.binary(max_size=3))


@given(framed_junk())
def test_structured_junk_decodes_without_raising(frame: bytes) -> None:
    ticks_, bad = decode_collecting(frame)
    assert all(isinstance(tick, TICK_TYPES) for tick in ticks_)
    for report in bad:
        assert 2 <= report.offset <= len(frame)
        assert report.raw in frame[report.offset :]


@given(tick_lists(), st.data())
def test_truncated_frame_keeps_whole_packets_and_reports_once(
    ticks_: list[Tick], data: st.DataObject
) -> None:
    frame = encode_frame(ticks_)
    assume(len(frame) > 2)
    cut = data.draw(st.integers(2, len(frame) - 1))
    whole = sum(end <= cut for _, end in packet_spans(frame))
    got, bad = decode_collecting(frame[:cut])
    assert got == ticks_[:whole]
    assert len(bad) == 1


@given(tick_lists(), st.data())
def test_unknown_packet_is_skipped_others_intact(ticks_: list[Tick], data: st.DataObject) -> None:
    junk = data.draw(st.binary(max_size=200).filter(lambda b: len(b) not in (8, 28, 32, 44, 184)))
    at = data.draw(st.integers(0, len(ticks_)))
    spans = packet_spans(encode_frame(ticks_))
    frame = encode_frame(ticks_)
    pos = spans[at][0] if at < len(spans) else len(frame)
    mutated = (
        struct.pack(">H", len(ticks_) + 1)
        + frame[2:pos]
        + struct.pack(">H", len(junk))
        + junk
        + frame[pos:]
    )
    got, bad = decode_collecting(mutated)
    assert got == ticks_
    assert bad == [MalformedPacket(f"unknown packet length {len(junk)}", pos, len(junk), junk)]


@given(tick_lists(), st.data())
def test_wrong_count_keeps_the_packets_it_covers(ticks_: list[Tick], data: st.DataObject) -> None:
    count = data.draw(st.integers(0, 0xFFFF).filter(lambda n: n != len(ticks_)))
    frame = encode_frame(ticks_)
    got, bad = decode_collecting(struct.pack(">H", count) + frame[2:])
    assert got == ticks_[:count]
    assert len(bad) == 1


@given(tick_lists(), st.data())
def test_flipped_body_bytes_still_decode_every_packet(
    ticks_: list[Tick], data: st.DataObject
) -> None:
    frame = bytearray(encode_frame(ticks_))
    bodies = [i for start, end in packet_spans(bytes(frame)) for i in range(start + 2, end)]
    assume(bodies)
    for index in data.draw(st.lists(st.sampled_from(bodies), min_size=1, max_size=8)):
        frame[index] ^= data.draw(st.integers(1, 255))
    got, bad = decode_collecting(bytes(frame))
    assert [type(t) for t in got] == [type(t) for t in ticks_]
    assert bad == []


@given(ticks())
def test_record_properties(tick: Tick) -> None:
    assert tick.mode in ("ltp", "quote", "full")
    assert tick.tradable is (tick.instrument_token & 0xFF != 9)
    ohlc = getattr(tick, "ohlc", None)
    if ohlc is not None:
        expected = (tick.last_price - ohlc.close) * 100 / ohlc.close if ohlc.close else 0.0
        assert tick.change == expected  # type: ignore[union-attr]


@given(text_records())
def test_text_round_trip(record: OrderUpdate | FeedError | FeedMessage) -> None:
    text = encode_text(record)
    assert decode_text(text) == record
    assert decode_text(text.encode()) == record


@given(st.one_of(st.text(), st.binary()))
def test_any_text_decodes_without_raising(message: str | bytes) -> None:
    result = decode_text(message)
    assert isinstance(result, OrderUpdate | FeedError | FeedMessage | MalformedPacket)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["order", "error", "message"]) | json_values,
            "data": json_values | st.dictionaries(st.sampled_from(ORDER_KEYS), json_values),
        },
    )
)
def test_any_json_object_decodes_without_raising(obj: dict[str, Any]) -> None:
    result = decode_text(json.dumps(obj))
    assert isinstance(result, OrderUpdate | FeedError | FeedMessage | MalformedPacket)
