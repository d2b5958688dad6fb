"""``KiteFeed``: Kite's streaming WebSocket feed, with structured concurrency.

::

    async with KiteFeed(api_key="...", access_token="...") as feed:   # connected here
        await feed.subscribe([408065, 884737], mode="full")
        async for item in feed:
            match item:
                case FullTick():    ...   # any Tick record: LtpTick, QuoteTick, FullTick, ...
                case OrderUpdate(): ...   # an order postback
                case FeedError() | FeedMessage(): ...

**Lifecycle errors.** Reading the feed before ``async with`` or after it, and subscribing
after it, raise :class:`~aio_trader.errors.ClientClosedError` (a ``RuntimeError``) at once;
subscriptions made before entering are remembered and sent on connect.

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
answers a subscription at once), after ``subscribe``, ``set_mode`` and every reconnect
alike. A tick in a poorer mode than asked (a ``QuoteTick`` of an instrument asked in
``full``) is delivered as it came and counted (``statistics().poorer_mode``): for an
illiquid instrument it may be the only price for minutes. A tick in a richer mode than
asked (a switch down not in effect yet) is dropped and counted (``stale_mode``). The
instrument's first tick in its asked mode ends the switch. :class:`RawKiteFeed` passes
every frame on.

**Connections.** Entering opens an anyio task group; each connection (Kite allows 3000
instruments per connection and 3 connections per api_key) runs in it: connect, replay the
subscriptions with their modes, read. More than 3000 instruments are spread over up to 3
connections, filled in order; their items merge into the one stream. Leaving the block (or
the cancellation of any scope around it) closes every socket and ends every task.

**Credentials** are read on every (re)connect: ``access_token`` (or ``enctoken``) may be
a provider, a callable returning the token (sync or async), and
:meth:`KiteFeed.set_access_token` (``set_enctoken`` for Kite Web) hands a renewed token to a
running feed: the next reconnect uses it, no restart needed.

**Session renewal.** ``KiteFeed(session=KiteSession(...))`` reads the token from the
session (shared with ``Kite(session=...)``) before every (re)connect, and a 403 at the
handshake (the daily expiry) no longer ends the feed when the session can renew: it logs
in again (once, whoever saw the refusal first: the feed or the REST client) and the feed
reconnects with the new token, its subscriptions replayed. If the renewal fails the
``TokenException`` ends the feed as before (chained from the renewal's error).

**Reconnect.** Any drop (network error, server close, heartbeat watchdog) reconnects after
the ``backoff`` delay, shortened by the policy's jitter (the default's: up to half) so that
several connections do not reconnect in lockstep; the failure count starts again once a
connection stayed up for ``stable_after`` seconds. Out of attempts:
:class:`~aio_trader.errors.FeedClosedError`. A 403 at the handshake (session expired or
invalid) stops the feed at once, no retry: :class:`~aio_trader.errors.TokenException`.
Both are raised out of the ``async with`` (and out of ``async for`` when iterating), as
themselves, not inside an exception group. :class:`FeedDisconnected` carries the attempt
number and the server's close code.

**Heartbeat watchdog.** Kite sends a 1-byte frame each second when it has nothing else to
send. If nothing at all arrives for ``watchdog`` seconds, the connection is dead: it is
dropped and a new one made.

**The engine and the channel.** The connection's life is the broker-neutral
:class:`aio_trader.feed.FeedEngine`'s, run with Kite's protocol
(:class:`~aio_trader.kite._protocol.KiteProtocol`); the channel between the connections and
``async for`` is :func:`aio_trader.feed.make_channel`'s, an anyio memory object stream;
each connection writes through its own send clone. Every receive is a checkpoint
(trio's rule), so a busy ``async for`` body never starves the connections, and a cancel
scope around the loop ends it on time. That costs a scheduler pass per item;
:meth:`~KiteFeed.batches` pays it once per list of the items already waiting (``async for
batch in feed.batches()``: the same items, order and policies). Slow consumers
(:class:`Overflow`):

- ``lossless``: a stream bounded at ``buffer_size`` items. When it is full, the reader
  waits (until half of them were read) and stops reading the socket; httpx-ws then stops
  reading too, the kernel's receive buffer fills, and TCP flow control makes Kite's (or
  the sandbox's) sends block: nothing is lost, the server is slowed down (Kite may
  disconnect a client that stays behind for long; the feed then reconnects).
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

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeAlias, TypeVar

from aio_trader._instruments import InstrumentIndex
from aio_trader.backoff import Backoff
from aio_trader.feed._channel import FeedStatistics, Overflow, Sender
from aio_trader.feed._engine import (
    MISSING,
    ConnectionEvent,
    FeedConnected,
    FeedDisconnected,
    FeedEngine,
    RawFrame,
    keys_or_former,
)
from aio_trader.kite._protocol import (
    KITE_CONNECT_ROOT,
    KITE_WEB_ROOT,
    Credential,
    KiteProtocol,
)
from aio_trader.kite._session import KiteSession
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

#: Reconnect waits up to 1, 2, 4 ... 30 s (each shortened by up to half, at random, so that
#: connections do not reconnect in lockstep), at most 30 attempts in a row (a drop costs a
#: second of ticks rather than the REST default's 3 s).
DEFAULT_BACKOFF: Final = Backoff(base=1.0, factor=2.0, cap=30.0, max_attempts=30, jitter=0.5)

#: One item of :class:`KiteFeed`'s stream: a tick record, or a text frame's record.
FeedItem: TypeAlias = Tick | OrderUpdate | FeedError | FeedMessage

ItemT = TypeVar("ItemT")


def _check_str(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str) and not callable(value):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")


class _KiteFeedBase(FeedEngine[int, ItemT]):
    """What :class:`KiteFeed` and :class:`RawKiteFeed` share: all of it but the decoding."""

    _protocol: KiteProtocol

    @staticmethod
    def _is_record(item: object) -> bool:
        """Whether a stream item comes from a text frame (never dropped nor conflated)."""
        return isinstance(item, OrderUpdate | FeedError | FeedMessage)

    @staticmethod
    def _key_of(item: Any) -> int:
        """A tick's instrument token (the ``conflate`` key)."""
        return item.instrument_token  # type: ignore[no-any-return]

    def __init__(
        self,
        api_key: str | None = None,
        access_token: Credential | None = None,
        *,
        user_id: str | None = None,
        enctoken: Credential | None = None,
        root: str | None = None,
        subscriptions: Mapping[int | str, Mode | str] | Iterable[int | str] | None = None,
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
        instruments: InstrumentIndex | None = None,
        session: KiteSession | None = None,
    ) -> None:
        """Set up the feed; nothing connects before ``async with``.

        ``session``: a :class:`~aio_trader.kite.KiteSession` instead of the token (its
        ``api_key`` or ``user_id`` too): read before every (re)connect and renewed when
        Kite refuses it (see "Session renewal" in the module doc).
        Kite Connect: ``api_key`` and ``access_token`` (``root`` defaults to
        ``wss://ws.kite.trade``). Kite Web: ``user_id`` and ``enctoken`` (``root`` defaults
        to ``wss://ws.zerodha.com``, and the web client's parameters are sent). ``root``
        points elsewhere, e.g. at the sandbox's ``ticker_url``. The token may be a provider
        instead of a string: a callable (sync or async) returning it, called before every
        (re)connect (see also :meth:`set_access_token`).

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
        ``instruments``: Kite's :class:`~aio_trader.toolkit.InstrumentIndex` (``await
        kite.instrument_index()``); with it ``subscriptions``, :meth:`subscribe`,
        :meth:`unsubscribe` and :meth:`set_mode` also take symbols (``"NSE:INFY"``,
        ``"NFO:NIFTY26DECFUT"``), resolved to tokens before any I/O; ticks carry tokens
        (``index.by_key(tick.instrument_token).symbol`` gives the symbol back).

        Raises, before any I/O: ``ValueError`` for missing/mixed credentials, a ``root``
        that is not a ``ws://``/``wss://`` URL, a non-positive timeout, a bad mode, policy,
        token or size, another broker's index; ``UnknownInstrument`` for a symbol the
        index does not know (or without its exchange); ``TypeError`` for an argument of
        the wrong type (a symbol without an index included).
        """
        if session is not None:
            if not isinstance(session, KiteSession):
                raise TypeError(f"session must be a KiteSession, got {type(session).__name__}")
            if access_token is not None or enctoken is not None:
                raise ValueError("give a token or a session, not both")
            if session.web:
                user_id, enctoken = user_id or session.user_id, session.credential
            else:
                api_key, access_token = api_key or session.api_key, session.credential
        for name, value in (("api_key", api_key), ("user_id", user_id)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        _check_str("access_token", access_token)
        _check_str("enctoken", enctoken)
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
        secret = enctoken if web else access_token
        assert secret is not None
        if root is None:
            root = KITE_WEB_ROOT if web else KITE_CONNECT_ROOT
        protocol = KiteProtocol(
            api_key=api_key or "", secret=secret, user_id=user_id if web else None, root=root
        )
        self.root = protocol.root
        super().__init__(
            protocol,
            subscriptions=subscriptions,
            default_mode=default_mode,
            overflow=overflow,
            buffer_size=buffer_size,
            watchdog=watchdog,
            backoff=backoff,
            stable_after=stable_after,
            connect_timeout=connect_timeout,
            send_timeout=send_timeout,
            max_connections=max_connections,
            max_instruments=max_instruments,
            instruments=instruments,
            session=session,
        )

    def set_access_token(self, access_token: Credential) -> None:
        """Use ``access_token`` (a string, or a provider) from the next (re)connect on.

        A running feed keeps its connections; the renewed token is sent when one is made
        again (after a drop, or for a new connection). Renew it before the old one expires
        (Kite's expire around 06:00 IST) and nothing is lost. ``ValueError`` for an empty
        string, ``TypeError`` for anything but a str or a callable. Kite Web feeds: see
        :meth:`set_enctoken`.
        """
        if self._protocol.web:
            raise ValueError("a Kite Web feed uses an enctoken: call set_enctoken")
        self._protocol.set_secret(access_token)

    def set_enctoken(self, enctoken: Credential) -> None:
        """:meth:`set_access_token` for a Kite Web feed (``user_id`` and ``enctoken``)."""
        if not self._protocol.web:
            raise ValueError("a Kite Connect feed uses an access token: call set_access_token")
        self._protocol.set_secret(enctoken)

    @property
    def subscriptions(self) -> dict[int, Mode]:  # type: ignore[override]
        """A copy of the subscribed instrument tokens with their modes."""
        return {token: Mode(mode) for token, mode in super().subscriptions.items()}

    async def subscribe(
        self,
        keys: Iterable[int | str] = MISSING,
        mode: Mode | str | None = None,
        *,
        instrument_tokens: Iterable[int] = MISSING,
    ) -> None:
        """Subscribe ``keys`` (instrument tokens, or symbols such as ``"NSE:INFY"`` when
        the feed has ``instruments``) in ``mode`` (default: ``default_mode``).

        ``instrument_tokens=`` is the same argument under its former name. Already
        subscribed tokens switch to ``mode``. Their ticks received from the call on come in
        ``mode`` (see "Modes" in the module doc). Before ``async with`` the subscription is
        only remembered and goes out with the first connection; it is replayed, with its
        mode, after every reconnect. Instruments beyond 3000 go to a further connection (at
        most ``max_connections``): the call then returns once that connection is up (or
        raises the feed's error if it cannot be made). Raises ``ValueError`` for a bad
        token or mode, or when the total would exceed ``max_connections *
        max_instruments``; ``UnknownInstrument`` for a symbol not in ``instruments`` (or
        without its exchange); ``TypeError`` for tokens that are not an iterable of ints
        or symbols, and for a symbol when the feed has no ``instruments`` (nothing changes
        then); ``ClientClosedError`` after the feed's ``async with``.

        Cancellation: the subscription is remembered and sent either way (the write is
        shielded, at most ``send_timeout``, so the socket is never left half-written and
        Kite is told what the feed remembers), then the cancellation is raised; it is
        replayed on reconnect; a new connection goes on connecting.
        """
        await super().subscribe(_keys(keys, instrument_tokens, "subscribe"), mode)

    async def unsubscribe(
        self, keys: Iterable[int | str] = MISSING, *, instrument_tokens: Iterable[int] = MISSING
    ) -> None:
        """Stop receiving ``keys`` (tokens or, with ``instruments``, symbols;
        ``instrument_tokens=``: the former name); tokens not subscribed are ignored.

        Connections stay open when they have nothing left. Raises ``ValueError`` /
        ``TypeError`` for bad tokens, ``ClientClosedError`` after the feed's ``async with``.
        Cancellation: as for :meth:`subscribe`.
        """
        await super().unsubscribe(_keys(keys, instrument_tokens, "unsubscribe"))

    async def set_mode(
        self,
        mode: Mode | str,
        keys: Iterable[int | str] = MISSING,
        *,
        instrument_tokens: Iterable[int] = MISSING,
    ) -> None:
        """Switch subscribed ``keys`` (tokens or, with ``instruments``, symbols;
        ``instrument_tokens=``: the former name) to
        ``mode``: their ticks received from the call on come in ``mode`` (see "Modes";
        ticks already waiting in the channel are still delivered).

        Raises ``ValueError`` for a bad mode or a token that is not subscribed (nothing
        changes then), ``ClientClosedError`` after the feed's ``async with``.
        Cancellation: as for :meth:`subscribe`.
        """
        await super().set_mode(mode, _keys(keys, instrument_tokens, "set_mode"))

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


def _keys(keys: Any, instrument_tokens: Any, method: str) -> Any:
    return keys_or_former(keys, instrument_tokens, method, "instrument_tokens")


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
            await self._channel.put_items(send, ticks)

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
