"""Kite constants: string enums, per-interval ranges, request and rate limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import aio_trader.kite as kite
from aio_trader.kite import constants as c
from aio_trader.ratelimit import Rate

ENUMS = [
    c.Exchange,
    c.Variety,
    c.OrderType,
    c.Product,
    c.TransactionType,
    c.Validity,
    c.OrderStatus,
    c.PositionType,
    c.MarginSegment,
    c.Mode,
    c.GTTType,
    c.GTTStatus,
    c.SIPFrequency,
    c.AlertType,
    c.AlertStatus,
    c.AlertOperator,
    c.Interval,
    c.EndpointGroup,
]


@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_members_are_kites_strings(enum: type[c.KiteEnum]) -> None:
    for member in enum:
        assert isinstance(member, str)
        assert member == member.value
        assert str(member) == member.value
        assert f"{member}" == member.value
        assert f"{member:>12}" == f"{member.value:>12}"
        assert enum(member.value) is member
    assert getattr(kite, enum.__name__) is enum


def test_values() -> None:
    assert c.OrderType("SL-M") is c.OrderType.SLM
    assert c.GTTType("two-leg") is c.GTTType.OCO
    assert {v.value for v in c.Variety} == {"regular", "amo", "co", "iceberg", "auction"}
    assert {v.value for v in c.Validity} == {"DAY", "IOC", "TTL"}
    assert {v.value for v in c.Mode} == {"ltp", "quote", "full"}
    assert c.MARKET_PROTECTION_AUTO == -1


def test_interval_max_days() -> None:
    assert {i.value: i.max_days for i in c.Interval} == {
        "minute": 60,
        "3minute": 100,
        "5minute": 100,
        "10minute": 100,
        "15minute": 200,
        "30minute": 200,
        "60minute": 400,
        "day": 2000,
    }
    assert c.Interval("5minute").max_days == 100


def test_request_limits() -> None:
    assert c.QUOTE_MAX_INSTRUMENTS == 500
    assert c.OHLC_MAX_INSTRUMENTS == c.LTP_MAX_INSTRUMENTS == 1000
    assert c.ORDER_TAG_MAX == 20
    assert c.TICKER_MAX_INSTRUMENTS == 3000
    assert c.TICKER_MAX_CONNECTIONS == 3


def test_rate_limits_are_kites_defaults() -> None:
    limits = c.RATE_LIMITS
    assert set(limits) == set(c.EndpointGroup)
    assert limits[c.EndpointGroup.QUOTE] == (Rate(1, 1.0),)
    assert limits[c.EndpointGroup.HISTORICAL] == (Rate(3, 1.0),)
    assert limits[c.EndpointGroup.ORDER] == (Rate(10, 1.0), Rate(200, 60.0), Rate(5000, 86400.0))
    assert limits[c.EndpointGroup.OTHER] == (Rate(10, 1.0),)
    with pytest.raises(TypeError):
        limits[c.EndpointGroup.QUOTE] = ()  # type: ignore[index]


def test_scaled_rate_limits() -> None:
    assert c.rate_limits() is c.RATE_LIMITS
    fast = c.rate_limits(20)
    assert fast[c.EndpointGroup.QUOTE] == (Rate(20, 1.0),)
    assert fast[c.EndpointGroup.ORDER] == (
        Rate(200, 1.0),
        Rate(4000, 60.0),
        Rate(100_000, 86400.0),
    )
    assert c.rate_limits(0.01)[c.EndpointGroup.QUOTE] == (Rate(1, 1.0),)  # at least one
    with pytest.raises(ValueError, match="positive"):
        c.rate_limits(0)


def test_official_client_constants_are_covered() -> None:
    kiteconnect = pytest.importorskip("kiteconnect")
    official = kiteconnect.KiteConnect
    groups = {
        "PRODUCT_": c.Product,
        "ORDER_TYPE_": c.OrderType,
        "VARIETY_": c.Variety,
        "TRANSACTION_TYPE_": c.TransactionType,
        "VALIDITY_": c.Validity,
        "POSITION_TYPE_": c.PositionType,
        "EXCHANGE_": c.Exchange,
        "MARGIN_": c.MarginSegment,
        "GTT_TYPE_": c.GTTType,
        "GTT_STATUS_": c.GTTStatus,
    }
    for prefix, enum in groups.items():
        values = [getattr(official, n) for n in dir(official) if n.startswith(prefix)]
        assert values, prefix
        for value in values:
            enum(value)  # raises ValueError when missing
    assert official.MARKET_PROTECTION_AUTO == c.MARKET_PROTECTION_AUTO


def test_reference_orders_use_known_values(mocks: Path) -> None:
    orders = json.loads((mocks / "orders.json").read_text())["data"]
    for order in orders:
        c.Variety(order["variety"])
        c.OrderType(order["order_type"])
        c.TransactionType(order["transaction_type"])
        c.Validity(order["validity"])
        c.Product(order["product"])
        c.Exchange(order["exchange"])
