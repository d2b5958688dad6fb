"""Dhan's dialect of the sandbox: what makes the broker-neutral core speak DhanHQ API v2.

- ``_rest``: every v2 REST route under ``/v2`` (orders, super/forever orders, conditional
  triggers, trades, portfolio, funds, margins, trader's controls, market quotes, candles,
  option chain, instrument lists, static IP, EDIS, ``RenewToken``), Dhan's auth host
  (``/app/generateAccessToken``, the API-key consent flow) and the scrip masters
  (``/api-data/...``) at the server's root; each route is a core ``_pipeline.Endpoint``.
- ``_feed``: the market feed (``/feed``), the order-update socket (``/order-update``) and
  the 20-level depth feed (``/twentydepth``).
- ``_wire``: bare JSON successes, ``{errorType, errorCode, errorMessage}`` errors (``DH-9xx``
  from the neutral error kind), orders in Dhan's words, the ``order_alert`` message.
- ``_instruments``: Dhan's instrument list (real security ids for the names in Dhan's
  examples), keyed in the market by ``token_of(segment, security_id)``.
- ``_state``: what only Dhan has (correlation ids, super/forever orders, triggers, kill
  switch, P&L exit, static IPs, consents).
- The tables (``DhanDialect``): Dhan's endpoint groups and rate limits, 5 feed
  connections of 5000 instruments, 250 order requests per minute, its order enums.

See ``aio_trader/sandbox/_dialect.py`` for the interface every dialect implements.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from aio_trader.dhan._limits import RATE_LIMITS
from aio_trader.dhan.constants import (
    FEED_MAX_CONNECTIONS,
    FEED_MAX_INSTRUMENTS,
    DhanEndpointGroup,
)
from aio_trader.ratelimit import Rate
from aio_trader.sandbox._api import ApiError
from aio_trader.sandbox._dhan import _feed, _instruments, _rest, _wire
from aio_trader.sandbox._dhan._state import DhanState
from aio_trader.sandbox._dialect import Dialect
from aio_trader.sandbox.market import SandboxInstrument
from aio_trader.sandbox.orders import Order, OrderTables
from aio_trader.sandbox.state import SandboxState

if TYPE_CHECKING:
    from aio_trader._instruments import Instrument
    from aio_trader.abc import AbstractBroker
    from aio_trader.sandbox.server import Sandbox

__all__ = ["DIALECT", "DhanDialect"]


class DhanDialect:
    """DhanHQ API v2 (``SandboxConfig(broker="dhan")``)."""

    name = "dhan"
    rate_limits: Mapping[str, Sequence[Rate]] = MappingProxyType(
        {group.value: rates for group, rates in RATE_LIMITS.items()}
    )
    order_group = DhanEndpointGroup.ORDER.value
    orders_per_minute = 250
    max_ws_connections = FEED_MAX_CONNECTIONS
    max_ws_instruments = FEED_MAX_INSTRUMENTS
    #: the engine's vocabulary (the dialect translates Dhan's names: ``_wire.PRODUCTS``...).
    order_tables = OrderTables(
        varieties=("regular", "amo"),
        order_types=("LIMIT", "MARKET", "SL", "SL-M"),
        products=("CNC", "MIS", "NRML", "MTF", "CO", "BO"),
        validities=("DAY", "IOC"),
    )
    root_path = "/v2"
    feed_path = _feed.FEED_PATH
    order_feed_path = _feed.ORDER_FEED_PATH
    #: the server pings every feed socket this often (seconds), as Dhan's does
    ws_ping_interval = _feed.PING_INTERVAL

    def load_instruments(self) -> Mapping[int, SandboxInstrument]:
        return _instruments.load_instruments()

    def sandbox_instrument(self, instrument: Instrument, base_price: float) -> SandboxInstrument:
        return _instruments.from_neutral(instrument, base_price)

    def create_state(self, state: SandboxState) -> DhanState:
        return DhanState(state)

    def routes(self) -> list[BaseRoute]:
        return [*_feed.routes(), *_rest.routes()]

    def success(self, data: Any) -> Response:
        return _wire.success(data)

    def error_response(self, error: ApiError) -> Response:
        return _wire.error_response(error)

    def auth_error(self, request: Request, state: SandboxState) -> ApiError | None:
        return _rest.auth_error(request, state)

    def order_update(self, state: SandboxState, order: Order, status: str | None) -> Any:
        return _wire.order_alert(state, order, status)

    def order_update_text(self, message: Any) -> str:
        return json.dumps(message)

    def market_token(self, key: Any) -> int | None:
        if not isinstance(key, tuple) or len(key) != 2:
            return None
        segment, security = key
        if isinstance(security, bool) or not isinstance(security, int | str):
            return None
        try:
            return _instruments.token_of(segment, int(security))
        except ValueError:
            return None

    def feed_key(self, instrument: SandboxInstrument) -> tuple[str, int]:
        return (_instruments.dhan_segment(instrument), instrument.exchange_token)

    def client(self, sandbox: Sandbox, **options: Any) -> AbstractBroker:
        from aio_trader.dhan import Dhan

        return Dhan(sandbox.client_id, sandbox.access_token, root=sandbox.root_url, **options)


DIALECT: Final[Dialect] = DhanDialect()
