"""The sandbox's configuration (frozen) and its switchable faults (mutable at runtime)."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from typing import Any

import attrs

from aio_trader.kite.constants import TICKER_MAX_CONNECTIONS, TICKER_MAX_INSTRUMENTS

__all__ = ["Faults", "OrderRules", "SandboxConfig"]


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
    - ``session_expired``: every access token and enctoken answers 403 TokenException (REST and
      WebSocket handshake) until a new login (``POST /session/token``) or this is reset.
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
    """Kite's order rules since April 2026 (the exchanges' retail-algo rules), each switchable.

    All on by default; ``OrderRules.before_2026()`` switches every one off (Kite as it was).

    - ``market_protection``: MARKET and SL-M orders need ``market_protection`` (-1: automatic,
      or a percentage above 0 up to 100); without it, or with 0: 400 InputException.
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


def _ip_tuple(value: Any) -> tuple[str, ...]:
    """``order_ips`` as a tuple of checked addresses (a single string is one address)."""
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        ipaddress.ip_address(item)  # ValueError for anything that is not an address
    return tuple(str(item) for item in items)


@attrs.frozen
class SandboxConfig:
    """How a sandbox starts. Every field has a working default; secrets are hidden from repr.

    ``market_interval`` / ``tick_interval`` are seconds (``market_interval=None`` stops the
    market clock: prices move only through ``Sandbox.step_market``). ``rate_limit_scale``
    multiplies the request counts of Kite's limits (2.0: 2 quote calls per second, 20 order
    calls per second...; at least 1 per window), as ``kite.constants.rate_limits`` does. Each
    window is Kite's less a fixed 0.05 s tolerance for the delay between a client's send and
    the handler (``state.RATE_LIMIT_TOLERANCE``): 1 s windows admit about 5 % more than
    Kite's rate, minute and day windows are Kite's to within 0.05 s.
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = "sandbox_api_key"
    api_secret: str = attrs.field(default="sandbox_api_secret", repr=False)
    access_token: str = attrs.field(default="sandbox_access_token", repr=False)
    refresh_token: str = attrs.field(default="sandbox_refresh_token", repr=False)
    enctoken: str = attrs.field(default="sandbox_enctoken", repr=False)
    user_id: str = "AB1234"
    user_name: str = "Sandbox User"
    password: str = attrs.field(default="sandbox-password", repr=False)
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
    max_tokens_per_ws: int = TICKER_MAX_INSTRUMENTS
    max_ws_per_api_key: int = TICKER_MAX_CONNECTIONS
    #: opening cash per segment (equity, commodity) for margins and order checks.
    opening_cash: float = 1_000_000.0
    #: Kite's April-2026 order rules (``OrderRules.before_2026()``: all off).
    rules: OrderRules = attrs.field(factory=OrderRules)
    #: order requests per minute per account (Kite publishes 200; later reports say 400).
    orders_per_minute: int = attrs.field(
        default=200, validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)]
    )
    #: static-IP whitelist for the order endpoints (place, modify, cancel, exit): requests from
    #: other client addresses answer 403 PermissionException. Empty (the default): off.
    order_ips: tuple[str, ...] = attrs.field(default=(), converter=_ip_tuple)
    #: a recording (Parquet, ``aio_trader.gateway.Recorder``) the ticker serves instead of
    #: the simulated market (``sandbox/_replay.py``); None: the market ticks.
    replay: str | None = None
    faults: Faults = attrs.field(factory=Faults)

    @rate_limit_scale.validator
    def _check_scale(self, attribute: attrs.Attribute[float], value: float) -> None:
        if value <= 0:
            raise ValueError(f"rate_limit_scale must be > 0, got {value!r}")
