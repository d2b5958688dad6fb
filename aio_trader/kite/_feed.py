"""``KiteFeed``: Kite's streaming WebSocket feed, with structured concurrency.

::

    async with KiteFeed(api_key="...", access_token="...") as feed:
        await feed.subscribe([408065, 884737], mode="full")
        async for item in feed:
            match item:
                case FullTick():    ...   # any Tick record: LtpTick, QuoteTick, FullTick, ...
                case OrderUpdate(): ...   # an order postback
                case FeedError() | FeedMessage(): ...

**What the stream carries** (:data:`FeedItem`, a tagged union: ``match`` on the class):
tick records, :class:`OrderUpdate` (Kite's ``order`` text frames), :class:`FeedError`
(``error`` frames) and :class:`FeedMessage` (``message`` frames), all on the one stream.
Heartbeats are counted, never yielded. Malformed packets and text frames are counted
(``statistics().malformed``) and logged, never fatal. :class:`RawKiteFeed` yields the
frames undecoded instead (``bytes`` for binary frames, ``str`` for text frames).

**Modes.** An instrument ticks in the mode it was last asked for. Kite's protocol starts
every subscription in ``quote`` mode and switches it with a separate ``mode`` message, so
ticks in the old mode may arrive before the switch takes effect (the sandbox, like Kite,
answers a subscription at once); :class:`KiteFeed` drops them until the instrument's first
tick in the asked mode (counted in ``statistics().stale_mode``), after ``subscribe``,
``set_mode`` and every reconnect alike. :class:`RawKiteFeed` passes every frame on.

**Connections.** Entering opens an anyio task group; each connection (Kite allows 3000
instruments per connection and 3 connections per api_key) runs in it: connect, replay the
subscriptions with their modes, read. More than 3000 instruments are spread over up to 3
connections, filled in order; their ticks merge into the one stream. Leaving the block (or
the cancellation of any scope around it) closes every socket and ends every task.

**Reconnect.** Any drop (network error, server close, heartbeat watchdog) reconnects after
the ``backoff`` delay; the failure count starts again once a connection stayed up for
``stable_after`` seconds. Out of attempts: :class:`~aio_trader.errors.FeedClosedError`.
A 403 at the handshake (session expired or invalid) stops the feed at once, no retry:
:class:`~aio_trader.errors.TokenException`. Both are raised out of the ``async with``
(and out of ``async for`` when iterating), as themselves, not inside an exception group.

**Heartbeat watchdog.** Kite sends a 1-byte frame each second when it has nothing else to
send. If nothing at all arrives for ``watchdog`` seconds, the connection is dead: it is
dropped and a new one made.

**Slow consumers** (:class:`Overflow`): ticks wait in a bounded buffer of ``buffer_size``.

- ``lossless``: when the buffer is full, the reader stops reading the socket. httpx-ws
  then stops reading too, the kernel's receive buffer fills, and TCP flow control makes
  Kite's (or the sandbox's) sends block: nothing is lost, the server is slowed down (Kite
  may disconnect a client that stays behind for long; the feed then reconnects). A frame
  goes in whole once it fits, so at most ``buffer_size`` ticks wait (or one larger frame).
- ``drop_oldest``: the newest ticks are kept, the oldest dropped (counted in ``dropped``).
- ``conflate``: one tick per instrument is kept, the newest; a new tick replaces the
  waiting one in its place in line (counted in ``dropped``). Each Kite tick is a full
  snapshot in its mode, so a slow consumer still sees the current state of every
  instrument. The buffer holds at most one tick per subscribed instrument.

Order updates, errors and messages are never dropped nor conflated; they overtake the
ticks waiting in the buffer. (They have their own bound, ``buffer_size``; past it the
reader waits, as in ``lossless``.)

``async for`` takes buffered items without a trip through the event loop, except on
every 64th item and when it has to wait: a checkpoint per tick would cost more than
decoding it, and a busy consumer still lets the connections (and the rest of the program)
run.

Why not an anyio memory object stream between the reader and ``async for``: it cannot drop
the oldest item nor replace a waiting one, so the three policies share one small buffer
(``_Buffer``) built on anyio events instead; lossless behaves like a bounded memory stream.
"""

from __future__ import annotations

import collections
import datetime
import enum
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeAlias, TypeVar

import anyio
import anyio.lowlevel
import attrs
import httpcore
import httpx
import wsproto.events
import wsproto.utilities
from httpx_ws import (
    AsyncWebSocketSession,
    HTTPXWSException,
    WebSocketDisconnect,
    WebSocketNetworkError,
    WebSocketUpgradeError,
    aconnect_ws,
)

from aio_trader._time import IST
from aio_trader.abc import AbstractFeeder
from aio_trader.backoff import Attempts, Backoff
from aio_trader.errors import (
    AioTraderError,
    ConnectError,
    ConnectionLost,
    FeedClosedError,
    TokenException,
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

#: Reconnect waits 1, 2, 4 ... 30 s, at most 30 attempts in a row (a drop costs a second of
#: ticks rather than the REST default's 3 s).
DEFAULT_BACKOFF: Final = Backoff(base=1.0, factor=2.0, cap=30.0, max_attempts=30)

#: One item of :class:`KiteFeed`'s stream: a tick record, or a text frame's record.
FeedItem: TypeAlias = Tick | OrderUpdate | FeedError | FeedMessage
#: One item of :class:`RawKiteFeed`'s stream: a binary frame (bytes) or a text frame (str).
RawFrame: TypeAlias = bytes | str

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


class Overflow(str, enum.Enum):
    """What the feed does when the consumer is slower than the ticks (see the module doc)."""

    LOSSLESS = "lossless"
    DROP_OLDEST = "drop_oldest"
    CONFLATE = "conflate"

    def __str__(self) -> str:
        return str(self.value)


@attrs.frozen
class FeedStatistics:
    """A snapshot of a feed's counters (``feed.statistics()``), totals over all connections.

    ``frames`` binary frames with ticks, ``ticks`` tick packets decoded, ``bytes`` bytes of
    every frame received (text included), ``heartbeats`` 1-byte frames, ``text_frames``
    text frames (``order_updates`` of them order postbacks), ``malformed`` packets or text
    frames skipped, ``dropped`` ticks dropped or conflated by the overflow policy,
    ``stale_mode`` ticks dropped because they came in another mode than the one asked
    (before a mode switch took effect), ``reconnects`` reconnection attempts after a drop,
    ``connections`` connections open now, ``subscribed`` instruments subscribed,
    ``buffered`` items waiting to be read, ``last_message_time`` when the last frame of any
    kind arrived (aware, IST).
    """

    frames: int
    ticks: int
    bytes: int
    heartbeats: int
    text_frames: int
    order_updates: int
    malformed: int
    dropped: int
    stale_mode: int
    reconnects: int
    connections: int
    subscribed: int
    buffered: int
    last_message_time: datetime.datetime | None


@attrs.define
class _Counters:
    frames: int = 0
    ticks: int = 0
    bytes: int = 0
    heartbeats: int = 0
    text_frames: int = 0
    order_updates: int = 0
    malformed: int = 0
    stale_mode: int = 0
    reconnects: int = 0
    connections: int = 0
    last_message: float | None = None


# -- the buffer between the connections and ``async for`` ---------------------------------


class _Buffer(Generic[ItemT]):
    """Bounded buffer with an overflow policy; ``records`` (text frames) are never dropped.

    Producers are the connections' reader tasks; the consumer is ``async for``. A
    ``conflate`` buffer keys ticks by ``instrument_token``.
    """

    #: The consumer yields to the other tasks at least every this many items.
    _YIELD_EVERY: Final = 64

    def __init__(self, policy: Overflow, size: int) -> None:
        self.policy = policy
        self.size = size
        self.dropped = 0
        self._records: collections.deque[ItemT] = collections.deque()
        self._ticks: collections.deque[ItemT] | collections.OrderedDict[int, ItemT]
        self._pop_tick: Callable[[], ItemT]
        if policy is Overflow.CONFLATE:
            latest: collections.OrderedDict[int, ItemT] = collections.OrderedDict()
            self._ticks = latest
            self._pop_tick = lambda: latest.popitem(last=False)[1]
        else:
            queue = collections.deque[ItemT](
                maxlen=size if policy is Overflow.DROP_OLDEST else None
            )
            self._ticks = queue
            self._pop_tick = queue.popleft
        self._readable = anyio.Event()
        self._writable = anyio.Event()
        self._writers = 0
        #: A waiting tick writer is woken once no more than this many ticks are buffered
        #: (-1: no tick writer waits).
        self._wake_at = -1
        self._served = 0
        self._closed = False
        self._error: BaseException | None = None

    def __len__(self) -> int:
        return len(self._records) + len(self._ticks)

    async def put_ticks(self, ticks: list[ItemT]) -> None:
        """Add one frame's ticks under the policy; ``lossless`` waits for room.

        Cancellation: nothing was added.
        """
        if not ticks or self._closed:
            return
        ticks_ = self._ticks
        if isinstance(ticks_, collections.OrderedDict):
            before = len(ticks_)
            ticks_.update((tick.instrument_token, tick) for tick in ticks)  # type: ignore[attr-defined]
            self.dropped += before + len(ticks) - len(ticks_)
        elif self.policy is Overflow.DROP_OLDEST:
            self.dropped += max(len(ticks_) + len(ticks) - self.size, 0)
            ticks_.extend(ticks)
        else:
            while ticks_ and len(ticks_) + len(ticks) > self.size and not self._closed:
                self._wake_at = max(self.size - len(ticks), 0)
                await self._wait_writable()
            if not self._closed:
                ticks_.extend(ticks)
        self._readable.set()

    async def put_record(self, record: ItemT) -> None:
        """Add an item that is never dropped; waits while ``size`` of them are waiting.

        Cancellation: nothing was added.
        """
        while len(self._records) >= self.size and not self._closed:
            await self._wait_writable()
        if not self._closed:
            self._records.append(record)
            self._readable.set()

    async def _wait_writable(self) -> None:
        if self._writable.is_set():
            self._writable = anyio.Event()
        self._writers += 1
        try:
            await self._writable.wait()
        finally:
            self._writers -= 1

    async def get(self) -> ItemT:
        """The next item: a waiting record first, then ticks in order.

        Raises ``StopAsyncIteration`` once closed, or the error it was closed with.
        Checkpoints when it has to wait and on every ``_YIELD_EVERY``-th call; other calls
        return a buffered item at once (a checkpoint per tick would cost more than decoding
        it), so a busy consumer still lets the connections run. Cancellation: raises the
        backend's cancellation, the buffer unchanged.
        """
        self._served += 1
        if self._served >= self._YIELD_EVERY:
            self._served = 0
            await anyio.lowlevel.checkpoint()
        while True:
            if self._records:
                item = self._records.popleft()
                if self._writers:
                    self._writable.set()
                return item
            if self._ticks:
                item = self._pop_tick()
                if len(self._ticks) <= self._wake_at:  # room for the waiting frame
                    self._wake_at = -1  # once: the woken writer sets it again if need be
                    self._writable.set()
                return item
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            if self._readable.is_set():
                self._readable = anyio.Event()
            await self._readable.wait()

    def __aiter__(self) -> _Buffer[ItemT]:
        return self

    __anext__ = get

    def close(self, error: BaseException | None = None) -> None:
        """End the stream: readers get ``error`` (or ``StopAsyncIteration``), writers return."""
        if not self._closed:
            self._closed, self._error = True, error
            self._records.clear()
            self._ticks.clear()
        self._readable.set()
        self._writable.set()


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


class _KiteFeedBase(AbstractFeeder[int, ItemT]):
    """What :class:`KiteFeed` and :class:`RawKiteFeed` share: all of it but the decoding."""

    #: Whether items are ticks keyed by instrument (the ``conflate`` policy needs that).
    _can_conflate: ClassVar[bool] = True

    def __init__(
        self,
        api_key: str | None = None,
        access_token: str | None = None,
        *,
        user_id: str | None = None,
        enctoken: str | None = None,
        root: str | None = None,
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

        ``default_mode`` is the mode of ``subscribe(tokens)`` without one. ``overflow`` and
        ``buffer_size`` (items; frames for :class:`RawKiteFeed`) set the slow-consumer
        policy. ``watchdog`` seconds of silence drop a connection. ``backoff`` paces
        reconnects (its ``max_attempts`` bounds failures in a row; the count restarts once
        a connection stayed up ``stable_after`` seconds). ``send_timeout`` bounds a
        subscription message's write; past it the connection is deemed stuck and is
        replaced. ``max_connections`` x ``max_instruments`` is Kite's per-api_key limit.

        Raises ``ValueError`` for missing/mixed credentials or bad settings.
        """
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
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size!r}")
        if not watchdog > 0:
            raise ValueError(f"watchdog must be > 0 seconds, got {watchdog!r}")
        if max_connections < 1 or max_instruments < 1:
            raise ValueError("max_connections and max_instruments must be >= 1")
        self._web = web
        self._api_key = api_key or ""
        self._user_id = user_id or ""
        self._secret = (enctoken if web else access_token) or ""
        self.root = root or (KITE_WEB_ROOT if web else KITE_CONNECT_ROOT)
        self.default_mode = Mode(default_mode)
        self.overflow = Overflow(overflow)
        if self.overflow is Overflow.CONFLATE and not self._can_conflate:
            raise ValueError(f"{type(self).__name__} cannot conflate: use lossless or drop_oldest")
        self.buffer_size = buffer_size
        self.watchdog = watchdog
        self.backoff = backoff
        self.stable_after = stable_after
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self.max_connections = max_connections
        self.max_instruments = max_instruments
        self._shards: list[_Shard] = [_Shard(0)]
        self._shard_of: dict[int, _Shard] = {}
        #: Instruments whose asked mode is not in effect yet: their mode (see "Modes").
        self._switching: dict[int, str] = {}
        self._counters = _Counters()
        self._buffer: _Buffer[ItemT] = _Buffer(self.overflow, buffer_size)
        self._tg: anyio.abc.TaskGroup | None = None
        self._client: httpx.AsyncClient | None = None
        self._failure: AioTraderError | None = None
        self._closed = False

    def __repr__(self) -> str:
        who = f"user_id={self._user_id!r}" if self._web else f"api_key={self._api_key!r}"
        state = "closed" if self._closed else "open" if self._tg is not None else "not started"
        return f"<{type(self).__name__} {who} root={self.root!r} {state}>"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Start the connection task(s) in a new task group; returns at once (not connected yet).

        Raises ``RuntimeError`` when entered twice. Cancellation: it never waits, so a
        cancellation is seen by the block's first checkpoint (and ``__aexit__`` cleans up).
        """
        if self._tg is not None or self._closed:
            raise RuntimeError(f"{type(self).__name__} can be entered only once")
        headers = {} if self._web else {"X-Kite-Version": "3"}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=self.connect_timeout,
            transport=_CredentialsTransport(httpx.AsyncHTTPTransport(), self._credentials),
        )
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        for shard in self._shards:
            self._start(shard)
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
            if self._client is not None:
                with anyio.CancelScope(shield=True):
                    await self._client.aclose()
        cancelled = anyio.get_cancelled_exc_class()
        if self._failure is not None and (exc is None or isinstance(exc, cancelled)):
            raise self._failure

    async def close(self) -> None:
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
        self._buffer.close(self._failure)

    def _fail(self, error: AioTraderError) -> None:
        """Stop the feed for good with ``error``: raised from ``async for`` and ``async with``."""
        if self._failure is None:
            self._failure = error
            log.error("feed stopped: %s", error)
        self._shutdown()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    # -- iteration -----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[ItemT]:
        """The stream; ``RuntimeError`` before ``async with`` (it would never yield)."""
        self._check_entered()
        return self._buffer  # its __anext__ is this feed's, one call less per item

    def _check_entered(self) -> None:
        if self._tg is None and not self._closed:
            raise RuntimeError(
                f"enter the feed before reading it: async with {type(self).__name__}(...) as feed"
            )

    async def __anext__(self) -> ItemT:
        """The next item; waits for one.

        Ends (``StopAsyncIteration``) once the feed is closed; raises ``TokenException`` or
        ``FeedClosedError`` when the feed stopped for good. Cancellation: raises the
        backend's cancellation, nothing is lost (the item stays buffered).
        """
        self._check_entered()
        return await self._buffer.get()

    def statistics(self) -> FeedStatistics:
        """A frozen snapshot of the counters (see :class:`FeedStatistics`)."""
        c = self._counters
        last = c.last_message
        return FeedStatistics(
            frames=c.frames,
            ticks=c.ticks,
            bytes=c.bytes,
            heartbeats=c.heartbeats,
            text_frames=c.text_frames,
            order_updates=c.order_updates,
            malformed=c.malformed,
            dropped=self._buffer.dropped,
            stale_mode=c.stale_mode,
            reconnects=c.reconnects,
            connections=c.connections,
            subscribed=len(self._shard_of),
            buffered=len(self._buffer),
            last_message_time=None if last is None else datetime.datetime.fromtimestamp(last, IST),
        )

    @property
    def subscriptions(self) -> dict[int, Mode]:
        """A copy of the subscribed instrument tokens with their modes."""
        return {token: Mode(shard.modes[token]) for token, shard in self._shard_of.items()}

    # -- subscriptions -----------------------------------------------------------------

    async def subscribe(self, tokens: Iterable[int], mode: Mode | str | None = None) -> None:
        """Subscribe instrument ``tokens`` in ``mode`` (default: ``default_mode``).

        Already subscribed tokens switch to ``mode``. Their ticks received from the call on
        come in ``mode`` only (see "Modes" in the module doc). Before the feed is connected the
        subscription is only remembered; it is sent on connect and replayed, with its mode,
        after every reconnect. Instruments beyond 3000 go to a further connection (at most
        ``max_connections``). Raises ``ValueError`` for a bad token or mode, or when the
        total would exceed ``max_connections * max_instruments`` (nothing changes then).

        Cancellation: the subscription is remembered either way (and replayed on
        reconnect); a message already being written is finished first (shielded, at most
        ``send_timeout``), so the socket is never left half-written.
        """
        mode_ = self.default_mode if mode is None else Mode(mode)
        wanted = _check_tokens(tokens)
        new = [t for t in wanted if t not in self._shard_of]
        limit = self.max_connections * self.max_instruments
        if len(self._shard_of) + len(new) > limit:
            raise ValueError(
                f"too many instruments: {len(self._shard_of) + len(new)} would be subscribed, "
                f"Kite allows {self.max_instruments} per connection and {self.max_connections} "
                f"connections per api_key ({limit})"
            )
        for token in new:
            shard = next((s for s in self._shards if len(s.modes) < self.max_instruments), None)
            if shard is None:
                shard = _Shard(len(self._shards))
                self._shards.append(shard)
                self._start(shard)
            shard.modes[token] = mode_.value
            self._shard_of[token] = shard
        for token in wanted:
            self._shard_of[token].modes[token] = mode_.value
            self._switching[token] = mode_.value
        for shard, group in self._by_shard(wanted).items():
            await self._send(shard, _subscribe_messages({mode_.value: group}))

    async def unsubscribe(self, tokens: Iterable[int]) -> None:
        """Stop receiving ``tokens``; tokens not subscribed are ignored.

        Connections stay open when they have nothing left. Raises ``ValueError`` for a
        bad token. Cancellation: as for :meth:`subscribe`.
        """
        wanted = [t for t in _check_tokens(tokens) if t in self._shard_of]
        groups = self._by_shard(wanted)
        for token in wanted:
            del self._shard_of.pop(token).modes[token]
            self._switching.pop(token, None)
        for shard, group in groups.items():
            await self._send(shard, [{"a": "unsubscribe", "v": group}])

    async def set_mode(self, mode: Mode | str, tokens: Iterable[int]) -> None:
        """Switch subscribed ``tokens`` to ``mode``: their ticks received from the call on come
        in ``mode`` only (ticks already waiting in the buffer are still delivered).

        Raises ``ValueError`` for a bad mode or a token that is not subscribed (nothing
        changes then). Cancellation: as for :meth:`subscribe`.
        """
        mode_ = Mode(mode)
        wanted = _check_tokens(tokens)
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
        """Send ``messages`` on the shard's connection if it is up (else replay covers them)."""
        async with shard.lock:
            if shard.ws is not None:
                await self._write(shard, shard.ws, messages)

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
        if self._tg is not None and not shard.started and not self._closed:
            shard.started = True
            self._tg.start_soon(self._run, shard, name=f"kite-feed-connection-{shard.index}")

    async def _run(self, shard: _Shard) -> None:
        """Connect, read, reconnect until cancelled; a fatal error stops the whole feed."""
        with shard.scope:
            try:
                await self._connect_loop(shard)
            except (TokenException, FeedClosedError) as exc:
                self._fail(exc)

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

        Raises ``TokenException`` when the handshake is refused with 403.
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
        """Replay the subscriptions, then read until the connection ends."""
        with anyio.CancelScope() as shard.session:
            async with shard.lock:
                self._switching.update(shard.modes)  # Kite starts them in quote mode again
                if shard.modes and not await self._write(shard, ws, _replay_messages(shard)):
                    return ConnectionLost("connection lost while subscribing")
                shard.ws = ws
            self._counters.connections += 1
            log.info("connection %d up, %d instruments", shard.index, len(shard.modes))
            try:
                return await self._read(ws)
            finally:
                shard.ws = None
                self._counters.connections -= 1
        return ConnectionLost(f"a send took over {self.send_timeout} s")

    async def _read(self, ws: AsyncWebSocketSession) -> AioTraderError:
        """Receive frames into the buffer until the connection ends; returns why it ended."""
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
            counters.last_message = time.time()
            if isinstance(event, Bytes):
                data = event.data
                counters.bytes += len(data)
                if len(data) < 2:
                    counters.heartbeats += 1
                else:
                    counters.frames += 1
                    await binary(data)
            elif isinstance(event, Text):
                counters.text_frames += 1
                counters.bytes += len(event.data)
                await text(event.data)

    def _malformed(self, bad: MalformedPacket) -> None:
        self._counters.malformed += 1
        log.warning("skipped a malformed frame: %s (offset %d)", bad.reason, bad.offset)

    async def _on_binary(self, data: bytes | bytearray) -> None:
        raise NotImplementedError

    async def _on_text(self, data: str) -> None:
        raise NotImplementedError


def _check_tokens(tokens: Iterable[int]) -> list[int]:
    """The tokens as a list without duplicates; ``ValueError`` for anything but uint32 ints."""
    if isinstance(tokens, int | str | bytes):
        raise ValueError(f"tokens must be an iterable of ints, got {type(tokens).__name__}")
    out = list(dict.fromkeys(tokens))
    for token in out:
        if not isinstance(token, int) or isinstance(token, bool) or not 0 < token <= 0xFFFFFFFF:
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
    for connections, reconnects, the watchdog and the overflow policies.
    """

    async def _on_binary(self, data: bytes | bytearray) -> None:
        ticks = decode_frame(data, self._malformed)
        self._counters.ticks += len(ticks)
        if self._switching:
            ticks = self._in_asked_mode(ticks)
        await self._buffer.put_ticks(ticks)  # type: ignore[arg-type]

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

    async def _on_text(self, data: str) -> None:
        record = decode_text(data)
        if isinstance(record, MalformedPacket):
            self._malformed(record)
            return
        if isinstance(record, OrderUpdate):
            self._counters.order_updates += 1
        elif isinstance(record, FeedError):
            log.warning("the ticker sent an error: %s", record.message)
        await self._buffer.put_record(record)


class RawKiteFeed(_KiteFeedBase[RawFrame]):
    """The feed's frames undecoded: ``bytes`` per binary frame, ``str`` per text frame.

    For recording a session (decode later with :func:`decode_frame` / :func:`decode_text`).
    Heartbeats are counted, not yielded; ``ticks`` counts the packets frames announce;
    ``malformed`` stays 0 (nothing is decoded). ``buffer_size`` counts frames. The
    ``conflate`` policy needs decoded ticks: ``ValueError``.
    """

    _can_conflate = False

    async def _on_binary(self, data: bytes | bytearray) -> None:
        self._counters.ticks += data[0] << 8 | data[1]
        await self._buffer.put_ticks([bytes(data)])

    async def _on_text(self, data: str) -> None:
        await self._buffer.put_record(data)
