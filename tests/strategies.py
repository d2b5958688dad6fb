"""Hypothesis strategies for the tick codec's records, shared by codec, feed and sandbox tests.

Prices are drawn as wire integers and divided by the segment's divisor, timestamps as
whole epoch seconds, so every generated record survives ``encode`` -> ``decode`` exactly.
"""

from __future__ import annotations

import datetime
from typing import Any

import attrs
from hypothesis import strategies as st

from aio_trader._time import IST
from aio_trader.kite.ticks import (
    Depth,
    DepthLevel,
    FeedError,
    FeedMessage,
    FullTick,
    IndexFullTick,
    IndexQuoteTick,
    LtpTick,
    Ohlc,
    OrderUpdate,
    QuoteTick,
    Tick,
    segment_divisor,
)

U32 = 2**32 - 1
U16 = 2**16 - 1
#: Kite's segments: NSE 1, NFO 2, CDS 3, BSE 4, BFO 5, BCD 6, MCX 7, MCXSX 8, indices 9, NCO 12.
SEGMENTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 12)
INDICES = 9

wire_ints = st.integers(0, U32)


def tokens(segment: int | None = None) -> st.SearchStrategy[int]:
    """Instrument tokens: of one segment, or of Kite's segments and now and then any uint32."""
    if segment is not None:
        return st.integers(0, 2**24 - 1).map(lambda high: high << 8 | segment)
    return st.one_of(st.sampled_from(SEGMENTS).flatmap(tokens), wire_ints)


def prices(token: int) -> st.SearchStrategy[float]:
    """Prices exactly representable on the wire for ``token``'s segment."""
    divisor = segment_divisor(token)
    return wire_ints.map(lambda wire: wire / divisor)


#: Aware IST datetimes of whole epoch seconds, or None (epoch 0 on the wire).
times = st.one_of(
    st.none(), st.integers(1, U32).map(lambda epoch: datetime.datetime.fromtimestamp(epoch, IST))
)


def ohlcs(token: int) -> st.SearchStrategy[Ohlc]:
    p = prices(token)
    return st.builds(Ohlc, open=p, high=p, low=p, close=p)


def depth_levels(token: int) -> st.SearchStrategy[DepthLevel]:
    return st.builds(
        DepthLevel, quantity=wire_ints, price=prices(token), orders=st.integers(0, U16)
    )


def depths(token: int) -> st.SearchStrategy[Depth]:
    side = st.tuples(*[depth_levels(token)] * 5)
    return st.builds(Depth, buy=side, sell=side)


@st.composite
def ltp_ticks(draw: st.DrawFn, token: int | None = None) -> LtpTick:
    token = draw(tokens()) if token is None else token
    return LtpTick(instrument_token=token, last_price=draw(prices(token)))


@st.composite
def index_quote_ticks(draw: st.DrawFn, token: int | None = None) -> IndexQuoteTick:
    token = draw(tokens(INDICES)) if token is None else token
    return IndexQuoteTick(
        instrument_token=token, last_price=draw(prices(token)), ohlc=draw(ohlcs(token))
    )


@st.composite
def index_full_ticks(draw: st.DrawFn, token: int | None = None) -> IndexFullTick:
    token = draw(tokens(INDICES)) if token is None else token
    return IndexFullTick(
        instrument_token=token,
        last_price=draw(prices(token)),
        ohlc=draw(ohlcs(token)),
        exchange_timestamp=draw(times),
    )


def _quote_fields(draw: st.DrawFn, token: int) -> dict[str, Any]:
    return {
        "instrument_token": token,
        "last_price": draw(prices(token)),
        "last_traded_quantity": draw(wire_ints),
        "average_traded_price": draw(prices(token)),
        "volume_traded": draw(wire_ints),
        "total_buy_quantity": draw(wire_ints),
        "total_sell_quantity": draw(wire_ints),
        "ohlc": draw(ohlcs(token)),
    }


@st.composite
def quote_ticks(draw: st.DrawFn, token: int | None = None) -> QuoteTick:
    token = draw(tokens()) if token is None else token
    return QuoteTick(**_quote_fields(draw, token))


@st.composite
def full_ticks(draw: st.DrawFn, token: int | None = None) -> FullTick:
    token = draw(tokens()) if token is None else token
    return FullTick(
        **_quote_fields(draw, token),
        last_trade_time=draw(times),
        oi=draw(wire_ints),
        oi_day_high=draw(wire_ints),
        oi_day_low=draw(wire_ints),
        exchange_timestamp=draw(times),
        depth=draw(depths(token)),
    )


#: One strategy per packet kind.
TICK_KINDS = (ltp_ticks, index_quote_ticks, index_full_ticks, quote_ticks, full_ticks)


def ticks() -> st.SearchStrategy[Tick]:
    """Any tick record, of any kind and segment."""
    return st.one_of([kind() for kind in TICK_KINDS])


def tick_lists(max_size: int = 12) -> st.SearchStrategy[list[Tick]]:
    """Frames' worth of ticks: mixed kinds, or all one kind (the decoder's fast path)."""
    one_kind = st.sampled_from(TICK_KINDS).flatmap(lambda kind: st.lists(kind(), max_size=max_size))
    return st.one_of(st.lists(ticks(), max_size=max_size), one_kind)


# -- text messages ---------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_opt_text = st.none() | st.text(max_size=20)
_whole_seconds = st.integers(0, 4_102_444_800).map(
    lambda epoch: datetime.datetime.fromtimestamp(epoch, IST)
)
_KNOWN = {field.name for field in attrs.fields(OrderUpdate)}


def order_updates() -> st.SearchStrategy[OrderUpdate]:
    """Order postbacks whose every field survives the JSON text frame exactly."""
    counts = st.integers(0, 10**9)
    money = st.floats(0, 1e9, allow_nan=False)
    return st.builds(
        OrderUpdate,
        order_id=st.text(max_size=20),
        exchange_order_id=_opt_text,
        parent_order_id=_opt_text,
        status=st.sampled_from(["COMPLETE", "OPEN", "CANCELLED", "REJECTED", "UPDATE"]),
        status_message=_opt_text,
        status_message_raw=_opt_text,
        order_timestamp=st.none() | _whole_seconds,
        exchange_update_timestamp=st.none() | _whole_seconds,
        exchange_timestamp=st.none() | _whole_seconds,
        tradingsymbol=st.text(max_size=20),
        instrument_token=wire_ints,
        quantity=counts,
        price=money,
        trigger_price=money,
        average_price=money,
        filled_quantity=counts,
        market_protection=st.floats(-1, 100, allow_nan=False),
        tag=_opt_text,
        checksum=st.text(max_size=64),
        meta=st.dictionaries(st.text(max_size=10), json_values, max_size=3),
        extra=st.dictionaries(
            st.text(max_size=12).filter(lambda key: key not in _KNOWN), json_values, max_size=3
        ),
    )


def text_records() -> st.SearchStrategy[OrderUpdate | FeedError | FeedMessage]:
    """Any record a text frame carries."""
    return st.one_of(
        order_updates(),
        st.builds(FeedError, message=st.text()),
        st.builds(FeedMessage, data=json_values),
    )
