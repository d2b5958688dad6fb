"""Kite's dialect of the sandbox: what makes the broker-neutral core speak Kite Connect v3.

- ``_rest``: every REST route (at ``/`` and, for Kite Web, ``/oms``), the login and session
  exchange (``/connect/login``, ``/session/token``, ``/api/login``, ``/api/twofa``...), the
  margin and charges calculators; each route is a core ``_pipeline.Endpoint``.
- ``_ticker``: the ticker at ``/ws`` (binary ticks in three modes, heartbeats, order
  postbacks as text frames, its faults); ``_quotes``: the market as Kite's ticks and quotes.
- ``_wire``: Kite's envelopes, error bodies (``error_type`` from the neutral error kind)
  and postbacks; ``_instruments``: Kite's instrument dump (shipped as ``instruments.csv``).
- ``_state``: what only Kite has: GTTs and alerts (``_triggers``), mutual funds (``_mf``),
  request and refresh tokens, Kite Web logins.
- The tables (``KiteDialect``): Kite's endpoint groups and rate limits, 3 ticker
  connections of 3000 instruments each, 200 order requests per minute, its order enums.

See ``aio_trader/sandbox/_dialect.py`` for the interface every dialect implements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from aio_trader.kite.constants import (
    RATE_LIMITS,
    TICKER_MAX_CONNECTIONS,
    TICKER_MAX_INSTRUMENTS,
    EndpointGroup,
    OrderType,
    Product,
    TransactionType,
    Validity,
    Variety,
)
from aio_trader.kite.ticks import OrderUpdate, encode_text
from aio_trader.ratelimit import Rate
from aio_trader.sandbox._api import ApiError
from aio_trader.sandbox._dialect import Dialect
from aio_trader.sandbox._kite import _instruments, _rest, _wire
from aio_trader.sandbox._kite._state import KiteState
from aio_trader.sandbox.market import SandboxInstrument
from aio_trader.sandbox.orders import Order, OrderTables
from aio_trader.sandbox.state import SandboxState

if TYPE_CHECKING:
    from aio_trader._instruments import Instrument
    from aio_trader.abc import AbstractBroker
    from aio_trader.sandbox.server import Sandbox

__all__ = ["DIALECT", "KiteDialect"]


class KiteDialect:
    """Kite Connect v3 (``SandboxConfig(broker="kite")``)."""

    name = "kite"
    rate_limits: Mapping[str, Sequence[Rate]] = MappingProxyType(
        {group.value: rates for group, rates in RATE_LIMITS.items()}
    )
    order_group = EndpointGroup.ORDER.value
    #: Kite publishes 200 order requests per minute (later reports say 400).
    orders_per_minute = 200
    max_ws_connections = TICKER_MAX_CONNECTIONS
    max_ws_instruments = TICKER_MAX_INSTRUMENTS
    root_path = ""
    feed_path = "/ws"
    order_feed_path = "/ws"
    order_tables = OrderTables(
        varieties=tuple(member.value for member in Variety),
        order_types=tuple(member.value for member in OrderType),
        # BO: bracket orders, retired by Kite but still in the profile's list
        products=(*(member.value for member in Product), "BO"),
        validities=tuple(member.value for member in Validity),
        transaction_types=tuple(member.value for member in TransactionType),
    )

    def load_instruments(self) -> Mapping[int, SandboxInstrument]:
        return _instruments.load_instruments()

    def sandbox_instrument(self, instrument: Instrument, base_price: float) -> SandboxInstrument:
        return _instruments.from_neutral(instrument, base_price)

    def create_state(self, state: SandboxState) -> KiteState:
        return KiteState(state)

    def routes(self) -> list[BaseRoute]:
        return _rest.routes()

    def success(self, data: Any) -> Response:
        return _wire.success(data)

    def error_response(self, error: ApiError) -> Response:
        return _wire.error_response(error)

    def auth_error(self, request: Request, state: SandboxState) -> ApiError | None:
        return _rest.auth_error(request, state)

    def order_update(self, state: SandboxState, order: Order, status: str | None) -> Any:
        return _wire.postback(state, order, status)

    def order_update_text(self, message: Any) -> str:
        return encode_text(OrderUpdate.from_dict(message))

    def market_token(self, key: Any) -> int | None:
        return key if isinstance(key, int) and not isinstance(key, bool) else None

    def feed_key(self, instrument: SandboxInstrument) -> int:
        return instrument.instrument_token

    def client(self, sandbox: Sandbox, **options: Any) -> AbstractBroker:
        from aio_trader.kite import Kite

        options.setdefault("token_cache", False)  # nothing written to the user's config
        return Kite(sandbox.api_key, sandbox.access_token, root=sandbox.root_url, **options)


DIALECT: Final[Dialect] = KiteDialect()
