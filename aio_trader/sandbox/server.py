"""``Sandbox``: the sandbox server running in-process, on asyncio or trio (broker-neutral:
the dialect named by ``SandboxConfig.broker`` supplies the routes)."""

from __future__ import annotations

import contextlib
import logging
import socket
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import attrs
import sniffio
from hypercorn.config import Config as HypercornConfig
from wsproto.events import Ping

from aio_trader.sandbox._dialect import Dialect, dialect_path, load_dialect
from aio_trader.sandbox.app import build_app
from aio_trader.sandbox.config import Faults, SandboxConfig
from aio_trader.sandbox.state import SandboxState, SandboxStats
from aio_trader.utils import _unwrapped

__all__ = ["Sandbox"]

log = logging.getLogger(__name__)

#: Seconds the server waits for open connections to finish when the sandbox stops.
_GRACE = 1.0


class Sandbox:
    """A broker's server on loopback (Kite's by default), started by ``async with``::

        async with Sandbox(SandboxConfig(seed=1)) as sb:
            sb.root_url, sb.ticker_url, sb.api_key, sb.access_token ...

    Entering binds the port (``config.port``; 0 picks a free one), starts the server and the
    market clock in a task group of the running backend (asyncio or trio), and returns once
    the server answers HTTP. Leaving (or cancellation of the enclosing scope) stops the
    server, closes every connection and cancels every task it started. An exception raised
    in the body comes out as itself, never inside an ``ExceptionGroup``. Keyword
    ``overrides`` replace config fields: ``Sandbox(seed=3)``, ``Sandbox(rules="before-2026")``
    (an unknown field or value raises before anything starts).
    """

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else SandboxConfig()
        self.config: SandboxConfig = attrs.evolve(base, **overrides) if overrides else base
        self._dialect: Dialect = load_dialect(self.config.broker)
        self._state: SandboxState | None = None
        self._port: int | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    def __repr__(self) -> str:
        where = self.root_url if self._port is not None else "not started"
        return f"<Sandbox {self.config.broker} {where} seed={self.config.seed}>"

    # -- what a running sandbox exposes -----------------------------------------------------

    @property
    def state(self) -> SandboxState:
        """The state (market, order book, stats...): live while running, kept after exit."""
        if self._state is None:
            raise RuntimeError("the sandbox is not running: use `async with Sandbox() as sb`")
        return self._state

    @property
    def faults(self) -> Faults:
        """The faults in force (mutable: ``sb.faults.latency = 0.5``)."""
        return self.state.faults

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox is not running")
        return self._port

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:54321``: the server, without the broker's REST path."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def root_url(self) -> str:
        """REST root, e.g. ``http://127.0.0.1:54321`` (Kite) or ``http://127.0.0.1:54321/v2``
        (Dhan): the broker's paths go under it, and so do the admin routes
        (``/__sandbox__/...``)."""
        return self.origin + dialect_path(self._dialect, "root_path")

    @property
    def ticker_url(self) -> str:
        """Kite's ticker WebSocket URL; append ``?api_key=..&access_token=..``."""
        return self.origin.replace("http://", "ws://", 1) + "/ws"

    @property
    def feed_url(self) -> str:
        """The broker's market-feed WebSocket URL (Kite: ``ticker_url``; Dhan: append
        ``?version=2&token=..&clientId=..&authType=2``)."""
        return self.origin.replace("http://", "ws://", 1) + dialect_path(self._dialect, "feed_path")

    @property
    def order_feed_url(self) -> str:
        """The broker's order-update WebSocket URL (Kite: the ticker's; Dhan: its own
        socket, which wants a login message after connecting)."""
        return self.origin.replace("http://", "ws://", 1) + dialect_path(
            self._dialect, "order_feed_path"
        )

    @property
    def client_id(self) -> str:
        """The account's client id (Dhan's ``dhanClientId``)."""
        return self.config.client_id

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def api_secret(self) -> str:
        return self.config.api_secret

    @property
    def access_token(self) -> str:
        return self.config.access_token

    @property
    def user_id(self) -> str:
        return self.config.user_id

    @property
    def password(self) -> str:
        return self.config.password

    @property
    def enctoken(self) -> str:
        return self.config.enctoken

    # -- runtime controls -------------------------------------------------------------------

    def drop_websockets(self) -> None:
        """Fault: close every feed connection now."""
        self.state.drop_websockets()

    def expire_session(self) -> None:
        """Fault: tokens answer 403 (REST and feed handshakes) until the next login."""
        self.state.expire_session()

    def step_market(self, steps: int = 1) -> None:
        """Advance the simulated market ``steps`` times (fills crossed orders, GTTs, alerts)."""
        self.state.step_market(steps)

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        if self._stack is not None:
            raise RuntimeError("this Sandbox is already running")
        state = SandboxState(self.config)
        listener = socket.create_server(
            (self.config.host, self.config.port),
            family=socket.AF_INET6 if ":" in self.config.host else socket.AF_INET,
            backlog=128,
        )
        port = int(listener.getsockname()[1])
        hyper = HypercornConfig()
        # hypercorn adopts the already-listening socket: the port is known before it runs.
        hyper.bind = [f"fd://{listener.detach()}"]
        hyper.graceful_timeout = _GRACE
        hyper.accesslog = None
        hyper.errorlog = logging.getLogger("aio_trader.sandbox.hypercorn")
        # hypercorn's own pings are off: its ping task sleeps a whole interval after the
        # socket closed, which holds the connection past the grace period at shutdown.
        hyper.websocket_ping_interval = None
        app: Any = build_app(state)
        # a broker whose server pings its feed sockets (Dhan: every 10 s) says how often
        interval = getattr(state.dialect, "ws_ping_interval", None)
        if interval is not None:
            app = _Pings(app, float(interval), state.stats)
        stopping, served = anyio.Event(), anyio.Event()
        # hypercorn stops through its shutdown trigger only: cancelling it from outside
        # (an enclosing cancel scope) breaks its asyncio shutdown, so it runs shielded.
        serve_scope = anyio.CancelScope(shield=True)
        stack = contextlib.AsyncExitStack()
        try:
            group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(group.cancel_scope.cancel)
            stack.push_async_callback(_stop, state, stopping, served, serve_scope, group)
            group.start_soon(
                _serve, app, hyper, stopping, served, serve_scope, name="sandbox-server"
            )
            group.start_soon(state.run_clock, name="sandbox-market-clock")
            self._state, self._port = state, port
            await _wait_until_serving(self.config.host, port)
        except BaseException:
            self._state = self._port = None
            await stack.aclose()
            raise
        self._stack = stack
        log.info("sandbox serving on %s", self.root_url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                # The body's exception is not handed to the task group, which would raise it
                # inside an ExceptionGroup: the group is stopped (``_stop`` cancels its tasks)
                # and closed as if the body had ended normally; Python then re-raises the
                # body's exception, as itself.
                await stack.aclose()
        finally:
            self._port = None


async def _stop(
    state: SandboxState,
    stopping: anyio.Event,
    served: anyio.Event,
    serve_scope: anyio.CancelScope,
    group: anyio.abc.TaskGroup,
) -> None:
    """Close ticker connections, let hypercorn shut down gracefully, then cancel the rest."""
    state.drop_websockets()
    stopping.set()
    with anyio.move_on_after(_GRACE + 1, shield=True):
        await served.wait()
    serve_scope.cancel()
    group.cancel_scope.cancel()


async def _serve(
    app: Any,
    config: HypercornConfig,
    stopping: anyio.Event,
    served: anyio.Event,
    scope: anyio.CancelScope,
) -> None:
    """hypercorn's serve for the running backend, inside the shielded ``scope``, until
    ``stopping`` is set (or ``scope`` is cancelled after the grace period)."""
    try:
        with scope:
            if sniffio.current_async_library() == "trio":
                from hypercorn.trio import serve as trio_serve

                await trio_serve(app, config, shutdown_trigger=stopping.wait)
            else:
                from hypercorn.asyncio import serve as asyncio_serve

                await asyncio_serve(app, config, shutdown_trigger=stopping.wait)
    finally:
        served.set()


class _Pings:
    """ASGI wrapper: a WebSocket ping on every accepted socket at once, then every
    ``interval`` seconds, from a task that lives as long as the socket's app call (it ends
    with the connection, and so never holds the server's shutdown).

    ASGI has no ping message: the ping goes through hypercorn's stream, the object whose
    ``app_send`` is the ``send`` hypercorn hands the app (what hypercorn's own
    ``websocket_ping_interval`` does, without its sleep past the close). A server without
    that stream serves the socket unpinged (tests/test_sandbox_pings.py would fail).
    Cancelled (the server stopping), the app call and its ping task end together.
    """

    def __init__(self, app: Any, interval: float, stats: SandboxStats) -> None:
        self.app = app
        self.interval = interval
        self.stats = stats

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        stream = getattr(send, "__self__", None)
        ping = getattr(stream, "_send_wsproto_event", None)
        if scope["type"] != "websocket" or ping is None:
            await self.app(scope, receive, send)
            return
        accepted = anyio.Event()

        async def sending(message: Any) -> None:
            await send(message)
            if message["type"] == "websocket.accept":
                accepted.set()

        async with _unwrapped(), anyio.create_task_group() as group:
            group.start_soon(self._ping, accepted, ping)
            try:
                await self.app(scope, receive, sending)
            finally:
                group.cancel_scope.cancel()

    async def _ping(self, accepted: anyio.Event, ping: Any) -> None:
        await accepted.wait()
        self.stats.ws_pinged_sockets += 1
        try:
            while True:
                await ping(Ping())
                self.stats.ws_pings_sent += 1
                await anyio.sleep(self.interval)
        finally:
            self.stats.ws_pinged_sockets -= 1


async def _wait_until_serving(host: str, port: int) -> None:
    """Return once the server answers an HTTP request (the socket listens from the start)."""
    request = (
        f"GET /__sandbox__/ping HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    ).encode()
    while True:
        try:
            async with await anyio.connect_tcp(host, port) as stream:
                await stream.send(request)
                answer = await stream.receive()
                if answer.startswith(b"HTTP/1.1 200"):
                    return
        except (OSError, anyio.EndOfStream, anyio.BrokenResourceError):
            pass
        await anyio.sleep(0.005)
