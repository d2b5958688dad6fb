"""Everything one running sandbox knows: credentials, market, order book, limits, faults, stats.

Broker-neutral; what only one broker keeps is ``state.broker`` (the dialect's state).
Shared by the REST routes and the feed sockets (``app.state.sandbox``). All of it lives in
one event loop, so plain attributes suffice; nothing here blocks.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectSendStream

from aio_trader.ratelimit import Rate
from aio_trader.sandbox._dialect import Dialect, DialectState, load_dialect
from aio_trader.sandbox.config import Faults, SandboxConfig
from aio_trader.sandbox.market import DEFAULT_BASE_PRICE, Market, SandboxInstrument
from aio_trader.sandbox.orders import Order, OrderBook

__all__ = ["RATE_LIMIT_TOLERANCE", "RateLimiter", "SandboxState", "SandboxStats"]

log = logging.getLogger(__name__)

#: Seconds cut from every rate-limit window: the tolerance for the delay between the moment a
#: client's own limiter lets a call go and the moment the handler sees it (the loopback stack,
#: one event loop shared by a busy client and the server, a loaded machine). Fixed, as that
#: delay does not grow with the window: the minute and day windows are Kite's to within it.
RATE_LIMIT_TOLERANCE: Final = 0.05
#: Postbacks buffered per subscriber before the oldest unread ones are dropped.
_UPDATES_BUFFER: Final = 1000


@attrs.define
class SandboxStats:
    """Counters of one sandbox run (``GET /__sandbox__/stats`` answers them as JSON)."""

    requests: int = 0
    #: 429s per endpoint group (the dialect's groups: Kite's "quote", "order"...).
    refused_429: dict[str, int] = attrs.Factory(dict)
    refused_403: int = 0
    http_5xx_sent: int = 0
    orders_booked: int = 0
    order_replies_lost: int = 0
    postbacks_published: int = 0
    postbacks_dropped: int = 0
    ws_connections: int = 0
    ws_connections_refused: int = 0
    ws_frames_sent: int = 0
    ws_ticks_sent: int = 0
    #: WebSocket pings sent (a broker whose server pings its feed sockets: Dhan).
    ws_pings_sent: int = 0
    #: sockets being pinged now: each one's ping task ends with its connection.
    ws_pinged_sockets: int = 0
    #: requests whose client went away before the answer (not errors, no answer sent).
    client_disconnects: int = 0


class RateLimiter:
    """Sliding windows per endpoint group: the broker's ``limits`` (group -> ``Rate``s) with
    every count scaled as ``aio_trader.kite.constants.rate_limits(scale)`` scales Kite's (so
    a client limited at the same scale never earns a 429), each window
    ``RATE_LIMIT_TOLERANCE`` seconds shorter. Refused calls don't count.

    Requests of ``order_group``: ``orders_per_minute`` (scaled) replaces the broker's
    per-minute count, and with ``strict_orders`` (the April-2026 rules) the per-second window
    is a full second: never more than the broker's count (scaled) in any 1 s.
    """

    def __init__(
        self,
        limits: Mapping[str, Sequence[Rate]],
        scale: float,
        *,
        order_group: str = "order",
        orders_per_minute: int | None = None,
        strict_orders: bool = False,
    ) -> None:
        self.scale = scale
        scaled: dict[str, tuple[tuple[int, float], ...]] = {}
        for group, rates in limits.items():
            windows = []
            for rate in rates:
                count = max(1, round(rate.count * scale))
                span = rate.period - RATE_LIMIT_TOLERANCE
                if group == order_group and rate.period == 60 and orders_per_minute is not None:
                    count = max(1, round(orders_per_minute * scale))
                if group == order_group and rate.period == 1 and strict_orders:
                    span = rate.period
                windows.append((count, span))
            scaled[group] = tuple(windows)
        self.limits = scaled
        self._hits: dict[tuple[str, int], collections.deque[float]] = {}

    def allow(self, group: str, now: float) -> bool:
        """Count a call of ``group`` at time ``now`` (seconds) if every window has room."""
        queues = []
        for index, (count, span) in enumerate(self.limits[group]):
            queue = self._hits.setdefault((group, index), collections.deque())
            while queue and queue[0] <= now - span:
                queue.popleft()
            if len(queue) >= count:
                return False
            queues.append(queue)
        for queue in queues:
            queue.append(now)
        return True


class SandboxState:
    """The state behind one sandbox.

    ``config`` is the sandbox's configuration with the broker's limits filled in where it
    left them at None; ``dialect`` the broker's dialect; ``broker`` the dialect's own state.
    """

    def __init__(self, config: SandboxConfig, dialect: Dialect | None = None) -> None:
        self.dialect: Dialect = dialect if dialect is not None else load_dialect(config.broker)
        self.config = config = _with_broker_limits(config, self.dialect)
        self.faults: Faults = attrs.evolve(config.faults)
        self.stats = SandboxStats(refused_429=dict.fromkeys(self.dialect.rate_limits, 0))
        self.market = Market(_instruments(self.dialect, config), config.seed)
        self.book = OrderBook(
            self.market,
            tables=self.dialect.order_tables,
            user_id=config.user_id,
            opening_cash=config.opening_cash,
            on_update=self.publish_order_update,
            rules=config.rules,
        )
        self.limiter = RateLimiter(
            self.dialect.rate_limits,
            config.rate_limit_scale,
            order_group=self.dialect.order_group,
            orders_per_minute=config.orders_per_minute,
            strict_orders=config.rules.strict_order_rate,
        )
        self.access_tokens = {config.access_token}
        #: Open feed connections per api_key (or per user), for the connection limit.
        self.ws_open: collections.Counter[str] = collections.Counter()
        self.ws_drop_epoch = 0
        self._ws_drop_event = anyio.Event()
        self._subscribers: set[MemoryObjectSendStream[Any]] = set()
        self._listeners: list[Callable[[Any], None]] = []
        #: what only this broker keeps (Kite: GTTs, alerts, mutual funds, login tokens).
        self.broker: DialectState = self.dialect.create_state(self)

    # -- credentials ---------------------------------------------------------------------

    def check_token(self, api_key: str, access_token: str) -> bool:
        """True for this sandbox's api_key and a live access token (False once expired)."""
        if self.faults.session_expired:
            return False
        return hmac.compare_digest(api_key, self.config.api_key) and any(
            hmac.compare_digest(access_token, token) for token in self.access_tokens
        )

    def start_session(self) -> None:
        """A fresh login: the configured access token is valid again, expiry is lifted."""
        self.access_tokens.add(self.config.access_token)
        self.faults.session_expired = False

    def expire_session(self) -> None:
        """Fault: every token answers 403 until the next login."""
        self.faults.session_expired = True

    # -- market clock ------------------------------------------------------------------------

    def step_market(self, steps: int = 1) -> None:
        """Advance the market ``steps`` times; each step fills crossed orders, then lets the
        broker's state react (Kite: GTTs, alerts)."""
        for _ in range(steps):
            self.market.step()
            self.book.on_market_step()
            self.broker.on_market_step()

    def set_quote(self, token: int, last_price: float | None = None, **fields: Any) -> None:
        """A quote from outside (a real feed's tick: ``Market.set_quote``'s arguments), then
        the order book fills that instrument's orders it crossed and the broker's state
        reacts (Kite: GTTs, alerts), as after a market step. ``KeyError`` for an unknown
        token."""
        self.market.set_quote(token, last_price, **fields)
        self.book.on_quote(token)
        self.broker.on_market_step()

    async def run_clock(self) -> None:
        """Step the market every ``config.market_interval`` seconds until cancelled."""
        interval = self.config.market_interval
        if interval is None:
            return
        while True:
            await anyio.sleep(interval)
            self.step_market()

    # -- order updates -------------------------------------------------------------------------

    @contextlib.contextmanager
    def order_updates(self) -> Iterator[anyio.abc.ObjectReceiveStream[Any]]:
        """Subscribe to order update messages (``Dialect.order_update``, published on every
        order change) while inside.

        A subscriber that falls ``1000`` updates behind loses the newest ones (counted in
        ``stats.postbacks_dropped``). Every subscriber gets the same message: read it, never
        change it.
        """
        send, receive = anyio.create_memory_object_stream[Any](_UPDATES_BUFFER)
        self._subscribers.add(send)
        try:
            yield receive
        finally:
            self._subscribers.discard(send)
            send.close()
            receive.close()

    @contextlib.contextmanager
    def order_listener(self, listener: Callable[[Any], None]) -> Iterator[None]:
        """Call ``listener(message)`` with every order update message as it is published,
        while inside (a synchronous call: nothing is buffered or dropped; the listener must
        not block). Paper trading reads the updates this way."""
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)

    def publish_order_update(self, order: Order, status: str | None = None) -> None:
        """Render the order's change in the dialect's words and hand it to every subscriber
        and listener."""
        message = self.dialect.order_update(self, order, status)
        self.stats.postbacks_published += 1
        for listener in list(self._listeners):
            listener(message)
        for send in list(self._subscribers):
            try:
                send.send_nowait(message)
            except anyio.WouldBlock:
                self.stats.postbacks_dropped += 1
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.discard(send)

    # -- websocket faults ----------------------------------------------------------------------

    def ws_drop_event(self) -> anyio.Event:
        """An event fired by the next ``drop_websockets()`` (a new one after each drop)."""
        return self._ws_drop_event

    def drop_websockets(self) -> None:
        """Fault: every feed connection closes now."""
        self.ws_drop_epoch += 1
        event, self._ws_drop_event = self._ws_drop_event, anyio.Event()
        event.set()


def _instruments(dialect: Dialect, config: SandboxConfig) -> Mapping[int, SandboxInstrument]:
    """The market's instruments: the dialect's shipped list, or ``config.instruments``
    converted by the dialect (each starting at its shipped price when the shipped list has
    its token, else at ``DEFAULT_BASE_PRICE``; of two with one token, the first)."""
    shipped = dialect.load_instruments()
    if config.instruments is None:
        return shipped
    chosen: dict[int, SandboxInstrument] = {}
    for instrument in config.instruments:
        token = dialect.market_token(instrument.key)  # the config checked every key
        if token is None or token in chosen:
            continue
        known = shipped.get(token)
        base = known.base_price if known is not None else DEFAULT_BASE_PRICE
        chosen[token] = dialect.sandbox_instrument(instrument, base)
    return chosen


def _with_broker_limits(config: SandboxConfig, dialect: Dialect) -> SandboxConfig:
    """``config`` with the broker's limits where it left them at None."""
    return attrs.evolve(
        config,
        max_tokens_per_ws=config.max_tokens_per_ws or dialect.max_ws_instruments,
        max_ws_per_api_key=config.max_ws_per_api_key or dialect.max_ws_connections,
        orders_per_minute=config.orders_per_minute or dialect.orders_per_minute,
    )
