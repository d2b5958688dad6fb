"""The seam between the sandbox core and a broker's dialect.

The core (``server``, ``app``: the admin routes, ``_pipeline``: the fault pipeline,
``market``, ``orders``: the order engine, ``state``, ``config``, ``pytest_plugin``) knows no
broker and imports nothing from a broker package. Everything a broker decides is a
**dialect**: a package ``aio_trader/sandbox/_<broker>/`` whose ``DIALECT`` implements
``Dialect`` below. ``SandboxConfig(broker="kite")`` names it; the core finds the packages
without importing them (``config.brokers()``) and imports the one named when a sandbox
starts (``load_dialect``), so adding a broker adds a package and changes no core file.

A dialect supplies, in this order of use:

1. **Tables** the core enforces: ``rate_limits`` (endpoint group -> windows at scale 1;
   the ``order_group`` is the one ``orders_per_minute`` and ``OrderRules.strict_order_rate``
   apply to), ``orders_per_minute``, ``max_ws_connections`` and ``max_ws_instruments`` (the
   defaults of the ``SandboxConfig`` fields left at None), ``order_tables`` (the varieties,
   order types, products and validities its order requests may carry).
2. **The instrument list** (``load_instruments``) the seeded market walks, and
   ``sandbox_instrument``: a neutral ``Instrument`` of the broker (its key the broker's)
   as the market's ``SandboxInstrument`` (``SandboxConfig.instruments``: a list of the
   user's, e.g. a real account's instrument index, instead of the shipped one).
3. **Its own state** (``create_state``): what only this broker has (Kite: GTTs, alerts,
   mutual funds, request/refresh tokens, Kite Web logins); the market clock calls its
   ``on_market_step`` after the order book's.
4. **Its wire**: ``routes`` (REST routes, each an ``_pipeline.Endpoint`` so the fault
   pipeline runs first, the login/session exchange, the feed sockets), ``success`` and
   ``error_response`` (its envelopes; the core's admin routes, unknown paths and the
   pipeline's refusals answer through them, so every body is the broker's),
   ``auth_error`` (its credentials check on REST) and ``order_update`` (the message its
   feed sockets send for an order change, rendered when the change happens), with
   ``order_update_text`` (that message as the text frame its order-update socket sends).
5. **Its feed's keys and its client** (paper trading, ``aio_trader.paper``): ``market_token``
   (the market's token of an instrument key as the broker's feed records carry it, the
   codec's ``key_of``) and ``feed_key`` (the other way), so a real feed's ticks drive the
   market; ``client`` (the broker's own REST client pointed at a running sandbox). A
   dialect's name is its broker's codec name (``aio_trader._codec.get_codec``).

A Dhan dialect, for instance, is ``aio_trader/sandbox/_dhan/``: routes under ``/v2``
answering Dhan's JSON, ``error_response`` writing ``DH-9xx`` bodies from the neutral
``ApiError.kind``, a market-feed socket and an order-update socket among its routes, its
rate-limit table, and its order tables (``order_update`` feeds the order-update socket).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from aio_trader.ratelimit import Rate

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from aio_trader._instruments import Instrument
    from aio_trader.abc import AbstractBroker
    from aio_trader.sandbox._api import ApiError
    from aio_trader.sandbox.market import SandboxInstrument
    from aio_trader.sandbox.orders import Order, OrderTables
    from aio_trader.sandbox.server import Sandbox
    from aio_trader.sandbox.state import SandboxState

__all__ = ["Dialect", "DialectState", "dialect_path", "load_dialect"]


class DialectState(Protocol):
    """What only one broker keeps (``SandboxState.broker``)."""

    def on_market_step(self) -> None:
        """Called after every market step, once the order book has filled what it crossed."""


class Dialect(Protocol):
    """A broker's side of the sandbox (see the module docstring)."""

    #: the broker's name, as ``SandboxConfig.broker`` says it.
    name: str
    #: endpoint group -> its windows (``Rate(count, period)``) at scale 1.
    rate_limits: Mapping[str, Sequence[Rate]]
    #: the group of order placement/modification/cancellation requests.
    order_group: str
    #: order requests per minute per account (``SandboxConfig.orders_per_minute=None``).
    orders_per_minute: int
    #: open feed connections per api_key (``SandboxConfig.max_ws_per_api_key=None``).
    max_ws_connections: int
    #: instruments per feed connection (``SandboxConfig.max_tokens_per_ws=None``).
    max_ws_instruments: int
    #: the values the broker's order requests may carry.
    order_tables: OrderTables

    def load_instruments(self) -> Mapping[int, SandboxInstrument]:
        """The instrument list the market walks, by token."""
        ...

    def sandbox_instrument(self, instrument: Instrument, base_price: float) -> SandboxInstrument:
        """``instrument`` (a neutral record of this broker: ``market_token`` accepts its key)
        as the market's instrument, its walk starting at ``base_price``."""
        ...

    def create_state(self, state: SandboxState) -> DialectState:
        """The broker's own state for this sandbox (``state.broker``)."""
        ...

    def routes(self) -> list[BaseRoute]:
        """Every route of the broker: REST (as ``_pipeline.Endpoint``s), login, feeds."""
        ...

    def success(self, data: Any) -> Response:
        """The broker's success envelope around ``data``."""
        ...

    def error_response(self, error: ApiError) -> Response:
        """The broker's error body for ``error`` (status, neutral kind, message)."""
        ...

    def auth_error(self, request: Request, state: SandboxState) -> ApiError | None:
        """None when the request carries live credentials, else the refusal (a 403)."""
        ...

    def order_update(self, state: SandboxState, order: Order, status: str | None) -> Any:
        """The message published to feed sockets for the order's new state (``status``
        overrides the order's own), rendered now: the order changes afterwards."""
        ...

    def order_update_text(self, message: Any) -> str:
        """The text frame the broker's order-update socket sends for an ``order_update``
        message (``ValueError`` for one it cannot render)."""
        ...

    def market_token(self, key: Any) -> int | None:
        """The market's token of an instrument ``key`` as the broker's feed records carry
        it (Kite: the instrument token; Dhan: ``(exchange_segment, security_id)``); None
        for a key of another shape. The token may still be unknown to the market."""
        ...

    def feed_key(self, instrument: SandboxInstrument) -> Any:
        """The key the broker's feed subscribes ``instrument`` by (``market_token``'s
        inverse)."""
        ...

    def client(self, sandbox: Sandbox, **options: Any) -> AbstractBroker:
        """The broker's own REST client (not entered) pointed at the running ``sandbox``,
        logged in with its credentials; ``options`` are the client's keyword arguments."""
        ...


#: Optional path attributes of a dialect and their defaults (Kite's): ``root_path`` the REST
#: root's path (Dhan: "/v2"; ``Sandbox.root_url`` ends with it and the admin routes answer
#: under it too), ``feed_path`` the market feed's WebSocket path, ``order_feed_path`` the
#: order-update socket's (Kite's ticker carries both).
_PATHS: Mapping[str, str] = {"root_path": "", "feed_path": "/ws", "order_feed_path": "/ws"}

#: A dialect may also set ``ws_ping_interval`` (seconds): the server then pings every
#: accepted WebSocket that often (Dhan: 10), from a task that ends with the connection
#: (``server._Pings``). Without it, sockets are not pinged (Kite's ticker sends its own
#: heartbeat frames).


def dialect_path(dialect: Dialect, name: str) -> str:
    """The dialect's ``root_path``, ``feed_path`` or ``order_feed_path`` (or the default)."""
    value = getattr(dialect, name, _PATHS[name])
    return str(value)


def load_dialect(broker: str) -> Dialect:
    """The dialect of ``broker`` (a name ``SandboxConfig`` accepted), imported now."""
    module = importlib.import_module(f"aio_trader.sandbox._{broker}")
    dialect: Dialect = module.DIALECT
    return dialect
