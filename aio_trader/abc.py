"""What every broker package provides: ``AbstractBroker`` (REST) and ``AbstractFeeder`` (feed).

A broker package (``aio_trader.kite``, later others) subclasses these, so user code
can rely on the same shape whatever the broker:

- both are ``anyio.abc.AsyncResource``\\ s: async context managers whose exit awaits
  ``aclose()``; entering opens what they own, leaving closes it and cancels whatever
  still runs; nothing outlives the ``async with``. ``close()`` is kept as an alias of
  ``aclose()`` (the seed's name);
- ``AbstractBroker.authorise()`` logs in (or checks a given session);
  ``authorize()`` (the seed's spelling) is the same method;
- ``AbstractBroker`` has the neutral trading operations (``last_prices``, ``submit``,
  ``modify``, ``cancel``, ``follow``, ``order_book``, ``net_positions``, ``portfolio``,
  ``funds``) on the records and enums of :mod:`aio_trader.trading`: one strategy runs on
  every broker (each maps them to its own; a broker without them raises
  ``NotImplementedError``);
- ``AbstractFeeder`` subscribes instruments (``keys``: any hashable, the broker's
  instrument identity) in a mode, and yields what the feed sends (records, never dicts)
  through ``async for``, or in lists through ``batches()``; ``statistics()`` returns the one
  :class:`~aio_trader.feed.FeedStatistics` record. ``tests/test_feeder_contract.py`` runs
  one contract suite over every feeder.

Both implement ``aclose()``; ``close()`` is the alias the seed's callers use.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from anyio.abc import AsyncResource

from aio_trader.feed._channel import FeedStatistics

if TYPE_CHECKING:
    from aio_trader._trading import Funds, Holding, Order, OrderRequest, OrderType, Position

    class _Mapping(Protocol):
        """What a broker's neutral mapping module (``kite/_trading.py``) provides."""

        async def last_prices(self, client: Any, symbols: Iterable[str]) -> dict[str, float]: ...
        async def submit(self, client: Any, request: OrderRequest) -> str: ...
        async def modify(
            self,
            client: Any,
            order_id: str,
            quantity: int | None,
            price: float | None,
            trigger_price: float | None,
            order_type: OrderType | str | None,
        ) -> str: ...
        async def cancel(self, client: Any, order_id: str) -> str: ...
        async def follow(
            self,
            client: Any,
            order_id: str,
            feed: AsyncIterable[object] | None,
            timeout: float | None,  # noqa: ASYNC109
        ) -> Order: ...
        async def order_book(self, client: Any) -> list[Order]: ...
        async def net_positions(self, client: Any) -> list[Position]: ...
        async def portfolio(self, client: Any) -> list[Holding]: ...
        async def funds(self, client: Any) -> Funds: ...


__all__ = ["AbstractBroker", "AbstractFeeder"]

#: What identifies an instrument on the feed (Kite: the integer instrument token).
KeyT = TypeVar("KeyT")
#: What the feed yields (Kite: tick and order-update records).
ItemT = TypeVar("ItemT", covariant=True)

_NO_NEUTRAL = "{} does not offer the neutral trading operations (aio_trader.trading)"


class AbstractBroker(AsyncResource):
    """A broker's REST client: an async context manager that logs in and calls the API."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release everything the object owns and cancel what it runs. Idempotent.

        Cancellation: resources are released anyway (closing is shielded or
        synchronous), then the cancellation propagates.
        """

    async def close(self) -> None:
        """Alias of :meth:`aclose` (the seed's name)."""
        await self.aclose()

    @abstractmethod
    async def authorise(self) -> object:
        """Log in with the credentials the client was built with; return the session.

        What the session is, and which extra keyword arguments are accepted, is
        broker specific. Raises the broker's refusal (a ``BrokerError``: for refused
        credentials a ``SessionExpired``, e.g. Kite's ``TokenException``).

        Cancellation: propagates; the client is left logged out or logged in, never
        half-way (the session is stored only once complete).
        """

    async def authorize(self) -> object:
        """:meth:`authorise` under the seed's spelling."""
        return await self.authorise()

    # -- neutral operations: one strategy, any broker (aio_trader.trading) -------------------
    # Written once here: each calls the function of the same name in the broker's mapping
    # module (``_neutral``: kite/_trading.py, dhan/_trading.py), which maps the neutral
    # enums and records to the broker's own methods and back. A broker without a mapping
    # raises NotImplementedError. Symbols are "EXCHANGE:TRADINGSYMBOL" with Kite's
    # exchange names for every broker.

    #: The broker's mapping module (functions ``last_prices(client, symbols)``, ...).
    _neutral: ClassVar[_Mapping | None] = None

    def _mapping(self) -> _Mapping:
        if self._neutral is None:
            raise NotImplementedError(_NO_NEUTRAL.format(type(self).__name__))
        return self._neutral

    async def last_prices(self, symbols: Iterable[str]) -> dict[str, float]:
        """The last traded price of each symbol: ``{"NSE:INFY": 1540.5, ...}``.

        A malformed symbol raises :class:`~aio_trader.errors.UnknownInstrument` (an
        ``InvalidInput``) naming it before any request; so does a symbol the broker does
        not know or gives no price for (never a silent omission).
        Cancellation: abandoned (only reads).
        """
        return await self._mapping().last_prices(self, symbols)

    async def submit(self, request: OrderRequest) -> str:
        """Place the order ``request`` describes; returns its order id.

        Never placed twice: the request's ``tag`` goes with the order, and after an
        ambiguous failure the broker's order book is searched for it (the broker's own
        ``place_order`` rule). Cancellation: propagates; the order may or may not have
        been placed, and ``request.tag`` settles it (look for it in :meth:`order_book`).
        Raises the broker's refusals (``OrderRejected``, ``InvalidInput``...); a symbol
        the broker does not list raises ``UnknownInstrument`` (Dhan: before anything is
        sent; Kite refuses the order itself).
        """
        return await self._mapping().submit(self, request)

    async def modify(
        self,
        order_id: str,
        *,
        quantity: int | None = None,
        price: float | None = None,
        trigger_price: float | None = None,
        order_type: OrderType | str | None = None,
    ) -> str:
        """Change an open order (placed by :meth:`submit`: the regular kind); returns its
        id. At least one change is needed; values are checked before any request.
        Never sent twice (the broker's ``modify_order`` rule). Cancellation: the change
        may or may not apply (see :meth:`order_book`)."""
        return await self._mapping().modify(
            self, order_id, quantity, price, trigger_price, order_type
        )

    async def cancel(self, order_id: str) -> str:
        """Cancel an open order (placed by :meth:`submit`); returns its id. Never sent
        twice. Cancellation: the order may or may not be cancelled."""
        return await self._mapping().cancel(self, order_id)

    async def follow(
        self,
        order_id: str,
        feed: AsyncIterable[object] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline, as wait_for_order's)
    ) -> Order:
        """The order once its status is final (:attr:`OrderStatus.is_final`): the
        broker's ``wait_for_order``, by polling or, with the broker's open ``feed``,
        from its order updates (the feed's items read meanwhile are consumed).
        ``timeout`` (seconds) raises ``TimeoutError``. Cancellation: propagates, nothing
        changes (only reads)."""
        return await self._mapping().follow(self, order_id, feed, timeout)

    async def order_book(self) -> list[Order]:
        """Today's orders, latest state each. Cancellation: abandoned."""
        return await self._mapping().order_book(self)

    async def net_positions(self) -> list[Position]:
        """The day's net positions (flat ones included). Cancellation: abandoned."""
        return await self._mapping().net_positions(self)

    async def portfolio(self) -> list[Holding]:
        """The demat holdings. Cancellation: abandoned."""
        return await self._mapping().portfolio(self)

    async def funds(self) -> Funds:
        """The funds available for trading. Cancellation: abandoned."""
        return await self._mapping().funds(self)


class AbstractFeeder(AsyncResource, Generic[KeyT, ItemT]):
    """A broker's streaming feed: subscribe instruments, then ``async for item in feed``.

    The contract every feeder keeps (checked by ``tests/test_feeder_contract.py``): items
    come in arrival order (an order update after two ticks comes after them); every receive
    is a checkpoint (a busy ``async for`` body never starves the feed, a cancel scope around
    it ends it on time); a cancelled wait loses nothing; the overflow policies of
    :class:`~aio_trader.feed.Overflow`; reading before ``async with`` and reading or
    subscribing after it raise :class:`~aio_trader.errors.ClientClosedError`; an error in
    the ``async with`` body comes out as itself.

    Subscriptions (with their modes) are remembered and survive reconnects.
    ``mode=None`` means the feeder's default mode. ``keys`` identify instruments (Kite: the
    integer instrument token; any hashable).
    """

    @abstractmethod
    async def subscribe(self, keys: Iterable[KeyT], mode: str | None = None) -> None:
        """Subscribe ``keys`` in ``mode``. Cancellation: the subscription may or may
        not have been sent; it is remembered either way and replayed on reconnect."""

    @abstractmethod
    async def unsubscribe(self, keys: Iterable[KeyT]) -> None:
        """Stop receiving ``keys``. Cancellation: as for ``subscribe``."""

    @abstractmethod
    async def set_mode(self, mode: str, keys: Iterable[KeyT]) -> None:
        """Change the mode of already subscribed ``keys``. Cancellation: as for ``subscribe``."""

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[ItemT]:
        """Iterate what the feed yields, until it closes.

        Cancellation of a wait for the next item loses nothing: the item stays queued.
        """

    def batches(self, max_items: int = 1000) -> AsyncIterator[list[ItemT]]:
        """The same stream in lists: each step waits for one item (a checkpoint), then
        takes those already waiting, up to ``max_items``. Same order, policies and
        cancellation as ``async for``.

        This default yields lists of one item (correct, not faster); a feeder built on
        :func:`~aio_trader.feed.make_channel` returns the channel's batches.
        """
        return _one_by_one(self.__aiter__())

    @abstractmethod
    def statistics(self) -> FeedStatistics:
        """A frozen snapshot of counters (frames, items, drops, reconnects, ...)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stop the feed and end the iteration; release what it owns. Idempotent.

        Cancellation: resources are released anyway, then the cancellation propagates.
        """

    async def close(self) -> None:
        """Alias of :meth:`aclose` (the seed's name)."""
        await self.aclose()


async def _one_by_one(items: AsyncIterator[ItemT]) -> AsyncIterator[list[ItemT]]:
    async for item in items:
        yield [item]
