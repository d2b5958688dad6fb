"""The gateway's frame filter (pure): packets cut down to each consumer's mode."""

from __future__ import annotations

import struct

from aio_trader.gateway._wire import filter_frame
from aio_trader.kite import FullTick, IndexQuoteTick, LtpTick, QuoteTick, decode_frame

INFY, TCS, NIFTY = 408065, 2953217, 256265


def packet(token: int, length: int) -> bytes:
    body = struct.pack(">II", token, 150_000) + bytes(length - 8)
    return struct.pack(">H", length) + body


def frame(*packets: bytes) -> bytes:
    return struct.pack(">H", len(packets)) + b"".join(packets)


def lengths(data: bytes) -> list[tuple[int, int]]:
    out, at = [], 2
    for _ in range(int.from_bytes(data[:2], "big")):
        length = int.from_bytes(data[at : at + 2], "big")
        out.append((int.from_bytes(data[at + 2 : at + 6], "big"), length))
        at += 2 + length
    assert at == len(data)
    return out


def test_packets_are_cut_down_to_the_asked_mode_and_others_left_out() -> None:
    data = frame(packet(INFY, 184), packet(TCS, 184), packet(NIFTY, 32))
    cut, kept, stale = filter_frame(data, {INFY: "quote", NIFTY: "quote"})
    assert cut is not None
    assert (kept, stale) == (2, 0)
    assert lengths(cut) == [(INFY, 44), (NIFTY, 28)]
    assert [type(t) for t in decode_frame(cut)] == [QuoteTick, IndexQuoteTick]
    ltp, _, _ = filter_frame(data, {TCS: "ltp", NIFTY: "ltp"})
    assert ltp is not None
    assert [type(t) for t in decode_frame(ltp)] == [LtpTick, LtpTick]
    assert all(t.last_price == 1500.0 for t in decode_frame(ltp))


def test_a_frame_wanted_whole_is_passed_as_it_is() -> None:
    data = frame(packet(INFY, 184), packet(TCS, 184))
    assert filter_frame(data, {INFY: "full", TCS: "full"}) == (data, 2, 0)
    assert filter_frame(data, None) == (data, -1, 0)
    assert [type(t) for t in decode_frame(data)] == [FullTick, FullTick]


def test_poorer_packets_are_stale_and_nothing_left_is_none() -> None:
    data = frame(packet(INFY, 44), packet(TCS, 8))
    assert filter_frame(data, {INFY: "full", TCS: "quote"}) == (None, 0, 2)
    assert filter_frame(data, {}) == (None, 0, 0)
    assert filter_frame(b"\x00", {INFY: "full"}) == (None, 0, 0)  # a heartbeat


def test_a_malformed_frame_goes_whole_to_the_decoder() -> None:
    broken = frame(packet(INFY, 184))[:-10]
    assert filter_frame(broken, {INFY: "quote"}) == (broken, -1, 0)
    trailing = frame(packet(INFY, 8)) + b"xx"
    assert filter_frame(trailing, {INFY: "ltp"}) == (trailing, -1, 0)
