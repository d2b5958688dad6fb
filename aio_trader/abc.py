"""What every broker package provides: ``AbstractBroker`` (REST) and ``AbstractFeeder`` (feed).

A broker package (``aio_trader.kite``, later others) subclasses these, so user code
can rely on the same shape whatever the broker:

- both are ``anyio.abc.AsyncResource``\\ s: async context managers whose exit awaits
  ``aclose()``; entering opens what they own, leaving closes it and cancels whatever
  still runs; nothing outlives the ``async with``. ``close()`` is kept as an alias of
  ``aclose()`` (the seed's name);
- ``AbstractBroker.authorise()`` logs in (or checks a given session);
  ``authorize()`` (the seed's spelling) is the same method;
- ``AbstractFeeder`` subscribes instruments (``keys``: any hashable, the broker's
  instrument identity) in a mode, and yields what the feed sends (records, never dicts)
  through ``async for``, or in lists through ``batches()``; ``statistics()`` returns the one
  :class:`~aio_trader.feed.FeedStatistics` record. ``tests/test_feeder_contract.py`` runs
  one contract suite over every feeder.

Both implement ``aclose()``; ``close()`` is the alias the seed's callers use.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Iterable
from typing import Generic, TypeVar

from anyio.abc import AsyncResource

from aio_trader.feed._channel import FeedStatistics

__all__ = ["AbstractBroker", "AbstractFeeder"]

#: What identifies an instrument on the feed (Kite: the integer instrument token).
KeyT = TypeVar("KeyT")
#: What the feed yields (Kite: tick and order-update records).
ItemT = TypeVar("ItemT", covariant=True)


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
