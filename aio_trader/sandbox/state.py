"""Everything one running sandbox knows: credentials, market, order book, limits, faults, stats.

Shared by the REST routes and the ticker (``app.state.sandbox``). All of it lives in one event
loop, so plain attributes suffice; nothing here blocks.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import logging
import secrets
from collections.abc import Iterator
from typing import Any, Final

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectSendStream

from aio_trader.kite.constants import EndpointGroup, rate_limits
from aio_trader.sandbox.config import Faults, SandboxConfig
from aio_trader.sandbox.market import Market, load_instruments
from aio_trader.sandbox.mf import MutualFunds
from aio_trader.sandbox.orders import OrderBook
from aio_trader.sandbox.triggers import Alerts, Gtts

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
    refused_429: dict[EndpointGroup, int] = attrs.Factory(lambda: dict.fromkeys(EndpointGroup, 0))
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
    #: requests whose client went away before the answer (not errors, no answer sent).
    client_disconnects: int = 0


class RateLimiter:
    """Sliding windows per endpoint group: Kite's limits scaled as
    ``aio_trader.kite.constants.rate_limits(scale)`` (so a client limited at the same scale
    never earns a 429), each window ``RATE_LIMIT_TOLERANCE`` seconds shorter. Refused calls
    don't count.

    Order requests: ``orders_per_minute`` (scaled) replaces Kite's 200 per minute, and with
    ``strict_orders`` (Kite since April 2026) the per-second window is a full second: never
    more than 10 (scaled) order requests in any 1 s.
    """

    def __init__(
        self, scale: float, *, orders_per_minute: int = 200, strict_orders: bool = False
    ) -> None:
        self.scale = scale
        limits: dict[EndpointGroup, tuple[tuple[int, float], ...]] = {}
        for group, rates in rate_limits(scale).items():
            windows = []
            for rate in rates:
                count, span = rate.count, rate.period - RATE_LIMIT_TOLERANCE
                if group is EndpointGroup.ORDER and rate.period == 60:
                    count = max(1, round(orders_per_minute * scale))
                if group is EndpointGroup.ORDER and rate.period == 1 and strict_orders:
                    span = rate.period
                windows.append((count, span))
            limits[group] = tuple(windows)
        self.limits = limits
        self._hits: dict[tuple[EndpointGroup, int], collections.deque[float]] = {}

    def allow(self, group: EndpointGroup, now: float) -> bool:
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
    """The state behind one sandbox (see the sandbox contract for what the ticker reads)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.faults: Faults = attrs.evolve(config.faults)
        self.stats = SandboxStats()
        self.market = Market(load_instruments(), config.seed)
        self.book = OrderBook(
            self.market,
            user_id=config.user_id,
            api_secret=config.api_secret,
            opening_cash=config.opening_cash,
            on_update=self.publish_order_update,
            rules=config.rules,
        )
        self.gtts = Gtts(self.market, self.book, config.user_id)
        self.alerts = Alerts(self.market, config.user_id, config.seed)
        self.mf = MutualFunds(config.seed)
        self.limiter = RateLimiter(
            config.rate_limit_scale,
            orders_per_minute=config.orders_per_minute,
            strict_orders=config.rules.strict_order_rate,
        )
        self.access_tokens = {config.access_token}
        self.refresh_tokens = {config.refresh_token}
        self.request_tokens: set[str] = set()
        self.web_requests: set[str] = set()
        #: Open ticker connections per api_key (per user for Kite Web), for the connection limit.
        self.ws_open: collections.Counter[str] = collections.Counter()
        self.ws_drop_epoch = 0
        self._ws_drop_event = anyio.Event()
        self._subscribers: set[MemoryObjectSendStream[dict[str, Any]]] = set()

    # -- credentials ---------------------------------------------------------------------

    def check_token(self, api_key: str, access_token: str) -> bool:
        """True for this sandbox's api_key and a live access token (False once expired)."""
        if self.faults.session_expired:
            return False
        return hmac.compare_digest(api_key, self.config.api_key) and any(
            hmac.compare_digest(access_token, token) for token in self.access_tokens
        )

    def check_enctoken(self, user_id: str, enctoken: str) -> bool:
        """True for the Kite Web session's enctoken (``user_id`` may be empty: REST sends none)."""
        if self.faults.session_expired:
            return False
        if user_id and user_id != self.config.user_id:
            return False
        return hmac.compare_digest(enctoken, self.config.enctoken)

    def new_request_token(self) -> str:
        token = secrets.token_urlsafe(24)
        self.request_tokens.add(token)
        return token

    def start_session(self) -> None:
        """A fresh login: the configured access token is valid again, expiry is lifted."""
        self.access_tokens.add(self.config.access_token)
        self.faults.session_expired = False

    def expire_session(self) -> None:
        """Fault: every token answers 403 until the next login."""
        self.faults.session_expired = True

    # -- market clock ------------------------------------------------------------------------

    def step_market(self, steps: int = 1) -> None:
        """Advance the market ``steps`` times; each step fills crossed orders, GTTs, alerts."""
        for _ in range(steps):
            self.market.step()
            self.book.on_market_step()
            self.gtts.on_market_step()
            self.alerts.on_market_step()

    async def run_clock(self) -> None:
        """Step the market every ``config.market_interval`` seconds until cancelled."""
        interval = self.config.market_interval
        if interval is None:
            return
        while True:
            await anyio.sleep(interval)
            self.step_market()

    # -- order postbacks -----------------------------------------------------------------------

    @contextlib.contextmanager
    def order_updates(self) -> Iterator[anyio.abc.ObjectReceiveStream[dict[str, Any]]]:
        """Subscribe to order postback dicts (published on every order change) while inside.

        A subscriber that falls ``1000`` updates behind loses the newest ones (counted in
        ``stats.postbacks_dropped``).
        """
        send, receive = anyio.create_memory_object_stream[dict[str, Any]](_UPDATES_BUFFER)
        self._subscribers.add(send)
        try:
            yield receive
        finally:
            self._subscribers.discard(send)
            send.close()
            receive.close()

    def publish_order_update(self, postback: dict[str, Any]) -> None:
        self.stats.postbacks_published += 1
        for send in list(self._subscribers):
            try:
                send.send_nowait(dict(postback))
            except anyio.WouldBlock:
                self.stats.postbacks_dropped += 1
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.discard(send)

    # -- websocket faults ----------------------------------------------------------------------

    def ws_drop_event(self) -> anyio.Event:
        """An event fired by the next ``drop_websockets()`` (a new one after each drop)."""
        return self._ws_drop_event

    def drop_websockets(self) -> None:
        """Fault: every ticker connection closes now."""
        self.ws_drop_epoch += 1
        event, self._ws_drop_event = self._ws_drop_event, anyio.Event()
        event.set()
