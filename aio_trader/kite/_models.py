"""Typed records for Kite Connect v3 REST responses.

Every record is a frozen, slotted attrs class built from Kite's JSON by one shared
mechanism, ``Record.from_kite(data)`` (the library's record engine,
:mod:`aio_trader._records`, with Kite's date formats), and turned back into Kite's shape
by ``record.to_dict()``. The mechanism reads each class's field annotations once and
compiles a converter per field (see :class:`Record`), so no record has parsing code
of its own.

Conventions, the same for every record:

- **Unknown fields are kept**, not dropped: a key Kite sends that the record does not
  declare lands in ``record.extra`` (a read-only mapping; ``to_dict()`` puts it back).
- **A missing optional field is** ``None``. Every field of a JSON record is optional,
  so an API change never breaks parsing. Only :class:`Candle` and the instrument rows
  have required fields (their absence is a malformed row, see below).
- **Dates**: the Python type follows Kite's wire format. ``YYYY-MM-DD HH:MM:SS``
  strings (IST wall clock) and ISO 8601 strings with an offset (candles: ``+0530``)
  become timezone-aware ``datetime.datetime`` in IST (``aio_trader._time.IST``);
  date-only strings (``YYYY-MM-DD``: instrument expiry, MF dates) become
  ``datetime.date``; the time-only ``order_timestamp`` of trades (``HH:MM:SS``)
  becomes an aware ``datetime.time``. An empty string and Kite's "zero time"
  (``0001-01-01 00:00:00``) become ``None``.
- **Numbers** are ``int`` or ``float`` as declared (Kite sends ``72`` for a price of
  72.0; the record holds ``72.0``). An ``int`` field never truncates a fractional value.
- **Enumerated values stay** ``str`` (compare them with :mod:`aio_trader.kite.constants`,
  whose enums are ``str``), so a value Kite adds later never breaks parsing.
- **A value that cannot be converted** (a date in a new format, a number as a word)
  does not raise: the field becomes ``None``, the raw value is kept in ``extra`` under
  the same key, and the skip is logged (field name and value type only, never the value)
  and counted (:func:`conversion_failures`).
- A ``data`` that is not a JSON object, or a required field that is missing, raises
  :class:`aio_trader.errors.DataException`.
- Secrets (``Session`` tokens, ``api_key``) are ``repr=False``; ``extra`` is never in a repr.

Which record parses which endpoint's ``data`` (official client method in brackets):

================================================  =========================================
``Profile.from_kite``                             ``/user/profile`` (profile)
``Session.from_kite``                             ``/session/token`` (generate_session,
                                                  renew_access_token)
``Margins.from_kite`` / ``SegmentMargins``        ``/user/margins`` / ``/user/margins/{seg}``
``OrderResponse.from_kite``                       place/modify/cancel/exit order, MF orders
``AutosliceResponse.from_kite``                   place_order with ``autoslice=true``
``Order.from_kite_list``                          ``/orders``, ``/orders/{id}`` (history)
``Trade.from_kite_list``                          ``/trades``, ``/orders/{id}/trades``
``Positions.from_kite``                           ``/portfolio/positions``
``Holding.from_kite_list``                        ``/portfolio/holdings``
``AuctionInstrument.from_kite_list``              ``/portfolio/holdings/auctions``
``HoldingsSummary`` / ``HoldingsAuthorisation``   holdings summary / authorise
``MFOrder.from_kite_list`` / ``from_kite``        ``/mf/orders`` / ``/mf/orders/{id}``
``MFSIP.from_kite_list`` / ``from_kite``          ``/mf/sips`` / ``/mf/sips/{id}``
``MFSIPResponse.from_kite``                       place/modify/cancel SIP
``MFHolding.from_kite_list``                      ``/mf/holdings``
``parse_mf_instruments(text)``                    ``/mf/instruments`` (CSV)
``parse_instruments(text)``                       ``/instruments[/{exchange}]`` (CSV)
``Quote.from_kite_map``                           ``/quote``
``OhlcQuote.from_kite_map``                       ``/quote/ohlc``
``LtpQuote.from_kite_map``                        ``/quote/ltp``
``parse_candles(data)``                           ``/instruments/historical/...``
``TriggerRange.from_kite_map``                    ``/instruments/trigger_range/{type}``
``GTT.from_kite_list`` / ``from_kite``            ``/gtt/triggers`` / ``/gtt/triggers/{id}``
``GTTResponse.from_kite``                         place/modify/delete GTT
``OrderMargins.from_kite_list``                   ``/margins/orders``
``BasketMargins.from_kite``                       ``/margins/basket``
``OrderCharges.from_kite_list``                   ``/charges/orders`` (virtual contract note)
``Alert.from_kite`` / ``from_kite_list``          ``/alerts``, ``/alerts/{uuid}``
``AlertHistory.from_kite_list``                   ``/alerts/{uuid}/history``
================================================  =========================================

``convert_position``, ``invalidate_*`` answer ``true`` and alert deletion ``null``: no record.
"""

from __future__ import annotations

import csv
import datetime
import io
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import attrs

from aio_trader import _records
from aio_trader._records import BOOL_WORDS as _BOOL_WORDS
from aio_trader._records import (
    DUMP,
    EMPTY,
    FIELD_ERRORS,
    SCALARS,
    Dumper,
    Loader,
    conversion_failures,
    load_with,
)
from aio_trader._records import load_bool as _load_bool
from aio_trader._records import load_float as _load_float
from aio_trader._records import load_int as _load_int
from aio_trader._records import load_str as _load_str
from aio_trader._records import plan as _plan
from aio_trader._time import IST
from aio_trader._twins import build_columns, mutable_twin
from aio_trader.errors import BrokerError, DataException

__all__ = [
    "GST",
    "GTT",
    "MFSIP",
    "Alert",
    "AlertBasket",
    "AlertBasketItem",
    "AlertHistory",
    "AlertHistoryMeta",
    "AuctionInstrument",
    "AutosliceChild",
    "AutosliceError",
    "AutosliceResponse",
    "AvailableMargins",
    "BankAccount",
    "BasketMargins",
    "Candle",
    "Charges",
    "GTTCondition",
    "GTTOrder",
    "GTTOrderOutcome",
    "GTTOrderResult",
    "GTTResponse",
    "Holding",
    "HoldingsAuthorisation",
    "HoldingsSummary",
    "Instrument",
    "LtpQuote",
    "MFHolding",
    "MFInstrument",
    "MFOrder",
    "MFSIPResponse",
    "MTFHolding",
    "MarginPnl",
    "Margins",
    "OhlcQuote",
    "Order",
    "OrderCharges",
    "OrderMargins",
    "OrderResponse",
    "Position",
    "Positions",
    "Profile",
    "Quote",
    "QuoteDepth",
    "QuoteDepthLevel",
    "QuoteOhlc",
    "Record",
    "SegmentMargins",
    "Session",
    "Trade",
    "TriggerRange",
    "UtilisedMargins",
    "conversion_failures",
    "parse_candles",
    "parse_instruments",
    "parse_kite_date",
    "parse_kite_datetime",
    "parse_kite_time",
    "parse_mf_instruments",
]

_log = logging.getLogger(__name__)

R = TypeVar("R", bound="Record")

_EMPTY = EMPTY
_ZERO_TIME = "0001-01-01 00:00:00"


# -- Kite's date strings ----------------------------------------------------------------


def parse_kite_datetime(value: str) -> datetime.datetime | None:
    """An aware IST datetime from Kite's ``YYYY-MM-DD HH:MM:SS`` (IST) or ISO 8601 string.

    A date-only string gives midnight IST; ``""`` and ``0001-01-01 00:00:00`` give None.
    Raises ``ValueError`` for anything else.
    """
    n = len(value)
    if n == 19:
        if value == _ZERO_TIME:
            return None
        return datetime.datetime.fromisoformat(value).replace(tzinfo=IST)
    if n == 24 and value.endswith("+0530"):  # candles: 2017-12-15T09:15:00+0530
        return datetime.datetime.fromisoformat(value[:19]).replace(tzinfo=IST)
    if n == 0:
        return None
    if n == 10:
        return datetime.datetime.fromisoformat(value).replace(tzinfo=IST)
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":  # +HHMM -> +HH:MM (3.10)
        text = f"{text[:-2]}:{text[-2:]}"
    parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=IST)
    return parsed.astimezone(IST)


def parse_kite_date(value: str) -> datetime.date | None:
    """A ``datetime.date`` from ``YYYY-MM-DD`` (or the date part of a date-time); ``""`` -> None."""
    if len(value) == 10:
        return datetime.date.fromisoformat(value)
    parsed = parse_kite_datetime(value)
    return None if parsed is None else parsed.date()


def parse_kite_time(value: str) -> datetime.time | None:
    """An aware IST ``datetime.time`` from ``HH:MM:SS`` (or the time of a date-time)."""
    if len(value) == 8:
        return datetime.time.fromisoformat(value).replace(tzinfo=IST)
    parsed = parse_kite_datetime(value)
    return None if parsed is None else parsed.timetz()


# -- Kite's scalar converters (wire -> Python, and back) -----------------------------------


def _dump_datetime(value: datetime.datetime) -> str:
    aware = value.replace(tzinfo=IST) if value.tzinfo is None else value.astimezone(IST)
    return aware.strftime("%Y-%m-%d %H:%M:%S")


def _dump_iso_datetime(value: datetime.datetime) -> str:
    aware = value.replace(tzinfo=IST) if value.tzinfo is None else value.astimezone(IST)
    return aware.strftime("%Y-%m-%dT%H:%M:%S%z")


def _dump_date(value: datetime.date) -> str:
    return value.isoformat()


def _dump_time(value: datetime.time) -> str:
    return value.strftime("%H:%M:%S")


#: Kite's wire formats: the shared scalars, and its date strings (IST wall clock).
_SCALARS: Mapping[Any, tuple[Loader, Dumper | None]] = {
    **SCALARS,
    datetime.datetime: (load_with(parse_kite_datetime), _dump_datetime),
    datetime.date: (load_with(parse_kite_date), _dump_date),
    datetime.time: (load_with(parse_kite_time), _dump_time),
}

# The exceptions a field converter may raise for a bad value (the field is then skipped).
_FIELD_ERRORS = FIELD_ERRORS


# -- Kite's base: the shared engine with Kite's formats and names ---------------------------


@attrs.frozen
class Record(_records.Record):
    """Base of every Kite record: ``from_kite`` (wire -> record) and ``to_dict`` (back).

    The engine is :class:`aio_trader._records.Record` (one per library, every broker's
    records stand on it); this base gives it Kite's date formats, raises
    :class:`~aio_trader.errors.DataException` for a malformed answer, and keeps the
    names Kite users know (``from_kite``, ``from_kite_list``, ``from_kite_map``).

    ``extra`` holds the fields Kite sent that the record does not declare (and the raw
    value of any field that could not be converted). It is keyword-only, never in the
    repr, and not part of the hash.
    """

    _scalars: ClassVar[Mapping[Any, tuple[Loader, Dumper | None]]] = _SCALARS
    _malformed: ClassVar[type[BrokerError]] = DataException
    _wire: ClassVar[str] = "Kite"

    @classmethod
    def from_kite(cls: type[R], data: Mapping[str, Any]) -> R:
        """The record for one JSON object of a Kite response (the ``data`` part).

        Raises :class:`~aio_trader.errors.DataException` when ``data`` is not an object
        or a required field is missing; never for an unknown or unconvertible field.
        """
        return cls.from_data(data)

    @classmethod
    def from_kite_list(cls: type[R], data: Sequence[Mapping[str, Any]]) -> list[R]:
        """Records for a JSON array of objects (``/orders``, ``/holdings`` ...)."""
        return cls.from_list(data)

    @classmethod
    def from_kite_map(cls: type[R], data: Mapping[str, Mapping[str, Any]]) -> dict[str, R]:
        """Records keyed like Kite's answer (``{"NSE:INFY": {...}}`` of quote/ltp/ohlc)."""
        return cls.from_map(data)


# -- user -------------------------------------------------------------------------------


@attrs.frozen
class BankAccount(Record):
    """One bank account of the full profile."""

    name: str | None = None
    branch: str | None = None
    account: str | None = None


@attrs.frozen
class Profile(Record):
    """``GET /user/profile`` (``profile``); the full profile's extra fields are optional."""

    user_id: str | None = None
    user_type: str | None = None
    email: str | None = None
    user_name: str | None = None
    user_shortname: str | None = None
    broker: str | None = None
    exchanges: tuple[str, ...] | None = None
    products: tuple[str, ...] | None = None
    order_types: tuple[str, ...] | None = None
    avatar_url: str | None = None
    meta: Mapping[str, Any] | None = None
    # full profile
    twofa_type: str | None = None
    phone: str | None = None
    pan: str | None = None
    bank_accounts: tuple[BankAccount, ...] | None = None
    dp_ids: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    password_timestamp: datetime.datetime | None = None
    twofa_timestamp: datetime.datetime | None = None


@attrs.frozen
class Session(Profile):
    """``POST /session/token`` (``generate_session``) and ``renew_access_token``.

    The tokens and ``api_key`` never appear in the repr.
    """

    api_key: str | None = attrs.field(default=None, repr=False)
    access_token: str | None = attrs.field(default=None, repr=False)
    public_token: str | None = attrs.field(default=None, repr=False)
    refresh_token: str | None = attrs.field(default=None, repr=False)
    enctoken: str | None = attrs.field(default=None, repr=False)
    silo: str | None = None
    login_time: datetime.datetime | None = None


@attrs.frozen
class AvailableMargins(Record):
    """``available`` part of a segment's margins."""

    adhoc_margin: float | None = None
    cash: float | None = None
    opening_balance: float | None = None
    live_balance: float | None = None
    collateral: float | None = None
    intraday_payin: float | None = None


@attrs.frozen
class UtilisedMargins(Record):
    """``utilised`` part of a segment's margins."""

    debits: float | None = None
    exposure: float | None = None
    m2m_realised: float | None = None
    m2m_unrealised: float | None = None
    option_premium: float | None = None
    payout: float | None = None
    span: float | None = None
    holding_sales: float | None = None
    turnover: float | None = None
    liquid_collateral: float | None = None
    stock_collateral: float | None = None
    delivery: float | None = None


@attrs.frozen
class SegmentMargins(Record):
    """``GET /user/margins/{segment}`` (``margins(segment)``): one segment's funds."""

    enabled: bool | None = None
    net: float | None = None
    available: AvailableMargins | None = None
    utilised: UtilisedMargins | None = None


@attrs.frozen
class Margins(Record):
    """``GET /user/margins`` (``margins()``): every segment."""

    equity: SegmentMargins | None = None
    commodity: SegmentMargins | None = None


# -- orders and trades ------------------------------------------------------------------


@attrs.frozen
class OrderResponse(Record):
    """``place_order`` / ``modify_order`` / ``cancel_order`` and the MF order calls."""

    order_id: str | None = None


@attrs.frozen
class AutosliceError(Record):
    """Why one slice of an autosliced order failed."""

    code: int | None = None
    error_type: str | None = None
    message: str | None = None
    data: Any = None


@attrs.frozen
class AutosliceChild(Record):
    """One slice of an autosliced order: an ``order_id`` or an ``error``."""

    order_id: str | None = None
    error: AutosliceError | None = None


@attrs.frozen
class AutosliceResponse(Record):
    """``POST /orders/{variety}`` with ``autoslice=true`` (``place_autoslice_order``)."""

    order_id: str | None = None
    children: tuple[AutosliceChild, ...] | None = None


@attrs.frozen
class Order(Record):
    """One order: ``GET /orders`` (``orders``) and ``GET /orders/{id}`` (``order_history``).

    It also parses an order postback (its ``user_id``, ``app_id``, ``checksum`` ... land in
    ``extra``); the feed's typed postback record is ``aio_trader.kite.ticks.OrderUpdate``.
    """

    order_id: str | None = None
    exchange_order_id: str | None = None
    parent_order_id: str | None = None
    placed_by: str | None = None
    account_id: str | None = None
    status: str | None = None
    status_message: str | None = None
    status_message_raw: str | None = None
    order_timestamp: datetime.datetime | None = None
    exchange_update_timestamp: datetime.datetime | None = None
    exchange_timestamp: datetime.datetime | None = None
    variety: str | None = None
    modified: bool | None = None
    exchange: str | None = None
    tradingsymbol: str | None = None
    instrument_token: int | None = None
    order_type: str | None = None
    transaction_type: str | None = None
    validity: str | None = None
    validity_ttl: int | None = None
    product: str | None = None
    quantity: int | None = None
    disclosed_quantity: int | None = None
    price: float | None = None
    trigger_price: float | None = None
    average_price: float | None = None
    filled_quantity: int | None = None
    pending_quantity: int | None = None
    cancelled_quantity: int | None = None
    market_protection: float | None = None
    auction_number: str | None = None
    meta: Mapping[str, Any] | None = None
    tag: str | None = None
    tags: tuple[str, ...] | None = None
    guid: str | None = None


@attrs.frozen
class Trade(Record):
    """One fill: ``GET /trades`` (``trades``) and ``GET /orders/{id}/trades``.

    ``order_timestamp`` is time-only on the wire (``HH:MM:SS``), so it is a ``time``.
    """

    trade_id: str | None = None
    order_id: str | None = None
    exchange_order_id: str | None = None
    exchange: str | None = None
    tradingsymbol: str | None = None
    instrument_token: int | None = None
    product: str | None = None
    transaction_type: str | None = None
    average_price: float | None = None
    quantity: int | None = None
    fill_timestamp: datetime.datetime | None = None
    order_timestamp: datetime.time | None = None
    exchange_timestamp: datetime.datetime | None = None


# -- portfolio --------------------------------------------------------------------------


@attrs.frozen
class Position(Record):
    """One position (net or day)."""

    tradingsymbol: str | None = None
    exchange: str | None = None
    instrument_token: int | None = None
    product: str | None = None
    quantity: int | None = None
    overnight_quantity: int | None = None
    multiplier: float | None = None
    average_price: float | None = None
    close_price: float | None = None
    last_price: float | None = None
    value: float | None = None
    pnl: float | None = None
    m2m: float | None = None
    unrealised: float | None = None
    realised: float | None = None
    buy_quantity: int | None = None
    buy_price: float | None = None
    buy_value: float | None = None
    buy_m2m: float | None = None
    sell_quantity: int | None = None
    sell_price: float | None = None
    sell_value: float | None = None
    sell_m2m: float | None = None
    day_buy_quantity: int | None = None
    day_buy_price: float | None = None
    day_buy_value: float | None = None
    day_sell_quantity: int | None = None
    day_sell_price: float | None = None
    day_sell_value: float | None = None


@attrs.frozen
class Positions(Record):
    """``GET /portfolio/positions`` (``positions``): ``net`` and ``day`` positions."""

    net: tuple[Position, ...] | None = None
    day: tuple[Position, ...] | None = None


@attrs.frozen
class MTFHolding(Record):
    """The margin-trading-facility part of a holding."""

    quantity: int | None = None
    used_quantity: int | None = None
    average_price: float | None = None
    value: float | None = None
    initial_margin: float | None = None


@attrs.frozen
class Holding(Record):
    """One holding: ``GET /portfolio/holdings`` (``holdings``; the compact form too)."""

    tradingsymbol: str | None = None
    exchange: str | None = None
    instrument_token: int | None = None
    isin: str | None = None
    product: str | None = None
    price: float | None = None
    quantity: int | None = None
    used_quantity: int | None = None
    t1_quantity: int | None = None
    realised_quantity: int | None = None
    authorised_quantity: int | None = None
    authorised_date: datetime.datetime | None = None
    authorisation: Mapping[str, Any] | None = None
    opening_quantity: int | None = None
    short_quantity: int | None = None
    collateral_quantity: int | None = None
    collateral_type: str | None = None
    discrepancy: bool | None = None
    average_price: float | None = None
    last_price: float | None = None
    close_price: float | None = None
    pnl: float | None = None
    day_change: float | None = None
    day_change_percentage: float | None = None
    mtf: MTFHolding | None = None


@attrs.frozen
class AuctionInstrument(Holding):
    """``GET /portfolio/holdings/auctions`` (``get_auction_instruments``)."""

    auction_number: str | None = None


@attrs.frozen
class HoldingsSummary(Record):
    """The holdings summary (totals of the portfolio)."""

    total_pnl: float | None = None
    total_pnl_percent: float | None = None
    today_pnl: float | None = None
    today_pnl_percent: float | None = None
    invested_amount: float | None = None
    current_value: float | None = None


@attrs.frozen
class HoldingsAuthorisation(Record):
    """``POST /portfolio/holdings/authorise``: the request id for the CDSL page."""

    request_id: str | None = None


# -- market data ------------------------------------------------------------------------


@attrs.frozen
class QuoteOhlc(Record):
    """Open, high, low, close of the day (close: the previous day's close)."""

    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None


@attrs.frozen
class QuoteDepthLevel(Record):
    """One level of market depth."""

    price: float | None = None
    quantity: int | None = None
    orders: int | None = None


@attrs.frozen
class QuoteDepth(Record):
    """Five best bids (``buy``) and offers (``sell``)."""

    buy: tuple[QuoteDepthLevel, ...] | None = None
    sell: tuple[QuoteDepthLevel, ...] | None = None


@attrs.frozen
class LtpQuote(Record):
    """``GET /quote/ltp`` (``ltp``), keyed by ``EXCHANGE:SYMBOL``."""

    instrument_token: int | None = None
    last_price: float | None = None


@attrs.frozen
class OhlcQuote(LtpQuote):
    """``GET /quote/ohlc`` (``ohlc``), keyed by ``EXCHANGE:SYMBOL``."""

    ohlc: QuoteOhlc | None = None


@attrs.frozen
class Quote(OhlcQuote):
    """``GET /quote`` (``quote``), keyed by ``EXCHANGE:SYMBOL``."""

    timestamp: datetime.datetime | None = None
    last_trade_time: datetime.datetime | None = None
    last_quantity: int | None = None
    buy_quantity: int | None = None
    sell_quantity: int | None = None
    volume: int | None = None
    average_price: float | None = None
    oi: int | None = None
    oi_day_high: int | None = None
    oi_day_low: int | None = None
    net_change: float | None = None
    lower_circuit_limit: float | None = None
    upper_circuit_limit: float | None = None
    depth: QuoteDepth | None = None


@attrs.frozen
class TriggerRange(Record):
    """``GET /instruments/trigger_range/{type}`` (``trigger_range``), keyed by instrument."""

    instrument_token: int | None = None
    lower: float | None = None
    upper: float | None = None


@attrs.frozen
class Candle(Record):
    """One historical candle (``historical_data``); ``oi`` only with ``oi=True``.

    On the wire a candle is an array ``[timestamp, open, high, low, close, volume, oi?]``;
    :meth:`from_kite` takes that array (or the official client's dict shape), and
    :meth:`to_list` gives it back.
    """

    date: datetime.datetime = attrs.field(metadata={DUMP: _dump_iso_datetime})
    open: float
    high: float
    low: float
    close: float
    volume: int
    oi: int | None = None

    @classmethod
    def from_data(cls, data: Any) -> Candle:
        """A candle from Kite's array (or a mapping with ``date``, ``open`` ... keys)."""
        if isinstance(data, list | tuple) and len(data) in (6, 7):
            try:
                return _candle_from_row(data)
            except _FIELD_ERRORS:
                data = dict(zip(_CANDLE_KEYS, data, strict=False))
        elif isinstance(data, list | tuple):
            raise DataException(f"a candle has 6 or 7 values, got {len(data)}", status_code=200)
        return super().from_data(data)

    def to_list(self) -> list[Any]:
        """Kite's wire array: ``[timestamp, open, high, low, close, volume(, oi)]``."""
        row: list[Any] = [
            _dump_iso_datetime(self.date),
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
        ]
        if self.oi is not None:
            row.append(self.oi)
        return row


_CANDLE_KEYS = ("date", "open", "high", "low", "close", "volume", "oi")


def _candle_from_row(row: Sequence[Any]) -> Candle:
    """The fast path for a well-formed wire candle; raises ValueError/TypeError otherwise."""
    stamp = row[0]
    date = parse_kite_datetime(stamp) if type(stamp) is str else None
    open_, high, low, close = (
        _load_float(row[1]),
        _load_float(row[2]),
        _load_float(row[3]),
        _load_float(row[4]),
    )
    volume = _load_int(row[5])
    oi = _load_int(row[6]) if len(row) == 7 and row[6] is not None else None
    if (
        date is None
        or open_ is None
        or high is None
        or low is None
        or close is None
        or volume is None
    ):
        raise ValueError("incomplete candle")
    return Candle(date, open_, high, low, close, volume, oi)


def parse_candles(data: Mapping[str, Any] | Sequence[Any]) -> list[Candle]:
    """Candles of a historical answer: the ``data`` object (``{"candles": [...]}``) or the list.

    A malformed candle raises :class:`~aio_trader.errors.DataException`.
    """
    rows = data.get("candles") if isinstance(data, Mapping) else data
    if not isinstance(rows, list | tuple):
        raise DataException("historical data without a 'candles' array", status_code=200)
    return [Candle.from_kite(row) for row in rows]


# -- instruments ------------------------------------------------------------------------


@attrs.frozen
class Instrument(Record):
    """One row of ``GET /instruments[/{exchange}]`` (``instruments``), a CSV dump.

    ``expiry`` is a ``datetime.date`` (None for instruments that do not expire).
    """

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    last_price: float
    strike: float
    tick_size: float
    lot_size: int
    instrument_type: str
    segment: str
    exchange: str
    expiry: datetime.date | None = None


@attrs.frozen
class MFInstrument(Record):
    """One row of ``GET /mf/instruments`` (``mf_instruments``), a CSV dump."""

    tradingsymbol: str
    amc: str
    name: str
    purchase_allowed: bool
    redemption_allowed: bool
    minimum_purchase_amount: float
    purchase_amount_multiplier: float
    minimum_additional_purchase_amount: float
    minimum_redemption_quantity: float
    redemption_quantity_multiplier: float
    dividend_type: str
    scheme_type: str
    plan: str
    settlement_type: str
    last_price: float
    last_price_date: datetime.date | None = None


class _Memo(dict[str, Any]):
    """A converter that converts each distinct string once (``memo[text]``)."""

    __slots__ = ("convert",)

    def __init__(self, convert: Callable[[str], Any]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, key: str) -> Any:
        value = self[key] = self.convert(key)
        return value


#: A column whose first ``_SAMPLE`` values hold at most ``_FEW`` distinct strings is
#: converted through a :class:`_Memo` (expiries, strikes, tick and lot sizes, segments):
#: each distinct value is parsed once and the records share one object per value.
_SAMPLE = 1024
_FEW = 64


def _column_converter(load: Loader | None, column: Sequence[str]) -> Callable[[str], Any] | None:
    """A C-speed converter for one CSV column (None: keep the strings as they are)."""
    convert: Callable[[str], Any] | None
    if load is _load_str or load is None:
        convert = None
    elif load is _load_int:
        convert = int
    elif load is _load_float:
        convert = float
    elif load is _load_bool:
        return _BOOL_WORDS.__getitem__
    else:
        convert = load
    if len(set(column[:_SAMPLE])) <= _FEW:
        return _Memo(convert or str).__getitem__
    return convert


def _parse_csv(cls: type[R], text: str | bytes) -> list[R]:
    """Rows of a Kite CSV dump as records.

    Column-wise: split the dump into columns, convert each column at C speed (``map``
    with ``int``/``float``/memo lookups), then ``map`` the class over the columns. A dump
    with no quotes and no carriage returns is split with ``str.split`` (what ``csv``
    would do for such text, ~1.5x faster); any other dump goes through ``csv.reader``.
    If any value fails to convert, the whole dump falls back to ``from_kite`` row by row,
    so bad rows are skipped (counted, logged) and bad optional values kept in ``extra``.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    split = _split_columns(text)
    rows: list[list[str]] | None = None
    skipped = 0
    if split is None:
        header, rows, skipped = _read_rows(text)
        columns: list[Sequence[str]] = list(zip(*rows, strict=True)) if rows else []
    else:
        header, columns = split
    if not header:
        return []
    try:
        out = _records_from_columns(cls, header, columns)
    except (*_FIELD_ERRORS, LookupError):
        if rows is None:
            header, rows, skipped = _read_rows(text)
        out, bad = _records_from_rows(cls, header, rows)
        skipped += bad
    if skipped:
        _log.warning("%s CSV: skipped %d malformed row(s)", cls.__name__, skipped)
    return out


def _twin(cls: type[Record]) -> type:
    """The mutable twin ``_records_from_columns`` builds ``cls``'s records with."""
    twin = _TWINS.get(cls)
    if twin is None:
        twin = _TWINS[cls] = mutable_twin(cls)
    return twin


_TWINS: dict[type, type] = {}


def _split_columns(text: str) -> tuple[list[str], list[Sequence[str]]] | None:
    """Header and columns of a quote-free, CR-free dump whose rows all have the header's
    width (one trailing newline allowed); None for anything else."""
    if '"' in text or "\r" in text:
        return None
    head, _, body = text.partition("\n")
    header = head.split(",") if head else []
    width = len(header)
    if body.endswith("\n"):
        body = body[:-1]
    if not body:
        return header, [()] * width
    if set(map(str.count, body.split("\n"), itertools.repeat(","))) != {width - 1}:
        return None
    flat = body.replace("\n", ",").split(",")
    # Tuples, not lists: the collector stops tracking a tuple of strings after one pass,
    # a list it would walk again in every collection while the records are built.
    return header, [tuple(flat[i::width]) for i in range(width)]


def _read_rows(text: str) -> tuple[list[str], list[list[str]], int]:
    """Header, the rows of the header's width (blank lines dropped), and how many others."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None) or []
    rows = [row for row in reader if row]
    good = [row for row in rows if len(row) == len(header)]
    return header, good, len(rows) - len(good)


def _records_from_columns(
    cls: type[R], header: list[str], columns: Sequence[Sequence[str]]
) -> list[R]:
    """Records from columns; raises (ValueError, KeyError ...) at the first bad value."""
    plan = _plan(cls)
    position = {name: i for i, name in enumerate(header)}
    converted: list[tuple[Any, ...]] = []
    for name, load in plan.loaders:
        column = columns[position[name]] if columns else ()  # KeyError: a missing column
        convert = _column_converter(load, column)
        converted.append(tuple(column) if convert is None else tuple(map(convert, column)))
    unknown = [name for name in header if name not in plan.names]
    if not unknown:
        count = len(converted[0]) if converted else 0
        values = {name: column for (name, _), column in zip(plan.loaders, converted, strict=True)}
        values["extra"] = (_EMPTY,) * count
        return build_columns(cls, _twin(cls), values, count)
    extras = zip(*(columns[position[name]] for name in unknown), strict=True)
    return [
        cls(*args, extra=dict(zip(unknown, extra, strict=True)))
        for args, extra in zip(zip(*converted, strict=True), extras, strict=True)
    ]


def _records_from_rows(
    cls: type[R], header: list[str], rows: list[list[str]]
) -> tuple[list[R], int]:
    """Records row by row through ``from_kite``; rows missing a required value are skipped."""
    out: list[R] = []
    bad = 0
    for row in rows:
        try:
            out.append(cls.from_kite(dict(zip(header, row, strict=True))))
        except DataException:
            bad += 1
    return out, bad


def parse_instruments(csv_text: str | bytes) -> list[Instrument]:
    """Records of an instruments CSV dump (``GET /instruments``).

    Malformed rows (wrong column count, a required value missing or not a number) are
    skipped, counted and logged; unknown columns are kept in ``extra``.
    """
    return _parse_csv(Instrument, csv_text)


def parse_mf_instruments(csv_text: str | bytes) -> list[MFInstrument]:
    """Records of the mutual fund instruments CSV dump (``GET /mf/instruments``)."""
    return _parse_csv(MFInstrument, csv_text)


# -- GTT --------------------------------------------------------------------------------


@attrs.frozen
class GTTResponse(Record):
    """``place_gtt`` / ``modify_gtt`` / ``delete_gtt``: the trigger id."""

    trigger_id: int | None = None


@attrs.frozen
class GTTCondition(Record):
    """What a GTT watches: an instrument and its trigger values."""

    exchange: str | None = None
    tradingsymbol: str | None = None
    instrument_token: int | None = None
    last_price: float | None = None
    trigger_values: tuple[float, ...] | None = None


@attrs.frozen
class GTTOrderOutcome(Record):
    """The order a triggered GTT placed (or why it failed)."""

    status: str | None = None
    order_id: str | None = None
    rejection_reason: str | None = None


@attrs.frozen
class GTTOrderResult(Record):
    """What happened when a GTT leg triggered."""

    account_id: str | None = None
    exchange: str | None = None
    tradingsymbol: str | None = None
    validity: str | None = None
    product: str | None = None
    order_type: str | None = None
    transaction_type: str | None = None
    quantity: int | None = None
    price: float | None = None
    meta: Any = None
    timestamp: datetime.datetime | None = None
    triggered_at: float | None = None
    order_result: GTTOrderOutcome | None = None


@attrs.frozen
class GTTOrder(Record):
    """One order leg of a GTT."""

    exchange: str | None = None
    tradingsymbol: str | None = None
    product: str | None = None
    order_type: str | None = None
    transaction_type: str | None = None
    quantity: int | None = None
    price: float | None = None
    result: GTTOrderResult | None = None


@attrs.frozen
class GTT(Record):
    """A GTT trigger: ``GET /gtt/triggers`` (``get_gtts``) and ``/gtt/triggers/{id}``."""

    id: int | None = None
    user_id: str | None = None
    parent_trigger: Any = None
    type: str | None = None
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None
    expires_at: datetime.datetime | None = None
    status: str | None = None
    condition: GTTCondition | None = None
    orders: tuple[GTTOrder, ...] | None = None
    meta: Any = None


# -- mutual funds -----------------------------------------------------------------------


@attrs.frozen
class MFOrder(Record):
    """``GET /mf/orders`` (``mf_orders``), also one order by id.

    ``exchange_timestamp`` and ``last_price_date`` are date-only on the wire: ``date``.
    """

    order_id: str | None = None
    exchange_order_id: str | None = None
    tradingsymbol: str | None = None
    fund: str | None = None
    status: str | None = None
    status_message: str | None = None
    folio: str | None = None
    variety: str | None = None
    purchase_type: str | None = None
    transaction_type: str | None = None
    settlement_id: str | None = None
    amount: float | None = None
    quantity: float | None = None
    average_price: float | None = None
    last_price: float | None = None
    last_price_date: datetime.date | None = None
    order_timestamp: datetime.datetime | None = None
    exchange_timestamp: datetime.date | None = None
    placed_by: str | None = None
    tag: str | None = None


@attrs.frozen
class MFSIPResponse(Record):
    """``place_mf_sip`` / ``modify_mf_sip`` / ``cancel_mf_sip``: the SIP id."""

    sip_id: str | None = None


@attrs.frozen
class MFSIP(Record):
    """``GET /mf/sips`` (``mf_sips``), also one SIP by id. ``next_instalment`` is a date."""

    sip_id: str | None = None
    tradingsymbol: str | None = None
    fund: str | None = None
    dividend_type: str | None = None
    transaction_type: str | None = None
    status: str | None = None
    sip_type: str | None = None
    sip_reg_num: str | None = None
    created: datetime.datetime | None = None
    frequency: str | None = None
    instalment_amount: float | None = None
    instalments: int | None = None
    instalment_day: int | None = None
    completed_instalments: int | None = None
    pending_instalments: int | None = None
    last_instalment: datetime.datetime | None = None
    next_instalment: datetime.date | None = None
    trigger_price: float | None = None
    step_up: Mapping[str, Any] | None = None
    fund_source: str | None = None
    tag: str | None = None


@attrs.frozen
class MFHolding(Record):
    """``GET /mf/holdings`` (``mf_holdings``)."""

    folio: str | None = None
    fund: str | None = None
    tradingsymbol: str | None = None
    average_price: float | None = None
    last_price: float | None = None
    last_price_date: datetime.date | None = None
    pnl: float | None = None
    quantity: float | None = None
    pledged_quantity: float | None = None


# -- margins and charges ----------------------------------------------------------------


@attrs.frozen
class GST(Record):
    """GST on an order's charges."""

    igst: float | None = None
    cgst: float | None = None
    sgst: float | None = None
    total: float | None = None


@attrs.frozen
class Charges(Record):
    """An order's charges (brokerage, taxes, exchange fees)."""

    transaction_tax: float | None = None
    transaction_tax_type: str | None = None
    exchange_turnover_charge: float | None = None
    sebi_turnover_charge: float | None = None
    brokerage: float | None = None
    stamp_duty: float | None = None
    gst: GST | None = None
    total: float | None = None


@attrs.frozen
class MarginPnl(Record):
    """Realised and unrealised P&L in a margin calculation."""

    realised: float | None = None
    unrealised: float | None = None


@attrs.frozen
class OrderMargins(Record):
    """``POST /margins/orders`` (``order_margins``): margins for one order."""

    type: str | None = None
    tradingsymbol: str | None = None
    exchange: str | None = None
    span: float | None = None
    exposure: float | None = None
    option_premium: float | None = None
    additional: float | None = None
    bo: float | None = None
    cash: float | None = None
    var: float | None = None
    pnl: MarginPnl | None = None
    leverage: float | None = None
    charges: Charges | None = None
    total: float | None = None


@attrs.frozen
class BasketMargins(Record):
    """``POST /margins/basket`` (``basket_order_margins``)."""

    initial: OrderMargins | None = None
    final: OrderMargins | None = None
    orders: tuple[OrderMargins, ...] | None = None
    charges: Charges | None = None


@attrs.frozen
class OrderCharges(Record):
    """``POST /charges/orders`` (``get_virtual_contract_note``): one order's charges."""

    transaction_type: str | None = None
    tradingsymbol: str | None = None
    exchange: str | None = None
    variety: str | None = None
    product: str | None = None
    order_type: str | None = None
    quantity: int | None = None
    price: float | None = None
    charges: Charges | None = None


# -- alerts -----------------------------------------------------------------------------


@attrs.frozen
class AlertBasketItem(Record):
    """One order of an alert-triggers-order basket; ``params`` are the order parameters."""

    id: int | None = None
    tradingsymbol: str | None = None
    exchange: str | None = None
    instrument_token: int | None = None
    weight: int | None = None
    params: Mapping[str, Any] | None = None


@attrs.frozen
class AlertBasket(Record):
    """The orders an ``ato`` alert places when it fires."""

    items: tuple[AlertBasketItem, ...] | None = None


@attrs.frozen
class Alert(Record):
    """``/alerts`` and ``/alerts/{uuid}``: create, get, list, modify."""

    uuid: str | None = None
    type: str | None = None
    user_id: str | None = None
    name: str | None = None
    status: str | None = None
    disabled_reason: str | None = None
    lhs_attribute: str | None = None
    lhs_exchange: str | None = None
    lhs_tradingsymbol: str | None = None
    operator: str | None = None
    rhs_type: str | None = None
    rhs_attribute: str | None = None
    rhs_exchange: str | None = None
    rhs_tradingsymbol: str | None = None
    rhs_constant: float | None = None
    alert_count: int | None = None
    basket: AlertBasket | None = None
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None


@attrs.frozen
class AlertHistoryMeta(Quote):
    """The quote of an instrument when an alert fired."""

    tradingsymbol: str | None = None
    exchange: str | None = None
    volume_tick: int | None = None


@attrs.frozen
class AlertHistory(Record):
    """``GET /alerts/{uuid}/history``: one firing of an alert."""

    uuid: str | None = None
    type: str | None = None
    meta: tuple[AlertHistoryMeta, ...] | None = None
    condition: str | None = None
    created_at: datetime.datetime | None = None
    order_meta: Any = None
