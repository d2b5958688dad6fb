"""What every broker package provides: ``AbstractBroker`` (REST) and ``AbstractFeeder`` (feed).

A broker package (``aio_trader.kite``, later others) subclasses these, so user code
can rely on the same shape whatever the broker:

- both are async context managers: entering opens what they own, leaving calls
  ``close()`` and cancels whatever still runs; nothing outlives the ``async with``;
- ``AbstractBroker.authorise()`` logs in (or checks a given session);
- ``AbstractFeeder`` subscribes instruments in a mode, and yields what the feed
  sends (records, never dicts) through ``async for``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["AbstractBroker", "AbstractFeeder"]

#: What identifies an instrument on the feed (Kite: the integer instrument token).
KeyT = TypeVar("KeyT")
#: What the feed yields (Kite: tick and order-update records).
ItemT = TypeVar("ItemT", covariant=True)


class _AsyncResource(ABC):
    """An async context manager whose exit awaits ``close()``."""

    async def __aenter__(self) -> Self:
        """Open what the object owns; the default does nothing. Returns ``self``."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abstractmethod
    async def close(self) -> None:
        """Release everything the object owns and cancel what it runs. Idempotent.

        Cancellation: resources are released anyway (closing is shielded or
        synchronous), then the cancellation propagates.
        """


class AbstractBroker(_AsyncResource):
    """A broker's REST client: an async context manager that logs in and calls the API."""

    @abstractmethod
    async def authorise(self) -> object:
        """Log in with the credentials the client was built with; return the session.

        What the session is, and which extra keyword arguments are accepted, is
        broker specific. Raises the broker's error (a ``KiteError`` subclass for Kite,
        e.g. ``TokenException``) when the credentials are refused.

        Cancellation: propagates; the client is left logged out or logged in, never
        half-way (the session is stored only once complete).
        """


class AbstractFeeder(_AsyncResource, Generic[KeyT, ItemT]):
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
