"""The codec protocol (``aio_trader._codec``) and Kite's codec: walking, cutting, decoding,
and the registry that keeps the modules carrying frames free of any broker import."""

from __future__ import annotations

import struct
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import tick_lists, ticks

from aio_trader._codec import Codec, Cut, get_codec, register_codec, richest
from aio_trader.kite import (
    FeedMessage,
    FullTick,
    IndexFullTick,
    IndexQuoteTick,
    LtpTick,
    Mode,
    OrderUpdate,
    QuoteTick,
    Tick,
    decode_frame,
    encode_frame,
    encode_text,
)
from aio_trader.kite._codec import CODEC, KiteCodec

MODES = ("ltp", "quote", "full")
RANK = {mode: n for n, mode in enumerate(MODES)}
INFY, TCS, NIFTY = 408065, 2953217, 256265


def in_mode(tick: Tick, mode: str) -> Tick:
    """The record Kite would have sent for ``tick``'s instrument in the poorer ``mode``."""
    if RANK[mode] >= RANK[tick.mode]:
        return tick
    index = isinstance(tick, IndexQuoteTick | IndexFullTick)
    cls: Any = LtpTick if mode == "ltp" else IndexQuoteTick if index else QuoteTick
    return cls(**{f.name: getattr(tick, f.name) for f in attrs.fields(cls)})  # type: ignore[no-any-return]


def packet(token: int, length: int) -> bytes:
    body = struct.pack(">II", token, 150_000) + bytes(max(length - 8, 0))
    return struct.pack(">H", length) + body[:length]


def frame(*packets: bytes) -> bytes:
    return struct.pack(">H", len(packets)) + b"".join(packets)


def test_kite_codec_is_registered_and_a_codec() -> None:
    assert get_codec("kite") is CODEC
    assert get_codec(CODEC) is CODEC
    assert isinstance(CODEC, KiteCodec)
    codec: Codec = CODEC  # the protocol, as mypy sees it
    assert (codec.name, codec.modes, codec.default_mode) == ("kite", MODES, "quote")
    assert codec.mode("full") is Mode.FULL
    with pytest.raises(ValueError, match="unknown codec 'nope'"):
        get_codec("nope")
    with pytest.raises(ValueError, match="unknown Kite mode"):
        codec.mode("deep")
    assert richest(codec, None, "ltp") == "ltp"
    assert richest(codec, "full", "quote") == "full"
    assert richest(codec, "ltp", "quote") == "quote"


def test_keys_are_checked_and_written_as_text() -> None:
    assert CODEC.check_keys([INFY, TCS, INFY]) == [INFY, TCS]
    for bad in ([0], [2**32], [True], ["408065"], INFY, "408065"):
        with pytest.raises(ValueError, match="tokens"):
            CODEC.check_keys(bad)  # type: ignore[arg-type]
    assert CODEC.parse_key(CODEC.key_text(INFY)) == INFY
    assert CODEC.parse_key(b"408065") == INFY
    for text in ("x", "0", "-5"):
        with pytest.raises(ValueError, match="token"):
            CODEC.parse_key(text)


def test_a_codec_registered_by_module_path_is_loaded_on_first_use() -> None:
    register_codec("kite-again", "aio_trader.kite._codec:CODEC")
    assert get_codec("kite-again") is CODEC
    with pytest.raises(ValueError, match="module:attribute"):
        register_codec("bad", "no-colon")
    with pytest.raises(ValueError, match="non-empty"):
        register_codec("", CODEC)


# -- walk and cut: properties ------------------------------------------------------------


@given(tick_lists())
def test_walk_finds_each_packet_with_its_token_and_mode(records: list[Tick]) -> None:
    data = encode_frame(records)
    walk = CODEC.walk(data)
    assert walk.broken is None
    assert [(p.key, p.mode) for p in walk.packets] == [
        (t.instrument_token, t.mode) for t in records
    ]
    for p, tick in zip(walk.packets, records, strict=True):
        assert data[p.start : p.end] == encode_frame([tick])[4:]


@given(ticks(), st.sampled_from(MODES))
def test_cutting_a_packet_to_a_mode_equals_encoding_that_mode(tick: Tick, mode: str) -> None:
    body = encode_frame([tick])[4:]
    if RANK[mode] > RANK[tick.mode]:
        with pytest.raises(ValueError, match="richer"):
            CODEC.cut_packet(body, mode)
        return
    assert CODEC.cut_packet(body, mode) == encode_frame([in_mode(tick, mode)])[4:]


@given(tick_lists(), st.data())
def test_cutting_a_frame_equals_encoding_what_is_wanted(records: list[Tick], data: Any) -> None:
    tokens = sorted({t.instrument_token for t in records})
    chosen = data.draw(st.lists(st.sampled_from(tokens), unique=True)) if tokens else []
    wanted = {token: data.draw(st.sampled_from(MODES)) for token in chosen}
    cut = CODEC.cut(encode_frame(records), wanted)
    expected = [
        in_mode(t, wanted[t.instrument_token]) for t in records if t.instrument_token in wanted
    ]
    poorer = [
        t
        for t in records
        if t.instrument_token in wanted and RANK[t.mode] < RANK[wanted[t.instrument_token]]
    ]
    assert (cut.kept, cut.poorer, cut.malformed) == (len(expected), len(poorer), 0)
    if expected:
        assert cut.frame == encode_frame(expected)
        assert decode_frame(cut.frame) == expected
    else:
        assert cut.frame is None


@given(tick_lists())
def test_a_frame_wanted_whole_is_the_same_object(records: list[Tick]) -> None:
    data = encode_frame(records)
    assert CODEC.cut(data, None).frame is data
    exact = {t.instrument_token: t.mode for t in records}
    if len(exact) == len(records) and records:  # one packet per token: each in its mode
        assert CODEC.cut(data, exact) == Cut(data, len(records))


@given(st.binary(max_size=300), st.dictionaries(st.integers(0, 2**32 - 1), st.sampled_from(MODES)))
def test_cut_never_raises_and_leaves_a_well_formed_frame(
    data: bytes, wanted: dict[int, str]
) -> None:
    cut = CODEC.cut(data, wanted)
    walk = CODEC.walk(data)
    for p in walk.packets:  # keys of arbitrary packets: make some of them wanted
        wanted.setdefault(p.key, "ltp")  # type: ignore[arg-type]
    cut = CODEC.cut(data, wanted)
    if cut.frame is not None:
        again = CODEC.walk(cut.frame)
        assert again.broken is None
        assert {p.key for p in again.packets} <= set(wanted)
        assert len(again.packets) == cut.kept
    if walk.broken is not None:
        assert cut.malformed >= 1
    CODEC.decode_binary(data, lambda bad: None)  # never raises either


# -- walk and cut: what happens to the unexpected -----------------------------------------


def test_packets_are_cut_down_and_others_left_out() -> None:
    data = frame(packet(INFY, 184), packet(TCS, 184), packet(NIFTY, 32))
    cut = CODEC.cut(data, {INFY: "quote", NIFTY: "quote"})
    assert (cut.kept, cut.poorer, cut.malformed) == (2, 0, 0)
    assert cut.frame is not None
    assert [type(t) for t in decode_frame(cut.frame)] == [QuoteTick, IndexQuoteTick]
    ltp = CODEC.cut(data, {TCS: "ltp", NIFTY: "ltp"}).frame
    assert ltp is not None
    assert [(type(t), t.last_price) for t in decode_frame(ltp)] == [(LtpTick, 1500.0)] * 2


def test_poorer_packets_are_kept_and_counted() -> None:
    data = frame(packet(INFY, 44), packet(TCS, 8))
    cut = CODEC.cut(data, {INFY: "full", TCS: "quote"})
    assert cut == Cut(data, 2, poorer=2)
    assert [type(t) for t in decode_frame(data)] == [QuoteTick, LtpTick]
    assert CODEC.cut(data, {}) == Cut(None, 0)
    assert CODEC.cut(b"\x00", {INFY: "full"}) == Cut(None, 0)  # a heartbeat


def test_unknown_packets_are_kept_for_a_wanted_token_and_skipped_otherwise() -> None:
    odd = packet(INFY, 50)  # a layout Kite's codec does not know
    data = frame(odd, packet(TCS, 8))
    assert [(p.key, p.mode) for p in CODEC.walk(data).packets] == [(INFY, None), (TCS, "ltp")]
    cut = CODEC.cut(data, {INFY: "ltp"})
    assert cut == Cut(frame(odd), 1)  # as it is: the decoder reports it
    bad: list[Any] = []
    assert CODEC.decode_binary(frame(odd), bad.append) == []
    assert "unknown packet length 50" in bad[0].reason
    assert CODEC.cut(data, {TCS: "ltp"}) == Cut(frame(packet(TCS, 8)), 1)
    with pytest.raises(ValueError, match="no known mode"):
        CODEC.cut_packet(odd[2:], "ltp")


def test_a_broken_frame_keeps_its_well_formed_wanted_packets() -> None:
    whole = frame(packet(INFY, 184), packet(TCS, 44))
    cut = CODEC.cut(whole[:-10], {INFY: "ltp", TCS: "ltp"})  # the last packet runs past the end
    assert cut == Cut(frame(packet(INFY, 8)), 1, malformed=1)
    assert CODEC.walk(whole[:-10]).broken == "packet length 44 runs past the end"
    trailing = frame(packet(INFY, 8)) + b"xx"
    assert CODEC.cut(trailing, {INFY: "ltp"}) == Cut(frame(packet(INFY, 8)), 1, malformed=1)
    assert CODEC.walk(trailing).broken == "2 bytes after the last packet"
    tiny = frame(struct.pack(">H", 2) + b"ab", packet(TCS, 8))  # a packet without a token
    assert CODEC.cut(tiny, {TCS: "ltp"}) == Cut(frame(packet(TCS, 8)), 1, malformed=1)
    short = frame(packet(INFY, 8))[:-10]  # fewer packets than announced
    assert CODEC.walk(struct.pack(">H", 2) + packet(INFY, 8)).broken is not None
    assert CODEC.cut(short, {INFY: "ltp"}).frame is None


# -- decoding records ---------------------------------------------------------------------


def test_text_frames_decode_to_records_or_report_malformed() -> None:
    update = OrderUpdate(order_id="1", status="COMPLETE")
    assert CODEC.decode_text(encode_text(update)) == update
    assert CODEC.decode_text(encode_text(FeedMessage("hi")).encode()) == FeedMessage("hi")
    bad: list[Any] = []
    assert CODEC.decode_text("not json", bad.append) is None
    assert CODEC.decode_text("{}") is None  # no callback: still never raises
    assert len(bad) == 1
    assert CODEC.is_order_update(update)
    assert not CODEC.is_order_update(FeedMessage("hi"))
    assert CODEC.key_of(update) is None


@given(ticks())
def test_a_tick_row_has_the_codec_columns(tick: Tick) -> None:
    row = CODEC.tick_row(tick)
    assert row is not None
    assert list(row) == [name for name, _ in CODEC.tick_columns]
    assert row["instrument_token"] == tick.instrument_token == CODEC.key_of(tick)
    assert row["mode"] == tick.mode
    assert CODEC.tick_row(FeedMessage("x")) is None
    if isinstance(tick, FullTick):
        assert row["open"] == tick.ohlc.open
        assert row["exchange_timestamp"] == tick.exchange_timestamp


# -- layering -------------------------------------------------------------------------------
