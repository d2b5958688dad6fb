"""Typed REST records: every Kite reference body parses, round-trips, and degrades gently."""

from __future__ import annotations

import csv
import datetime
import gc
import io
import json
import logging
import sys
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aio_trader.kite as kite
from aio_trader._time import IST
from aio_trader.errors import DataException
from aio_trader.kite import _models as m
from aio_trader.kite._frames import to_pandas, to_polars

IST_OFFSET = datetime.timedelta(hours=5, minutes=30)


def body(mocks: Path, name: str) -> Any:
    """The ``data`` of a reference response."""
    return json.loads((mocks / name).read_text())["data"]


# -- a structural check: every value has its declared type, every datetime is IST ------


def _scalar(annotation: Any) -> Any:
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, __import__("types").UnionType):
        assert len(members) == 1
        return members[0]
    return annotation


def _check_value(value: Any, annotation: Any) -> None:
    tp = _scalar(annotation)
    origin = typing.get_origin(tp)
    if tp is Any or value is None:
        return
    if origin is tuple:
        assert isinstance(value, tuple)
        for item in value:
            _check_value(item, typing.get_args(tp)[0])
    elif origin in (dict, Mapping):
        assert isinstance(value, dict)
    elif isinstance(tp, type) and issubclass(tp, m.Record):
        assert isinstance(value, tp)
        assert_typed(value)
    elif tp is datetime.datetime:
        assert type(value) is datetime.datetime
        assert value.utcoffset() == IST_OFFSET
    elif tp is datetime.date:
        assert type(value) is datetime.date
    elif tp is datetime.time:
        assert type(value) is datetime.time
        assert value.utcoffset() == IST_OFFSET
    else:
        assert type(value) is tp, (value, tp)


def assert_typed(record: m.Record) -> None:
    """Every field holds its declared type (recursively); ``extra`` is a mapping."""
    hints = typing.get_type_hints(type(record))
    for field in attrs.fields(type(record)):
        value = getattr(record, field.name)
        if field.name == "extra":
            assert isinstance(value, Mapping)
        else:
            _check_value(value, hints[field.name])


def records_of(parsed: Any) -> list[m.Record]:
    if isinstance(parsed, m.Record):
        return [parsed]
    if isinstance(parsed, Mapping):
        return list(parsed.values())
    return list(parsed)


# -- every reference body ---------------------------------------------------------------

Parser = Callable[[Any], Any]

#: reference file -> how the REST client parses its ``data``.
PARSERS: dict[str, Parser] = {
    "alerts_create.json": m.Alert.from_kite,
    "alerts_create_ato.json": m.Alert.from_kite,
    "alerts_get.json": m.Alert.from_kite_list,
    "alerts_get_one.json": m.Alert.from_kite,
    "alerts_history.json": m.AlertHistory.from_kite_list,
    "alerts_modify.json": m.Alert.from_kite,
    "auctions_list.json": m.AuctionInstrument.from_kite_list,
    "autoslice_response.json": m.AutosliceResponse.from_kite,
    "basket_margins.json": m.BasketMargins.from_kite,
    "full_profile.json": m.Profile.from_kite,
    "generate_session.json": m.Session.from_kite,
    "gtt_delete_order.json": m.GTTResponse.from_kite,
    "gtt_get_order.json": m.GTT.from_kite,
    "gtt_get_orders.json": m.GTT.from_kite_list,
    "gtt_modify_order.json": m.GTTResponse.from_kite,
    "gtt_place_order.json": m.GTTResponse.from_kite,
    "historical_minute.json": m.parse_candles,
    "historical_oi.json": m.parse_candles,
    "holdings.json": m.Holding.from_kite_list,
    "holdings_auth.json": m.HoldingsAuthorisation.from_kite,
    "holdings_compact.json": m.Holding.from_kite_list,
    "holdings_summary.json": m.HoldingsSummary.from_kite,
    "ltp.json": m.LtpQuote.from_kite_map,
    "margin_commodity.json": m.SegmentMargins.from_kite,
    "margins.json": m.Margins.from_kite,
    "margins_equity.json": m.SegmentMargins.from_kite,
    "mf_holdings.json": m.MFHolding.from_kite_list,
    "mf_order_cancel.json": m.OrderResponse.from_kite,
    "mf_order_response.json": m.OrderResponse.from_kite,
    "mf_orders.json": m.MFOrder.from_kite_list,
    "mf_orders_info.json": m.MFOrder.from_kite,
    "mf_sip_cancel.json": m.MFSIPResponse.from_kite,
    "mf_sip_info.json": m.MFSIP.from_kite,
    "mf_sip_modify.json": m.MFSIPResponse.from_kite,
    "mf_sip_place.json": m.MFSIPResponse.from_kite,
    "mf_sips.json": m.MFSIP.from_kite_list,
    "ohlc.json": m.OhlcQuote.from_kite_map,
    "order_cancel.json": m.OrderResponse.from_kite,
    "order_info.json": m.Order.from_kite_list,
    "order_margins.json": m.OrderMargins.from_kite_list,
    "order_modify.json": m.OrderResponse.from_kite,
    "order_response.json": m.OrderResponse.from_kite,
    "order_trades.json": m.Trade.from_kite_list,
    "orders.json": m.Order.from_kite_list,
    "positions.json": m.Positions.from_kite,
    "profile.json": m.Profile.from_kite,
    "quote.json": m.Quote.from_kite_map,
    "trades.json": m.Trade.from_kite_list,
    "trigger_range.json": m.TriggerRange.from_kite_map,
    "virtual_contract_note.json": m.OrderCharges.from_kite_list,
}
#: Bodies whose ``data`` is a bare value, not a record (the client returns it as is).
SCALAR_BODIES = {"convert_position.json": True, "session_logout.json": True}
SCALAR_BODIES_NONE = {"alerts_delete.json"}
#: Not REST bodies: the tick codec's reference data and the postback (tested below).
NOT_REST = {"ticker_full.json", "ticker_ltp.json", "ticker_quote.json", "postback.json"}


def test_every_reference_body_has_a_parser(mocks: Path) -> None:
    names = {p.name for p in mocks.glob("*.json")}
    covered = set(PARSERS) | set(SCALAR_BODIES) | SCALAR_BODIES_NONE | NOT_REST
    assert names - covered == set()
    assert set(PARSERS) <= names


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_reference_body_parses_typed(mocks: Path, name: str) -> None:
    before = m.conversion_failures()
    parsed = PARSERS[name](body(mocks, name))
    records = records_of(parsed)
    assert records
    for record in records:
        assert_typed(record)
    assert m.conversion_failures() == before  # nothing in Kite's own bodies is skipped


@pytest.mark.parametrize("name", sorted(SCALAR_BODIES))
def test_scalar_bodies(mocks: Path, name: str) -> None:
    assert body(mocks, name) is SCALAR_BODIES[name]


def test_orders_spot_values(mocks: Path) -> None:
    orders = m.Order.from_kite_list(body(mocks, "orders.json"))
    first = orders[0]
    assert first.order_id == "100000000000000"
    assert first.status == "CANCELLED"
    assert first.order_timestamp == datetime.datetime(2021, 5, 31, 9, 18, 57, tzinfo=IST)
    assert first.price == 72.0
    assert type(first.price) is float
    assert first.instrument_token == 412675
    assert first.modified is False
    assert first.validity_ttl is None  # absent in this order
    iceberg = orders[3]
    assert iceberg.variety == kite.Variety.ICEBERG
    assert iceberg.exchange_order_id is None
    assert iceberg.exchange_update_timestamp is None
    assert iceberg.validity == kite.Validity.TTL
    assert iceberg.validity_ttl == 2
    assert iceberg.meta == {
        "iceberg": {
            "leg": 1,
            "legs": 5,
            "leg_quantity": 200,
            "total_quantity": 1000,
            "remaining_quantity": 800,
        }
    }
    assert iceberg.tags == ("icebergord",)
    assert orders[6].auction_number == "22"
    assert orders[7].account_id == "XXXXXX"
    assert orders[7].product == "MTF"
    assert orders[-1].extra == {"terminal_id": "111111111111100"}  # unknown field kept


def test_trades_time_only_order_timestamp(mocks: Path) -> None:
    trade = m.Trade.from_kite_list(body(mocks, "trades.json"))[1]
    assert trade.order_timestamp == datetime.time(11, 18, 27, tzinfo=IST)
    assert trade.fill_timestamp == datetime.datetime(2021, 5, 31, 11, 18, 27, tzinfo=IST)
    assert trade.average_price == 72.755
    assert trade.to_dict()["order_timestamp"] == "11:18:27"


def test_quote_depth_and_ohlc(mocks: Path) -> None:
    quotes = m.Quote.from_kite_map(body(mocks, "quote.json"))
    infy = quotes["NSE:INFY"]
    assert infy.instrument_token == 408065
    assert infy.ohlc == m.QuoteOhlc(open=1396.0, high=1421.75, low=1395.55, close=1389.65)
    assert infy.depth is not None
    assert infy.depth.sell is not None
    assert infy.depth.buy is not None
    assert infy.depth.sell[0] == m.QuoteDepthLevel(price=1412.95, quantity=5191, orders=13)
    assert len(infy.depth.buy) == 5
    assert infy.last_trade_time == datetime.datetime(2021, 6, 8, 15, 45, 52, tzinfo=IST)
    ltp = m.LtpQuote.from_kite_map(body(mocks, "ltp.json"))
    assert ltp == {"NSE:INFY": m.LtpQuote(instrument_token=408065, last_price=1074.35)}
    ohlc = m.OhlcQuote.from_kite_map(body(mocks, "ohlc.json"))["NSE:INFY"]
    assert ohlc.last_price == 1075.0
    assert ohlc.ohlc is not None
    assert ohlc.ohlc.close == 1075.8


def test_margins_positions_holdings(mocks: Path) -> None:
    margins = m.Margins.from_kite(body(mocks, "margins.json"))
    assert margins.equity is not None
    assert margins.equity.available is not None
    assert margins.equity.enabled is True
    assert margins.equity.available.live_balance == 99725.05000000002
    assert margins.commodity is not None
    assert margins.commodity.utilised is not None
    assert margins.commodity.utilised.span == 0.0
    positions = m.Positions.from_kite(body(mocks, "positions.json"))
    assert positions.net is not None
    assert positions.day is not None
    assert [p.tradingsymbol for p in positions.net][:2] == [
        "LEADMINI17DECFUT",
        "GOLDGUINEA17DECFUT",
    ]
    assert positions.day[0].quantity == -3
    holding = m.Holding.from_kite_list(body(mocks, "holdings.json"))[0]
    assert holding.authorised_date == datetime.datetime(2025, 1, 17, tzinfo=IST)
    assert holding.mtf == m.MTFHolding(
        quantity=1000, used_quantity=0, average_price=100.0, value=100000.0, initial_margin=0.0
    )
    compact = m.Holding.from_kite_list(body(mocks, "holdings_compact.json"))[0]
    assert compact.tradingsymbol == "63MOONS"
    assert compact.isin is None
    assert compact.mtf is None
    auction = m.AuctionInstrument.from_kite_list(body(mocks, "auctions_list.json"))[2]
    assert auction.auction_number == "7529"
    assert auction.instrument_token == 779530


def test_gtt_nested(mocks: Path) -> None:
    gtt = m.GTT.from_kite(body(mocks, "gtt_get_order.json"))
    assert gtt.id == 123
    assert gtt.type == kite.GTTType.OCO
    assert gtt.status == kite.GTTStatus.TRIGGERED
    assert gtt.condition is not None
    assert gtt.condition.trigger_values == (102.0, 103.7)
    assert gtt.orders is not None
    assert gtt.orders[0].result is None
    result = gtt.orders[1].result
    assert result is not None
    assert result.order_result is not None
    assert result.order_result.status == "failed"
    assert result.meta == '{"app_id":12617,"gtt":105099}'  # a JSON string on the wire: kept
    assert result.timestamp == datetime.datetime(2019, 9, 9, 15, 15, 8, tzinfo=IST)
    assert m.GTTResponse.from_kite(body(mocks, "gtt_place_order.json")).trigger_id == 123


def test_mutual_funds(mocks: Path) -> None:
    order = m.MFOrder.from_kite_list(body(mocks, "mf_orders.json"))[0]
    assert order.exchange_timestamp == datetime.date(2021, 6, 30)  # date-only on the wire
    assert order.order_timestamp == datetime.datetime(2021, 6, 30, 8, 33, 7, tzinfo=IST)
    assert order.amount == 1000.0
    assert order.quantity == 0.0
    sip = m.MFSIP.from_kite(body(mocks, "mf_sip_info.json"))
    assert sip.next_instalment == datetime.date(2022, 2, 22)
    assert sip.step_up == {"15-02": 10}
    assert sip.instalments == -1
    holding = m.MFHolding.from_kite_list(body(mocks, "mf_holdings.json"))[0]
    assert holding.last_price_date is None  # "" on the wire
    assert holding.quantity == 382.488


def test_margin_and_charges_records(mocks: Path) -> None:
    basket = m.BasketMargins.from_kite(body(mocks, "basket_margins.json"))
    assert basket.final is not None
    assert basket.final.total == 34786.725000000006
    assert basket.orders is not None
    assert len(basket.orders) == 2
    charges = basket.orders[0].charges
    assert charges is not None
    assert charges.gst is not None
    assert charges.gst.igst == 3.8411187749999995
    note = m.OrderCharges.from_kite_list(body(mocks, "virtual_contract_note.json"))
    assert note[1].charges is not None
    assert note[1].charges.transaction_tax_type == "ctt"
    margin = m.OrderMargins.from_kite_list(body(mocks, "order_margins.json"))[0]
    assert margin.var == 1498.0
    assert margin.pnl == m.MarginPnl(realised=0.0, unrealised=0.0)


def test_alerts(mocks: Path) -> None:
    alerts = m.Alert.from_kite_list(body(mocks, "alerts_get.json"))
    assert alerts[0].basket is None
    assert alerts[0].rhs_constant == 27000.0
    basket = alerts[1].basket
    assert basket is not None
    assert basket.items is not None
    assert basket.items[0].tradingsymbol == "GOLDBEES"
    assert basket.items[0].params is not None
    assert basket.items[0].params["price"] == 72.22
    history = m.AlertHistory.from_kite_list(body(mocks, "alerts_history.json"))[0]
    assert history.meta is not None
    meta = history.meta[0]
    assert meta.tradingsymbol == "NIFTY NEXT 50"
    assert meta.exchange == "INDICES"
    assert meta.last_trade_time is None  # Kite's zero time "0001-01-01 00:00:00"


def test_session_and_profile(mocks: Path) -> None:
    session = m.Session.from_kite(body(mocks, "generate_session.json"))
    assert session.access_token == "XXXXXX"
    assert session.user_id == "XX0000"
    assert session.login_time == datetime.datetime(2021, 1, 1, 16, 15, 14, tzinfo=IST)
    full = m.Profile.from_kite(body(mocks, "full_profile.json"))
    assert full.bank_accounts is not None
    assert full.bank_accounts[0].name == "HDFC BANK"
    assert full.password_timestamp == datetime.datetime(1970, 1, 1, tzinfo=IST)
    assert full.meta == {"poa": "physical", "silo": "x", "account_blocks": []}


def test_session_secrets_not_in_repr() -> None:
    session = m.Session.from_kite(
        {
            "user_id": "AB1234",
            "api_key": "key-secret-1",
            "access_token": "access-secret-2",
            "public_token": "public-secret-3",
            "refresh_token": "refresh-secret-4",
            "enctoken": "enc-secret-5",
            "new_secret_token": "unknown-secret-6",
        }
    )
    text = repr(session) + str(session)
    assert "AB1234" in text
    for secret in ("key-secret-1", "access", "public-secret", "refresh-secret", "enc-secret"):
        assert secret not in text
    assert "unknown-secret-6" not in text  # extra is never in a repr
    assert session.extra == {"new_secret_token": "unknown-secret-6"}


def test_autoslice_children(mocks: Path) -> None:
    response = m.AutosliceResponse.from_kite(body(mocks, "autoslice_response.json"))
    assert response.order_id == "1914227164488687616"
    assert response.children is not None
    assert [c.order_id for c in response.children] == [
        "1914227164534824960",
        "1914227164580962304",
        None,
        "1914227164681625600",
    ]
    error = response.children[2].error
    assert error is not None
    assert error.code == 400
    assert error.error_type == "MarginException"


def test_postback_parses_as_order(mocks: Path) -> None:
    data = json.loads((mocks / "postback.json").read_text())
    order = m.Order.from_kite(data)
    assert order.order_id == "220303000308932"
    assert order.average_price == 470.0
    assert set(order.extra) == {"user_id", "unfilled_quantity", "app_id", "checksum"}


# -- round trips ------------------------------------------------------------------------

ROUND_TRIP = [
    "orders.json",
    "order_info.json",
    "trades.json",
    "quote.json",
    "positions.json",
    "holdings.json",
    "gtt_get_orders.json",
    "margins.json",
    "basket_margins.json",
    "mf_orders.json",
    "mf_sips.json",
    "alerts_get.json",
    "historical_oi.json",
    "virtual_contract_note.json",
]


def _wire(parsed: Any) -> Any:
    if isinstance(parsed, m.Candle):
        return parsed.to_list()
    if isinstance(parsed, m.Record):
        return parsed.to_dict()
    if isinstance(parsed, Mapping):
        return {k: _wire(v) for k, v in parsed.items()}
    return [_wire(v) for v in parsed]


def _same(ours: Any, theirs: Any) -> None:
    """``ours`` (from to_dict) says what Kite said; fields Kite left out come back None."""
    if isinstance(theirs, Mapping):
        assert isinstance(ours, dict)
        for key, value in theirs.items():
            _same(ours[key], value)
        assert all(ours[key] is None for key in ours.keys() - theirs.keys())
    elif isinstance(theirs, list):
        assert isinstance(ours, list)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            _same(a, b)
    else:
        assert (ours == theirs and type(ours) is not bool) or ours is theirs


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_to_dict_gives_kites_shape_back(mocks: Path, name: str) -> None:
    data = body(mocks, name)
    parsed = PARSERS[name](data)
    wire = _wire(parsed)
    _same(wire, data["candles"] if name.startswith("historical") else data)
    again = PARSERS[name](
        json.loads(json.dumps(wire)) if not name.startswith("historical") else {"candles": wire}
    )
    assert again == parsed


# -- degrading gently -------------------------------------------------------------------


def test_missing_optional_fields_are_none() -> None:
    order = m.Order.from_kite({"order_id": "1"})
    assert order.order_id == "1"
    assert order.status is None
    assert order.order_timestamp is None
    assert order.tags is None
    assert order.extra == {}
    assert m.Quote.from_kite({}).depth is None


def test_unknown_fields_are_kept_and_given_back() -> None:
    order = m.Order.from_kite({"order_id": "1", "brand_new": {"x": 1}, "another": [1, 2]})
    assert order.extra == {"brand_new": {"x": 1}, "another": [1, 2]}
    assert order.to_dict()["brand_new"] == {"x": 1}
    nested = m.Quote.from_kite({"ohlc": {"open": 1, "vwap": 2.5}})
    assert nested.ohlc is not None
    assert nested.ohlc.extra == {"vwap": 2.5}


def test_unconvertible_value_is_kept_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    before = m.conversion_failures()
    with caplog.at_level(logging.WARNING, logger="aio_trader.kite._models"):
        order = m.Order.from_kite(
            {"order_id": "1", "order_timestamp": "yesterday-ish", "quantity": 1.5, "price": "x"}
        )
    assert order.order_timestamp is None
    assert order.quantity is None
    assert order.price is None
    assert order.extra == {"order_timestamp": "yesterday-ish", "quantity": 1.5, "price": "x"}
    assert m.conversion_failures() == before + 3
    assert "Order.order_timestamp" in caplog.text
    assert "yesterday-ish" not in caplog.text  # names and types only, never values
    assert order.to_dict()["order_timestamp"] == "yesterday-ish"


def test_wrong_shapes_raise_data_exception() -> None:
    with pytest.raises(DataException, match="expected a JSON object for Order"):
        m.Order.from_kite(["not", "an", "object"])  # type: ignore[arg-type]
    with pytest.raises(DataException, match="JSON array"):
        m.Order.from_kite_list({"order_id": "1"})  # type: ignore[arg-type]
    with pytest.raises(DataException):
        m.Quote.from_kite_map([])  # type: ignore[arg-type]
    with pytest.raises(DataException, match="candles"):
        m.parse_candles({"nope": []})
    with pytest.raises(DataException, match="6 or 7"):
        m.Candle.from_kite(["2017-12-15T09:15:00+0530", 1, 2])
    with pytest.raises(DataException, match="required field 'date'"):
        m.Candle.from_kite(["", 1, 2, 3, 4, 5])
    # a nested object of the wrong shape is a skipped field, not an error
    quote = m.Quote.from_kite({"ohlc": [1, 2, 3, 4]})
    assert quote.ohlc is None
    assert quote.extra == {"ohlc": [1, 2, 3, 4]}


# -- dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-05-31 09:18:57", datetime.datetime(2021, 5, 31, 9, 18, 57, tzinfo=IST)),
        ("2017-12-15T09:15:00+0530", datetime.datetime(2017, 12, 15, 9, 15, tzinfo=IST)),
        ("2017-12-15T09:15:00+05:30", datetime.datetime(2017, 12, 15, 9, 15, tzinfo=IST)),
        ("2017-12-15T03:45:00Z", datetime.datetime(2017, 12, 15, 9, 15, tzinfo=IST)),
        ("2017-12-15T03:45:00+0000", datetime.datetime(2017, 12, 15, 9, 15, tzinfo=IST)),
        ("2017-12-15T09:15:00", datetime.datetime(2017, 12, 15, 9, 15, tzinfo=IST)),
        ("2017-12-15", datetime.datetime(2017, 12, 15, tzinfo=IST)),
        ("", None),
        ("0001-01-01 00:00:00", None),
    ],
)
def test_parse_kite_datetime(text: str, expected: datetime.datetime | None) -> None:
    parsed = m.parse_kite_datetime(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is IST


def test_parse_kite_date_and_time() -> None:
    assert m.parse_kite_date("2018-01-25") == datetime.date(2018, 1, 25)
    assert m.parse_kite_date("2025-01-17 00:00:00") == datetime.date(2025, 1, 17)
    assert m.parse_kite_date("") is None
    assert m.parse_kite_time("16:00:36") == datetime.time(16, 0, 36, tzinfo=IST)
    assert m.parse_kite_time("2021-05-31 16:00:36") == datetime.time(16, 0, 36, tzinfo=IST)
    with pytest.raises(ValueError, match="Invalid isoformat"):
        m.parse_kite_datetime("31/05/2021")


def test_naive_and_foreign_datetimes_dump_as_ist() -> None:
    utc = datetime.datetime(2021, 5, 31, 3, 48, 57, tzinfo=datetime.timezone.utc)
    assert m.Order(order_timestamp=utc).to_dict()["order_timestamp"] == "2021-05-31 09:18:57"
    naive = datetime.datetime(2021, 5, 31, 9, 18, 57)  # taken as IST
    assert m.Order(order_timestamp=naive).to_dict()["order_timestamp"] == "2021-05-31 09:18:57"


# -- candles ----------------------------------------------------------------------------


def test_candles(mocks: Path) -> None:
    candles = m.parse_candles(body(mocks, "historical_minute.json"))
    assert len(candles) == 6
    first = candles[0]
    assert first == m.Candle(
        datetime.datetime(2017, 12, 15, 9, 15, tzinfo=IST), 1704.5, 1705.0, 1699.25, 1702.8, 2499
    )
    assert first.oi is None
    assert first.date.tzinfo is IST
    assert first.to_list() == ["2017-12-15T09:15:00+0530", 1704.5, 1705.0, 1699.25, 1702.8, 2499]
    assert first.to_dict()["date"] == "2017-12-15T09:15:00+0530"
    with_oi = m.parse_candles(body(mocks, "historical_oi.json"))
    assert with_oi[0].oi == 13667775
    # the official client's dict shape parses too (migration)
    official = {"date": "2017-12-15T09:15:00+0530", "open": 1, "high": 2, "low": 0.5}
    assert m.Candle.from_kite({**official, "close": 1.5, "volume": 10}).close == 1.5
    # a candle whose fast path fails (string numbers) falls back to the generic path
    slow = m.Candle.from_kite(["2017-12-15T09:15:00+0530", "1", "2", "0.5", "1.5", "10", None])
    assert slow.open == 1.0
    assert slow.volume == 10
    assert slow.oi is None


def test_parsing_never_switches_the_garbage_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """No process-wide side effect: the collector's state stays the caller's, during and after."""
    real_enable, real_disable = gc.enable, gc.disable
    calls: list[str] = []
    monkeypatch.setattr(gc, "disable", lambda: calls.append("disable"))
    monkeypatch.setattr(gc, "enable", lambda: calls.append("enable"))
    candles = [["2017-12-15T09:15:00+0530", 1, 2, 0.5, 1.5, 10]] * 1000
    row = "408065,1594,INFY,INFOSYS,0.0,,0.0,0.05,1,EQ,NSE,NSE\n"
    dump = INSTRUMENT_HEADER + "\n" + row * 1000
    try:
        for enabled in (True, False):
            real_enable() if enabled else real_disable()
            assert len(m.parse_candles(candles)) == 1000
            assert gc.isenabled() is enabled
            assert len(m.parse_instruments(dump)) == 1000
            assert gc.isenabled() is enabled
    finally:
        real_enable()
    assert calls == []


# -- instruments ------------------------------------------------------------------------

INSTRUMENT_HEADER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
    "tick_size,lot_size,instrument_type,segment,exchange"
)


def test_instruments_dump(mocks: Path) -> None:
    text = (mocks / "instruments_all.csv").read_text()
    instruments = m.parse_instruments(text)
    assert len(instruments) == 99
    for instrument in instruments:
        assert_typed(instrument)
    first = instruments[0]
    assert first == m.Instrument(
        3813889, 14898, "CENTRALBK-BE", "CENTRAL BANK OF INDIA", 0.0, 0.0, 0.05, 1,
        "EQ", "NSE", "NSE", None,
    )  # fmt: skip
    option = next(i for i in instruments if i.tradingsymbol == "BANKNIFTY18JAN23500CE")
    assert option.expiry == datetime.date(2018, 1, 25)
    assert option.strike == 23500.0
    assert option.lot_size == 40
    assert option.instrument_type == "CE"
    assert m.parse_instruments(text.encode()) == instruments  # bytes too
    assert len(m.parse_instruments((mocks / "instruments_nse.csv").read_text())) == 99


def test_instruments_agree_with_the_official_parser(mocks: Path) -> None:
    kiteconnect = pytest.importorskip("kiteconnect")
    text = (mocks / "instruments_all.csv").read_text()
    theirs = kiteconnect.KiteConnect(api_key="x")._parse_instruments(text)
    ours = m.parse_instruments(text)
    for mine, row in zip(ours, theirs, strict=True):
        expected = dict(row, exchange_token=int(row["exchange_token"]))
        if expected["expiry"] == "":
            expected["expiry"] = None
        got = attrs.asdict(mine)
        got.pop("extra")
        assert got == expected


def test_mf_instruments_dump(mocks: Path) -> None:
    funds = m.parse_mf_instruments((mocks / "mf_instruments.csv").read_text())
    assert len(funds) == 99
    for fund in funds:
        assert_typed(fund)
    assert funds[0].purchase_allowed is True
    assert funds[0].minimum_purchase_amount == 1000.0
    assert funds[0].last_price_date == datetime.date(2017, 11, 23)


def test_instruments_unknown_columns_blank_lines_and_bad_rows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = "\n".join(
        [
            INSTRUMENT_HEADER + ",isin",
            "1,2,A,Alpha,1.5,,0.0,0.05,1,EQ,NSE,NSE,INE1",
            "",
            "3,4,B,Beta,2.5,2024-01-25,100.0,0.05,50,CE,NFO-OPT,NFO,INE2",
            "",
        ]
    )
    parsed = m.parse_instruments(text)
    assert [i.tradingsymbol for i in parsed] == ["A", "B"]
    assert [i.extra for i in parsed] == [{"isin": "INE1"}, {"isin": "INE2"}]
    assert parsed[1].expiry == datetime.date(2024, 1, 25)
    bad = "\n".join(
        [
            INSTRUMENT_HEADER,
            "1,2,A,Alpha,1.5,,0.0,0.05,1,EQ,NSE,NSE",
            "not-a-number,2,B,Beta,1.5,,0.0,0.05,1,EQ,NSE,NSE",
            "5,6,C,Short row",
            "7,8,D,Delta,,,0.0,0.05,1,EQ,NSE,NSE",  # no last price: required
            "9,10,E,Echo,1.0,31/12/2024,0.0,0.05,1,EQ,NSE,NSE",  # bad expiry: kept, None
        ]
    )
    with caplog.at_level(logging.WARNING, logger="aio_trader.kite._models"):
        parsed = m.parse_instruments(bad)
    assert [i.tradingsymbol for i in parsed] == ["A", "E"]
    assert parsed[1].expiry is None
    assert parsed[1].extra == {"expiry": "31/12/2024"}
    assert "skipped 3 malformed row(s)" in caplog.text
    assert m.parse_instruments("") == []
    assert m.parse_instruments(INSTRUMENT_HEADER + "\n") == []


def test_instruments_fast_path_matches_from_kite_on_many_distinct_values() -> None:
    # > 64 distinct values per column: the plain (not memoised) converters are used
    rows = [
        f"{i * 256 + 1},{i},SYM{i},Name {i},{i / 7:.4f},2024-{i % 12 + 1:02d}-25,"
        f"{i * 50.0},0.05,{i % 90 + 1},FUT,NFO-FUT,NFO"
        for i in range(2000)
    ]
    text = INSTRUMENT_HEADER + "\n" + "\n".join(rows)
    fast = m.parse_instruments(text)
    slow = [m.Instrument.from_kite(row) for row in csv.DictReader(io.StringIO(text))]
    assert fast == slow
    # the csv.reader path (CRLF line ends, or any quote) gives the same records
    assert m.parse_instruments(text.replace("\n", "\r\n")) == fast
    quoted = text.replace("Name 7,", '"Name 7, quoted",', 1)
    assert m.parse_instruments(quoted)[7].name == "Name 7, quoted"


_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="\x00"),
    max_size=12,
)
instruments = st.builds(
    m.Instrument,
    instrument_token=st.integers(0, 2**32 - 1),
    exchange_token=st.integers(0, 2**24 - 1),
    tradingsymbol=_text,
    name=_text,
    last_price=st.floats(0, 1e7, allow_nan=False),
    strike=st.floats(0, 1e6, allow_nan=False),
    tick_size=st.sampled_from([0.05, 0.01, 0.0025, 1.0]),
    lot_size=st.integers(1, 10_000),
    instrument_type=st.sampled_from(["EQ", "FUT", "CE", "PE"]),
    segment=_text,
    exchange=st.sampled_from([e.value for e in kite.Exchange]),
    expiry=st.none() | st.dates(datetime.date(2000, 1, 1), datetime.date(2100, 1, 1)),
)


@given(st.lists(instruments, max_size=30))
def test_instrument_csv_round_trip(records: list[m.Instrument]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(INSTRUMENT_HEADER.split(","))
    for record in records:
        wire = record.to_dict()
        writer.writerow(["" if wire[c] is None else wire[c] for c in INSTRUMENT_HEADER.split(",")])
    assert m.parse_instruments(out.getvalue()) == records


# -- DataFrames -------------------------------------------------------------------------


def test_candles_to_pandas_and_polars(mocks: Path) -> None:
    pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    candles = m.parse_candles(body(mocks, "historical_oi.json"))
    frame = to_pandas(candles)
    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume", "oi"]
    assert len(frame) == 6
    assert frame["date"].iloc[0].to_pydatetime() == candles[0].date
    assert str(frame["date"].dt.tz) == "Asia/Kolkata"  # as polars (was a fixed +05:30)
    assert frame["date"].iloc[0].utcoffset() == IST_OFFSET
    assert frame["volume"].tolist() == [c.volume for c in candles]
    pframe = to_polars(candles)
    assert pframe.columns == list(frame.columns)
    assert pframe.schema["date"] == pl.Datetime("us", "Asia/Kolkata")
    assert pframe["date"][0] == candles[0].date
    assert pframe["oi"].to_list() == [c.oi for c in candles]


def test_instruments_to_pandas_and_polars(mocks: Path) -> None:
    pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    instruments = m.parse_instruments((mocks / "instruments_all.csv").read_text())
    frame = to_pandas(instruments)
    assert frame.shape == (99, 12)
    assert "extra" not in frame.columns
    assert frame["instrument_token"].tolist() == [i.instrument_token for i in instruments]
    pframe = to_polars(instruments)
    assert pframe.shape == (99, 12)
    assert pframe.schema["expiry"] == pl.Date
    assert pframe.schema["lot_size"] == pl.Int64
    assert pframe["expiry"].to_list() == [i.expiry for i in instruments]


def test_empty_and_nested_frames(mocks: Path) -> None:
    pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    assert list(to_pandas([], m.Candle).columns) == [
        "date",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "oi",
    ]
    assert to_polars([], m.Candle).schema["volume"] == pl.Int64
    assert to_pandas([]).empty
    assert to_polars([]).is_empty()
    gtts = m.GTT.from_kite_list(body(mocks, "gtt_get_orders.json"))
    assert to_polars(gtts)["condition"][0]["tradingsymbol"] == "INFY"
    assert to_pandas(gtts)["orders"][0][0]["price"] == 702.5


@pytest.mark.parametrize(("module", "function"), [("pandas", to_pandas), ("polars", to_polars)])
def test_missing_dataframe_library_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, function: Callable[..., Any]
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import now fails
    with pytest.raises(ImportError, match=rf"pip install 'aio-trader\[{module}\]'"):
        function([])


# -- the public surface -----------------------------------------------------------------


def test_records_are_frozen_slotted_and_exported() -> None:
    for name in m.__all__:
        obj = getattr(m, name)
        if isinstance(obj, type) and issubclass(obj, m.Record):
            assert attrs.has(obj), name
            assert "__slots__" in obj.__dict__, name
            assert getattr(kite, name) is obj, name
    order = m.Order(order_id="1")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        order.order_id = "2"  # type: ignore[misc]
    for name in ("parse_instruments", "parse_mf_instruments", "parse_candles"):
        assert getattr(kite, name) is getattr(m, name)
    assert kite.to_pandas is to_pandas
    assert kite.to_polars is to_polars


# -- any JSON: a typed record (or DataException), never another error -------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["2021-05-31 09:18:57", "2017-12-15T09:15:00+0530", "2021-06-29", ""]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _objects_for(cls: type[m.Record]) -> st.SearchStrategy[dict[str, Any]]:
    names = [f.name for f in attrs.fields(cls) if f.name != "extra"]
    return st.dictionaries(st.sampled_from(names) | st.text(max_size=6), _json, max_size=12)


@pytest.mark.parametrize("cls", [m.Order, m.Quote, m.GTT, m.Session, m.Alert, m.MFSIP])
@given(data=st.data())
def test_any_json_object_gives_a_typed_record(cls: type[m.Record], data: st.DataObject) -> None:
    obj = data.draw(_objects_for(cls))
    record = cls.from_kite(obj)
    assert_typed(record)
    # nothing is lost: every key is a field or kept in extra
    assert set(obj) <= {f.name for f in attrs.fields(cls)} | set(record.extra)


@given(st.lists(_json, max_size=8))
def test_any_json_array_gives_a_candle_or_data_exception(row: list[Any]) -> None:
    try:
        candle = m.Candle.from_kite(row)
    except DataException:
        return
    assert_typed(candle)
