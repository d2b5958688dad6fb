"""``DhanFeed``: Dhan's live market feed and order updates, with structured concurrency.

::

    async with DhanFeed(client_id="...", access_token="...") as feed:   # connected here
        await feed.subscribe([("NSE_EQ", 1333), ("IDX_I", 13)], mode="full")
        async for item in feed:
            match item:
                case FullTick() | QuoteTick() | TickerTick(): ...   # prices
                case PrevClose() | OpenInterest():            ...   # on subscribe, with quotes
                case OrderUpdate():                           ...   # the order-update socket
                case FeedMessage():                           ...   # any other JSON message

It is the broker-neutral feed engine (:class:`~aio_trader.feed.FeedEngine`) with Dhan's
protocol (``aio_trader/dhan/_protocol.py``), so it keeps the same contract as ``KiteFeed``:

- **Entering connects**: ``async with`` returns once the first market-feed connection and
  the order-update socket are up, logged in and subscribed; nothing sent after entry is
  lost (an order placed right after entry reaches ``async for`` as an :class:`OrderUpdate`).
- **Keys** are ``(exchange_segment, security_id)`` pairs: ``("NSE_EQ", 1333)``,
  ``(ExchangeSegment.NSE_EQ, "1333")``; normalised to ``("NSE_EQ", 1333)``, the
  :attr:`~aio_trader.dhan.ticks.TickerTick.key` of the records.
- **Modes**: ``"ticker"`` (alias ``"ltp"``), ``"quote"``, ``"full"``. Dhan switches a
  mode by an unsubscribe in the old mode and a subscribe in the new one: ticks in the old
  mode may arrive meanwhile (handled as ``KiteFeed`` does: a poorer one is delivered and
  counted in ``poorer_mode``, a richer one dropped and counted in ``stale_mode``).
- **Connections**: 100 instruments a subscribe message, 5000 a connection, 5 connections
  (``max_instruments`` / ``max_connections`` lower them). The order-update socket is one
  more connection (numbered 1000 in connection events; ``order_root=None`` leaves it out).
- **The stream** merges every connection's items, in the order they arrived on each:
  ticks (:class:`TickerTick`, :class:`QuoteTick`, :class:`FullTick`), :class:`PrevClose`,
  :class:`OpenInterest`, :class:`MarketStatus`, :class:`OrderUpdate` (PascalCase and
  camelCase keys alike) and :class:`FeedMessage`. Malformed packets are counted
  (``statistics().malformed``) and logged once per message, never fatal.
- **Heartbeat**: WebSocket ping/pong; a connection whose pong does not come within
  ``watchdog`` seconds is dropped and made again.
- **Reconnect and resubscribe** after any drop, with jittered ``backoff``; subscriptions
  are replayed with their modes. **Credentials** are read on every (re)connect:
  ``access_token`` may be a provider (a callable, sync or async) and
  :meth:`DhanFeed.set_access_token` hands a renewed token to a running feed.
- **Dhan's refusals**: a disconnect packet (code 50) ends the feed by its reason code:
  807 (token expired), 808 (authentication failed), 809 (token invalid), 810 (client id
  invalid) with :class:`~aio_trader.errors.SessionExpired`, no retry; 806 (Data APIs not
  subscribed) with :class:`~aio_trader.errors.PermissionDenied`; 805 (too many
  connections) and the others only drop that connection, which reconnects with backoff.
  The error is raised out of ``async for`` and ``async with``, as itself.
- **Session renewal**: ``DhanFeed(session=DhanSession(...))`` reads the token from the
  session (shared with ``Dhan(session=...)``) before every (re)connect; a session refusal
  (807-810) renews it (once, whoever saw the refusal first) and reconnects instead of
  ending, when the session can renew; a failed renewal ends the feed as before.
- **Overflow policies** (``overflow=``): ``lossless`` (default), ``drop_oldest``,
  ``conflate`` (the newest packet per instrument: a tick replaces a previous close still
  waiting; OI packets are kept apart, one per instrument); order updates are never
  dropped nor conflated.
- ``token=`` and the access token never reach a log, a ``repr`` or an error text.

:class:`DhanDepthFeed` is the 20-level depth feed on its own socket, with the same
contract: :class:`TwentyDepth` records, one per side.

:class:`RawDhanFeed` is :class:`DhanFeed` with its messages undecoded, as
:class:`~aio_trader.feed.RawFrame` records (for the gateway and recordings: codec
``"dhan"``, :mod:`aio_trader.dhan._codec`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final, TypeAlias

from aio_trader._instruments import InstrumentIndex
from aio_trader.backoff import Backoff
from aio_trader.dhan._protocol import (
    DEPTH_ROOT,
    FEED_ROOT,
    ORDER_ROOT,
    Credential,
    DepthProtocol,
    DhanProtocol,
    InstrumentKey,
    disconnect_error,
)
from aio_trader.dhan._session import DhanSession
from aio_trader.dhan.constants import (
    DEPTH20_MAX_INSTRUMENTS,
    FEED_MAX_CONNECTIONS,
    FEED_MAX_INSTRUMENTS,
    FeedMode,
)
from aio_trader.dhan.ticks import (
    Disconnect,
    FeedMessage,
    FullTick,
    MalformedPacket,
    MarketStatus,
    OpenInterest,
    OrderUpdate,
    PrevClose,
    QuoteTick,
    TickerTick,
    TwentyDepth,
    decode_depth_message,
    decode_message,
    decode_text,
)
from aio_trader.errors import ConnectionLost
from aio_trader.feed._channel import Overflow, Sender
from aio_trader.feed._engine import FeedEngine, RawFrame

__all__ = [
    "DEFAULT_BACKOFF",
    "DEPTH_ROOT",
    "FEED_ROOT",
    "ORDER_ROOT",
    "DepthItem",
    "DhanDepthFeed",
    "DhanFeed",
    "FeedItem",
    "RawDhanFeed",
]

log = logging.getLogger(__name__)

#: Reconnect waits up to 1, 2, 4 ... 30 s (each shortened by up to half, at random), at
#: most 30 attempts in a row (as ``KiteFeed``'s).
DEFAULT_BACKOFF: Final = Backoff(base=1.0, factor=2.0, cap=30.0, max_attempts=30, jitter=0.5)

#: One item of :class:`DhanFeed`'s stream.
FeedItem: TypeAlias = (
    TickerTick
    | QuoteTick
    | FullTick
    | PrevClose
    | OpenInterest
    | MarketStatus
    | OrderUpdate
    | FeedMessage
)
#: One item of :class:`DhanDepthFeed`'s stream.
DepthItem: TypeAlias = TwentyDepth | FeedMessage


def _with_session(
    client_id: str | None, access_token: Credential | None, session: DhanSession | None
) -> tuple[Any, Any]:
    """The client id and the token (provider) to use: the session's when one is given."""
    if session is None:
        return client_id, access_token
    if not isinstance(session, DhanSession):
        raise TypeError(f"session must be a DhanSession, got {type(session).__name__}")
    if access_token is not None:
        raise ValueError("give an access_token or a session, not both")
    if client_id is not None and client_id != session.client_id:
        raise ValueError("client_id differs from the session's")
    return session.client_id, session.credential


def _check_credentials(client_id: object, access_token: object) -> None:
    if not isinstance(client_id, str):
        raise TypeError(f"client_id must be a str, got {type(client_id).__name__}")
    if not client_id:
        raise ValueError("client_id must be a non-empty str")
    if isinstance(access_token, str):
        if not access_token:
            raise ValueError("access_token must be a non-empty str (or a provider)")
    elif not callable(access_token):
        raise TypeError(
            f"access_token must be a str or a callable, got {type(access_token).__name__}"
        )


class _DhanEngine(FeedEngine[InstrumentKey, Any]):
    """What both Dhan feeds share: credentials, malformed packets, disconnect packets."""

    _protocol: DhanProtocol | DepthProtocol

    @staticmethod
    def _is_record(item: object) -> bool:
        return isinstance(item, OrderUpdate | FeedMessage)

    def set_access_token(self, access_token: Credential) -> None:
        """Use ``access_token`` (a string, or a provider) from the next (re)connect on.

        A running feed keeps its connections; the renewed token is sent when one is made
        again (after a drop, or for a new connection). ``ValueError`` for an empty string,
        ``TypeError`` for anything but a str or a callable.
        """
        self._protocol.set_secret(access_token)

    @property
    def client_id(self) -> str:
        return self._protocol.credentials.client_id

    def _malformed(self, bad: list[MalformedPacket]) -> None:
        self._counters.malformed += len(bad)
        first = bad[0]
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        log.warning(
            "skipped %d malformed packet(s) in a message: %s (offset %d)%s",
            len(bad),
            first.reason,
            first.offset,
            more,
        )
        bad.clear()

    def _disconnected(self, packet: Disconnect, connection: int) -> None:
        """Raise what Dhan's disconnect packet means (see :func:`disconnect_error`)."""
        error = disconnect_error(packet.reason)
        if isinstance(error, ConnectionLost):
            log.warning("connection %d: %s; reconnecting", connection, error)
        raise error

    async def _on_text(self, data: str, send: Sender, received: float, connection: int) -> None:
        record = decode_text(data)
        if isinstance(record, MalformedPacket):
            self._malformed([record])
            return
        if isinstance(record, OrderUpdate):
            self._counters.order_updates += 1
        await self._channel.put_record(send, record)


class DhanFeed(_DhanEngine):
    """Dhan's live market feed and order updates as records: ``async for item in feed``.

    See the module documentation for the lifecycle, keys, modes, connections, reconnects
    and Dhan's refusals.
    """

    _protocol: DhanProtocol

    @staticmethod
    def _key_of(item: Any) -> Any:
        """The ``conflate`` key: the instrument (an OI packet: the instrument and ``"oi"``,
        so that it never replaces the quote it comes with)."""
        if type(item) is OpenInterest:
            return (item.exchange_segment, item.security_id, "oi")
        return (item.exchange_segment, item.security_id)

    def __init__(
        self,
        client_id: str | None = None,
        access_token: Credential | None = None,
        *,
        root: str = FEED_ROOT,
        order_root: str | None = ORDER_ROOT,
        subscriptions: Mapping[Any, FeedMode | str] | Iterable[Any] | None = None,
        default_mode: FeedMode | str = FeedMode.QUOTE,
        overflow: Overflow | str = Overflow.LOSSLESS,
        buffer_size: int = 10_000,
        watchdog: float = 10.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        stable_after: float = 30.0,
        connect_timeout: float = 10.0,
        send_timeout: float = 10.0,
        max_connections: int = FEED_MAX_CONNECTIONS,
        max_instruments: int = FEED_MAX_INSTRUMENTS,
        instruments: InstrumentIndex | None = None,
        session: DhanSession | None = None,
    ) -> None:
        """Set up the feed; nothing connects before ``async with``.

        ``client_id`` and ``access_token`` (a string, or a provider: a callable, sync or
        async, called before every (re)connect), or ``session`` (a
        :class:`~aio_trader.dhan.DhanSession`, shared with ``Dhan(session=...)``: its token
        is read before every (re)connect and renewed on a session refusal).
        ``root`` is the market feed's URL
        (default Dhan's, ``wss://api-feed.dhan.co``; the sandbox's ``dhan_feed_url``),
        ``order_root`` the order-update socket's (default
        ``wss://api-order-update.dhan.co``; ``None``: no order updates).

        ``subscriptions`` go out with the first connection: a mapping of keys to modes
        (``{("NSE_EQ", 1333): "full"}``) or keys in ``default_mode`` (also the mode of
        ``subscribe(keys)`` without one). ``overflow`` and ``buffer_size`` set the
        slow-consumer policy. ``watchdog``: seconds a ping waits for its pong before the
        connection is dropped. ``backoff`` paces reconnects (the count restarts once a
        connection stayed up ``stable_after`` seconds). ``connect_timeout`` bounds a
        handshake, ``send_timeout`` a message's write. ``max_connections`` x
        ``max_instruments`` is Dhan's limit (5 x 5000); lower values shard sooner.
        ``instruments``: Dhan's :class:`~aio_trader.toolkit.InstrumentIndex` (``await
        dhan.instrument_index()``); with it ``subscriptions``, :meth:`subscribe`,
        :meth:`unsubscribe` and :meth:`set_mode` also take symbols
        (``"NSE:INFY"``, ``"NFO:NIFTY-Dec2026-FUT"``), resolved to keys before any I/O;
        ticks carry keys (``index.by_key((tick.exchange_segment, tick.security_id))``
        gives the symbol back).

        Raises, before any I/O: ``ValueError`` for an empty credential, a URL that is not
        ``ws://``/``wss://``, a bad mode, key, policy or size, another broker's index;
        ``UnknownInstrument`` for a symbol the index does not know (or without its
        exchange); ``TypeError`` for an argument of the wrong type (a symbol without an
        index included).
        """
        client_id, access_token = _with_session(client_id, access_token, session)
        _check_credentials(client_id, access_token)
        protocol = DhanProtocol(
            client_id=client_id,
            access_token=access_token,
            root=root,
            order_root=order_root,
        )
        self.root = protocol.root
        self.order_root = protocol.order_root
        super().__init__(
            protocol,
            subscriptions=subscriptions,
            default_mode=str(default_mode),
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

    @property
    def subscriptions(self) -> dict[InstrumentKey, FeedMode]:  # type: ignore[override]
        """A copy of the subscribed instruments with their modes."""
        return {key: FeedMode(mode) for key, mode in super().subscriptions.items()}

    async def subscribe(self, keys: Iterable[Any], mode: FeedMode | str | None = None) -> None:
        """Subscribe ``keys`` (``(exchange_segment, security_id)`` pairs, or symbols such
        as ``"NSE:INFY"`` when the feed has ``instruments``) in ``mode``
        (default: ``default_mode``; ``"ticker"``/``"ltp"``, ``"quote"``, ``"full"``).

        Already subscribed instruments switch to ``mode``. Before ``async with`` the
        subscription is only remembered and goes out with the first connection; it is
        replayed, with its mode, after every reconnect. Instruments beyond
        ``max_instruments`` go to a further connection (at most ``max_connections``): the
        call then returns once that connection is up. Raises ``ValueError`` for a bad key
        or mode, or past ``max_connections * max_instruments`` instruments;
        ``UnknownInstrument`` for a symbol not in ``instruments`` (or without its
        exchange); ``TypeError`` for keys that are not an iterable of pairs or symbols, and
        for a symbol when the feed has no ``instruments`` (nothing changes then);
        ``ClientClosedError`` after the feed's ``async with``.

        Cancellation: the subscription is remembered and sent either way (the write is
        shielded, at most ``send_timeout``), then the cancellation is raised.
        """
        protocol = self._protocol
        mode_ = self.default_mode if mode is None else protocol.check_mode(str(mode))
        wanted = self._check_keys(keys)
        # an instrument subscribed in another mode switches as set_mode does (Dhan: an
        # unsubscribe in the old mode first), the others are subscribed
        known = self.subscriptions
        moving = [key for key in wanted if key in known and known[key] != mode_]
        if moving:
            await super().set_mode(mode_, moving)
        fresh = [key for key in wanted if key not in moving]
        if fresh or not moving:
            await super().subscribe(fresh, mode_)

    async def set_mode(self, mode: FeedMode | str, keys: Iterable[Any]) -> None:
        """Switch subscribed ``keys`` to ``mode`` (Dhan: unsubscribe in the old mode,
        subscribe in the new). ``ValueError`` for a bad mode or a key not subscribed;
        ``ClientClosedError`` after the feed's ``async with``. Cancellation: as for
        :meth:`subscribe`."""
        await super().set_mode(str(mode), keys)

    def _in_asked_mode(self, ticks: list[Any]) -> list[Any]:
        """The engine's mode sorting (see "Modes"), for ticks only: a previous close, an
        OI or a market status packet has no mode and always passes."""
        switching, rank = self._switching, self._protocol.rank
        kept: list[Any] = []
        poorer = 0
        for tick in ticks:
            mode = getattr(tick, "mode", None)
            asked = switching.get(tick.key) if mode is not None else None
            if mode is not None and asked is not None:
                if mode == asked:
                    del switching[tick.key]
                elif rank(mode) > rank(asked):
                    continue
                else:
                    poorer += 1
            kept.append(tick)
        self._counters.poorer_mode += poorer
        if len(kept) < len(ticks):
            self._counters.stale_mode += len(ticks) - len(kept)
        return kept

    async def _on_binary(
        self, data: bytes | bytearray, send: Sender, received: float, connection: int
    ) -> None:
        bad: list[MalformedPacket] = []
        records = decode_message(data, bad.append)
        if bad:
            self._malformed(bad)
        for record in records:
            if type(record) is Disconnect:
                self._disconnected(record, connection)
        self._counters.ticks += len(records)
        if self._switching:
            records = self._in_asked_mode(records)
        if records:
            await self._channel.put_items(send, records)


class RawDhanFeed(DhanFeed):
    """:class:`DhanFeed`'s messages undecoded: one :class:`~aio_trader.feed.RawFrame` per
    binary message or text message (order updates), with its receive time and connection
    (the order-update socket's: 1000).

    For recording a session and for the gateway (``Gateway(feed=RawDhanFeed(...))``: its
    :attr:`codec`, ``"dhan"``, names the frames; decode ``frame.data`` later with
    :func:`~aio_trader.dhan.ticks.decode_message` / :func:`~aio_trader.dhan.ticks.decode_text`).
    ``ticks`` counts the packets messages hold; ``malformed`` and ``order_updates`` stay 0
    (nothing is decoded). Dhan's disconnect packets (code 50) are read all the same: a
    message holding one is not yielded, and ends the feed or drops the connection as for
    :class:`DhanFeed`. Mode switches pass every message on (the consumers' codec sorts
    modes out). ``buffer_size`` counts frames; the ``conflate`` policy needs decoded ticks:
    ``ValueError``. Same arguments and lifecycle as :class:`DhanFeed`.
    """

    #: The name of the frames' codec (:func:`aio_trader._codec.get_codec`).
    codec: ClassVar[str] = "dhan"
    _can_conflate = False

    @staticmethod
    def _is_record(item: object) -> bool:
        return isinstance(item, RawFrame) and isinstance(item.data, str)

    async def _on_binary(
        self, data: bytes | bytearray, send: Sender, received: float, connection: int
    ) -> None:
        data = bytes(data)
        size, pos, packets = len(data), 0, 0
        while pos + 8 <= size:
            length = data[pos + 1] | data[pos + 2] << 8
            if length < 8:
                break
            if data[pos] == Disconnect.code:
                for record in decode_message(data[pos : pos + length], lambda bad: None):
                    if type(record) is Disconnect:
                        self._disconnected(record, connection)
            packets += 1
            pos += length
        self._counters.ticks += packets
        self._switching.clear()  # nothing is sorted by mode here
        await self._channel.put_items(send, [RawFrame(data, received, connection)])

    async def _on_text(self, data: str, send: Sender, received: float, connection: int) -> None:
        await self._channel.put_record(send, RawFrame(data, received, connection))


class DhanDepthFeed(_DhanEngine):
    """Dhan's 20-level depth feed: ``async for item in feed`` yields :class:`TwentyDepth`
    records (one per side: ``side`` ``"buy"`` or ``"sell"``, ``levels`` best first).

    Same contract as :class:`DhanFeed` (its own socket, ``root`` default
    ``wss://depth-api-feed.dhan.co/twentydepth``), one mode (``"depth"``), NSE_EQ and
    NSE_FNO instruments only, 50 a connection, 5 connections.
    """

    _protocol: DepthProtocol

    @staticmethod
    def _key_of(item: Any) -> Any:
        """The ``conflate`` key: the instrument and the side."""
        return (item.exchange_segment, item.security_id, item.side)

    def __init__(
        self,
        client_id: str | None = None,
        access_token: Credential | None = None,
        *,
        root: str = DEPTH_ROOT,
        subscriptions: Iterable[Any] | None = None,
        overflow: Overflow | str = Overflow.LOSSLESS,
        buffer_size: int = 10_000,
        watchdog: float = 10.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        stable_after: float = 30.0,
        connect_timeout: float = 10.0,
        send_timeout: float = 10.0,
        max_connections: int = FEED_MAX_CONNECTIONS,
        max_instruments: int = DEPTH20_MAX_INSTRUMENTS,
        instruments: InstrumentIndex | None = None,
        session: DhanSession | None = None,
    ) -> None:
        """Set up the depth feed; nothing connects before ``async with``. Arguments as
        :class:`DhanFeed`'s (no modes, no order updates)."""
        client_id, access_token = _with_session(client_id, access_token, session)
        _check_credentials(client_id, access_token)
        protocol = DepthProtocol(
            client_id=client_id,
            access_token=access_token,
            root=root,
        )
        self.root = protocol.root
        super().__init__(
            protocol,
            subscriptions=subscriptions,
            default_mode="depth",
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

    async def subscribe(self, keys: Iterable[Any], mode: str | None = None) -> None:
        """Subscribe ``keys`` (NSE_EQ / NSE_FNO ``(exchange_segment, security_id)``
        pairs, or their symbols with ``instruments``) to the 20-level depth (see
        :meth:`DhanFeed.subscribe`)."""
        await super().subscribe(keys, mode)

    async def _on_binary(
        self, data: bytes | bytearray, send: Sender, received: float, connection: int
    ) -> None:
        bad: list[MalformedPacket] = []
        records = decode_depth_message(data, bad.append)
        if bad:
            self._malformed(bad)
        depth: list[TwentyDepth] = []
        for record in records:
            if type(record) is Disconnect:
                self._disconnected(record, connection)
            else:
                depth.append(record)  # type: ignore[arg-type]
        self._switching.clear()  # one mode: nothing ever switches
        self._counters.ticks += len(depth)
        if depth:
            await self._channel.put_items(send, depth)
