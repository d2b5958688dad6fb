"""``KiteFeed``: Kite's streaming WebSocket feed, with structured concurrency.

::

    async with KiteFeed(api_key="...", access_token="...") as feed:   # connected here
        await feed.subscribe([408065, 884737], mode="full")
        async for item in feed:
            match item:
                case FullTick():    ...   # any Tick record: LtpTick, QuoteTick, FullTick, ...
                case OrderUpdate(): ...   # an order postback
                case FeedError() | FeedMessage(): ...

**Entering** connects: ``async with`` returns once every connection that has work (the
first one always) has made its handshake and sent the subscriptions known so far (given to
the constructor's ``subscriptions`` or to :meth:`~KiteFeed.subscribe` before entering).
The connection tasks report ready through ``task_group.start()``. So nothing Kite sends
after entry is lost: an order placed right after ``subscribe`` reaches ``async for`` as an
:class:`OrderUpdate`. A first connection that cannot be made raises out of ``async with``
itself, as itself (never inside an exception group): :class:`~aio_trader.errors.TokenException`
for a 403, :class:`~aio_trader.errors.FeedClosedError` once the connect attempts are used up
or when the ticker refuses the handshake with a status that never heals (404, 400, ...).
Configuration errors (a ``root`` that is not a ``ws://``/``wss://`` URL, a non-positive
timeout, an argument of the wrong type) raise in the constructor, before any I/O.

**What the stream carries** (:data:`FeedItem`, a tagged union: ``match`` on the class):
tick records, :class:`OrderUpdate` (Kite's ``order`` text frames), :class:`FeedError`
(``error`` frames) and :class:`FeedMessage` (``message`` frames), all on the one stream, in
the order they arrived on each connection. Heartbeats are counted, never yielded.
Malformed packets and text frames are counted (``statistics().malformed``, every one) and
logged once per frame, never fatal. :class:`RawKiteFeed` yields the frames undecoded
instead, as :class:`RawFrame` records (the frame's ``bytes`` or ``str``, its receive time
and its connection).

**The connection's life** is a second stream, :meth:`~KiteFeed.connection_events`:
:class:`FeedConnected` (handshake done, subscriptions sent or replayed: how many, and
whether it is a reconnect) and :class:`FeedDisconnected` (why, and the wait before the
next attempt, ``None`` when there is none). ``statistics()`` keeps the counts. The
feed's stream itself carries Kite's data only.

**Modes.** An instrument ticks in the mode it was last asked for. Kite's protocol starts
every subscription in ``quote`` mode and switches it with a separate ``mode`` message, so
ticks in the old mode may arrive before the switch takes effect (the sandbox, like Kite,
answers a subscription at once); :class:`KiteFeed` drops them until the instrument's first
tick in the asked mode (counted in ``statistics().stale_mode``), after ``subscribe``,
``set_mode`` and every reconnect alike. :class:`RawKiteFeed` passes every frame on.

**Connections.** Entering opens an anyio task group; each connection (Kite allows 3000
instruments per connection and 3 connections per api_key) runs in it: connect, replay the
subscriptions with their modes, read. More than 3000 instruments are spread over up to 3
connections, filled in order; their items merge into the one stream. Leaving the block (or
the cancellation of any scope around it) closes every socket and ends every task.

**Reconnect.** Any drop (network error, server close, heartbeat watchdog) reconnects after
the ``backoff`` delay, shortened by the policy's jitter (the default's: up to half) so that
several connections do not reconnect in lockstep; the failure count starts again once a
connection stayed up for ``stable_after`` seconds. Out of attempts:
:class:`~aio_trader.errors.FeedClosedError`. A 403 at the handshake (session expired or
invalid) stops the feed at once, no retry: :class:`~aio_trader.errors.TokenException`.
Both are raised out of the ``async with`` (and out of ``async for`` when iterating), as
themselves, not inside an exception group.

**Heartbeat watchdog.** Kite sends a 1-byte frame each second when it has nothing else to
send. If nothing at all arrives for ``watchdog`` seconds, the connection is dead: it is
dropped and a new one made.

**The channel** between the connections and ``async for`` is an anyio memory object
stream; each connection writes through its own send clone. Every receive is a checkpoint
(trio's rule), so a busy ``async for`` body never starves the connections, and a cancel
scope around the loop ends it on time. That costs a scheduler pass per item;
:meth:`~KiteFeed.batches` pays it once per list of the items already waiting (``async for
batch in feed.batches()``: the same items, order and policies). Slow consumers
(:class:`Overflow`):

- ``lossless``: a stream bounded at ``buffer_size`` items. When it is full, the reader
  waits to send and stops reading the socket; httpx-ws then stops reading too, the kernel's
  receive buffer fills, and TCP flow control makes Kite's (or the sandbox's) sends block:
  nothing is lost, the server is slowed down (Kite may disconnect a client that stays
  behind for long; the feed then reconnects).
- ``drop_oldest``: the stream is bounded at ``buffer_size``; when it is full the feed takes
  the oldest item out of it through its own receive clone (a tick is dropped and counted in
  ``dropped``). Text-frame records are never dropped: one taken out is kept aside and
  delivered first (it is older than everything in the stream); past ``buffer_size``
  records waiting, the reader waits, as in ``lossless``.
- ``conflate``: a dict of the newest tick per instrument plus a stream of instrument keys:
  a new tick replaces the waiting one in its place in line (counted in ``dropped``). Each
  Kite tick is a full snapshot in its mode, so a slow consumer still sees the current state
  of every instrument; at most one tick per instrument waits (whatever ``buffer_size``).
  Text-frame records go through the key stream in their place, never dropped; past
  ``buffer_size`` of them waiting, the reader waits.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeAlias, TypeVar

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

from aio_trader.abc import AbstractFeeder
from aio_trader.backoff import Attempts, Backoff
from aio_trader.errors import (
    AioTraderError,
    ConnectError,
    ConnectionLost,
    FeedClosedError,
    TokenException,
)
from aio_trader.feed._channel import (
    Batches,
    Channel,
    FeedCounters,
    FeedStatistics,
    Overflow,
    Sender,
    make_channel,
)
from aio_trader.kite.constants import TICKER_MAX_CONNECTIONS, TICKER_MAX_INSTRUMENTS, Mode
from aio_trader.kite.ticks import (
    FeedError,
    FeedMessage,
    MalformedPacket,
    OrderUpdate,
    Tick,
    decode_frame,
    decode_text,
)

if sys.version_info < (3, 11):  # anyio depends on the backport there
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "DEFAULT_BACKOFF",
    "KITE_CONNECT_ROOT",
    "KITE_WEB_ROOT",
    "ConnectionEvent",
    "FeedConnected",
    "FeedDisconnected",
    "FeedItem",
    "FeedStatistics",
    "KiteFeed",
    "Overflow",
    "RawFrame",
    "RawKiteFeed",
]

log = logging.getLogger(__name__)

#: Kite Connect's ticker, and Kite Web's (the browser client's).
KITE_CONNECT_ROOT: Final = "wss://ws.kite.trade"
KITE_WEB_ROOT: Final = "wss://ws.zerodha.com"
#: The query parameters Kite Web's own client adds (with ``user_id``, ``enctoken``, ``uid``).
_KITE_WEB_PARAMS: Final = {"api_key": "kitefront", "user-agent": "kite3-web", "version": "3.0.0"}

#: Reconnect waits up to 1, 2, 4 ... 30 s (each shortened by up to half, at random, so that
#: connections do not reconnect in lockstep), at most 30 attempts in a row (a drop costs a
#: second of ticks rather than the REST default's 3 s).
DEFAULT_BACKOFF: Final = Backoff(base=1.0, factor=2.0, cap=30.0, max_attempts=30, jitter=0.5)

#: One item of :class:`KiteFeed`'s stream: a tick record, or a text frame's record.
FeedItem: TypeAlias = Tick | OrderUpdate | FeedError | FeedMessage


@attrs.frozen
class RawFrame:
    """One item of :class:`RawKiteFeed`'s stream: a frame as Kite sent it.

    ``data`` the frame unchanged (``bytes`` for a binary frame, ``str`` for a text frame),
    ``received`` when it was read off the socket (``time.time()``: seconds since the Unix
    epoch), ``connection`` the index (0, 1, 2) of the Kite connection it came on.
    """

    data: bytes | str
    received: float
    connection: int


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


# -- the connection's life ------------------------------------------------------------------


@attrs.frozen
class FeedConnected:
    """Connection ``connection`` (0, 1, 2) is up: the handshake is done and its
    ``subscriptions`` instruments were sent (replayed, with their modes, when ``reconnect``).

    Where the official client's ``on_connect`` (``reconnect=False``) and ``on_reconnect``
    (``reconnect=True``) users go.
    """

    connection: int
    reconnect: bool
    subscriptions: int


@attrs.frozen
class FeedDisconnected:
    """Connection ``connection`` is down (or an attempt to open it failed): ``reason`` says
    why; the next attempt comes after ``reconnect_in`` seconds, or never (``None``: the feed
    stops and raises its error out of ``async with`` / ``async for``).

    Where the official client's ``on_close``/``on_error`` (and, with ``reconnect_in=None``,
    ``on_noreconnect``) users go.
    """

    connection: int
    reason: str
    reconnect_in: float | None


#: One item of :meth:`KiteFeed.connection_events`.
ConnectionEvent: TypeAlias = FeedConnected | FeedDisconnected


# -- connections --------------------------------------------------------------------------


@attrs.define(eq=False)
class _Shard:
    """One connection: its instruments with their modes, and its live socket (if any)."""

    index: int
    modes: dict[int, str] = attrs.Factory(dict)
    ws: AsyncWebSocketSession | None = None  # while connected and replayed
    lock: anyio.Lock = attrs.Factory(anyio.Lock)
    scope: anyio.CancelScope = attrs.Factory(anyio.CancelScope)
    session: anyio.CancelScope | None = None
    started: bool = False
    #: Set once the connection is up for the first time (or the feed stopped).
    up: anyio.Event = attrs.Factory(anyio.Event)
    connected_before: bool = False
    #: ``task_group.start()``'s status while the task has not reported ready.
    task_status: anyio.abc.TaskStatus[None] | None = None
    send: Sender | None = None


class _CredentialsTransport(httpx.AsyncBaseTransport):
    """Adds the credentials to the URL below httpx's client, so that its request log
    (``HTTP Request: GET ...`` at INFO) and its errors never show them."""

    def __init__(
        self, transport: httpx.AsyncBaseTransport, credentials: Callable[[], dict[str, str]]
    ) -> None:
        self._transport = transport
        self._credentials = credentials

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_merge_params(self._credentials())
        inner = httpx.Request(
            request.method,
            url,
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return await self._transport.handle_async_request(inner)

    async def aclose(self) -> None:
        await self._transport.aclose()


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


def _check_root(root: object) -> str:
    if not isinstance(root, str):
        raise TypeError(f"root must be a str (a ws:// or wss:// URL), got {type(root).__name__}")
    try:
        parts = urllib.parse.urlsplit(root)
        host = parts.hostname
    except ValueError:
        host = None
    if parts.scheme not in ("ws", "wss") or not host:
        raise ValueError(f"root must be a ws:// or wss:// URL with a host, got {root!r}")
    return root


def _check_seconds(name: str, value: object, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not (value > 0 or (zero and value == 0)):
        raise ValueError(f"{name} must be {'>=' if zero else '>'} 0 seconds, got {value!r}")
    return float(value)


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


class _KiteFeedBase(AbstractFeeder[int, ItemT]):
    """What :class:`KiteFeed` and :class:`RawKiteFeed` share: all of it but the decoding."""

    #: Whether items are ticks keyed by instrument (the ``conflate`` policy needs that).
    _can_conflate: ClassVar[bool] = True

    @staticmethod
    def _is_record(item: object) -> bool:
        """Whether a stream item comes from a text frame (never dropped nor conflated)."""
        return isinstance(item, OrderUpdate | FeedError | FeedMessage)

    def __init__(
        self,
        api_key: str | None = None,
        access_token: str | None = None,
        *,
        user_id: str | None = None,
        enctoken: str | None = None,
        root: str | None = None,
        subscriptions: Mapping[int, Mode | str] | Iterable[int] | None = None,
        default_mode: Mode | str = Mode.QUOTE,
        overflow: Overflow | str = Overflow.LOSSLESS,
        buffer_size: int = 10_000,
        watchdog: float = 5.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        stable_after: float = 30.0,
        connect_timeout: float = 10.0,
        send_timeout: float = 10.0,
        max_connections: int = TICKER_MAX_CONNECTIONS,
        max_instruments: int = TICKER_MAX_INSTRUMENTS,
    ) -> None:
        """Set up the feed; nothing connects before ``async with``.

        Kite Connect: ``api_key`` and ``access_token`` (``root`` defaults to
        ``wss://ws.kite.trade``). Kite Web: ``user_id`` and ``enctoken`` (``root`` defaults
        to ``wss://ws.zerodha.com``, and the web client's parameters are sent). ``root``
        points elsewhere, e.g. at the sandbox's ``ticker_url``.

        ``subscriptions`` are sent with the first connection: a mapping of instrument
        tokens to modes (``{408065: "full", 884737: "ltp"}``), or tokens in
        ``default_mode``. ``default_mode`` is also the mode of ``subscribe(tokens)`` without
        one. ``overflow`` and ``buffer_size`` (items; frames for :class:`RawKiteFeed`) set
        the slow-consumer policy. ``watchdog`` seconds of silence drop a connection.
        ``backoff`` paces reconnects (its ``max_attempts`` bounds failures in a row; the
        count restarts once a connection stayed up ``stable_after`` seconds).
        ``connect_timeout`` bounds a handshake. ``send_timeout`` bounds a subscription
        message's write; past it the connection is deemed stuck and is replaced.
        ``max_connections`` x ``max_instruments`` is Kite's per-api_key limit.

        Raises, before any I/O: ``ValueError`` for missing/mixed credentials, a ``root``
        that is not a ``ws://``/``wss://`` URL, a non-positive timeout, a bad mode, policy,
        token or size; ``TypeError`` for an argument of the wrong type.
        """
        for name, value in (
            ("api_key", api_key),
            ("access_token", access_token),
            ("user_id", user_id),
            ("enctoken", enctoken),
        ):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        web = user_id is not None or enctoken is not None
        if web == (api_key is not None or access_token is not None) or (
            not web and not (api_key and access_token)
        ):
            raise ValueError(
                "give api_key and access_token (Kite Connect), or user_id and enctoken "
                "(Kite Web), not both"
            )
        if web and not (user_id and enctoken):
            raise ValueError("Kite Web needs both user_id and enctoken")
        if not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff, got {type(backoff).__name__}")
        self._web = web
        self._api_key = api_key or ""
        self._user_id = user_id or ""
        self._secret = (enctoken if web else access_token) or ""
        if root is None:
            root = KITE_WEB_ROOT if web else KITE_CONNECT_ROOT
        self.root = _check_root(root)
        self.default_mode = Mode(default_mode)
        self.overflow = Overflow(overflow)
        if self.overflow is Overflow.CONFLATE and not self._can_conflate:
            raise ValueError(f"{type(self).__name__} cannot conflate: use lossless or drop_oldest")
        self.buffer_size = _check_int("buffer_size", buffer_size)
        self.watchdog = _check_seconds("watchdog", watchdog)
        self.backoff = backoff
        self.stable_after = _check_seconds("stable_after", stable_after, zero=True)
        self.connect_timeout = _check_seconds("connect_timeout", connect_timeout)
        self.send_timeout = _check_seconds("send_timeout", send_timeout)
        self.max_connections = _check_int("max_connections", max_connections)
        self.max_instruments = _check_int("max_instruments", max_instruments)
        self._shards: list[_Shard] = [_Shard(0)]
        self._shard_of: dict[int, _Shard] = {}
        #: Instruments whose asked mode is not in effect yet: their mode (see "Modes").
        self._switching: dict[int, str] = {}
        self._counters = FeedCounters()
        self._channel: Channel[ItemT] = make_channel(
            self.overflow, buffer_size, is_record=self._is_record, key=_instrument_token
        )
        self._listeners: list[MemoryObjectSendStream[ConnectionEvent]] = []
        self._tg: anyio.abc.TaskGroup | None = None
        self._client: httpx.AsyncClient | None = None
        self._failure: AioTraderError | None = None
        self._closed = False
        if subscriptions is not None:
            self._remember_initial(subscriptions)

    def _remember_initial(self, subscriptions: Mapping[int, Mode | str] | Iterable[int]) -> None:
        if isinstance(subscriptions, Mapping):
            by_mode: dict[Mode, list[int]] = {}
            for token, mode in subscriptions.items():
                by_mode.setdefault(Mode(mode), []).append(token)
        else:
            by_mode = {self.default_mode: list(_check_iterable(subscriptions))}
        for mode, tokens in by_mode.items():
            self._remember(_check_tokens(tokens), mode)

    def __repr__(self) -> str:
        who = f"user_id={self._user_id!r}" if self._web else f"api_key={self._api_key!r}"
        state = "closed" if self._closed else "open" if self._tg is not None else "not started"
        return f"<{type(self).__name__} {who} root={self.root!r} {state}>"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Open the connections in a new task group; returns once they are connected.

        Returns when each connection with instruments (the first one always) has made its
        handshake and sent its subscriptions: from then on nothing Kite sends is lost.
        Connect failures are retried with ``backoff`` meanwhile. Raises, as itself (not in
        an exception group), the first connection's terminal failure: ``TokenException``
        (HTTP 403: the session is invalid), ``FeedClosedError`` (connect attempts used up,
        or a handshake refused with a status that never heals, e.g. 404). ``RuntimeError``
        when entered twice.

        Cancellation: stops connecting; every socket opened so far is closed and every task
        ended before the cancellation propagates (nothing is left running).
        """
        if self._tg is not None or self._closed:
            raise RuntimeError(f"{type(self).__name__} can be entered only once")
        headers = {} if self._web else {"X-Kite-Version": "3"}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=self.connect_timeout,
            transport=_CredentialsTransport(httpx.AsyncHTTPTransport(), self._credentials),
        )
        self._channel.open()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            for shard in self._shards:
                if shard.index == 0 or shard.modes:
                    shard.started = True
                    await tg.start(self._run, shard, name=f"kite-feed-connection-{shard.index}")
        except BaseException as exc:
            error = _single(exc)
            if isinstance(error, AioTraderError) and self._failure is None:
                self._failure = error  # what iterating the failed feed raises
            self._tg = None
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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close every connection and end every task, then let the block's exception through.

        A fatal feed error (``TokenException``, ``FeedClosedError``) that ended the feed is
        raised here, unless the block raised an exception of its own (other than the
        cancellation the error caused). Cancellation: the sockets are closed anyway.
        """
        tg, self._tg = self._tg, None
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
        for shard in self._shards:
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
            _check_int("max_buffer", max_buffer)
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
        """The stream; ``RuntimeError`` before ``async with`` (it would never yield)."""
        self._check_entered()
        return self._channel  # its __anext__ is this feed's, one call less per item

    def _check_entered(self) -> None:
        if self._tg is None and not self._closed:
            raise RuntimeError(
                f"enter the feed before reading it: async with {type(self).__name__}(...) as feed"
            )

    async def __anext__(self) -> ItemT:
        """The next item; a checkpoint every time (a busy loop body never starves the
        connections), waits when none is there.

        Ends (``StopAsyncIteration``) once the feed is closed; raises ``TokenException`` or
        ``FeedClosedError`` when the feed stopped for good. Cancellation: raises the
        backend's cancellation, nothing is lost (the item stays buffered, the next call
        gets it).
        """
        self._check_entered()
        return await self._channel.get()

    def batches(self, max_items: int = 1000) -> AsyncIterator[list[ItemT]]:
        """The same stream in lists: ``async for batch in feed.batches(): for item in batch``.

        Each step waits for at least one item (a checkpoint, as every receive of
        ``async for item in feed``), then takes the items already waiting, up to
        ``max_items`` in all, without waiting or scheduling again: one checkpoint per
        batch instead of one per item, for consumers that keep up with a busy feed (the
        official client's ``on_ticks`` gets a frame's list the same way). The items, their
        order and the overflow policy are those of ``async for item in feed`` (both may read
        one feed, in turn or from one loop, and the order holds); a batch is never empty
        and may span frames and connections.

        Ends (``StopAsyncIteration``) once the feed is closed; raises ``TokenException`` or
        ``FeedClosedError`` when the feed stopped for good. Cancellation: raises the
        backend's cancellation while waiting for the first item, nothing is lost (the items
        stay buffered; the next step gets them). ``ValueError`` / ``TypeError`` for a
        ``max_items`` that is not an int >= 1; ``RuntimeError`` before ``async with``.
        """
        max_items = _check_int("max_items", max_items)
        self._check_entered()
        return Batches(self._channel, max_items)

    def statistics(self) -> FeedStatistics:
        """A frozen snapshot of the counters (see :class:`FeedStatistics`)."""
        return self._counters.snapshot(self._channel, len(self._shard_of))

    @property
    def subscriptions(self) -> dict[int, Mode]:
        """A copy of the subscribed instrument tokens with their modes."""
        return {token: Mode(shard.modes[token]) for token, shard in self._shard_of.items()}

    # -- subscriptions -----------------------------------------------------------------

    async def subscribe(
        self, instrument_tokens: Iterable[int], mode: Mode | str | None = None
    ) -> None:
        """Subscribe ``instrument_tokens`` in ``mode`` (default: ``default_mode``).

        Already subscribed tokens switch to ``mode``. Their ticks received from the call on
        come in ``mode`` only (see "Modes" in the module doc). Before ``async with`` the
        subscription is only remembered and goes out with the first connection; it is
        replayed, with its mode, after every reconnect. Instruments beyond 3000 go to a
        further connection (at most ``max_connections``): the call then returns once that
        connection is up (or raises the feed's error if it cannot be made). Raises
        ``ValueError`` for a bad token or mode, or when the total would exceed
        ``max_connections * max_instruments``; ``TypeError`` for tokens that are not an
        iterable of ints (nothing changes then).

        Cancellation: the subscription is remembered and sent either way (the write is
        shielded, at most ``send_timeout``, so the socket is never left half-written and
        Kite is told what the feed remembers), then the cancellation is raised; it is
        replayed on reconnect; a new connection goes on connecting.
        """
        mode_ = self.default_mode if mode is None else Mode(mode)
        wanted = _check_tokens(instrument_tokens)
        new = self._remember(wanted, mode_)
        for shard in new:
            self._start(shard)
        for shard, group in self._by_shard(wanted).items():
            await self._send(shard, _subscribe_messages({mode_.value: group}))
        for shard in new:
            if shard.started:
                await shard.up.wait()
        if self._failure is not None:
            raise self._failure

    def _remember(self, wanted: list[int], mode_: Mode) -> list[_Shard]:
        """Record ``wanted`` in ``mode_`` (raises before any change); the new shards."""
        new = [t for t in wanted if t not in self._shard_of]
        limit = self.max_connections * self.max_instruments
        if len(self._shard_of) + len(new) > limit:
            raise ValueError(
                f"too many instruments: {len(self._shard_of) + len(new)} would be subscribed, "
                f"Kite allows {self.max_instruments} per connection and {self.max_connections} "
                f"connections per api_key ({limit})"
            )
        shards: list[_Shard] = []
        for token in new:
            shard = next((s for s in self._shards if len(s.modes) < self.max_instruments), None)
            if shard is None:
                shard = _Shard(len(self._shards))
                self._shards.append(shard)
                shards.append(shard)
            shard.modes[token] = mode_.value
            self._shard_of[token] = shard
        for token in wanted:
            self._shard_of[token].modes[token] = mode_.value
            self._switching[token] = mode_.value
        return shards

    async def unsubscribe(self, instrument_tokens: Iterable[int]) -> None:
        """Stop receiving ``instrument_tokens``; tokens not subscribed are ignored.

        Connections stay open when they have nothing left. Raises ``ValueError`` /
        ``TypeError`` for bad tokens. Cancellation: as for :meth:`subscribe`.
        """
        wanted = [t for t in _check_tokens(instrument_tokens) if t in self._shard_of]
        groups = self._by_shard(wanted)
        for token in wanted:
            del self._shard_of.pop(token).modes[token]
            self._switching.pop(token, None)
        for shard, group in groups.items():
            await self._send(shard, [{"a": "unsubscribe", "v": group}])

    async def set_mode(self, mode: Mode | str, instrument_tokens: Iterable[int]) -> None:
        """Switch subscribed ``instrument_tokens`` to ``mode``: their ticks received from the
        call on come in ``mode`` only (ticks already waiting in the channel are still
        delivered).

        Raises ``ValueError`` for a bad mode or a token that is not subscribed (nothing
        changes then). Cancellation: as for :meth:`subscribe`.
        """
        mode_ = Mode(mode)
        wanted = _check_tokens(instrument_tokens)
        missing = [t for t in wanted if t not in self._shard_of]
        if missing:
            raise ValueError(
                f"set_mode: {len(missing)} token(s) not subscribed (first: {missing[0]}); "
                "subscribe them first"
            )
        for token in wanted:
            self._shard_of[token].modes[token] = mode_.value
            self._switching[token] = mode_.value
        for shard, group in self._by_shard(wanted).items():
            await self._send(shard, [{"a": "mode", "v": [mode_.value, group]}])

    def _by_shard(self, tokens: list[int]) -> dict[_Shard, list[int]]:
        groups: dict[_Shard, list[int]] = {}
        for token in tokens:
            groups.setdefault(self._shard_of[token], []).append(token)
        return groups

    async def _send(self, shard: _Shard, messages: list[dict[str, Any]]) -> None:
        """Send ``messages`` on the shard's connection if it is up (else replay covers them).

        Shielded: a cancelled caller's messages still go out (each write bounded by
        ``send_timeout``), so what is remembered is also what Kite was told; the
        cancellation is raised right after.
        """
        with anyio.CancelScope(shield=True):
            async with shard.lock:
                if shard.ws is not None:
                    await self._write(shard, shard.ws, messages)
        await anyio.lowlevel.checkpoint_if_cancelled()

    async def _write(
        self, shard: _Shard, ws: AsyncWebSocketSession, messages: list[dict[str, Any]]
    ) -> bool:
        """Write the messages, shielded up to ``send_timeout``; False if the socket failed.

        Past the timeout the connection is stuck: its session is cancelled (reconnect).
        """
        with anyio.move_on_after(self.send_timeout, shield=True) as scope:
            try:
                for message in messages:
                    await ws.send_text(json.dumps(message))
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

    def _start(self, shard: _Shard) -> None:
        """Start a connection added after entry (it reports ready through ``shard.up``)."""
        if self._tg is not None and not shard.started and not self._closed:
            shard.started = True
            self._tg.start_soon(self._run, shard, name=f"kite-feed-connection-{shard.index}")

    async def _run(
        self, shard: _Shard, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect, read, reconnect until cancelled; a fatal error stops the whole feed.

        Started by ``task_group.start()`` (``__aenter__``), it reports ready once connected
        and subscribed; a fatal error before that is raised to the starter instead.
        """
        shard.task_status = task_status
        with shard.scope, self._channel.sender() as shard.send:
            try:
                await self._connect_loop(shard)
            except (TokenException, FeedClosedError) as exc:
                self._emit(FeedDisconnected(shard.index, str(exc), None))
                if shard.task_status is not None and task_status is not anyio.TASK_STATUS_IGNORED:
                    log.error("feed could not connect: %s", exc)
                    raise  # not ready yet: __aenter__ raises it
                self._fail(exc)
            finally:
                shard.up.set()

    async def _connect_loop(self, shard: _Shard) -> None:
        attempts = self.backoff.attempts(stable_after=self.stable_after)
        while True:
            error = await self._connect_once(shard, attempts)
            if not attempts.failed():
                raise FeedClosedError(
                    f"connection {shard.index}: gave up after {attempts.failures} failed "
                    f"attempts in a row; last: {error}"
                ) from error
            self._counters.reconnects += 1
            self._emit(FeedDisconnected(shard.index, str(error), attempts.delay))
            log.warning(
                "connection %d lost (%s); reconnecting in %.3g s (attempt %d)",
                shard.index,
                error,
                attempts.delay,
                attempts.failures,
            )
            await attempts.sleep()

    def _credentials(self) -> dict[str, str]:
        """The handshake's query parameters (they carry the secret: never logged)."""
        if self._web:
            return {
                **_KITE_WEB_PARAMS,
                "user_id": self._user_id,
                "enctoken": self._secret,
                "uid": str(int(time.time() * 1000)),
            }
        return {"api_key": self._api_key, "access_token": self._secret}

    def _describe(self, exc: BaseException) -> str:
        text = _redact(str(exc), (self._secret,))
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    async def _connect_once(self, shard: _Shard, attempts: Attempts) -> AioTraderError:
        """One connection, from handshake to drop; returns why it ended (our error).

        Raises ``TokenException`` when the handshake is refused with 403, and
        ``FeedClosedError`` for another 4xx than 429 (a wrong URL never heals).
        """
        assert self._client is not None
        try:
            async with aconnect_ws(
                self.root,
                self._client,
                keepalive_ping_interval_seconds=None,  # Kite's heartbeats + our watchdog
                max_message_size_bytes=1 << 20,  # read up to 1 MiB at a time
                session_class=AsyncWebSocketSession,
            ) as ws:
                attempts.succeeded()
                return await self._session(shard, ws)
        except WebSocketUpgradeError as exc:
            status = exc.response.status_code
            if status == 403:
                what = "enctoken" if self._web else "access token"
                raise TokenException(
                    f"the ticker refused the session (HTTP 403): the {what} is invalid or "
                    "expired; log in again",
                    status_code=403,
                ) from None
            if 400 <= status < 500 and status != 429:
                raise FeedClosedError(
                    f"the ticker refused the connection with HTTP {status} (not retried: "
                    f"check root={self.root!r})"
                ) from None
            return ConnectError(f"the ticker refused the connection with HTTP {status}")
        except httpx.TimeoutException as exc:
            return ConnectError(f"timed out connecting ({self._describe(exc)})")
        except _NETWORK_ERRORS as exc:
            return ConnectError(f"could not connect ({self._describe(exc)})")
        except BaseExceptionGroup as group:
            # httpx-ws's session runs a task group: network errors may come out wrapped.
            leaves = _leaves(group)
            if all(isinstance(leaf, _NETWORK_ERRORS) for leaf in leaves):
                return ConnectionLost(f"connection lost ({self._describe(leaves[0])})")
            raise

    async def _session(self, shard: _Shard, ws: AsyncWebSocketSession) -> AioTraderError:
        """Replay the subscriptions, report the connection up, then read until it ends."""
        with anyio.CancelScope() as shard.session:
            async with shard.lock:
                self._switching.update(shard.modes)  # Kite starts them in quote mode again
                if shard.modes and not await self._write(shard, ws, _replay_messages(shard)):
                    return ConnectionLost("connection lost while subscribing")
                shard.ws = ws
                replayed = len(shard.modes)
            self._counters.connections += 1
            reconnect, shard.connected_before = shard.connected_before, True
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
        receive, watchdog, counters = ws.receive, self.watchdog, self._counters
        binary, text = self._on_binary, self._on_text
        Bytes, Text = wsproto.events.BytesMessage, wsproto.events.TextMessage
        while True:
            try:
                event = await receive(watchdog)
            except TimeoutError:
                return ConnectionLost(f"nothing received for {watchdog} s (heartbeat watchdog)")
            except WebSocketDisconnect as exc:
                reason = f": {exc.reason}" if exc.reason else ""
                return ConnectionLost(f"closed by the server (code {exc.code}{reason})")
            except WebSocketNetworkError:
                return ConnectionLost("network error")
            counters.last_message = received = time.time()
            if isinstance(event, Bytes):
                data = event.data
                counters.bytes += len(data)
                if len(data) < 2:
                    counters.heartbeats += 1
                else:
                    counters.frames += 1
                    await binary(data, send, received, connection)
            elif isinstance(event, Text):
                counters.text_frames += 1
                counters.bytes += len(event.data)
                await text(event.data, send, received, connection)

    def _malformed(self, bad: list[MalformedPacket]) -> None:
        """Count every malformed packet of one frame; log the frame once."""
        self._counters.malformed += len(bad)
        first = bad[0]
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        log.warning(
            "skipped %d malformed packet(s) in a frame: %s (offset %d)%s",
            len(bad),
            first.reason,
            first.offset,
            more,
        )

    async def _on_binary(
        self, data: bytes | bytearray, send: Sender, received: float, connection: int
    ) -> None:
        """Handle one binary frame (2 bytes or more) read at ``received`` on ``connection``."""
        raise NotImplementedError

    async def _on_text(self, data: str, send: Sender, received: float, connection: int) -> None:
        """Handle one text frame read at ``received`` on ``connection``."""
        raise NotImplementedError


def _single(exc: BaseException) -> BaseException:
    """A group holding one error (at any depth) as that error; anything else as it is."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _instrument_token(tick: Tick) -> int:
    """A tick's conflation key."""
    return tick.instrument_token


def _check_iterable(tokens: object) -> Iterable[Any]:
    if isinstance(tokens, int | str | bytes) or not isinstance(tokens, Iterable):
        raise TypeError(f"tokens must be an iterable of ints, got {type(tokens).__name__}")
    return tokens


def _check_tokens(tokens: Iterable[int]) -> list[int]:
    """The tokens as a list without duplicates; ``TypeError`` for anything but ints,
    ``ValueError`` for ints out of uint32's range."""
    out = list(dict.fromkeys(_check_iterable(tokens)))
    for token in out:
        if not isinstance(token, int) or isinstance(token, bool):
            raise TypeError(f"instrument tokens are ints, got {token!r}")
        if not 0 < token <= 0xFFFFFFFF:
            raise ValueError(f"instrument tokens are positive 32-bit ints, got {token!r}")
    return out


def _subscribe_messages(groups: dict[str, list[int]]) -> list[dict[str, Any]]:
    """Kite's messages to subscribe tokens in modes: one ``subscribe``, one ``mode`` per mode."""
    everything = [token for group in groups.values() for token in group]
    messages: list[dict[str, Any]] = [{"a": "subscribe", "v": everything}]
    messages.extend({"a": "mode", "v": [mode, group]} for mode, group in groups.items() if group)
    return messages


def _replay_messages(shard: _Shard) -> list[dict[str, Any]]:
    groups: dict[str, list[int]] = {}
    for token, mode in shard.modes.items():
        groups.setdefault(mode, []).append(token)
    return _subscribe_messages(groups)


class KiteFeed(_KiteFeedBase[FeedItem]):
    """Kite's live ticks and order updates as records: ``async for item in feed``.

    Yields :data:`FeedItem`: tick records in packet order, and :class:`OrderUpdate`,
    :class:`FeedError`, :class:`FeedMessage` for text frames. See the module documentation
    for the lifecycle, connections, reconnects, the watchdog and the overflow policies.
    """

    async def _on_binary(
        self, data: bytes | bytearray, send: Sender, received: float, connection: int
    ) -> None:
        bad: list[MalformedPacket] = []
        ticks = decode_frame(data, bad.append)
        if bad:
            self._malformed(bad)
        self._counters.ticks += len(ticks)
        if self._switching:
            ticks = self._in_asked_mode(ticks)
        if ticks:
            await self._channel.put_items(send, ticks)  # type: ignore[arg-type]

    def _in_asked_mode(self, ticks: list[Tick]) -> list[Tick]:
        """The ticks without those in another mode than asked, of instruments whose mode
        switch has not taken effect yet; an instrument's first tick in its mode ends that."""
        switching = self._switching
        kept: list[Tick] = []
        for tick in ticks:
            mode = switching.get(tick.instrument_token)
            if mode is not None:
                if tick.mode != mode:
                    continue
                del switching[tick.instrument_token]
            kept.append(tick)
        if len(kept) < len(ticks):
            self._counters.stale_mode += len(ticks) - len(kept)
            log.debug("dropped %d ticks in a mode not asked yet", len(ticks) - len(kept))
        return kept

    async def _on_text(self, data: str, send: Sender, received: float, connection: int) -> None:
        record = decode_text(data)
        if isinstance(record, MalformedPacket):
            self._malformed([record])
            return
        if isinstance(record, OrderUpdate):
            self._counters.order_updates += 1
        elif isinstance(record, FeedError):
            log.warning("the ticker sent an error: %s", record.message)
        await self._channel.put_record(send, record)


class RawKiteFeed(_KiteFeedBase[RawFrame]):
    """The feed's frames undecoded: one :class:`RawFrame` per binary or text frame, with
    its receive time and connection.

    For recording a session (decode ``frame.data`` later with :func:`decode_frame` /
    :func:`decode_text`) and for the gateway. Heartbeats are counted, not yielded; ``ticks``
    counts the packets frames announce; ``malformed`` stays 0 (nothing is decoded).
    ``buffer_size`` counts frames. The ``conflate`` policy needs decoded ticks:
    ``ValueError``. Same lifecycle as :class:`KiteFeed` (``async with`` returns once
    connected).
    """

    _can_conflate = False

    @staticmethod
    def _is_record(item: object) -> bool:
        return isinstance(item, RawFrame) and isinstance(item.data, str)

    async def _on_binary(
        self, data: bytes | bytearray, send: Sender, received: float, connection: int
    ) -> None:
        self._counters.ticks += data[0] << 8 | data[1]
        await self._channel.put_items(send, [RawFrame(bytes(data), received, connection)])

    async def _on_text(self, data: str, send: Sender, received: float, connection: int) -> None:
        await self._channel.put_record(send, RawFrame(data, received, connection))
