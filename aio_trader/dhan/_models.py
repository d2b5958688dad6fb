"""Typed records for DhanHQ v2 REST answers.

Every record is a frozen, slotted attrs class built by the library's record engine
(:mod:`aio_trader._records`) from Dhan's JSON: ``Record.from_dhan(data)`` and back with
``record.to_dict()`` (Dhan's own key names). Conventions:

- **Pythonic names, Dhan's readable too.** Fields are snake_case (``order_id``,
  ``exchange_segment``, ``availabel_balance``); Dhan's camelCase names, typos included,
  read the same field (``record.orderId``, ``fund.availabelBalance``), and corrected
  spellings are properties where Dhan misspells (``FundLimits.available_balance``).
- **Unknown fields are kept** in ``record.extra`` (and readable as attributes by their
  wire name); a missing field is ``None``; a value that cannot be converted is kept in
  ``extra`` and logged (the field name, never the value).
- **Dates**: ``YYYY-MM-DD HH:MM:SS`` (IST wall clock), ISO 8601 and ``DD/MM/YYYY
  HH:MM:SS`` become aware IST datetimes; ``YYYY-MM-DD`` a ``datetime.date``; Dhan's
  empty values (``""``, ``"NA"``, ``0001-01-01 ...``, ``01/01/1980 00:00:00``) ``None``.
- **Enumerated values stay** ``str`` (compare with :mod:`aio_trader.dhan.constants`).
- Secrets (``TokenInfo.access_token``) are ``repr=False``; ``extra`` is never in a repr.
- A ``data`` that is not a JSON object raises ``BrokerUnavailable`` (``code``
  ``"malformed"``).
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import attrs

from aio_trader import _records
from aio_trader._records import SCALARS, Dumper, Loader, load_with
from aio_trader._time import IST
from aio_trader.errors import BrokerError, BrokerUnavailable

__all__ = [
    "Candle",
    "ConditionalTrigger",
    "ConsentResponse",
    "DepthLevel",
    "EdisForm",
    "EdisStatus",
    "ExitAllResponse",
    "ForeverOrder",
    "FundLimits",
    "Holding",
    "Instrument",
    "IpInfo",
    "IpResponse",
    "KillSwitch",
    "LedgerEntry",
    "LtpQuote",
    "MarginCalculation",
    "MultiMargin",
    "Ohlc",
    "OhlcQuote",
    "OptionChain",
    "OptionData",
    "OptionGreeks",
    "OptionStrike",
    "Order",
    "OrderResponse",
    "PnlExit",
    "Position",
    "Profile",
    "Quote",
    "QuoteDepth",
    "Record",
    "SuperOrder",
    "SuperOrderLeg",
    "TokenInfo",
    "Trade",
    "TriggerResponse",
    "parse_candles",
    "parse_dhan_datetime",
    "parse_instruments",
    "parse_quotes",
]

R = TypeVar("R", bound="Record")

#: The metadata key naming a field's wire name when it is not the camelCase of its name.
WIRE = "aio_trader.dhan.wire"

_EMPTY_TIMES = frozenset({"", "NA", "0001-01-01 00:00:00", "01/01/1980 00:00:00", "0"})


def parse_dhan_datetime(value: str) -> datetime.datetime | None:
    """An aware IST datetime from Dhan's ``YYYY-MM-DD HH:MM:SS`` (IST), ISO 8601 (with
    or without an offset, fractions allowed) or ``DD/MM/YYYY HH:MM:SS``; Dhan's empty
    values give None. Raises ``ValueError`` for anything else."""
    text = value.strip()
    if text in _EMPTY_TIMES or text.startswith("0001-01-01"):
        return None
    if len(text) == 19 and text[2] == "/":
        return datetime.datetime.strptime(text, "%d/%m/%Y %H:%M:%S").replace(tzinfo=IST)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    return parsed.replace(tzinfo=IST) if parsed.tzinfo is None else parsed.astimezone(IST)


def parse_dhan_date(value: str) -> datetime.date | None:
    """A date from ``YYYY-MM-DD`` (or the date of a date-time); Dhan's empty values: None."""
    text = value.strip()
    if len(text) == 10 and text[4] == "-":
        return datetime.date.fromisoformat(text)
    parsed = parse_dhan_datetime(text)
    return None if parsed is None else parsed.date()


def _dump_datetime(value: datetime.datetime) -> str:
    aware = value.replace(tzinfo=IST) if value.tzinfo is None else value.astimezone(IST)
    return aware.strftime("%Y-%m-%d %H:%M:%S")


def _dump_date(value: datetime.date) -> str:
    return value.isoformat()


_SCALARS: Mapping[Any, tuple[Loader, Dumper | None]] = {
    **SCALARS,
    datetime.datetime: (load_with(parse_dhan_datetime), _dump_datetime),
    datetime.date: (load_with(parse_dhan_date), _dump_date),
}

_UPPER = re.compile(r"(?<=[a-z0-9])([A-Z])")


@functools.cache
def snake(name: str) -> str:
    """``orderId`` -> ``order_id``, ``availabelBalance`` -> ``availabel_balance``,
    ``primaryIP`` -> ``primary_ip`` (Dhan's camelCase as a Python name)."""
    return _UPPER.sub(r"_\1", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class _Malformed(BrokerUnavailable):
    """An answer that is not what the record needs (raised as ``BrokerUnavailable``)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message, status_code=status_code, code="malformed", broker="dhan")


@attrs.frozen
class Record(_records.Record):
    """Base of every Dhan record: ``from_dhan`` (Dhan's JSON -> record), ``to_dict`` (back,
    with Dhan's key names). Dhan's camelCase names read the snake_case fields; the wire
    names of unknown fields read ``extra``."""

    _scalars: ClassVar[Mapping[Any, tuple[Loader, Dumper | None]]] = _SCALARS
    _malformed: ClassVar[type[BrokerError]] = _Malformed
    _wire: ClassVar[str] = "Dhan"
    #: False for records whose wire keys are already snake_case (market quotes).
    _camel: ClassVar[bool] = True

    @classmethod
    def _names(cls) -> tuple[dict[str, str], dict[str, str]]:
        """(wire name -> field name, field name -> wire name), built once per class."""
        cached = cls.__dict__.get("_names_cache")
        if cached is None:
            to_wire = {}
            for field in attrs.fields(cls):
                if field.name == "extra":
                    continue
                wire = field.metadata.get(WIRE) or (
                    _camel(field.name) if cls._camel else field.name
                )
                to_wire[field.name] = wire
            cached = ({wire: name for name, wire in to_wire.items()}, to_wire)
            type.__setattr__(cls, "_names_cache", cached)
        names: tuple[dict[str, str], dict[str, str]] = cached
        return names

    @classmethod
    def from_data(cls: type[R], data: Mapping[str, Any]) -> R:
        if not isinstance(data, Mapping):
            raise cls._bad(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
        from_wire = cls._names()[0]
        renamed = {from_wire.get(key, key): value for key, value in data.items()}
        return super().from_data.__func__(cls, renamed)  # type: ignore[attr-defined,no-any-return]

    @classmethod
    def from_dhan(cls: type[R], data: Mapping[str, Any]) -> R:
        """The record for one JSON object of Dhan's answer."""
        return cls.from_data(data)

    @classmethod
    def from_dhan_list(cls: type[R], data: Sequence[Mapping[str, Any]]) -> list[R]:
        """Records for a JSON array of objects (an order book ...); ``None`` or ``{}``
        (Dhan's empty answers) give ``[]``."""
        if data is None or (isinstance(data, Mapping) and not data):
            return []
        return cls.from_list(data)

    def to_dict(self) -> dict[str, Any]:
        """This record with Dhan's key names (``extra`` merged back)."""
        to_wire = type(self)._names()[1]
        return {to_wire.get(key, key): value for key, value in super().to_dict().items()}

    def __getattr__(self, name: str) -> Any:
        # Called only when the normal lookup fails: Dhan's camelCase names, then extra.
        if name.startswith("__") or name in ("extra", "_names_cache", "_plan_cache"):
            raise AttributeError(name)
        field = snake(name)
        if field != name and field in attrs.fields_dict(type(self)):
            return getattr(self, field)
        extra = object.__getattribute__(self, "extra")
        if name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")


# -- orders -------------------------------------------------------------------------------


@attrs.frozen
class OrderResponse(Record):
    """Place / modify / cancel (and slice, super, forever) answers: the id and status."""

    order_id: str | None = None
    order_status: str | None = None


@attrs.frozen
class Order(Record):
    """One order (``GET /orders``, ``/orders/{id}``, ``/orders/external/{correlationId}``)."""

    dhan_client_id: str | None = None
    order_id: str | None = None
    exchange_order_id: str | None = None
    correlation_id: str | None = None
    order_status: str | None = None
    transaction_type: str | None = None
    exchange_segment: str | None = None
    product_type: str | None = None
    order_type: str | None = None
    validity: str | None = None
    trading_symbol: str | None = None
    security_id: str | None = None
    quantity: int | None = None
    disclosed_quantity: int | None = None
    price: float | None = None
    trigger_price: float | None = None
    after_market_order: bool | None = None
    bo_profit_value: float | None = None
    bo_stop_loss_value: float | None = None
    leg_name: str | None = None
    create_time: datetime.datetime | None = None
    update_time: datetime.datetime | None = None
    exchange_time: datetime.datetime | None = None
    drv_expiry_date: datetime.date | None = None
    drv_option_type: str | None = None
    drv_strike_price: float | None = None
    oms_error_code: str | None = None
    oms_error_description: str | None = None
    algo_id: str | None = None
    remaining_quantity: int | None = None
    average_traded_price: float | None = None
    filled_qty: int | None = None

    @property
    def status(self) -> str | None:
        """``order_status`` (the name Kite's records use)."""
        return self.order_status


@attrs.frozen
class SuperOrderLeg(Record):
    """A target or stop-loss leg of a super order."""

    order_id: str | None = None
    leg_name: str | None = None
    transaction_type: str | None = None
    #: Dhan spells it ``totalQuatity``.
    total_quatity: int | None = None
    remaining_quantity: int | None = None
    triggered_quantity: int | None = None
    price: float | None = None
    order_status: str | None = None
    trailing_jump: float | None = None

    @property
    def total_quantity(self) -> int | None:
        return self.total_quatity


@attrs.frozen
class SuperOrder(Order):
    """A super order (``GET /super/orders``): the entry order and its legs."""

    ltp: float | None = None
    leg_details: tuple[SuperOrderLeg, ...] | None = None


@attrs.frozen
class ForeverOrder(Record):
    """A forever (GTT / OCO) order leg (``GET /forever/orders``)."""

    dhan_client_id: str | None = None
    order_id: str | None = None
    order_status: str | None = None
    transaction_type: str | None = None
    exchange_segment: str | None = None
    product_type: str | None = None
    order_type: str | None = None
    trading_symbol: str | None = None
    security_id: str | None = None
    quantity: int | None = None
    price: float | None = None
    trigger_price: float | None = None
    leg_name: str | None = None
    create_time: datetime.datetime | None = None
    update_time: datetime.datetime | None = None
    exchange_time: datetime.datetime | None = None
    drv_expiry_date: datetime.date | None = None
    drv_option_type: str | None = None
    drv_strike_price: float | None = None


@attrs.frozen
class TriggerResponse(Record):
    """Place / modify / delete of a conditional trigger."""

    alert_id: str | None = None
    alert_status: str | None = None


@attrs.frozen
class ConditionalTrigger(Record):
    """A conditional trigger (``/alerts/orders``): its condition and the orders it places
    (kept as Dhan's JSON objects)."""

    alert_id: str | None = None
    alert_status: str | None = None
    created_time: datetime.datetime | None = None
    triggered_time: datetime.datetime | None = None
    last_price: float | None = None
    condition: Mapping[str, Any] | None = None
    orders: tuple[Mapping[str, Any], ...] | None = None


# -- trades, statements ---------------------------------------------------------------------


@attrs.frozen
class Trade(Record):
    """One trade (``/trades``, ``/trades/{orderId}``, ``/trades/{from}/{to}/{page}``)."""

    dhan_client_id: str | None = None
    order_id: str | None = None
    exchange_order_id: str | None = None
    exchange_trade_id: str | None = None
    transaction_type: str | None = None
    exchange_segment: str | None = None
    product_type: str | None = None
    order_type: str | None = None
    trading_symbol: str | None = None
    custom_symbol: str | None = None
    security_id: str | None = None
    traded_quantity: int | None = None
    traded_price: float | None = None
    isin: str | None = None
    instrument: str | None = None
    sebi_tax: float | None = None
    stt: float | None = None
    brokerage_charges: float | None = None
    service_tax: float | None = None
    exchange_transaction_charges: float | None = None
    stamp_duty: float | None = None
    create_time: datetime.datetime | None = None
    update_time: datetime.datetime | None = None
    exchange_time: datetime.datetime | None = None
    drv_expiry_date: datetime.date | None = None
    drv_option_type: str | None = None
    drv_strike_price: float | None = None


@attrs.frozen
class LedgerEntry(Record):
    """One ledger line (``GET /ledger``); Dhan sends amounts as strings."""

    dhan_client_id: str | None = None
    narration: str | None = None
    voucherdate: str | None = None
    exchange: str | None = None
    voucherdesc: str | None = None
    vouchernumber: str | None = None
    debit: float | None = None
    credit: float | None = None
    runbal: float | None = None


# -- portfolio, funds ------------------------------------------------------------------------


@attrs.frozen
class Position(Record):
    """One position (``GET /positions``)."""

    dhan_client_id: str | None = None
    trading_symbol: str | None = None
    security_id: str | None = None
    position_type: str | None = None
    exchange_segment: str | None = None
    product_type: str | None = None
    buy_avg: float | None = None
    cost_price: float | None = None
    buy_qty: int | None = None
    sell_avg: float | None = None
    sell_qty: int | None = None
    net_qty: int | None = None
    realized_profit: float | None = None
    unrealized_profit: float | None = None
    rbi_reference_rate: float | None = None
    multiplier: int | None = None
    carry_forward_buy_qty: int | None = None
    carry_forward_sell_qty: int | None = None
    carry_forward_buy_value: float | None = None
    carry_forward_sell_value: float | None = None
    day_buy_qty: int | None = None
    day_sell_qty: int | None = None
    day_buy_value: float | None = None
    day_sell_value: float | None = None
    drv_expiry_date: datetime.date | None = None
    drv_option_type: str | None = None
    drv_strike_price: float | None = None
    cross_currency: bool | None = None


@attrs.frozen
class Holding(Record):
    """One demat holding (``GET /holdings``)."""

    exchange: str | None = None
    trading_symbol: str | None = None
    security_id: str | None = None
    isin: str | None = None
    total_qty: int | None = None
    dp_qty: int | None = None
    t1_qty: int | None = None
    available_qty: int | None = None
    collateral_qty: int | None = None
    avg_cost_price: float | None = None
    last_traded_price: float | None = None


@attrs.frozen
class FundLimits(Record):
    """``GET /fundlimit``. Dhan spells two keys ``availabelBalance`` and
    ``receiveableAmount``: those names (and ``availabel_balance``) read them, and so do the
    corrected ``available_balance`` / ``receivable_amount``."""

    dhan_client_id: str | None = None
    availabel_balance: float | None = None
    sod_limit: float | None = None
    collateral_amount: float | None = None
    receiveable_amount: float | None = None
    utilized_amount: float | None = None
    blocked_payout_amount: float | None = None
    withdrawable_balance: float | None = None

    @property
    def available_balance(self) -> float | None:
        return self.availabel_balance

    @property
    def receivable_amount(self) -> float | None:
        return self.receiveable_amount


@attrs.frozen
class MarginCalculation(Record):
    """``POST /margincalculator``."""

    total_margin: float | None = None
    span_margin: float | None = None
    exposure_margin: float | None = None
    available_balance: float | None = None
    variable_margin: float | None = None
    insufficient_balance: float | None = None
    brokerage: float | None = None
    leverage: str | None = None


@attrs.frozen
class MultiMargin(Record):
    """``POST /margincalculator/multi`` (snake_case keys on the wire; amounts as strings)."""

    _camel: ClassVar[bool] = False

    total_margin: float | None = None
    span_margin: float | None = None
    exposure_margin: float | None = None
    equity_margin: float | None = None
    fo_margin: float | None = None
    commodity_margin: float | None = None
    currency: float | None = None
    hedge_benefit: float | None = None


# -- trader's controls, profile, IP, EDIS, sessions ---------------------------------------------


@attrs.frozen
class KillSwitch(Record):
    """``/killswitch`` (POST: a message in ``kill_switch_status``; GET: ACTIVATE/DEACTIVATE)."""

    dhan_client_id: str | None = None
    kill_switch_status: str | None = None


@attrs.frozen
class PnlExit(Record):
    """``/pnlExit``: the P&L based exit in force (or the answer to setting/stopping it)."""

    _camel: ClassVar[bool] = True

    pnl_exit_status: str | None = None
    message: str | None = None
    profit: float | None = None
    loss: float | None = None
    product_type: tuple[str, ...] | None = None
    enable_kill_switch: bool | None = attrs.field(
        default=None, metadata={WIRE: "enable_kill_switch"}
    )


@attrs.frozen
class ExitAllResponse(Record):
    """``DELETE /positions`` (exit every position and order)."""

    status: str | None = None
    message: str | None = None


@attrs.frozen
class Profile(Record):
    """``GET /profile``."""

    dhan_client_id: str | None = None
    token_validity: str | None = None
    active_segment: str | None = None
    ddpi: str | None = None
    mtf: str | None = None
    data_plan: str | None = None
    data_validity: str | None = None


@attrs.frozen
class IpInfo(Record):
    """``GET /ip/getIP``."""

    primary_ip: str | None = attrs.field(default=None, metadata={WIRE: "primaryIP"})
    secondary_ip: str | None = attrs.field(default=None, metadata={WIRE: "secondaryIP"})
    modify_date_primary: str | None = None
    modify_date_secondary: str | None = None


@attrs.frozen
class IpResponse(Record):
    """``POST /ip/setIP`` / ``PUT /ip/modifyIP``."""

    message: str | None = None
    status: str | None = None


@attrs.frozen
class EdisForm(Record):
    """``POST /edis/form``: the HTML form to open in a browser."""

    dhan_client_id: str | None = None
    edis_form_html: str | None = None


@attrs.frozen
class EdisStatus(Record):
    """``GET /edis/inquire/{isin}``."""

    client_id: str | None = None
    isin: str | None = None
    total_qty: int | None = None
    aprvd_qty: int | None = None
    status: str | None = None
    remarks: str | None = None


@attrs.frozen
class TokenInfo(Record):
    """A new access token (``generateAccessToken``, ``consumeApp-consent``, ``RenewToken``)."""

    dhan_client_id: str | None = None
    dhan_client_name: str | None = None
    dhan_client_ucc: str | None = None
    given_power_of_attorney: bool | None = None
    access_token: str | None = attrs.field(default=None, repr=False)
    expiry_time: datetime.datetime | None = None


@attrs.frozen
class ConsentResponse(Record):
    """``generate-consent``: the ``consent_app_id`` of the browser login."""

    consent_app_id: str | None = None
    consent_app_status: str | None = None
    status: str | None = None


# -- market data ----------------------------------------------------------------------------


@attrs.frozen
class Ohlc(Record):
    _camel: ClassVar[bool] = False

    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None


@attrs.frozen
class LtpQuote(Record):
    """``/marketfeed/ltp``: one instrument."""

    _camel: ClassVar[bool] = False

    last_price: float | None = None


@attrs.frozen
class OhlcQuote(Record):
    """``/marketfeed/ohlc``: one instrument."""

    _camel: ClassVar[bool] = False

    last_price: float | None = None
    ohlc: Ohlc | None = None


@attrs.frozen
class DepthLevel(Record):
    _camel: ClassVar[bool] = False

    quantity: int | None = None
    orders: int | None = None
    price: float | None = None


@attrs.frozen
class QuoteDepth(Record):
    _camel: ClassVar[bool] = False

    buy: tuple[DepthLevel, ...] | None = None
    sell: tuple[DepthLevel, ...] | None = None


@attrs.frozen
class Quote(Record):
    """``/marketfeed/quote``: one instrument, with 5 levels of depth."""

    _camel: ClassVar[bool] = False

    last_price: float | None = None
    last_quantity: int | None = None
    last_trade_time: datetime.datetime | None = None
    average_price: float | None = None
    buy_quantity: int | None = None
    sell_quantity: int | None = None
    volume: int | None = None
    net_change: float | None = None
    lower_circuit_limit: float | None = None
    upper_circuit_limit: float | None = None
    oi: int | None = None
    oi_day_high: int | None = None
    oi_day_low: int | None = None
    ohlc: Ohlc | None = None
    depth: QuoteDepth | None = None


Q = TypeVar("Q", bound=Record)


def parse_quotes(cls: type[Q], data: Any) -> dict[tuple[str, str], Q]:
    """``{"data": {"NSE_EQ": {"11536": {...}}}, "status": ...}`` (or the inner map) as
    ``{(segment, security_id): record}``."""
    if isinstance(data, Mapping) and isinstance(data.get("data"), Mapping):
        data = data["data"]
    if not isinstance(data, Mapping):
        raise _Malformed("expected a JSON object of quotes", status_code=200)
    out: dict[tuple[str, str], Q] = {}
    for segment, rows in data.items():
        if not isinstance(rows, Mapping):
            raise _Malformed(f"expected a JSON object of quotes for {segment}", status_code=200)
        for security, row in rows.items():
            out[(str(segment), str(security))] = cls.from_data(row)
    return out


@attrs.frozen
class Candle:
    """One candle (``/charts/historical``, ``/charts/intraday``): ``date`` is aware IST."""

    date: datetime.datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    oi: int | None = None


def parse_candles(data: Any) -> list[Candle]:
    """Dhan's columnar candles (``open``, ``high``, ``low``, ``close``, ``volume``,
    ``timestamp`` epoch seconds, ``open_interest``) as rows."""
    if isinstance(data, Mapping) and isinstance(data.get("data"), Mapping):
        data = data["data"]
    if not isinstance(data, Mapping):
        raise _Malformed("expected Dhan's candle columns", status_code=200)
    if not data:
        return []
    try:
        times = data["timestamp"]
        columns = [data[name] for name in ("open", "high", "low", "close", "volume")]
        oi = data.get("open_interest")
        rows = []
        for index, stamp in enumerate(times):
            moment = datetime.datetime.fromtimestamp(float(stamp), IST)
            rows.append(
                Candle(
                    moment,
                    float(columns[0][index]),
                    float(columns[1][index]),
                    float(columns[2][index]),
                    float(columns[3][index]),
                    int(columns[4][index]),
                    int(oi[index]) if oi else None,
                )
            )
    except (KeyError, IndexError, TypeError, ValueError, OverflowError):
        raise _Malformed("malformed candle columns from Dhan", status_code=200) from None
    return rows


@attrs.frozen
class OptionGreeks(Record):
    _camel: ClassVar[bool] = False

    delta: float | None = None
    theta: float | None = None
    gamma: float | None = None
    vega: float | None = None


@attrs.frozen
class OptionData(Record):
    """One side (call or put) of a strike in the option chain."""

    _camel: ClassVar[bool] = False

    security_id: str | None = None
    last_price: float | None = None
    average_price: float | None = None
    implied_volatility: float | None = None
    oi: int | None = None
    previous_oi: int | None = None
    previous_close_price: float | None = None
    previous_volume: int | None = None
    volume: int | None = None
    top_ask_price: float | None = None
    top_ask_quantity: int | None = None
    top_bid_price: float | None = None
    top_bid_quantity: int | None = None
    greeks: OptionGreeks | None = None


@attrs.frozen
class OptionStrike(Record):
    _camel: ClassVar[bool] = False

    ce: OptionData | None = None
    pe: OptionData | None = None


@attrs.frozen
class OptionChain:
    """``POST /optionchain``: the underlying's price and the strikes (by strike price)."""

    last_price: float | None
    strikes: Mapping[float, OptionStrike]

    @classmethod
    def from_dhan(cls, data: Any) -> OptionChain:
        if isinstance(data, Mapping) and isinstance(data.get("data"), Mapping):
            data = data["data"]
        if not isinstance(data, Mapping) or not isinstance(data.get("oc", {}), Mapping):
            raise _Malformed("expected Dhan's option chain", status_code=200)
        try:
            strikes = {
                float(strike): OptionStrike.from_data(row)
                for strike, row in data.get("oc", {}).items()
            }
            last = data.get("last_price")
            last_price = None if last is None else float(last)
        except (TypeError, ValueError):
            raise _Malformed("malformed option chain from Dhan", status_code=200) from None
        return cls(last_price, dict(sorted(strikes.items())))


# -- instruments -----------------------------------------------------------------------------

#: Column aliases of the compact (``SEM_*``) and detailed scrip masters -> field names.
_INSTRUMENT_COLUMNS: Mapping[str, str] = {
    "SEM_EXM_EXCH_ID": "exchange",
    "EXCH_ID": "exchange",
    "SEM_SEGMENT": "segment",
    "SEGMENT": "segment",
    "SEM_SMST_SECURITY_ID": "security_id",
    "SECURITY_ID": "security_id",
    "SEM_INSTRUMENT_NAME": "instrument",
    "INSTRUMENT": "instrument",
    "SEM_TRADING_SYMBOL": "trading_symbol",
    "SYMBOL_NAME": "trading_symbol",
    "SEM_LOT_UNITS": "lot_size",
    "LOT_SIZE": "lot_size",
    "SEM_CUSTOM_SYMBOL": "custom_symbol",
    "DISPLAY_NAME": "custom_symbol",
    "SEM_EXPIRY_DATE": "expiry_date",
    "SM_EXPIRY_DATE": "expiry_date",
    "SEM_STRIKE_PRICE": "strike_price",
    "STRIKE_PRICE": "strike_price",
    "SEM_OPTION_TYPE": "option_type",
    "OPTION_TYPE": "option_type",
    "SEM_TICK_SIZE": "tick_size",
    "TICK_SIZE": "tick_size",
    "SEM_SERIES": "series",
    "SERIES": "series",
    "SM_SYMBOL_NAME": "symbol_name",
    "UNDERLYING_SYMBOL": "symbol_name",
}


@attrs.frozen
class Instrument(Record):
    """One row of a scrip master (compact, detailed, or ``/instrument/{segment}``); other
    columns stay in ``extra`` under their CSV names."""

    _camel: ClassVar[bool] = False

    exchange: str | None = None
    segment: str | None = None
    security_id: str | None = None
    instrument: str | None = None
    trading_symbol: str | None = None
    lot_size: float | None = None
    custom_symbol: str | None = None
    expiry_date: datetime.datetime | None = None
    strike_price: float | None = None
    option_type: str | None = None
    tick_size: float | None = None
    series: str | None = None
    symbol_name: str | None = None


def parse_instruments(text: str) -> list[Instrument]:
    """Rows of a scrip-master CSV (either layout), as records."""
    reader = csv.DictReader(io.StringIO(text))
    rows = []
    for row in reader:
        renamed = {_INSTRUMENT_COLUMNS.get(key, key): value for key, value in row.items() if key}
        rows.append(Instrument.from_data(renamed))
    return rows
