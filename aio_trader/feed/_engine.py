"""The connection engine under every broker's WebSocket feed (:class:`FeedEngine`).

A broker's feed is a :class:`FeedEngine` subclass with a
:class:`~aio_trader.feed.FeedProtocol` (the wire: URL and credentials, messages, heartbeat,
fatal refusals, limits) and two frame handlers (``_on_binary``, ``_on_text``: decode and
put the items into the channel). The engine does the rest, the same way for every broker:

**Entering** connects: ``async with`` returns once every connection that has work (the
first one always, and every side socket) has made its handshake, logged in and sent the
subscriptions known so far. The connection tasks report ready through
``task_group.start()``, so nothing sent after entry is lost. A first connection that cannot
be made raises out of ``async with`` itself, as itself (never inside an exception group):
the protocol's fatal refusal (Kite's :class:`~aio_trader.errors.TokenException` for a
403), or :class:`~aio_trader.errors.FeedClosedError` once the connect attempts are used up.

**Connections.** Instruments are spread over up to ``max_connections`` connections of
``max_instruments`` each, filled in order; every connection, and every side socket, writes
into the one channel (:func:`~aio_trader.feed.make_channel`): their items merge into the
one stream, in the order they arrived on each connection.

**Credentials** are read from the protocol before every (re)connect: a token renewed while
the feed runs is used by the next reconnect (see the broker feed's ``set_access_token``).

**Session renewal.** Given a ``session`` (:class:`aio_trader._session.Session`, shared with
the REST client) that can renew, a refusal of the session (``SessionExpired``: Kite's 403
on the handshake, Dhan's disconnect codes 807-810) does not end the feed: the session logs
in again (once for every connection refused with the same credential, and once for the
REST client too) and the connection is made again at once with the new credential. If the
renewal fails, or the new credential is refused before a connection was made with it,
the refusal ends the feed as without a session (chained from the renewal's error).

**Reconnect.** Any drop (network error, server close, heartbeat watchdog) reconnects after
the ``backoff`` delay, shortened by the policy's jitter so that several connections do not
reconnect in lockstep; the failure count starts again once a connection stayed up for
``stable_after`` seconds. Out of attempts: :class:`~aio_trader.errors.FeedClosedError`. A
fatal refusal stops the feed at once, no retry. Both are raised out of the ``async with``
(and out of ``async for`` when iterating), as themselves.

**The connection's life** is a second stream, :meth:`~FeedEngine.connection_events`:
:class:`FeedConnected` and :class:`FeedDisconnected` (why, the close code, the attempt
number and the wait before the next attempt).

**Modes.** An instrument ticks in the mode it was last asked for. A protocol may start a
subscription in another mode and switch it with a separate message (Kite starts in
``quote``), so ticks in the old mode may arrive before the switch takes effect, after a
subscribe, a ``set_mode`` and every reconnect. A tick in a *poorer* mode than asked is
delivered as it is and counted (``statistics().poorer_mode``): for an illiquid instrument it
may be the only price for minutes. A tick in a *richer* mode than asked (a switch down not in
effect yet) is dropped and counted (``stale_mode``). An instrument's first tick in its asked
mode ends the switch.

**Lifecycle errors.** Reading before ``async with`` or after it was left, and subscribing
after it was left, raise :class:`~aio_trader.errors.ClientClosedError` (a ``RuntimeError``)
at once. Subscriptions made before entering are remembered and go out with the first
connection. :meth:`~FeedEngine.aclose` inside the block ends ``async for``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys
import time
import urllib.parse
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Mapping,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeAlias, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
import httpcore
import httpx
import wsproto.events
import wsproto.utilities
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from httpx_ws import (
    AsyncWebSocketSession,
    HTTPXWSException,
    WebSocketDisconnect,
    WebSocketNetworkError,
    WebSocketUpgradeError,
    aconnect_ws,
)

from aio_trader._instruments import InstrumentIndex, check_index, resolve_keys
from aio_trader._session import Session
from aio_trader.abc import AbstractFeeder
from aio_trader.backoff import Attempts, Backoff
from aio_trader.errors import (
    AioTraderError,
    ClientClosedError,
    ConnectError,
    ConnectionLost,
    FeedClosedError,
    SessionExpired,
)
from aio_trader.feed._channel import (
    Batches,
    Channel,
    FeedCounters,
    FeedStatistics,
    Overflow,
    Sender,
    make_channel,
    never_a_record,
)
from aio_trader.feed._protocol import FeedProtocol, Handshake, Message

if sys.version_info < (3, 11):  # anyio depends on the backport there
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "MISSING",
    "ConnectionEvent",
    "FeedConnected",
    "FeedDisconnected",
    "FeedEngine",
    "RawFrame",
    "keys_or_former",
    "resolve",
]

log = logging.getLogger(__name__)

#: The default of an argument that may be given under its former keyword instead.
MISSING: Any = object()


def keys_or_former(keys: Any, former: Any, method: str, former_name: str) -> Any:
    """``keys``, or the same argument under its former keyword (``instrument_tokens`` for
    ``KiteFeed``, ``tokens`` for ``RedisFeed`` and ``ReplayFeed``); not both, not neither
    (``TypeError``, as for a missing argument)."""
    if former is MISSING:
        if keys is MISSING:
            raise TypeError(f"{method}() missing the keys (instrument tokens)")
        return keys
    if keys is not MISSING:
        raise TypeError(f"{method}() got both keys and {former_name}")
    return former


KeyT = TypeVar("KeyT", bound=Hashable)
ItemT = TypeVar("ItemT")

_NETWORK_ERRORS: Final = (
    HTTPXWSException,
    wsproto.utilities.LocalProtocolError,
    wsproto.utilities.RemoteProtocolError,  # a broken WebSocket frame from the server
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpx.TransportError,
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)
#: Messages httpx-ws's reader may read ahead of the feed (see ``_Session``).
_READ_AHEAD: Final = 32
#: The request extension that carries a connection's secret query parameters.
_QUERY: Final = "aio_trader.query"


@attrs.frozen
class RawFrame:
    """One item of a raw feed's stream (:class:`~aio_trader.kite.RawKiteFeed`): a frame as
    the broker sent it.

    ``data`` the frame unchanged (``bytes`` for a binary frame, ``str`` for a text frame),
    ``received`` when it was read off the socket (``time.time()``: seconds since the Unix
    epoch), ``connection`` the index (0, 1, 2 ...) of the connection it came on.
    """

    data: bytes | str
    received: float
    connection: int


# -- the connection's life ------------------------------------------------------------------


@attrs.frozen
class FeedConnected:
    """Connection ``connection`` (0, 1, 2 ...) is up: the handshake is done and its
    ``subscriptions`` instruments were sent (replayed, with their modes, when ``reconnect``).

    Where the official Kite client's ``on_connect`` (``reconnect=False``) and
    ``on_reconnect`` (``reconnect=True``) users go.
    """

    connection: int
    reconnect: bool
    subscriptions: int


@attrs.frozen
class FeedDisconnected:
    """Connection ``connection`` is down (or an attempt to open it failed): ``reason`` says
    why; the next attempt comes after ``reconnect_in`` seconds, or never (``None``: the feed
    stops and raises its error out of ``async with`` / ``async for``).

    ``attempt`` is the number of the next attempt (1 for the first reconnect after a drop,
    counting failures in a row; what the official client's ``on_reconnect(attempts)`` gets),
    0 when there is none. ``code`` is the WebSocket close code when the server closed the
    connection (``on_close(code, reason)``), or the handshake's HTTP status when it was
    refused; ``None`` otherwise (a network error, the watchdog, a failed connect).

    Where the official client's ``on_close``/``on_error`` (and, with ``reconnect_in=None``,
    ``on_noreconnect``) users go.
    """

    connection: int
    reason: str
    reconnect_in: float | None
    attempt: int = 0
    code: int | None = None


#: One item of :meth:`FeedEngine.connection_events`.
ConnectionEvent: TypeAlias = FeedConnected | FeedDisconnected


class _Ended(ConnectionLost):
    """Why a connection ended, with the close code or refused status (if any)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class _ConnectFailed(ConnectError):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


async def resolve(value: str | Callable[[], str | Awaitable[str]]) -> str:
    """A credential: the string itself, or what a provider returns (sync or async)."""
    if isinstance(value, str):
        return value
    got = value()
    if inspect.isawaitable(got):
        got = await got
    if not isinstance(got, str) or not got:
        raise TypeError(
            f"a credentials provider must return a non-empty str, got {type(got).__name__}"
        )
    return got


# -- connections --------------------------------------------------------------------------


@attrs.define(eq=False)
class _Shard(Generic[KeyT]):
    """One connection: its instruments with their modes, and its live socket (if any).

    ``side`` names a side socket (no instruments; ``None`` for an instrument connection).
    """

    index: int
    side: str | None = None
    modes: dict[KeyT, str] = attrs.Factory(dict)
    ws: AsyncWebSocketSession | None = None  # while connected and replayed
    session: anyio.CancelScope | None = None
    started: bool = False
    connected_before: bool = False
    #: The session generation this connection renewed to, until a connection is made
    #: with it (a new credential refused at once is final: no renewal loop).
    renewed: int | None = None
    #: ``task_group.start()``'s status while the task has not reported ready.
    task_status: anyio.abc.TaskStatus[None] | None = None
    send: Sender | None = None

    # anyio's primitives need a running event loop: made on first use (after entry), so a
    # feed can be built anywhere, e.g. before ``anyio.run``.

    @functools.cached_property
    def lock(self) -> anyio.Lock:
        return anyio.Lock()

    @functools.cached_property
    def scope(self) -> anyio.CancelScope:
        return anyio.CancelScope()

    @functools.cached_property
    def up(self) -> anyio.Event:
        """Set once the connection is up for the first time (or the feed stopped)."""
        return anyio.Event()


class _SecretQueryTransport(httpx.AsyncBaseTransport):
    """Adds a connection's secret query parameters to the URL below httpx's client, so that
    its request log (``HTTP Request: GET ...`` at INFO) and its errors never show them."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = dict(request.extensions)
        params = extensions.pop(_QUERY, None)
        url = request.url.copy_merge_params(params) if params else request.url
        inner = httpx.Request(
            request.method,
            url,
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )
        return await self._transport.handle_async_request(inner)

    async def aclose(self) -> None:
        await self._transport.aclose()


class _Session(AsyncWebSocketSession):
    """httpx-ws's session, reading ahead: httpx-ws 0.10 leaves the stream between its
    background reader and ``receive`` unbuffered on asyncio and trio (``queue_size`` is
    ignored), so every message waits for the consumer before the next is read. A feed of
    small messages (Dhan's: one packet each) then pays two task switches a message; with
    a small buffer (``_READ_AHEAD`` messages: a slow consumer still holds the reader back
    soon, so TCP flow control paces the server) the reader runs ahead and the consumer
    takes what is there."""

    @contextlib.asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[Self]:
        async with super().__asynccontextmanager__():
            state = getattr(self._receive_event, "_state", None)
            if state is not None and getattr(state, "max_buffer_size", None) == 0:
                state.max_buffer_size = _READ_AHEAD
            yield self


def _receiver(ws: AsyncWebSocketSession) -> Callable[[float | None], Awaitable[Any]]:
    """``ws.receive``, without a cancel scope when there is no deadline (a feed whose
    heartbeat is WebSocket ping/pong) or when an event is already waiting."""
    stream = getattr(ws, "_receive_event", None)
    if stream is None:  # pragma: no cover - another httpx-ws
        return ws.receive
    receive_nowait, receive, wait = stream.receive_nowait, ws.receive, stream.receive
    Close = wsproto.events.CloseConnection

    async def fast(timeout: float | None) -> Any:  # noqa: ASYNC109 (ws.receive's signature)
        try:
            event = receive_nowait()
        except anyio.WouldBlock:
            if timeout is not None:
                return await receive(timeout)
            event = await wait()  # no deadline: no cancel scope either
        if isinstance(event, HTTPXWSException):
            raise event
        if isinstance(event, Close):
            raise WebSocketDisconnect(event.code, event.reason)
        return event

    return fast


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        leaves.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return leaves


def _single(exc: BaseException) -> BaseException:
    """A group holding one error (at any depth) as that error; anything else as it is."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def check_url(name: str, url: object) -> str:
    """``url`` if it is a ``ws://`` or ``wss://`` URL with a host."""
    if not isinstance(url, str):
        raise TypeError(f"{name} must be a str (a ws:// or wss:// URL), got {type(url).__name__}")
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if parts.scheme not in ("ws", "wss") or not host:
        raise ValueError(f"{name} must be a ws:// or wss:// URL with a host, got {url!r}")
    return url


def check_seconds(name: str, value: object, *, zero: bool = False) -> float:
    """``value`` as a float number of seconds > 0 (>= 0 with ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not (value > 0 or (zero and value == 0)):
        raise ValueError(f"{name} must be {'>=' if zero else '>'} 0 seconds, got {value!r}")
    return float(value)


def check_int(name: str, value: object) -> int:
    """``value`` if it is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


def _chunks(keys: list[KeyT], size: int | None) -> list[list[KeyT]]:
    if size is None or len(keys) <= size:
        return [keys] if keys else []
    return [keys[n : n + size] for n in range(0, len(keys), size)]


class FeedEngine(AbstractFeeder[KeyT, ItemT]):
    """A broker's WebSocket feed: connections, reconnects, subscriptions, the channel (see
    the module doc). Subclasses pass their :class:`~aio_trader.feed.FeedProtocol` and
    implement ``_on_binary`` and ``_on_text``."""

    #: Whether items are ticks keyed by instrument (the ``conflate`` policy needs that).
    _can_conflate: ClassVar[bool] = True

    @staticmethod
    def _is_record(item: object) -> bool:
        """Whether a stream item is never dropped nor conflated (text frames' records)."""
        return never_a_record(item)

    @staticmethod
    def _key_of(item: Any) -> Any:
        """An item's instrument (the ``conflate`` key)."""
        raise NotImplementedError

    def __init__(
        self,
        protocol: FeedProtocol[KeyT],
        *,
        subscriptions: Mapping[KeyT | str, str] | Iterable[KeyT | str] | None = None,
        default_mode: str,
        overflow: Overflow | str = Overflow.LOSSLESS,
        buffer_size: int = 10_000,
        watchdog: float = 5.0,
        backoff: Backoff,
        stable_after: float = 30.0,
        connect_timeout: float = 10.0,
        send_timeout: float = 10.0,
        max_connections: int | None = None,
        max_instruments: int | None = None,
        instruments: InstrumentIndex | None = None,
        session: Session | None = None,
    ) -> None:
        """Set up the feed; nothing connects before ``async with``.

        ``subscriptions`` are sent with the first connection: a mapping of keys to modes,
        or keys in ``default_mode`` (also the mode of ``subscribe(keys)`` without one).
        ``instruments``: an index of the feed's broker (its REST client's
        ``instrument_index()``); with it, every method taking keys (and
        ``subscriptions``) also takes symbols (``"NSE:INFY"``), resolved to keys before
        any I/O (see :func:`aio_trader._instruments.resolve_keys`).
        ``overflow`` and ``buffer_size`` set the slow-consumer policy. ``watchdog`` seconds
        of silence drop a connection. ``backoff`` paces reconnects (its ``max_attempts``
        bounds failures in a row; the count restarts once a connection stayed up
        ``stable_after`` seconds). ``connect_timeout`` bounds a handshake,
        ``send_timeout`` a message's write (past it the connection is replaced).
        ``max_connections`` / ``max_instruments`` default to the protocol's limits.
        ``session``: the login whose credential the protocol reads (the broker's feed
        hands the protocol its provider), renewed on a session refusal (see "Session
        renewal" in the module doc).

        Raises ``ValueError`` / ``TypeError`` for bad settings, before any I/O.
        """
        if session is not None and not isinstance(session, Session):
            raise TypeError(f"session must be a session object, got {type(session).__name__}")
        self._login_session = session
        if not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff, got {type(backoff).__name__}")
        self._protocol = protocol
        #: The index symbols are resolved through (None: keys only).
        self.instruments = check_index(instruments, protocol.name.partition("-")[0])
        self.default_mode = protocol.check_mode(default_mode)
        self.overflow = Overflow(overflow)
        if self.overflow is Overflow.CONFLATE and not self._can_conflate:
            raise ValueError(f"{type(self).__name__} cannot conflate: use lossless or drop_oldest")
        self.buffer_size = check_int("buffer_size", buffer_size)
        self.watchdog = check_seconds("watchdog", watchdog)
        self.backoff = backoff
        self.stable_after = check_seconds("stable_after", stable_after, zero=True)
        self.connect_timeout = check_seconds("connect_timeout", connect_timeout)
        self.send_timeout = check_seconds("send_timeout", send_timeout)
        if max_connections is None:
            max_connections = protocol.max_connections
        if max_instruments is None:
            max_instruments = protocol.max_instruments
        self.max_connections = check_int("max_connections", max_connections)
        self.max_instruments = check_int("max_instruments", max_instruments)
        self._shards: list[_Shard[KeyT]] = [_Shard(0)]
        self._sides: list[_Shard[KeyT]] = [
            _Shard(n, side=name) for n, name in enumerate(protocol.side_sockets, start=1000)
        ]
        self._shard_of: dict[KeyT, _Shard[KeyT]] = {}
        #: Instruments whose asked mode is not in effect yet: their mode (see "Modes").
        self._switching: dict[KeyT, str] = {}
        self._counters = FeedCounters()
        key = self._key_of if self._can_conflate else None
        self._channel: Channel[ItemT] = make_channel(
            self.overflow, buffer_size, is_record=self._is_record, key=key
        )
        self._listeners: list[MemoryObjectSendStream[ConnectionEvent]] = []
        self._tg: anyio.abc.TaskGroup | None = None
        self._client: httpx.AsyncClient | None = None
        self._failure: AioTraderError | None = None
        self._closed = False
        self._exited = False
        if subscriptions is not None:
            self._remember_initial(subscriptions)

    def _remember_initial(
        self, subscriptions: Mapping[KeyT | str, str] | Iterable[KeyT | str]
    ) -> None:
        protocol = self._protocol
        if isinstance(subscriptions, Mapping):
            by_mode: dict[str, list[KeyT | str]] = {}
            for key, mode in subscriptions.items():
                by_mode.setdefault(protocol.check_mode(mode), []).append(key)
        else:
            by_mode = {self.default_mode: list(self._check_keys(subscriptions))}
        for mode, keys in by_mode.items():
            self._remember(self._check_keys(keys), mode)

    def _check_keys(self, keys: object) -> list[KeyT]:
        """The protocol's keys of ``keys``, symbols resolved through ``instruments``."""
        return resolve_keys(keys, self.instruments, self._protocol.check_keys)

    def __repr__(self) -> str:
        if self._exited or (self._closed and self._tg is None):
            state = "closed"
        else:
            state = "open" if self._tg is not None else "not started"
        return f"<{type(self).__name__} {self._protocol.describe()} {state}>"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Open the connections in a new task group; returns once they are connected.

        Returns when each connection with instruments (the first one always) and each side
        socket has made its handshake and sent its subscriptions: from then on nothing the
        server sends is lost. Connect failures are retried with ``backoff`` meanwhile.
        Raises, as itself (not in an exception group), the first connection's terminal
        failure: the protocol's fatal refusal (Kite: ``TokenException`` for HTTP 403),
        ``FeedClosedError`` (connect attempts used up). ``RuntimeError`` when entered twice.

        Cancellation: stops connecting; every socket opened so far is closed and every task
        ended before the cancellation propagates (nothing is left running).
        """
        if self._tg is not None or self._closed:
            raise RuntimeError(f"{type(self).__name__} can be entered only once")
        self._client = httpx.AsyncClient(
            timeout=self.connect_timeout,
            transport=_SecretQueryTransport(httpx.AsyncHTTPTransport()),
        )
        self._channel.open()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            for shard in [*self._shards, *self._sides]:
                if shard.index == 0 or shard.modes or shard.side is not None:
                    shard.started = True
                    await tg.start(self._run, shard, name=self._task_name(shard))
        except BaseException as exc:
            error = _single(exc)
            if isinstance(error, AioTraderError) and self._failure is None:
                self._failure = error  # what iterating the failed feed raises
            self._tg = None
            self._exited = True
            self._shutdown()
            try:
                await tg.__aexit__(type(error), error, error.__traceback__)
            except BaseExceptionGroup as group:
                if any(leaf is not error for leaf in _leaves(group)):
                    raise
            finally:
                self._channel.dispose()
                await self._close_client()
            if error is exc:
                raise
            raise error from error.__cause__
        return self

    def _task_name(self, shard: _Shard[KeyT]) -> str:
        what = shard.side if shard.side is not None else f"connection-{shard.index}"
        return f"{self._protocol.name}-feed-{what}"

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close every connection and end every task, then let the block's exception through.

        A fatal feed error that ended the feed is raised here, unless the block raised an
        exception of its own (other than the cancellation the error caused). Cancellation:
        the sockets are closed anyway.
        """
        tg, self._tg = self._tg, None
        self._exited = True
        self._shutdown()
        try:
            if tg is not None:
                try:
                    await tg.__aexit__(exc_type, exc, tb)
                except BaseExceptionGroup as group:
                    # the connection tasks never raise: the group wraps the block's exception
                    if exc is None or any(leaf is not exc for leaf in _leaves(group)):
                        raise
        finally:
            self._channel.dispose()
            await self._close_client()
        cancelled = anyio.get_cancelled_exc_class()
        if self._failure is not None and (exc is None or isinstance(exc, cancelled)):
            raise self._failure

    async def _close_client(self) -> None:
        if self._client is not None:
            with anyio.CancelScope(shield=True):
                await self._client.aclose()

    async def aclose(self) -> None:
        """Stop the connections and end the iteration (``async for`` stops). Idempotent.

        The task group itself ends when the ``async with`` block is left. Cancellation:
        nothing to wait for, the feed is closed either way.
        """
        self._shutdown()
        await anyio.lowlevel.checkpoint()

    def _shutdown(self) -> None:
        self._closed = True
        for shard in [*self._shards, *self._sides]:
            shard.scope.cancel()
            shard.up.set()
        self._channel.close(self._failure)
        listeners, self._listeners = self._listeners, []
        for send in listeners:
            send.close()

    def _fail(self, error: AioTraderError) -> None:
        """Stop the feed for good with ``error``: raised from ``async for`` and ``async with``."""
        if self._failure is None:
            self._failure = error
            log.error("feed stopped: %s", error)
        self._shutdown()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    def _check_not_exited(self, what: str) -> None:
        if self._exited:
            raise ClientClosedError(
                f"{type(self).__name__} was closed: {what} needs a feed inside its async with"
            )

    # -- the connection's life ---------------------------------------------------------

    def connection_events(
        self, max_buffer: int = 100
    ) -> MemoryObjectReceiveStream[ConnectionEvent]:
        """A new stream of :data:`ConnectionEvent` records: ``FeedConnected`` and
        ``FeedDisconnected``, from now until the feed closes (the stream then ends).

        Call it before ``async with`` to see the first connection too; read it in a task of
        your own (``async for event in events``), it never blocks the feed: past
        ``max_buffer`` events waiting, new ones are not added to this stream (logged at
        DEBUG). Close it (``with events:``) to stop receiving. Several streams may be open.
        """
        send, receive = anyio.create_memory_object_stream[ConnectionEvent](
            check_int("max_buffer", max_buffer)
        )
        if self._closed:
            send.close()
        else:
            self._listeners.append(send)
        return receive

    def _emit(self, event: ConnectionEvent) -> None:
        for send in list(self._listeners):
            try:
                send.send_nowait(event)
            except anyio.WouldBlock:
                log.debug("a connection_events stream is full: %r not added", event)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._listeners.remove(send)  # its reader closed it

    # -- iteration -----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[ItemT]:
        """The stream; ``ClientClosedError`` before ``async with`` (it would never yield)
        and after it was left."""
        self._check_entered()
        return self._channel  # its __anext__ is this feed's, one call less per item

    def _check_entered(self) -> None:
        if self._exited and self._failure is None:  # a failed feed raises its error
            self._check_not_exited("reading")
        if self._tg is None and not self._closed:
            raise ClientClosedError(
                f"enter the feed before reading it: async with {type(self).__name__}(...) as feed"
            )

    async def __anext__(self) -> ItemT:
        """The next item; a checkpoint every time (a busy loop body never starves the
        connections), waits when none is there.

        Ends (``StopAsyncIteration``) once the feed is closed; raises the feed's fatal
        error when it stopped for good. Cancellation: raises the backend's cancellation,
        nothing is lost (the item stays buffered, the next call gets it).
        """
        self._check_entered()
        return await self._channel.get()

    def batches(self, max_items: int = 1000) -> AsyncIterator[list[ItemT]]:
        """The same stream in lists: ``async for batch in feed.batches(): for item in batch``.

        Each step waits for at least one item (a checkpoint, as every receive of
        ``async for item in feed``), then takes the items already waiting, up to
        ``max_items`` in all, without waiting or scheduling again: one checkpoint per
        batch instead of one per item, for consumers that keep up with a busy feed. The
        items, their order and the overflow policy are those of ``async for item in feed``
        (both may read one feed, in turn or from one loop, and the order holds); a batch is
        never empty and may span frames and connections.

        Ends (``StopAsyncIteration``) once the feed is closed; raises the feed's fatal
        error when it stopped for good. Cancellation: raises the backend's cancellation
        while waiting for the first item, nothing is lost (the items stay buffered; the
        next step gets them). ``ValueError`` / ``TypeError`` for a ``max_items`` that is
        not an int >= 1; ``ClientClosedError`` before ``async with`` and after it.
        """
        max_items = check_int("max_items", max_items)
        self._check_entered()
        return Batches(self._channel, max_items)

    def statistics(self) -> FeedStatistics:
        """A frozen snapshot of the counters (see :class:`~aio_trader.feed.FeedStatistics`)."""
        return self._counters.snapshot(self._channel, len(self._shard_of))

    @property
    def subscriptions(self) -> dict[KeyT, str]:
        """A copy of the subscribed keys with their modes."""
        return {key: shard.modes[key] for key, shard in self._shard_of.items()}

    # -- subscriptions -----------------------------------------------------------------

    async def subscribe(self, keys: Iterable[KeyT | str], mode: str | None = None) -> None:
        """Subscribe ``keys`` in ``mode`` (default: ``default_mode``).

        Already subscribed keys switch to ``mode``. Before ``async with`` the subscription
        is only remembered and goes out with the first connection; it is replayed, with its
        mode, after every reconnect. Instruments beyond ``max_instruments`` go to a further
        connection (at most ``max_connections``): the call then returns once that
        connection is up (or raises the feed's error if it cannot be made). Raises
        ``ValueError`` for a bad key or mode, or when the total would exceed
        ``max_connections * max_instruments``; ``TypeError`` for keys that are not an
        iterable of keys (nothing changes then); ``ClientClosedError`` after the feed's
        ``async with`` was left.

        Cancellation: the subscription is remembered and sent either way (the write is
        shielded, at most ``send_timeout``, so the socket is never left half-written and
        the server is told what the feed remembers), then the cancellation is raised; it is
        replayed on reconnect; a new connection goes on connecting.
        """
        protocol = self._protocol
        mode_ = self.default_mode if mode is None else protocol.check_mode(mode)
        wanted = self._check_keys(keys)
        self._check_not_exited("subscribe")
        new = self._remember(wanted, mode_)
        for shard in new:
            self._start(shard)
        size = protocol.max_per_message
        for shard, group in self._by_shard(wanted).items():
            messages = [m for c in _chunks(group, size) for m in protocol.subscribe(mode_, c)]
            await self._send(shard, messages)
        for shard in new:
            if shard.started:
                await shard.up.wait()
        if self._failure is not None:
            raise self._failure

    def _remember(self, wanted: list[KeyT], mode_: str) -> list[_Shard[KeyT]]:
        """Record ``wanted`` in ``mode_`` (raises before any change); the new shards."""
        new = [k for k in wanted if k not in self._shard_of]
        limit = self.max_connections * self.max_instruments
        if len(self._shard_of) + len(new) > limit:
            raise ValueError(
                f"too many instruments: {len(self._shard_of) + len(new)} would be subscribed, "
                f"the feed allows {self.max_instruments} per connection and "
                f"{self.max_connections} connections ({limit})"
            )
        shards: list[_Shard[KeyT]] = []
        for key in new:
            shard = next((s for s in self._shards if len(s.modes) < self.max_instruments), None)
            if shard is None:
                shard = _Shard(len(self._shards))
                self._shards.append(shard)
                shards.append(shard)
            shard.modes[key] = mode_
            self._shard_of[key] = shard
        for key in wanted:
            self._shard_of[key].modes[key] = mode_
            self._switching[key] = mode_
        return shards

    async def unsubscribe(self, keys: Iterable[KeyT | str]) -> None:
        """Stop receiving ``keys``; keys not subscribed are ignored.

        Connections stay open when they have nothing left. Raises ``ValueError`` /
        ``TypeError`` for bad keys, ``ClientClosedError`` after the feed's ``async with``
        was left. Cancellation: as for :meth:`subscribe`.
        """
        protocol = self._protocol
        wanted = [k for k in self._check_keys(keys) if k in self._shard_of]
        self._check_not_exited("unsubscribe")
        groups = self._by_shard_and_mode(wanted)
        for key in wanted:
            del self._shard_of.pop(key).modes[key]
            self._switching.pop(key, None)
        size = protocol.max_per_message
        for shard, by_mode in groups.items():
            messages = [
                m
                for mode, group in by_mode.items()
                for c in _chunks(group, size)
                for m in protocol.unsubscribe(mode, c)
            ]
            await self._send(shard, messages)

    async def set_mode(self, mode: str, keys: Iterable[KeyT | str]) -> None:
        """Switch subscribed ``keys`` to ``mode``: their ticks received from the call on
        come in ``mode`` (see "Modes" in the module doc; ticks already waiting in the
        channel are still delivered).

        Raises ``ValueError`` for a bad mode or a key that is not subscribed (nothing
        changes then), ``ClientClosedError`` after the feed's ``async with`` was left.
        Cancellation: as for :meth:`subscribe`.
        """
        protocol = self._protocol
        mode_ = protocol.check_mode(mode)
        wanted = self._check_keys(keys)
        missing = [k for k in wanted if k not in self._shard_of]
        if missing:
            raise ValueError(
                f"set_mode: {len(missing)} key(s) not subscribed (first: {missing[0]!r}); "
                "subscribe them first"
            )
        self._check_not_exited("set_mode")
        groups = self._by_shard_and_mode(wanted)
        for key in wanted:
            self._shard_of[key].modes[key] = mode_
            self._switching[key] = mode_
        size = protocol.max_per_message
        for shard, by_previous in groups.items():
            messages = [
                m
                for previous, group in by_previous.items()
                for c in _chunks(group, size)
                for m in protocol.set_mode(mode_, c, previous)
            ]
            await self._send(shard, messages)

    def _by_shard(self, keys: list[KeyT]) -> dict[_Shard[KeyT], list[KeyT]]:
        groups: dict[_Shard[KeyT], list[KeyT]] = {}
        for key in keys:
            groups.setdefault(self._shard_of[key], []).append(key)
        return groups

    def _by_shard_and_mode(self, keys: list[KeyT]) -> dict[_Shard[KeyT], dict[str, list[KeyT]]]:
        """Subscribed ``keys`` by connection, then by their mode now."""
        groups: dict[_Shard[KeyT], dict[str, list[KeyT]]] = {}
        for key in keys:
            shard = self._shard_of[key]
            groups.setdefault(shard, {}).setdefault(shard.modes[key], []).append(key)
        return groups

    def _replay_messages(self, shard: _Shard[KeyT]) -> list[Message]:
        protocol = self._protocol
        messages = protocol.login(shard.side)
        groups: dict[str, list[KeyT]] = {}
        for key, mode in shard.modes.items():
            groups.setdefault(mode, []).append(key)
        for mode, group in groups.items():
            for chunk in _chunks(group, protocol.max_per_message):
                messages.extend(protocol.subscribe(mode, chunk))
        return messages

    async def _send(self, shard: _Shard[KeyT], messages: list[Message]) -> None:
        """Send ``messages`` on the shard's connection if it is up (else replay covers them).

        Shielded: a cancelled caller's messages still go out (each write bounded by
        ``send_timeout``), so what is remembered is also what the server was told; the
        cancellation is raised right after.
        """
        with anyio.CancelScope(shield=True):
            async with shard.lock:
                if shard.ws is not None:
                    await self._write(shard, shard.ws, messages)
        await anyio.lowlevel.checkpoint_if_cancelled()

    async def _write(
        self, shard: _Shard[KeyT], ws: AsyncWebSocketSession, messages: list[Message]
    ) -> bool:
        """Write the messages, shielded up to ``send_timeout``; False if the socket failed.

        Past the timeout the connection is stuck: its session is cancelled (reconnect).
        """
        with anyio.move_on_after(self.send_timeout, shield=True) as scope:
            try:
                for message in messages:
                    if isinstance(message, str):
                        await ws.send_text(message)
                    else:
                        await ws.send_bytes(message)
            except _NETWORK_ERRORS as exc:
                log.info("connection %d: sending failed (%s)", shard.index, type(exc).__name__)
                return False
        if scope.cancelled_caught:
            log.warning("connection %d: a send took over %s s; reconnecting", shard.index,
                        self.send_timeout)  # fmt: skip
            if shard.session is not None:
                shard.session.cancel()
            return False
        return True

    # -- the connection loop -----------------------------------------------------------

    def _start(self, shard: _Shard[KeyT]) -> None:
        """Start a connection added after entry (it reports ready through ``shard.up``)."""
        if self._tg is not None and not shard.started and not self._closed:
            shard.started = True
            self._tg.start_soon(self._run, shard, name=self._task_name(shard))

    async def _run(
        self,
        shard: _Shard[KeyT],
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Connect, read, reconnect until cancelled; a fatal error stops the whole feed.

        Started by ``task_group.start()`` (``__aenter__``), it reports ready once connected
        and subscribed; a fatal error before that is raised to the starter instead.
        """
        shard.task_status = task_status
        with shard.scope, self._channel.sender() as shard.send:
            try:
                try:
                    await self._connect_loop(shard)
                except BaseExceptionGroup as group:
                    error = _single(group)
                    if not isinstance(error, AioTraderError):
                        raise
                    raise error from error.__cause__
            except AioTraderError as exc:
                code = getattr(exc, "status_code", None) or getattr(exc, "code", None)
                self._emit(FeedDisconnected(shard.index, str(exc), None, 0, code))
                if shard.task_status is not None and task_status is not anyio.TASK_STATUS_IGNORED:
                    log.error("feed could not connect: %s", exc)
                    raise  # not ready yet: __aenter__ raises it
                self._fail(exc)
            finally:
                shard.up.set()

    async def _connect_loop(self, shard: _Shard[KeyT]) -> None:
        attempts = self.backoff.attempts(stable_after=self.stable_after)
        session = self._login_session
        while True:
            generation = session.generation if session is not None else 0
            try:
                error = await self._connect_once(shard, attempts)
            except SessionExpired as refused:
                if not await self._renewed(shard, refused, generation):
                    raise
                continue
            if not attempts.failed():
                raise FeedClosedError(
                    f"connection {shard.index}: gave up after {attempts.failures} failed "
                    f"attempts in a row; last: {error}"
                ) from error
            self._counters.reconnects += 1
            code = getattr(error, "code", None)
            self._emit(
                FeedDisconnected(shard.index, str(error), attempts.delay, attempts.failures, code)
            )
            log.warning(
                "connection %d lost (%s); reconnecting in %.3g s (attempt %d)",
                shard.index,
                error,
                attempts.delay,
                attempts.failures,
            )
            await attempts.sleep()

    async def _renewed(self, shard: _Shard[KeyT], refused: SessionExpired, generation: int) -> bool:
        """After a session refusal of ``shard`` made with ``generation``'s credential: True
        once the session renewed (reconnect now), False when it cannot (the refusal ends
        the feed). Raises ``refused`` chained from the renewal's error when it failed."""
        session = self._login_session
        if session is None or not session.can_renew or shard.renewed == generation:
            return False
        log.warning("connection %d: session refused (%s); renewing it", shard.index, refused)
        try:
            await session.renew(generation)
        except Exception as failure:
            log.error("connection %d: session renewal failed", shard.index)
            raise refused from failure
        shard.renewed = session.generation
        code = getattr(refused, "status_code", None)
        reason = f"session renewed after: {refused}"
        self._emit(FeedDisconnected(shard.index, reason, 0.0, 0, code))
        return True

    def _describe(self, exc: BaseException) -> str:
        text = _redact(str(exc), self._protocol.secrets())
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    async def _connect_once(self, shard: _Shard[KeyT], attempts: Attempts) -> AioTraderError:
        """One connection, from handshake to drop; returns why it ended (our error).

        Raises the protocol's fatal refusal of the handshake, and what a frame handler
        raises (a refusal inside the stream).
        """
        assert self._client is not None
        protocol = self._protocol
        try:
            handshake: Handshake = await protocol.handshake(shard.side)
        except Exception as exc:  # noqa: BLE001 - a provider's failure is retried
            return ConnectError(f"the credentials provider failed ({type(exc).__name__})")
        ping = protocol.heartbeat == "ping"
        try:
            async with aconnect_ws(
                handshake.url,
                self._client,
                keepalive_ping_interval_seconds=protocol.ping_interval if ping else None,
                keepalive_ping_timeout_seconds=self.watchdog if ping else None,
                max_message_size_bytes=1 << 20,  # read up to 1 MiB at a time
                session_class=_Session,
                headers=dict(handshake.headers),
                extensions={_QUERY: dict(handshake.params)},
            ) as ws:
                attempts.succeeded()
                return await self._session(shard, ws)
        except WebSocketUpgradeError as exc:
            status = exc.response.status_code
            fatal = protocol.refusal(status)
            if fatal is not None:
                raise fatal from None
            return _ConnectFailed(f"the server refused the connection with HTTP {status}", status)
        except httpx.TimeoutException as exc:
            return ConnectError(f"timed out connecting ({self._describe(exc)})")
        except _NETWORK_ERRORS as exc:
            return ConnectError(f"could not connect ({self._describe(exc)})")
        except BaseExceptionGroup as group:
            # httpx-ws's session runs a task group: network errors may come out wrapped.
            leaves = _leaves(group)
            ours = [leaf for leaf in leaves if isinstance(leaf, AioTraderError)]
            if all(isinstance(leaf, _NETWORK_ERRORS) for leaf in leaves):
                return ConnectionLost(f"connection lost ({self._describe(leaves[0])})")
            if len(ours) == 1 and all(
                leaf is ours[0] or isinstance(leaf, _NETWORK_ERRORS) for leaf in leaves
            ):
                # a frame handler's refusal, raised while httpx-ws's background task failed
                # on the closing socket (e.g. answering a ping): the refusal is what happened
                raise ours[0] from None
            raise

    async def _session(self, shard: _Shard[KeyT], ws: AsyncWebSocketSession) -> AioTraderError:
        """Log in, replay the subscriptions, report the connection up, then read until it
        ends."""
        with anyio.CancelScope() as shard.session:
            async with shard.lock:
                self._switching.update(shard.modes)  # the protocol may start them elsewhere
                messages = self._replay_messages(shard)
                if messages and not await self._write(shard, ws, messages):
                    return ConnectionLost("connection lost while subscribing")
                shard.ws = ws
                replayed = len(shard.modes)
            self._counters.connections += 1
            reconnect, shard.connected_before = shard.connected_before, True
            shard.renewed = None
            log.info("connection %d up, %d instruments", shard.index, replayed)
            self._emit(FeedConnected(shard.index, reconnect, replayed))
            shard.up.set()
            status, shard.task_status = shard.task_status, None
            if status is not None:
                status.started()
            try:
                assert shard.send is not None
                return await self._read(ws, shard.send, shard.index)
            finally:
                shard.ws = None
                self._counters.connections -= 1
        return ConnectionLost(f"a send took over {self.send_timeout} s")

    async def _read(
        self, ws: AsyncWebSocketSession, send: Sender, connection: int
    ) -> AioTraderError:
        """Receive frames into the channel until the connection ends; returns why it ended."""
        watchdog = None if self._protocol.heartbeat == "ping" else self.watchdog
        try:
            return await self._read_frames(_receiver(ws), send, connection, watchdog)
        except ConnectionLost as exc:  # a handler's in-stream refusal that heals
            return exc

    async def _read_frames(
        self, receive: Any, send: Sender, connection: int, watchdog: float | None
    ) -> AioTraderError:
        counters = self._counters
        heartbeat_size = self._protocol.heartbeat_size
        binary, text = self._on_binary, self._on_text
        Bytes, Text = wsproto.events.BytesMessage, wsproto.events.TextMessage
        while True:
            try:
                event = await receive(watchdog)
            except TimeoutError:
                return ConnectionLost(f"nothing received for {watchdog} s (heartbeat watchdog)")
            except WebSocketDisconnect as exc:
                reason = f": {exc.reason}" if exc.reason else ""
                return _Ended(f"closed by the server (code {exc.code}{reason})", exc.code)
            except WebSocketNetworkError:
                return ConnectionLost("network error")
            counters.last_message = received = time.time()
            if isinstance(event, Bytes):
                data = event.data
                counters.bytes += len(data)
                if len(data) < heartbeat_size:
                    counters.heartbeats += 1
                else:
                    counters.frames += 1
                    await binary(data, send, received, connection)
            elif isinstance(event, Text):
                counters.text_frames += 1
                counters.bytes += len(event.data)
                await text(event.data, send, received, connection)

    # -- what a broker's feed implements -------------------------------------------------

    def _in_asked_mode(self, ticks: list[Any]) -> list[Any]:
        """The ticks of instruments whose mode switch has not taken effect yet, sorted out:
        a tick in a poorer mode than asked is kept (counted in ``poorer_mode``), one in a
        richer mode dropped (``stale_mode``); an instrument's first tick in its mode ends
        its switch. Ticks have ``mode`` and the key (``_key_of``)."""
        switching, rank, key_of = self._switching, self._protocol.rank, self._key_of
        kept: list[Any] = []
        poorer = 0
        for tick in ticks:
            key = key_of(tick)
            mode = switching.get(key)
            if mode is not None:
                got = tick.mode
                if got == mode:
                    del switching[key]
                elif rank(got) > rank(mode):
                    continue
                else:
                    poorer += 1
            kept.append(tick)
        if poorer:
            self._counters.poorer_mode += poorer
        if len(kept) < len(ticks):
            self._counters.stale_mode += len(ticks) - len(kept)
            log.debug("dropped %d ticks in a richer mode than asked", len(ticks) - len(kept))
        return kept

    async def _on_binary(
        self, data: bytes | bytearray, send: Sender, received: float, connection: int
    ) -> None:
        """Handle one binary frame (not a heartbeat) read at ``received`` on ``connection``:
        decode it and put its items into ``self._channel`` through ``send``. Raising an
        ``AioTraderError`` stops the feed with it (a refusal inside the stream)."""
        raise NotImplementedError

    async def _on_text(self, data: str, send: Sender, received: float, connection: int) -> None:
        """Handle one text frame read at ``received`` on ``connection`` (as ``_on_binary``)."""
        raise NotImplementedError
