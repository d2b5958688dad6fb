"""The sandbox's configuration (frozen) and its switchable faults (mutable at runtime).

Broker-neutral: ``SandboxConfig(broker="kite")`` names the dialect; what a broker decides
(its rate limits, its feed limits) is the dialect's unless a field here overrides it.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import pkgutil
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from aio_trader._instruments import Instrument, InstrumentIndex
from aio_trader.sandbox._dialect import load_dialect

__all__ = ["RULE_NAMES", "Faults", "OrderRules", "SandboxConfig", "brokers"]


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise ValueError(f"{attribute.name} must be a finite number > 0 or None, got {value!r}")


@attrs.define
class Faults:
    """Faults the sandbox injects; change the fields at any time (``sb.faults.latency = 0.2``).

    - ``http_5xx_burst``: the next N REST calls answer 503 (NetworkException).
    - ``latency``: seconds added before every REST answer (0 to 60).
    - ``lose_order_reply``: order placement books the order, then the connection is dropped
      before the body is sent (the client sees a protocol/read error, never a status).
    - ``ws_drop_every``: the ticker drops every connection each N seconds (None: never).
    - ``ws_malformed_binary`` / ``ws_malformed_text``: the ticker sends broken frames.
    - ``ws_silence``: the ticker sends nothing at all, not even heartbeats.
    - ``session_expired``: every access token and enctoken answers 403 (Kite:
      TokenException; REST and WebSocket handshake) until a new login (``POST
      /session/token``) or this is reset.
    """

    http_5xx_burst: int = attrs.field(default=0, validator=_non_negative)
    latency: float = attrs.field(default=0.0, validator=[_non_negative, attrs.validators.le(60.0)])
    lose_order_reply: bool = False
    ws_drop_every: float | None = attrs.field(default=None, validator=_positive_or_none)
    ws_malformed_binary: bool = False
    ws_malformed_text: bool = False
    ws_silence: bool = False
    session_expired: bool = False

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply ``{field: value}`` changes (from JSON); raises ValueError on unknown or bad ones.

        Atomic: nothing changes unless every value is valid.
        """
        fields = attrs.fields_dict(Faults)
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(unknown)}")
        values = attrs.asdict(self)
        for name, value in changes.items():
            values[name] = _coerce(name, value)
        checked = Faults(**values)  # runs the validators
        for name in changes:
            setattr(self, name, getattr(checked, name))


_BOOLS = frozenset(
    {
        "lose_order_reply",
        "ws_malformed_binary",
        "ws_malformed_text",
        "ws_silence",
        "session_expired",
    }
)


def _coerce(name: str, value: Any) -> Any:
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be a boolean")
        return value
    if name == "http_5xx_burst":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer")
        return value
    if value is None and name == "ws_drop_every":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    return float(value)


@attrs.frozen
class OrderRules:
    """The order rules since April 2026 (the exchanges' retail-algo rules), each switchable.

    All on by default; ``OrderRules.before_2026()`` switches every one off (Kite as it was:
    Kite's own integration tests and older programs place MARKET orders without
    protection). ``SandboxConfig(rules=...)`` also takes their names: ``"2026"`` (the
    default) and ``"before-2026"`` (``OrderRules.named``).

    - ``market_protection``: MARKET and SL-M orders need ``market_protection`` (-1: automatic,
      or a percentage above 0 up to 100); without it, or with 0: 400 (Kite: InputException).
    - ``strict_order_rate``: at most 10 order requests in any 1 s window, with no tolerance
      (off: the window is ``state.RATE_LIMIT_TOLERANCE`` shorter, as for the other groups).
    - ``mcx_no_ioc``: MCX orders with ``validity=IOC`` are refused.
    - ``max_slices``: ``autoslice`` creates at most this many slices (None: no cap).
    - ``max_modifications``: an order can be modified at most this many times (None: no cap).
    """

    market_protection: bool = True
    strict_order_rate: bool = True
    mcx_no_ioc: bool = True
    max_slices: int | None = attrs.field(default=10, validator=_positive_or_none)
    max_modifications: int | None = attrs.field(default=25, validator=_positive_or_none)

    @classmethod
    def before_2026(cls) -> OrderRules:
        """Every April-2026 rule off."""
        return cls(
            market_protection=False,
            strict_order_rate=False,
            mcx_no_ioc=False,
            max_slices=None,
            max_modifications=None,
        )

    @classmethod
    def named(cls, name: str) -> OrderRules:
        """The rules called ``name``: ``"2026"`` (every rule on) or ``"before-2026"`` (off).

        Raises ValueError for any other name.
        """
        if name == "2026":
            return cls()
        if name == "before-2026":
            return cls.before_2026()
        raise ValueError(f"unknown order rules {name!r}: one of {', '.join(RULE_NAMES)}")


#: The names ``OrderRules.named`` (and ``SandboxConfig(rules=...)``) accept.
RULE_NAMES: Final = ("2026", "before-2026")


def _rules(value: OrderRules | str) -> OrderRules:
    """``rules`` as an ``OrderRules`` (a name goes through ``OrderRules.named``)."""
    if isinstance(value, OrderRules):
        return value
    if isinstance(value, str):
        return OrderRules.named(value)
    raise TypeError(f"rules must be an OrderRules or a name, got {type(value).__name__}")


_DIALECT_NAME: Final = re.compile(r"[a-z][a-z0-9]*")


@functools.cache
def brokers() -> tuple[str, ...]:
    """The brokers the sandbox speaks: one dialect package ``aio_trader/sandbox/_<name>/``
    each (found without importing them), sorted."""
    here = [str(Path(__file__).parent)]
    return tuple(
        sorted(
            info.name[1:]
            for info in pkgutil.iter_modules(here)
            if info.ispkg and info.name.startswith("_") and _DIALECT_NAME.fullmatch(info.name[1:])
        )
    )


def _check_broker(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or value not in brokers():
        raise ValueError(f"unknown broker {value!r}: the sandbox speaks {', '.join(brokers())}")


def _positive_int_or_none(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValueError(f"{attribute.name} must be an integer > 0 or None, got {value!r}")


def _ip_tuple(value: Any) -> tuple[str, ...]:
    """``order_ips`` as a tuple of checked addresses (a single string is one address)."""
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        ipaddress.ip_address(item)  # ValueError for anything that is not an address
    return tuple(str(item) for item in items)


def _instrument_list(value: Any) -> InstrumentIndex | tuple[Instrument, ...] | None:
    """``instruments`` as given (an ``InstrumentIndex`` keeps its broker tag), or a tuple."""
    if value is None or isinstance(value, InstrumentIndex):
        return value
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
        raise TypeError(
            f"instruments must be an InstrumentIndex or Instruments, got {type(value).__name__}"
        )
    return tuple(value)


def _instruments_repr(value: InstrumentIndex | tuple[Instrument, ...] | None) -> str:
    return "None" if value is None else f"<{len(value)} instruments>"


@attrs.frozen
class SandboxConfig:
    """How a sandbox starts. Every field has a working default; secrets are hidden from repr.

    ``broker`` names the dialect the sandbox speaks (``"kite"``, the default; ``brokers()``
    lists them); any other name is a ValueError here, before anything starts. ``rules``
    takes an ``OrderRules`` or its name (``"before-2026"``: the rules as they were).
    ``max_tokens_per_ws``, ``max_ws_per_api_key`` and ``orders_per_minute`` left at None
    are the broker's own (Kite: 3000 instruments per connection, 3 connections per api_key,
    200 order requests per minute); a running sandbox's ``state.config`` has them filled in.

    ``market_interval`` / ``tick_interval`` are seconds (``market_interval=None`` stops the
    market clock: prices move only through ``Sandbox.step_market``). ``rate_limit_scale``
    multiplies the request counts of the broker's limits (2.0: 2 quote calls per second, 20 order
    calls per second...; at least 1 per window), as ``kite.constants.rate_limits`` does. Each
    window is the broker's less a fixed 0.05 s tolerance for the delay between a client's
    send and the handler (``state.RATE_LIMIT_TOLERANCE``): 1 s windows admit about 5 % more
    than the broker's rate, minute and day windows are the broker's to within 0.05 s.

    ``instruments`` (an ``InstrumentIndex`` of the broker, e.g. ``await
    kite.instrument_index()`` of a real client, or neutral ``Instrument`` records) replaces
    the broker's shipped instrument list: the market then knows exactly these, under the
    broker's own keys (Kite: the instrument token; Dhan: ``(exchange_segment,
    security_id)``), so a real feed's ticks and orders by trading symbol find them. An
    instrument also in the shipped list starts its walk at the shipped price, any other at
    ``market.DEFAULT_BASE_PRICE`` (100.0; a market following quotes, as paper trading's,
    takes each price from the instrument's first tick instead). ``ValueError`` here for an
    index of another broker, an empty list or a key the broker does not use; ``TypeError``
    for anything but ``Instrument`` records.
    """

    #: the broker whose dialect the sandbox speaks (``brokers()``: the ones available).
    broker: str = attrs.field(default="kite", validator=_check_broker)
    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = "sandbox_api_key"
    api_secret: str = attrs.field(default="sandbox_api_secret", repr=False)
    access_token: str = attrs.field(default="sandbox_access_token", repr=False)
    refresh_token: str = attrs.field(default="sandbox_refresh_token", repr=False)
    enctoken: str = attrs.field(default="sandbox_enctoken", repr=False)
    user_id: str = "AB1234"
    #: the account's client id where the broker names one (Dhan's ``dhanClientId``).
    client_id: str = "1000000001"
    user_name: str = "Sandbox User"
    password: str = attrs.field(default="sandbox-password", repr=False)
    #: the account PIN of a broker's PIN + TOTP token request (Dhan's generateAccessToken).
    pin: str = attrs.field(default="123456", repr=False)
    #: base32 TOTP secret for the Kite Web two-factor step (checked with pyotp when installed).
    totp_secret: str = attrs.field(default="AIOTRADERSANDBOXAIOTRADERSANDBOX", repr=False)
    #: a static two-factor value accepted as well (for users without pyotp); None: TOTP only.
    twofa_value: str | None = attrs.field(default=None, repr=False)
    #: where ``/connect/login`` redirects with ``request_token=...&status=success``.
    redirect_url: str = "http://127.0.0.1/redirect"
    seed: int = 0
    tick_interval: float = attrs.field(default=0.25, validator=_non_negative)
    market_interval: float | None = attrs.field(default=0.25, validator=_positive_or_none)
    rate_limit_scale: float = attrs.field(default=1.0)
    #: instruments one feed connection may subscribe (None: the broker's limit).
    max_tokens_per_ws: int | None = attrs.field(default=None, validator=_positive_int_or_none)
    #: open feed connections per api_key (None: the broker's limit).
    max_ws_per_api_key: int | None = attrs.field(default=None, validator=_positive_int_or_none)
    #: opening cash per segment (equity, commodity) for margins and order checks.
    opening_cash: float = 1_000_000.0
    #: the April-2026 order rules, or their name (``"before-2026"``: all off).
    rules: OrderRules = attrs.field(factory=OrderRules, converter=_rules)
    #: order requests per minute per account (None: the broker's; Kite publishes 200, later
    #: reports say 400).
    orders_per_minute: int | None = attrs.field(default=None, validator=_positive_int_or_none)
    #: static-IP whitelist for the order endpoints (place, modify, cancel, exit): requests from
    #: other client addresses answer 403 (Kite: PermissionException). Empty (the default): off.
    order_ips: tuple[str, ...] = attrs.field(default=(), converter=_ip_tuple)
    #: a recording (Parquet, ``aio_trader.gateway.Recorder``) the feed serves instead of
    #: the simulated market, through the dialect's own feed socket (Kite's:
    #: ``sandbox/_kite/_replay.py``, Dhan's market feed: ``sandbox/_dhan/_replay.py``);
    #: None: the market ticks.
    replay: str | None = None
    faults: Faults = attrs.field(factory=Faults)
    #: the instruments the market knows instead of the broker's shipped list (None: those).
    instruments: InstrumentIndex | tuple[Instrument, ...] | None = attrs.field(
        default=None, converter=_instrument_list, repr=_instruments_repr, eq=False
    )

    @instruments.validator
    def _check_instruments(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, InstrumentIndex) and value.broker and value.broker != self.broker:
            raise ValueError(
                f"instruments is {value.broker}'s index: a {self.broker} sandbox needs its "
                f"broker's (await client.instrument_index() of a {self.broker} client)"
            )
        if not len(value):
            raise ValueError("instruments is empty: the sandbox would know no instrument")
        dialect = load_dialect(self.broker)
        bad = []
        for instrument in value:
            if not isinstance(instrument, Instrument):
                raise TypeError(f"instruments holds Instruments, got {instrument!r}")
            if dialect.market_token(instrument.key) is None:
                bad.append(instrument.symbol)
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise ValueError(f"not {self.broker}'s instrument keys: {shown}")

    @rate_limit_scale.validator
    def _check_scale(self, attribute: attrs.Attribute[float], value: float) -> None:
        if value <= 0:
            raise ValueError(f"rate_limit_scale must be > 0, got {value!r}")
