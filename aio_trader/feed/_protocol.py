"""What a broker's streaming protocol tells the feed engine (:class:`FeedProtocol`).

The engine (:class:`~aio_trader.feed.FeedEngine`) owns the connections' life: connect,
log in, replay the subscriptions with their modes, read, watch the heartbeat, reconnect with
jittered backoff, shard instruments over connections. A broker package says how its wire
looks by subclassing :class:`FeedProtocol`:

- **where and who**: :meth:`~FeedProtocol.handshake` returns the URL, the query parameters
  and the headers of one connection; it is awaited before *every* (re)connect, so that
  credentials renewed meanwhile (a new access token at the daily expiry) are the ones sent.
  The parameters and headers carry secrets: they are added below httpx's client, never
  logged. :meth:`~FeedProtocol.secrets` lists what to redact from error texts;
- **log in**: :meth:`~FeedProtocol.login` messages sent right after connecting (Dhan's
  order-update socket sends one; Kite sends none);
- **subscriptions**: :meth:`~FeedProtocol.subscribe`, :meth:`~FeedProtocol.unsubscribe` and
  :meth:`~FeedProtocol.set_mode` messages for at most ``max_per_message`` instruments each
  (the engine splits longer lists); keys are any hashable (Kite: ``int`` tokens; Dhan:
  ``(segment, security_id)``), checked by :meth:`~FeedProtocol.check_keys`, modes by
  :meth:`~FeedProtocol.check_mode` (``modes`` lists them, poorest first);
- **heartbeat**: ``"frames"`` (the server sends small data frames, shorter than
  ``heartbeat_size`` bytes, when idle: Kite's 1-byte frame; the engine's watchdog drops a
  connection that receives nothing for ``watchdog`` seconds) or ``"ping"`` (WebSocket
  ping/pong: the engine pings every ``ping_interval`` seconds and drops a connection whose
  pong does not come within ``watchdog`` seconds);
- **fatal refusals**: :meth:`~FeedProtocol.refusal` maps a handshake status to the error
  that stops the feed (Kite: 403 means the session expired), ``None`` to retry. A refusal
  inside the stream (Dhan's disconnect packet with its reason code) is raised by the
  feed's frame handler: an :class:`~aio_trader.errors.AioTraderError` stops the feed with
  it, as a fatal handshake does; a :class:`~aio_trader.errors.ConnectionLost` (a reason
  that heals, e.g. Dhan's 805 "too many connections") ends only that connection, which
  reconnects with backoff;
- **sharding**: ``max_instruments`` per connection, ``max_connections`` per key;
- **more sockets**: ``side_sockets`` names further connections merged into the one stream
  that carry no instruments (Dhan's order updates come on a second WebSocket with a login
  message); :meth:`~FeedProtocol.handshake` and :meth:`~FeedProtocol.login` receive the
  socket's name (``None`` for the instrument connections). Side sockets are numbered from
  1000 in ``FeedConnected``/``FeedDisconnected`` and in raw frames.

Decoding is the feed's (``KiteFeed`` decodes, ``RawKiteFeed`` passes frames on): see
:class:`~aio_trader.feed.FeedEngine`'s ``_on_binary`` / ``_on_text``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import ClassVar, Generic, Literal, TypeAlias, TypeVar

import attrs

from aio_trader.errors import AioTraderError

__all__ = ["FeedProtocol", "Handshake", "Message"]

KeyT = TypeVar("KeyT", bound=Hashable)

#: One message to the server: ``str`` goes as a text frame, ``bytes`` as a binary frame.
Message: TypeAlias = str | bytes


@attrs.frozen
class Handshake:
    """Where one connection goes: ``url`` (``ws://`` or ``wss://``), the query ``params``
    added to it and the ``headers`` sent (both may carry secrets: never logged)."""

    url: str
    params: Mapping[str, str] = attrs.field(factory=dict)
    headers: Mapping[str, str] = attrs.field(factory=dict)


class FeedProtocol(Generic[KeyT]):
    """A broker's streaming protocol, as the feed engine needs it (see the module doc).

    Subclasses set the class attributes and implement the methods that raise
    ``NotImplementedError``.
    """

    #: A short name for task names and logs (``"kite"``).
    name: ClassVar[str] = "feed"
    #: The modes, poorest first (a tick in an earlier mode than asked is "poorer").
    modes: ClassVar[Sequence[str]] = ()
    #: Instruments per connection, connections per key, instruments per message.
    max_instruments: int = 1000
    max_connections: int = 1
    max_per_message: int | None = None
    #: ``"frames"``: idle data frames shorter than ``heartbeat_size`` bytes; ``"ping"``:
    #: WebSocket ping/pong every ``ping_interval`` seconds.
    heartbeat: ClassVar[Literal["frames", "ping"]] = "frames"
    heartbeat_size: ClassVar[int] = 0
    ping_interval: ClassVar[float] = 10.0
    #: Further sockets without instruments, merged into the one stream.
    side_sockets: ClassVar[Sequence[str]] = ()

    def check_keys(self, keys: object) -> list[KeyT]:
        """``keys`` as a list without duplicates; ``TypeError`` / ``ValueError`` for bad
        ones (before any change or I/O)."""
        raise NotImplementedError

    def check_mode(self, mode: object) -> str:
        """``mode`` as the protocol's mode (one of ``modes``); ``ValueError`` otherwise."""
        if mode not in self.modes:
            raise ValueError(f"mode must be one of {', '.join(self.modes)}, got {mode!r}")
        return str(mode)

    def rank(self, mode: str) -> int:
        """A mode's richness: its index in ``modes``."""
        return self.modes.index(mode)

    async def handshake(self, socket: str | None) -> Handshake:
        """Where to connect now (read on every (re)connect: renewed credentials apply)."""
        raise NotImplementedError

    def secrets(self) -> Iterable[str]:
        """Every secret the handshakes carry (or carried): redacted from error texts."""
        return ()

    def login(self, socket: str | None) -> list[Message]:
        """Messages to send right after connecting, before any subscription (none)."""
        return []

    def subscribe(self, mode: str, keys: list[KeyT]) -> list[Message]:
        """Messages that subscribe ``keys`` (at most ``max_per_message``) in ``mode``."""
        raise NotImplementedError

    def unsubscribe(self, mode: str, keys: list[KeyT]) -> list[Message]:
        """Messages that unsubscribe ``keys`` (at most ``max_per_message``), subscribed in
        ``mode`` (Dhan's unsubscribe request code depends on it; Kite's does not)."""
        raise NotImplementedError

    def set_mode(self, mode: str, keys: list[KeyT], previous: str) -> list[Message]:
        """Messages that switch ``keys`` (at most ``max_per_message``) from ``previous`` to
        ``mode``. The default subscribes them in ``mode`` (for a protocol without a mode
        message; Kite sends one)."""
        return self.subscribe(mode, keys)

    def refusal(self, status: int) -> AioTraderError | None:
        """The error that stops the feed when the handshake is answered ``status``, or
        ``None`` to retry (the default: every status is retried)."""
        return None

    def describe(self) -> str:
        """Who the feed is, for its ``repr`` (never a secret)."""
        return ""
