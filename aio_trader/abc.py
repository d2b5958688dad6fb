"""What every broker package provides: ``AbstractBroker`` (REST) and ``AbstractFeeder`` (feed).

A broker package (``aio_trader.kite``, later others) subclasses these, so user code
can rely on the same shape whatever the broker:

- both are ``anyio.abc.AsyncResource``\\ s: async context managers whose exit awaits
  ``aclose()``; entering opens what they own, leaving closes it and cancels whatever
  still runs; nothing outlives the ``async with``. ``close()`` is kept as an alias of
  ``aclose()`` (the seed's name);
- ``AbstractBroker.authorise()`` logs in (or checks a given session);
  ``authorize()`` (the seed's spelling) is the same method;
- ``AbstractFeeder`` subscribes instruments in a mode, and yields what the feed
  sends (records, never dicts) through ``async for``.

Both implement ``aclose()``; ``close()`` is the alias the seed's callers use.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Iterable
from typing import Generic, TypeVar

from anyio.abc import AsyncResource

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

    Subscriptions (with their modes) are remembered and survive reconnects.
    ``mode=None`` means the feeder's default mode.
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

    @abstractmethod
    def statistics(self) -> object:
        """A frozen snapshot of counters (frames, items, drops, reconnects, ...)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stop the feed and end the iteration; release what it owns. Idempotent.

        Cancellation: resources are released anyway, then the cancellation propagates.
        """

    async def close(self) -> None:
        """Alias of :meth:`aclose` (the seed's name)."""
        await self.aclose()
