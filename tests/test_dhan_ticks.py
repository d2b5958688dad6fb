"""The Dhan codec by example: constants, packets of each kind, malformed parts, prices,
times, 20-level depth, order updates, reference data and import isolation."""

from __future__ import annotations

import datetime
import json
import logging
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from aio_trader._time import IST
from aio_trader.dhan import constants
from aio_trader.dhan.constants import (
    SESSION_DISCONNECT_REASONS,
    DisconnectReason,
    ExchangeSegment,
    FeedMode,
    FeedRequestCode,
    FeedResponseCode,
)
from aio_trader.dhan.ticks import (
    Depth,
    DepthLevel,
    Disconnect,
    FeedMessage,
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

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "dhan-reference"


def collect(data: bytes) -> tuple[list[object], list[MalformedPacket]]:
    bad: list[MalformedPacket] = []
    return list(decode_message(data, bad.append)), bad


def ticker(segment: int = 1, sid: int = 1333, price: float = 1500.05, ltt: int = 0) -> bytes:
    return struct.pack("<BHBIfI", 2, 16, segment, sid, price, ltt)


# -- constants ----------------------------------------------------------------------------


def test_segments_have_dhan_names_and_feed_codes() -> None:
    codes = {segment.value: segment.code for segment in ExchangeSegment}
    assert codes == {
        "IDX_I": 0,
        "NSE_EQ": 1,
        "NSE_FNO": 2,
        "NSE_CURRENCY": 3,
        "BSE_EQ": 4,
        "MCX_COMM": 5,
        "BSE_CURRENCY": 7,
        "BSE_FNO": 8,
    }
    assert ExchangeSegment.NSE_EQ == "NSE_EQ"
    assert f"{ExchangeSegment.NSE_EQ}" == "NSE_EQ"
    assert ExchangeSegment.from_code(7) is ExchangeSegment.BSE_CURRENCY
    with pytest.raises(ValueError, match="no exchange segment"):
        ExchangeSegment.from_code(6)
    assert [s for s in ExchangeSegment if s.is_currency] == ["NSE_CURRENCY", "BSE_CURRENCY"]
    assert segment_name(2) is ExchangeSegment.NSE_FNO
    assert segment_name(6) == "6"


def test_feed_modes_and_request_codes() -> None:
    assert FeedMode("ltp") is FeedMode("ticker") is FeedMode("LTP") is FeedMode.TICKER
    assert FeedMode("Full") is FeedMode.FULL
    with pytest.raises(ValueError, match="is not a valid FeedMode"):
        FeedMode("depth")
    subscribe = {mode.value: (mode.subscribe_code, mode.unsubscribe_code) for mode in FeedMode}
    assert subscribe == {"ticker": (15, 16), "quote": (17, 18), "full": (21, 22)}
    assert FeedRequestCode.DISCONNECT == 12
    assert FeedRequestCode.SUBSCRIBE_DEPTH == 23
    assert [int(c) for c in FeedResponseCode] == [1, 2, 4, 5, 6, 7, 8, 41, 50, 51]


def test_disconnect_reasons_follow_dhans_annexure() -> None:
    """Not the SDK's labels: it swaps 808 and 809 and has no 810."""
    assert [int(r) for r in DisconnectReason] == [800, *range(804, 815)]
    assert DisconnectReason(807).label == "Access token is expired"
    assert DisconnectReason(808).label.startswith("Authentication Failed")
    assert DisconnectReason(809).label == "Access token is invalid"
    assert DisconnectReason(810).label == "Client ID is invalid"
    assert DisconnectReason(805).label.startswith("Too many requests or connections")
    assert DisconnectReason(806).label == "Data APIs not subscribed"
    assert {807, 808, 809, 810} == SESSION_DISCONNECT_REASONS
    assert [r for r in DisconnectReason if r.is_session_error] == [807, 808, 809, 810]
    assert constants.FEED_MAX_INSTRUMENTS_PER_MESSAGE == 100
    assert (constants.FEED_MAX_INSTRUMENTS, constants.FEED_MAX_CONNECTIONS) == (5000, 5)


# -- packets ------------------------------------------------------------------------------


def test_a_ticker_packet() -> None:
    (tick,) = decode_message(ticker(ltt=1_700_000_000))
    assert isinstance(tick, TickerTick)
    assert tick.mode == "ticker"
    assert tick.key == ("NSE_EQ", 1333)
    assert tick.exchange_segment is ExchangeSegment.NSE_EQ
    assert tick.last_price == 1500.05  # not float32's 1500.050048828125


def test_the_last_trade_time_is_the_exchange_clock_labelled_ist() -> None:
    """Dhan writes IST wall-clock time as epoch seconds (DhanHQ-py #51)."""
    wire = int(datetime.datetime(2024, 9, 11, 14, 39, 29, tzinfo=datetime.timezone.utc).timestamp())
    (tick,) = decode_message(ticker(ltt=wire))
    assert isinstance(tick, TickerTick)
    assert tick.last_trade_time == datetime.datetime(2024, 9, 11, 14, 39, 29, tzinfo=IST)
    assert tick.last_trade_time.utcoffset() == datetime.timedelta(hours=5, minutes=30)
    (none,) = decode_message(ticker(ltt=0))
    assert none.last_trade_time is None  # type: ignore[union-attr]
    assert encode_packet(tick) == ticker(ltt=wire)


def test_a_full_packet_reads_every_field() -> None:
    levels = b"".join(
        struct.pack("<IIHHff", 10 + i, 20 + i, 1 + i, 2 + i, 99.95 - i / 20, 100.05 + i / 20)
        for i in range(5)
    )
    body = struct.pack(
        "<fHIfIIIIIIffff", 100.0, 7, 0, 99.9, 123456, 500, 600, 70, 80, 60, 98.5, 0, 101.25, 97.1
    )
    packet = struct.pack("<BHBI", 8, 162, 2, 49081) + body + levels
    (tick,) = decode_message(packet)
    assert tick == FullTick(
        "NSE_FNO",
        49081,
        last_price=100.0,
        last_traded_quantity=7,
        last_trade_time=None,
        average_traded_price=99.9,
        volume_traded=123456,
        total_sell_quantity=500,
        total_buy_quantity=600,
        oi=70,
        oi_day_high=80,
        oi_day_low=60,
        ohlc=Ohlc(open=98.5, high=101.25, low=97.1, close=0.0),
        depth=Depth(
            tuple(DepthLevel(10 + i, round(99.95 - i / 20, 2), 1 + i) for i in range(5)),
            tuple(DepthLevel(20 + i, round(100.05 + i / 20, 2), 2 + i) for i in range(5)),
        ),
    )
    assert isinstance(tick, FullTick)
    assert tick.mode == "full"
    assert tick.depth.buy[0].price == 99.95
    assert tick.depth.sell[0] == (20, 100.05, 2)
    assert hash(tick) == hash(attrs.evolve(tick))
    assert pickle.loads(pickle.dumps(tick)) == tick
    assert encode_packet(tick) == packet


def test_quote_oi_and_previous_close_packets() -> None:
    quote = QuoteTick("BSE_EQ", 500325, 2900.5, 3, None, 2899.75, 10**9 * 3, 1, 2, Ohlc(1, 2, 3, 4))
    message = encode_message(
        [quote, OpenInterest("NSE_FNO", 52175, 12_000), PrevClose("IDX_I", 13, 24100.35, 0)]
    )
    assert [len(encode_packet(r)) for r in decode_message(message)] == [50, 12, 16]
    assert decode_counted(message) == (
        [quote, OpenInterest("NSE_FNO", 52175, 12_000), PrevClose("IDX_I", 13, 24100.35, 0)],
        0,
    )
    assert quote.volume_traded > 2**31  # unsigned on the wire, as the SDK reads it


def test_market_status_and_disconnect_packets() -> None:
    status = struct.pack("<BHBI", 7, 12, 1, 0) + b"\x01\x02\x03\x04"
    bye = struct.pack("<BHBIH", 50, 10, 0, 0, 807)
    (record, disconnect), bad = collect(status + bye)
    assert bad == []
    assert record == MarketStatus("NSE_EQ", 0, b"\x01\x02\x03\x04")
    assert isinstance(disconnect, Disconnect)
    assert disconnect.reason == 807
    assert disconnect.known_reason is DisconnectReason.TOKEN_EXPIRED
    assert disconnect.is_session_error
    assert disconnect.label == "Access token is expired"
    other = Disconnect("NSE_EQ", 0, 805)
    assert not other.is_session_error
    assert other.label.startswith("Too many")
    assert Disconnect("NSE_EQ", 0, 999).label == "unknown reason code 999"


def test_currency_prices_keep_four_decimals_others_two() -> None:
    (inr,) = decode_message(ticker(segment=3, price=83.1225))
    (eq,) = decode_message(ticker(segment=1, price=83.1225))
    assert inr.last_price == 83.1225
    assert eq.last_price == 83.12


def test_tick_sizes_round_each_instrument_to_its_tick() -> None:
    message = ticker(segment=5, sid=1, price=1.23456) + ticker(segment=5, sid=2, price=1.23456)
    sizes = {("MCX_COMM", 1): 0.0001, ("MCX_COMM", 2): 1.0}
    one, two = decode_message(message, tick_sizes=sizes)
    assert one.last_price == 1.2346  # type: ignore[union-attr]
    assert two.last_price == 1.23  # type: ignore[union-attr] (never fewer than 2 decimals)
    with pytest.raises(ValueError, match="tick size"):
        decode_message(message, tick_sizes={("MCX_COMM", 1): "x"})  # type: ignore[dict-item]


def test_nan_and_infinite_prices_are_kept() -> None:
    (nan,) = decode_message(ticker(price=float("nan")))
    (inf,) = decode_message(ticker(price=float("inf")))
    assert nan.last_price != nan.last_price  # type: ignore[union-attr]
    assert inf.last_price == float("inf")  # type: ignore[union-attr]


# -- malformed parts ----------------------------------------------------------------------


def test_malformed_parts_are_reported_and_skipped() -> None:
    index = struct.pack("<BHBI", 1, 12, 0, 13) + b"\0" * 4
    unknown = struct.pack("<BHBI", 99, 8, 1, 1)
    short_full = struct.pack("<BHBI", 8, 16, 1, 1) + b"\0" * 8
    message = ticker() + index + unknown + short_full + ticker(sid=7) + b"\x02\x10"
    records, bad = collect(message)
    assert [r.key for r in records] == [("NSE_EQ", 1333), ("NSE_EQ", 7)]  # type: ignore[attr-defined]
    assert [b.reason for b in bad] == [
        "index packet (code 1): its payload is undocumented",
        "unknown response code 99",
        "code 8 packet of 16 bytes, its layout needs 162",
        "2 bytes after the last packet, fewer than a header",
    ]
    assert [b.offset for b in bad] == [16, 28, 36, 68]
    assert bad[0].raw == index
    assert bad[3].raw == b"\x02\x10"
    assert decode_counted(message) == (records, 4)


def test_a_broken_length_stops_the_walk() -> None:
    zero = struct.pack("<BHBI", 2, 0, 1, 1) + b"\0" * 8
    records, bad = collect(ticker() + zero + ticker())
    assert len(records) == 1
    assert len(bad) == 1
    assert "shorter than its header" in bad[0].reason
    records, bad = collect(ticker() + ticker()[:12])
    assert len(records) == 1
    assert [b.reason for b in bad] == ["packet length 16 runs past the end of the message"]
    longer = struct.pack("<BHBIfI", 2, 20, 1, 5, 1.5, 0) + b"more"
    assert decode_counted(longer) == ([TickerTick("NSE_EQ", 5, 1.5, None)], 0)


def test_without_a_callback_one_warning_a_message(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aio_trader.dhan.ticks"):
        assert decode_message(b"\x63\x08\x00\x01\0\0\0\0" * 3) == []
    assert len(caplog.records) == 1
    assert "skipped 3 malformed part(s)" in caplog.text
    assert decode_message(b"") == []
    assert decode_counted(b"\x02") == ([], 1)


def test_encoding_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(ValueError, match="security_id"):
        encode_packet(OpenInterest("NSE_EQ", -1, 0))
    with pytest.raises(ValueError, match="segment"):
        encode_packet(OpenInterest("NSE", 1, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_packet(TickerTick("NSE_EQ", 1, 1.0, datetime.datetime(2024, 1, 1)))
    with pytest.raises(ValueError, match="float32"):
        encode_packet(TickerTick("NSE_EQ", 1, 1e300, None))
    with pytest.raises(ValueError, match="5 buy and 5 sell"):
        encode_packet(
            FullTick("NSE_EQ", 1, 1, 1, None, 1, 1, 1, 1, 1, 1, 1, Ohlc(1, 1, 1, 1), Depth((), ()))
        )
    with pytest.raises(TypeError, match="not a market feed record"):
        encode_packet(TwentyDepth("NSE_EQ", 1, "buy", 0, ()))  # type: ignore[arg-type]
    assert encode_packet(OpenInterest("6", 1, 0))[3] == 6  # an unnamed segment byte


# -- 20-level depth -----------------------------------------------------------------------


def test_twenty_depth_bid_and_ask_packets() -> None:
    rows = b"".join(struct.pack("<dII", 1500.0 - i * 0.05, 100 + i, 1 + i) for i in range(20))
    bids = struct.pack("<HBBII", 332, 41, 1, 1333, 9) + rows
    asks = struct.pack("<HBBII", 332, 51, 1, 1333, 10) + rows
    buy, sell = decode_depth_message(bids + asks)
    assert isinstance(buy, TwentyDepth)
    assert isinstance(sell, TwentyDepth)
    assert (buy.side, sell.side, buy.sequence, buy.key) == ("buy", "sell", 9, ("NSE_EQ", 1333))
    assert buy.levels[1] == DepthLevel(101, 1500.0 - 0.05, 2)
    assert len(sell.levels) == 20
    assert encode_depth_message([buy, sell]) == bids + asks


def test_twenty_depth_disconnects_read_both_layouts() -> None:
    """Dhan's page puts the reason after the 12-byte header; the SDK reads the header's
    last field: a 14-byte packet is read the page's way, a 12-byte one the SDK's."""
    page = struct.pack("<HBBIIH", 14, 50, 1, 0, 0, 805)
    sdk = struct.pack("<HBBII", 12, 50, 1, 0, 807)
    assert decode_depth_message(page + sdk) == [
        Disconnect("NSE_EQ", 0, 805),
        Disconnect("NSE_EQ", 0, 807),
    ]
    assert encode_depth_message([Disconnect("NSE_EQ", 0, 805)]) == page
    bad: list[MalformedPacket] = []
    assert decode_depth_message(struct.pack("<HBBII", 12, 8, 1, 0, 0) + b"\0", bad.append) == []
    assert [b.reason for b in bad] == [
        "unknown depth response code 8",
        "1 bytes after the last packet, fewer than a header",
    ]


# -- order updates --------------------------------------------------------------------------

DOCUMENTED = {  # Dhan's documented example, PascalCase
    "Exchange": "NSE",
    "Segment": "E",
    "Source": "N",
    "SecurityId": "14366",
    "ClientId": "1000000001",
    "ExchOrderNo": "1400000000404591",
    "OrderNo": "1124091136546",
    "Product": "C",
    "TxnType": "B",
    "OrderType": "LMT",
    "Validity": "DAY",
    "DiscQuantity": 1,
    "RemainingQuantity": 1,
    "Quantity": 1,
    "TradedQty": 0,
    "Price": 13,
    "TriggerPrice": 0,
    "TradedPrice": 0,
    "AvgTradedPrice": 0,
    "OrderDateTime": "2024-09-11 14:39:29",
    "ExchOrderTime": "2024-09-11 14:39:29",
    "LastUpdatedTime": "2024-09-11 14:39:29",
    "Remarks": "NR",
    "ReasonDescription": "CONFIRMED",
    "LegNo": 1,
    "Symbol": "IDEA",
    "Status": "Cancelled",
    "ExpiryDate": "0001-01-01 00:00:00",
    "CorrelationId": "",
    "refLtp": 13.21,
}


def test_a_documented_order_update() -> None:
    update = decode_text(json.dumps({"Type": "order_alert", "Data": DOCUMENTED}))
    assert isinstance(update, OrderUpdate)
    assert (update.order_id, update.status, update.transaction_type) == (
        "1124091136546",
        "CANCELLED",
        "BUY",
    )
    assert (update.product_type, update.order_type, update.security_id) == ("CNC", "LIMIT", "14366")
    assert update.price == 13.0
    assert update.quantity == 1
    assert update.leg_no == 1
    assert update.order_time == datetime.datetime(2024, 9, 11, 14, 39, 29, tzinfo=IST)
    assert update.exchange_segment is ExchangeSegment.NSE_EQ
    assert OrderUpdate(exchange="NSE", segment="D").exchange_segment is ExchangeSegment.NSE_FNO
    assert OrderUpdate(segment="MCX_COMM").exchange_segment is ExchangeSegment.MCX_COMM
    assert OrderUpdate(exchange="NYSE", segment="E").exchange_segment is None
    assert update.raw["refLtp"] == 13.21
    assert update.raw["ExpiryDate"].startswith("0001")
    assert decode_text(encode_text(update, camel_case=False)) == update


def test_a_live_camel_case_order_update() -> None:
    live = {
        "orderNo": "52260107123",
        "status": "Part Traded",
        "txnType": "S",
        "tradedQty": "25",
        "avgTradedPrice": 101.5,
        "correlationId": "aio-1",
        "securityId": "1333",
        "segment": "E",
        "product": "I",
        "orderType": "MKT",
        "quantity": 50,
        "lastUpdatedTime": "2026-01-07 10:15:02",
        "somethingNew": [1, 2],
    }
    update = decode_text(json.dumps({"Type": "order_alert", "Data": live}).encode())
    assert isinstance(update, OrderUpdate)
    assert update == OrderUpdate(
        order_id="52260107123",
        status="PART_TRADED",
        transaction_type="SELL",
        traded_quantity=25,
        average_traded_price=101.5,
        correlation_id="aio-1",
        security_id="1333",
        segment="E",
        product_type="INTRADAY",
        order_type="MARKET",
        quantity=50,
        last_updated_time=datetime.datetime(2026, 1, 7, 10, 15, 2, tzinfo=IST),
    )
    assert update.raw["somethingNew"] == [1, 2]
    text = encode_text(update)
    assert '"orderNo"' in text
    assert '"OrderNo"' not in text
    assert '"txnType": "S"' in text
    assert decode_text(text) == update


def test_pascal_case_wins_when_both_spellings_come() -> None:
    update = OrderUpdate.from_dict({"orderNo": "camel", "OrderNo": "pascal", "status": "x"})
    assert update.order_id == "pascal"
    assert update.status == "X"
    assert OrderUpdate.from_dict({"Quantity": "many", "Price": None}).quantity == 0


def test_other_text_messages() -> None:
    assert decode_text('{"Type": "ack"}') == FeedMessage({"Type": "ack"})
    for text, reason in [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"Type": "order_alert", "Data": 5}', "without an object"),
        ('{"Type": "order_alert", "Data": {"status": "TRADED"}}', "without an order number"),
    ]:
        bad = decode_text(text)
        assert isinstance(bad, MalformedPacket)
        assert reason in bad.reason
    assert isinstance(decode_text(b"\xff"), MalformedPacket)


# -- reference data and import isolation ------------------------------------------------------


def test_the_sdk_reference_ticker_decodes_to_the_same_values() -> None:
    path = REFERENCE / "market_feed_ticker.json"
    if not path.is_file():
        pytest.skip("Dhan's reference bodies are not present (../shared/dhan-reference)")
    sdk = json.loads(path.read_text())
    clock = datetime.time.fromisoformat(sdk["last_trade_time"])
    wire = (clock.hour * 60 + clock.minute) * 60 + clock.second + 1_700_006_400  # a UTC midnight
    packet = struct.pack(
        "<BHBIfI", 2, 16, ExchangeSegment(sdk["exchange_segment"]).code,
        int(sdk["security_id"]), sdk["last_price"], wire,
    )  # fmt: skip
    (tick,) = decode_message(packet)
    assert isinstance(tick, TickerTick)
    assert tick.key == (sdk["exchange_segment"], int(sdk["security_id"]))
    assert tick.last_price == sdk["last_price"]
    assert tick.last_trade_time is not None
    assert tick.last_trade_time.strftime("%H:%M:%S") == sdk["last_trade_time"]


NETWORK_STACK = {"httpx", "httpcore", "httpx_ws", "wsproto", "h11", "h2", "trio", "anyio"}


@pytest.mark.parametrize(
    "statement",
    [
        "import aio_trader.dhan.ticks",
        "from aio_trader.dhan import decode_message, FullTick, ExchangeSegment",
        "import aio_trader.dhan.constants",
    ],
)
def test_the_codec_imports_no_network_stack(statement: str) -> None:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    loaded = set(json.loads(out))
    assert {name.partition(".")[0] for name in loaded} & NETWORK_STACK == set()
    assert "dhanhq" not in loaded
    assert "aio_trader.http" not in loaded


def test_the_package_exports_what_it_lists() -> None:
    import aio_trader.dhan as dhan

    for name in dhan.__all__:
        assert getattr(dhan, name) is not None
    assert set(dhan.__all__) <= set(dir(dhan))
    assert dhan.Dhan.__name__ == "Dhan"  # the REST client, loaded on first use
    with pytest.raises(AttributeError):
        dhan.NoSuchName  # noqa: B018


def test_each_record_names_the_code_of_its_table_entry() -> None:
    """The layout table (which drives the structs and encoding) and the records agree."""
    from aio_trader.dhan import ticks

    for code, kind in ticks._KINDS.items():
        assert kind.cls.code == code
        assert kind.size == 8 + sum(struct.calcsize("<" + f.fmt) for f in kind.fields)
    assert [ticks._KINDS[c].size for c in (2, 6, 4, 5, 8, 50)] == [16, 16, 50, 12, 162, 10]
