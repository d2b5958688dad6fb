"""Paper trading: the broker's own REST client, with fills from a real feed's ticks.

::

    async with KiteFeed(api_key, access_token) as feed, Paper(feed, cash=500_000) as paper:
        kite = paper.broker                  # a Kite: the whole REST client, unchanged
        await paper.subscribe([408065], "full")
        order_id = await kite.place_order("regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT",
                                          price=1500.0)
        async for item in paper:             # the feed's ticks and the paper orders' updates
            ...

:class:`Paper` starts a sandbox of the feed's broker (:mod:`aio_trader.sandbox`, its own
clock off) on loopback and reads the feed in a task of its own: every tick sets that
instrument's quote in the sandbox's market (last price, OHLC, volume, depth when the tick
has them) and the sandbox's order engine fills what the price crossed, at that price:
positions, holdings, funds and trades follow, as in the sandbox. ``paper.broker`` is the
broker's own REST client (``Kite``, ``Dhan``) logged in to that sandbox, so everything the
client does (place, modify, cancel, orders, positions, funds, ``wait_for_order``,
``cancel_all``, ``square_off``...) works unchanged. ``paper`` is itself a feeder: it yields
the feed's items and the paper orders' updates (the broker's own records: Kite's
``OrderUpdate``, Dhan's ``OrderUpdate``) in the same ``async for``, as the live feed does.

Switching a strategy between live and paper is one line::

    broker, stream = kite, feed                  # live
    broker, stream = paper.broker, paper         # paper

Needs the ``sandbox`` extra (``pip install 'aio-trader[sandbox]'``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from aio_trader._codec import Codec, get_codec
from aio_trader._instruments import InstrumentIndex
from aio_trader.abc import AbstractBroker, AbstractFeeder
from aio_trader.errors import ClientClosedError
from aio_trader.feed import Batches, FeedStatistics, Overflow, Sender, make_channel
from aio_trader.feed._channel import EndOfFeed

try:
    from aio_trader.sandbox._dialect import Dialect
    from aio_trader.sandbox.config import SandboxConfig, brokers
    from aio_trader.sandbox.market import BookLevel
    from aio_trader.sandbox.server import Sandbox
except ModuleNotFoundError as _missing:  # a core-only install: say which extra to install
    if (_missing.name or "").partition(".")[0] not in {
        "starlette",
        "hypercorn",
        "multipart",
        "python_multipart",
        "sniffio",
    }:
        raise
    raise ModuleNotFoundError(
        f"aio_trader.paper needs the `sandbox` extra "
        f"({(_missing.name or '').partition('.')[0]} is not installed): "
        "pip install 'aio-trader[sandbox]'",
        name=_missing.name,
    ) from None

if TYPE_CHECKING:
    from typing_extensions import Self

    from aio_trader.sandbox.state import SandboxState

__all__ = ["Paper"]

log = logging.getLogger(__name__)

#: What ``Paper`` decides for its sandbox: not among its ``sandbox_options``.
_FIXED: Final = frozenset({"broker", "opening_cash", "market_interval", "replay"})

#: A tick's attributes -> ``Market.set_quote``'s arguments (the names both brokers' tick
#: records use; a tick without one leaves that part of the quote as it is).
_QUOTE_FIELDS: Final = (
    ("last_price", "last_price"),
    ("volume_traded", "volume"),
    ("last_traded_quantity", "last_quantity"),
    ("average_traded_price", "average_price"),
    ("total_buy_quantity", "buy_quantity"),
    ("total_sell_quantity", "sell_quantity"),
    ("oi", "oi"),
    ("oi_day_high", "oi_day_high"),
    ("oi_day_low", "oi_day_low"),
    ("previous_close", "close"),
)


class Paper(AbstractFeeder[Any, Any]):
    """A paper-trading account on a real feed (see the module doc).

    Lifecycle: the ``feed`` is the caller's: enter it first and leave it after (``async
    with feed, Paper(feed) as paper``); ``Paper`` reads it while open and never closes it.
    Entering a ``Paper`` starts the sandbox, logs ``broker`` in to it and starts reading the
    feed; leaving it (or cancellation of the enclosing scope) stops the reading, closes the
    client and stops the sandbox: no task outlives the ``async with``. ``aclose()`` in the
    body stops the reading and closes the client at once (the sandbox stops on leaving).
    An exception raised in the body comes out as itself. Once ``paper`` wraps the feed,
    read ``paper``, not the feed (each item goes to one reader).

    What drives the market: each tick of an instrument the sandbox knows (the sandbox's
    instrument list: the broker's dump shipped with the package, which a sandbox's own feed
    or a recording of it shares; or, with ``instruments=``, the real account's index, so
    every instrument of a real feed) sets that instrument's quote; the order engine then
    fills that instrument's live orders the price crossed (a BUY LIMIT at or above it, a
    SELL LIMIT at or below it, SL / SL-M orders once triggered), at the tick's last price.
    An instrument gets a price from its first tick only: before it, a MARKET order on it is
    refused (400, the broker's ``InvalidInput``) and other orders wait. ``subscribe``
    refuses instruments the sandbox does not know (``ValueError``, naming them, before
    anything is sent); a tick of one subscribed on the feed directly is yielded but trades
    nothing (logged once per instrument). Order updates of the real account that the feed
    may carry are not paper's: they are left out.

    Order: the updates of the fills a tick causes are yielded right after that tick, before
    the next item of the feed; updates of REST calls (placing, modifying, cancelling) come
    in the order the sandbox made them. With the ``lossless`` overflow (the default) the
    market moves only as fast as ``paper`` is read: a program that stops reading stops its
    paper fills too, as it stops the feed.

    The end of the feed ends ``async for`` (after every item put before it); a feed that
    fails raises its own error there, as itself. Cancellation: a cancelled wait for the
    next item loses nothing; the REST client's calls keep their own contract.
    """

    def __init__(
        self,
        feed: AbstractFeeder[Any, Any],
        broker: str | None = None,
        *,
        cash: float = 1_000_000.0,
        rate_limit_scale: float = 1.0,
        overflow: Overflow | str = Overflow.LOSSLESS,
        buffer_size: int = 10_000,
        client_options: Mapping[str, Any] | None = None,
        instruments: InstrumentIndex | None = None,
        **sandbox_options: Any,
    ) -> None:
        """Set up the account; nothing starts before ``async with``.

        ``feed`` is any feeder of the broker (``KiteFeed``, ``DhanFeed``, a ``ReplayFeed``
        of a recording, a ``RedisFeed``). ``broker`` (``"kite"``, ``"dhan"``) is the
        feed's by default: its package, or the codec it names. ``cash`` is the opening cash
        of each funds segment (the account starts with no holdings or positions).
        ``rate_limit_scale`` scales the broker's rate limits in the sandbox and in the
        client alike. ``overflow`` and ``buffer_size`` are ``paper``'s slow-consumer policy,
        as a live feed's. ``client_options`` go to the REST client (``backoff=``, ...);
        ``sandbox_options`` to :class:`~aio_trader.sandbox.SandboxConfig` (``rules=``,
        ``seed=``, ``faults=``...), except what ``Paper`` sets itself (``broker``,
        ``opening_cash``, ``market_interval``: the clock is off, ``replay``).

        ``instruments``: the instruments the paper sandbox knows, instead of the broker's
        list shipped with the package: an ``InstrumentIndex`` of the feed's broker, most
        usefully the real account's (``await kite.instrument_index()``), so that any
        instrument of the real account can be paper-traded, under the same keys (the feed's
        ticks) and trading symbols (the client's orders). Its broker names the account's
        when neither ``broker`` nor the feed does.

        Raises ``TypeError`` for a ``feed`` that is no feeder, an option ``Paper`` sets or
        ``instruments`` that is no ``InstrumentIndex``; ``ValueError`` for an unknown
        broker, ``instruments`` of another broker (or with keys the broker does not use),
        a ``cash`` that is not a finite number > 0, a ``buffer_size`` below 1, an unknown
        overflow policy or a bad sandbox option.
        """
        if not isinstance(feed, AbstractFeeder):
            raise TypeError(f"feed must be a feeder (KiteFeed, DhanFeed...), got {feed!r}")
        fixed = sorted(_FIXED & set(sandbox_options))
        if fixed:
            raise TypeError(f"Paper sets {', '.join(fixed)} itself")
        if isinstance(cash, bool) or not isinstance(cash, int | float):
            raise ValueError(f"cash must be a number, got {cash!r}")
        if not (math.isfinite(cash) and cash > 0):
            raise ValueError(f"cash must be a finite number > 0, got {cash!r}")
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
            raise ValueError(f"buffer_size must be an int >= 1, got {buffer_size!r}")
        if broker is not None and broker not in brokers():
            raise ValueError(
                f"unknown broker {broker!r}: paper trading knows {', '.join(brokers())}"
            )
        spoken = _broker_of(feed)  # None: known once the feed is entered (a replay)
        if broker is None:
            broker = spoken
        elif spoken is not None and spoken != broker:
            raise ValueError(f"the feed speaks {spoken}'s protocol, not {broker}'s")
        if instruments is not None:
            if not isinstance(instruments, InstrumentIndex):
                raise TypeError(
                    "instruments must be an InstrumentIndex (await client.instrument_index()), "
                    f"got {type(instruments).__name__}"
                )
            if instruments.broker:
                if broker is None:
                    broker = instruments.broker
                elif instruments.broker != broker:
                    raise ValueError(
                        f"instruments is {instruments.broker}'s index: paper trading on a "
                        f"{broker} feed needs {broker}'s (await client.instrument_index() of "
                        f"a {broker} client)"
                    )
        #: the instruments option, until the broker is known (``SandboxConfig`` checks them)
        self._instruments = instruments
        self.feed = feed
        self.overflow = Overflow(overflow)
        self.buffer_size = buffer_size
        self.config = SandboxConfig(
            broker=broker or "kite",
            opening_cash=float(cash),
            market_interval=None,
            rate_limit_scale=rate_limit_scale,
            instruments=instruments if broker is not None else None,
            **sandbox_options,
        )
        self._broker_name = broker
        self._client_options = {"rate_limit_scale": rate_limit_scale, **(client_options or {})}
        self._sandbox: Sandbox | None = None
        self._client: AbstractBroker | None = None
        self._dialect: Dialect | None = None
        self._codec: Codec | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        #: the tasks' own scopes (``aclose`` cancels them; cancelling the task group's
        #: would cancel the body of the ``async with`` too)
        self._scopes: list[anyio.CancelScope] = []
        self._closed = False
        self._exited = False
        self._unknown: set[Any] = set()
        self._order_updates = 0
        #: order update messages of the sandbox not handed to ``paper`` yet, oldest first
        self._pending: collections.deque[Any] = collections.deque()
        self._wake = anyio.Event()  # set by a new message, or the feed's end
        self._published = 0  # order update messages of the sandbox
        self._handed = 0  # ... of them handed to ``paper``
        self._all_handed = anyio.Event()  # set when ``_handed`` reaches ``_published``
        self._end: EndOfFeed | None = None  # the feed ended: put after the pending updates
        self._channel = make_channel(
            self.overflow, buffer_size, is_record=self._is_record, key=self._key
        )

    def __repr__(self) -> str:
        where = "not started" if self._sandbox is None else self._sandbox.root_url
        return f"<Paper {self._broker_name or '?'} {where} feed={self.feed!r}>"

    # -- what a running account exposes ------------------------------------------------

    @property
    def broker(self) -> Any:
        """The broker's own REST client (``Kite``, ``Dhan``), entered and logged in to the
        paper sandbox: the same API as the live client. ``ClientClosedError`` outside the
        ``async with``. Typed ``Any``: annotate it as the broker's client where it is
        used (``kite: Kite = paper.broker``)."""
        if self._client is None:
            raise ClientClosedError(
                "enter the paper account first: async with Paper(feed) as paper"
            )
        return self._client

    @property
    def sandbox(self) -> Sandbox:
        """The running sandbox behind the account (its ``state``: market, order book...).
        ``ClientClosedError`` outside the ``async with``."""
        if self._sandbox is None:
            raise ClientClosedError(
                "enter the paper account first: async with Paper(feed) as paper"
            )
        return self._sandbox

    def _is_record(self, item: Any) -> bool:
        return self._key(item) is None

    def _key(self, item: Any) -> Any:
        codec = self._codec
        return None if codec is None or type(item) is EndOfFeed else codec.key_of(item)

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Start the sandbox, log the client in, start reading the feed.

        Raises ``ClientClosedError`` for a feed not entered (or already left),
        ``ValueError`` when the broker is still unknown (``Paper(feed, broker=...)``),
        ``RuntimeError`` when entered twice. Cancellation: nothing is left running when it
        propagates."""
        if self._stack is not None or self._closed:
            raise RuntimeError("a Paper can be entered only once")
        name = self._broker_name or _broker_of(self.feed)
        if name is None:
            raise ValueError(f"which broker does {self.feed!r} speak? Paper(feed, broker='kite')")
        if name not in brokers():
            raise ValueError(f"unknown broker {name!r}: paper trading knows {', '.join(brokers())}")
        spoken = _broker_of(self.feed)
        if spoken is not None and spoken != name:
            raise ValueError(f"the feed speaks {spoken}'s protocol, not {name}'s")
        if name != self.config.broker or self.config.instruments is not self._instruments:
            # checks the instruments against the broker now known
            self.config = attrs.evolve(self.config, broker=name, instruments=self._instruments)
        self._broker_name = name
        batches = self.feed.batches()  # ClientClosedError for a feed not entered
        stack = contextlib.AsyncExitStack()
        try:
            sandbox = await stack.enter_async_context(Sandbox(self.config))
            state = sandbox.state
            state.market.follow_quotes()
            state.book.holdings.clear()  # a paper account starts with cash only
            self._dialect = dialect = state.dialect
            self._codec = get_codec(dialect.name)
            client = dialect.client(sandbox, **self._client_options)
            await stack.enter_async_context(client)
            stack.enter_context(state.order_listener(self._on_update))
            self._channel.open()
            stack.callback(self._channel.dispose)  # after the tasks ended
            group = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(group.cancel_scope.cancel)
            # each task's send clone is taken now: the channel may close before they run
            feed_send, updates_send = self._channel.sender(), self._channel.sender()
            stack.callback(feed_send.close)
            stack.callback(updates_send.close)
            group.start_soon(
                self._scoped, self._follow, batches, state, feed_send, name="paper: the feed"
            )
            group.start_soon(self._scoped, self._forward, updates_send, name="paper: order updates")
            self._sandbox, self._client = sandbox, client
        except BaseException:
            self._sandbox = self._client = None
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """:meth:`aclose`, then end the tasks and stop the sandbox."""
        self._exited = True
        await self.aclose()
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                # The task group is cancelled and left as if the body had ended normally:
                # an exception of the body comes out as itself, not in an ExceptionGroup.
                # (Each part closes under cancellation too: the sandbox shields its stop.)
                await stack.aclose()
        finally:
            self._sandbox = None

    async def aclose(self) -> None:
        """Stop reading the feed (``async for`` ends) and close the client
        (``paper.broker`` raises ``ClientClosedError`` from now on); the sandbox stops when
        the ``async with`` block is left. The feed stays open: it is the caller's.
        Idempotent. Cancellation: everything is closed anyway, then it propagates."""
        self._closed = True
        self._channel.close()
        for scope in self._scopes:
            scope.cancel()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        else:
            await anyio.lowlevel.checkpoint()

    # -- subscriptions (the feed's) -------------------------------------------------------

    async def subscribe(self, keys: Iterable[Any], mode: str | None = None) -> None:
        """Subscribe ``keys`` on the feed, in ``mode`` (the feed's default: None). A key is
        the feed's (Kite: instrument token; Dhan: ``(exchange_segment, security_id)``) or
        a symbol ``"EXCHANGE:TRADINGSYMBOL"`` (Kite's exchange names, for Dhan too).

        ``ValueError`` naming the instruments the paper sandbox does not know (they could
        never fill), before anything is sent; ``ClientClosedError`` outside the ``async
        with``. Cancellation: as the feed's ``subscribe``."""
        await self.feed.subscribe(self._feed_keys(keys), mode)

    async def unsubscribe(self, keys: Iterable[Any]) -> None:
        """Unsubscribe ``keys`` (as for :meth:`subscribe`) on the feed."""
        await self.feed.unsubscribe(self._feed_keys(keys))

    async def set_mode(self, mode: str, keys: Iterable[Any]) -> None:
        """Change the mode of subscribed ``keys`` (as for :meth:`subscribe`) on the feed."""
        await self.feed.set_mode(mode, self._feed_keys(keys))

    def _feed_keys(self, keys: Iterable[Any]) -> list[Any]:
        """``keys`` as the feed's keys; ``ValueError`` naming those the sandbox lacks."""
        if self._closed:
            raise ClientClosedError("this Paper was closed: subscribe inside its async with")
        if self._sandbox is None or self._dialect is None or self._codec is None:
            raise ClientClosedError(
                "enter the paper account first: async with Paper(feed) as paper"
            )
        if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
            raise TypeError(f"keys must be an iterable of instruments, got {keys!r}")
        market, dialect = self._sandbox.state.market, self._dialect
        wanted, unknown = [], []
        for key in keys:
            if isinstance(key, str) and ":" in key:
                exchange, _, symbol = key.partition(":")
                instrument = market.by_symbol(exchange, symbol)
                if instrument is None:
                    unknown.append(key)
                else:
                    wanted.append(dialect.feed_key(instrument))
                continue
            (checked,) = self._codec.check_keys([key])
            token = dialect.market_token(checked)
            if token is None or token not in market.instruments:
                unknown.append(key)
            else:
                wanted.append(checked)
        if unknown:
            raise ValueError(
                f"paper trading does not know {', '.join(map(repr, unknown))}: the paper "
                f"sandbox trades the instruments of its {dialect.name} list only (a real "
                "account's: Paper(feed, instruments=await client.instrument_index()))"
            )
        return wanted

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Any]:
        """The feed's items and the paper orders' updates; ``ClientClosedError`` before
        ``async with`` and after it (once closed inside it, the iteration ends)."""
        self._check_entered()
        return self

    def _check_entered(self) -> None:
        if self._exited:
            raise ClientClosedError("this Paper was closed: read it inside its async with")
        if self._stack is None and not self._closed:
            raise ClientClosedError(
                "enter the paper account first: async with Paper(feed) as paper"
            )

    async def __anext__(self) -> Any:
        """The next item, in arrival order; every call is a checkpoint.

        Ends (``StopAsyncIteration``) when the feed ends or ``paper`` is closed; raises
        the feed's error, as itself, when the feed failed. Cancellation: raises the
        backend's cancellation; nothing is lost (the next call gets the item)."""
        self._check_entered()
        item = await self._channel.get()
        if type(item) is EndOfFeed:
            raise item.end(self._channel)
        return item

    def batches(self, max_items: int = 1000) -> AsyncIterator[list[Any]]:
        """The same items in lists: waits for one, then takes those already waiting (up to
        ``max_items``), one checkpoint per list. Ends, raises and cancels as ``async for``.
        ``ValueError`` for ``max_items`` below 1."""
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"max_items must be an int >= 1, got {max_items!r}")
        self.__aiter__()
        return _Batches(self, Batches(self._channel, max_items))

    def statistics(self) -> FeedStatistics:
        """The feed's statistics (frames, ticks, reconnects, subscribed...), with
        ``paper``'s own: ``order_updates`` the paper orders' updates (the live account's
        are left out), ``buffered`` the items waiting in ``paper`` (at most its
        ``buffer_size``), ``dropped`` the items dropped by the feed's overflow policy and by
        ``paper``'s."""
        base = self.feed.statistics()
        return attrs.evolve(
            base,
            order_updates=self._order_updates,
            buffered=len(self._channel),
            dropped=base.dropped + self._channel.dropped,
        )

    # -- the tasks ---------------------------------------------------------------------------

    async def _scoped(self, task: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``task(*args)`` in a cancel scope of its own (``aclose`` cancels it)."""
        scope = anyio.CancelScope()
        self._scopes.append(scope)
        if self._closed:
            scope.cancel()
        with scope:
            await task(*args)

    async def _follow(
        self, batches: AsyncIterator[list[Any]], state: SandboxState, send: Sender
    ) -> None:
        """Read the feed: put each item (not the real account's order updates); each tick
        then sets its instrument's quote, and the updates of the fills it caused go right
        after it; end ``paper`` when the feed ends."""
        channel, codec = self._channel, self._codec
        assert codec is not None, "entered"
        closed = (anyio.ClosedResourceError, anyio.BrokenResourceError)
        error: BaseException | None = None
        with send:
            try:
                async for batch in batches:
                    for item in batch:
                        key = codec.key_of(item)
                        if key is not None:
                            await channel.put_items(send, (item,))
                            self._quote(state, key, item)
                            if self._handed < self._published:  # its fills' updates next
                                await self._caught_up()
                        elif not codec.is_order_update(item):
                            await channel.put_record(send, item)
            except closed:
                return  # paper was closed: nobody reads any more
            except Exception as exc:  # noqa: BLE001 - the feed's error: handed to the reader
                error = exc
            # the order updates made so far go first: the updates' task puts the end
            self._end = EndOfFeed(error)
            self._wake.set()

    def _quote(self, state: SandboxState, key: Any, tick: Any) -> None:
        """Set the quote of ``key``'s instrument from ``tick`` (and fill what it crossed)."""
        assert self._dialect is not None, "entered"
        token = self._dialect.market_token(key)
        if token is None or token not in state.market.instruments:
            if key not in self._unknown:
                self._unknown.add(key)
                log.warning("paper: %r is not in the paper sandbox's instruments: not traded", key)
            return
        fields: dict[str, Any] = {}
        for attribute, name in _QUOTE_FIELDS:
            value = getattr(tick, attribute, None)
            if value is not None:
                fields[name] = value
        ohlc = getattr(tick, "ohlc", None)
        if ohlc is not None:
            fields.update(open=ohlc.open, high=ohlc.high, low=ohlc.low, close=ohlc.close)
        depth = getattr(tick, "depth", None)
        if depth is not None:
            fields["depth"] = tuple(
                tuple(BookLevel(level.price, level.quantity, level.orders) for level in side)
                for side in (depth.buy, depth.sell)
            )
        if fields:
            state.set_quote(token, **fields)

    def _on_update(self, message: Any) -> None:
        """The sandbox published an order update (called as it happens, in order)."""
        self._pending.append(message)
        self._published += 1
        self._wake.set()

    async def _caught_up(self) -> None:
        """Wait until every order update published so far was handed to ``paper``."""
        while self._handed < self._published:
            self._all_handed = anyio.Event()
            await self._all_handed.wait()

    async def _forward(self, send: Sender) -> None:
        """Hand each paper order update to ``paper``, decoded from the text frame the
        broker's order-update socket would send, by the broker's own codec; once the feed
        ended, the end, after the updates made before it."""
        channel, codec, dialect = self._channel, self._codec, self._dialect
        assert codec is not None, "entered"
        assert dialect is not None, "entered"
        closed = (anyio.ClosedResourceError, anyio.BrokenResourceError)
        with send, contextlib.suppress(*closed):
            while True:
                self._wake = anyio.Event()  # before looking: a message from now on sets it
                while self._pending:
                    message = self._pending.popleft()
                    record = codec.decode_text(dialect.order_update_text(message), _malformed)
                    if record is not None:
                        self._order_updates += 1
                        await channel.put_record(send, record)
                    self._handed += 1
                    if self._handed == self._published:
                        self._all_handed.set()
                if self._end is not None:  # after every item: ends ``async for`` when read
                    await channel.put_record(send, self._end)
                    return
                await self._wake.wait()


def _malformed(problem: object) -> None:
    log.error("paper: an order update the broker's codec could not read: %s", problem)


def _broker_of(feed: object) -> str | None:
    """The broker a feeder speaks: the codec it names (a replay, a gateway consumer, a
    raw feed), else its package (``aio_trader.kite`` -> ``"kite"``); None: not known."""
    codec = getattr(feed, "codec", None)
    if isinstance(codec, str):
        return codec
    name = getattr(codec, "name", None)
    if isinstance(name, str):
        return name
    parts = type(feed).__module__.split(".")
    if len(parts) >= 2 and parts[0] == "aio_trader" and parts[1] in brokers():
        return parts[1]
    return None


class _Batches:
    """:meth:`Paper.batches`' iterator: the channel's lists, ended by the feed's end."""

    __slots__ = ("_batches", "_paper")

    def __init__(self, paper: Paper, batches: Batches[Any]) -> None:
        self._paper, self._batches = paper, batches

    def __aiter__(self) -> _Batches:
        return self

    async def __anext__(self) -> list[Any]:
        batch = await self._batches.__anext__()
        end = batch[-1]
        if type(end) is EndOfFeed:  # the last item: nothing comes after it
            del batch[-1]
            stop = end.end(self._paper._channel)  # the next call ends (this one, if empty)
            if not batch:
                raise stop
        return batch
