"""Dhan's feed protocols for the feed engine: the market feed with its order-update side
socket (:class:`DhanProtocol`) and the 20-level depth feed (:class:`DepthProtocol`).

**Market feed** (``wss://api-feed.dhan.co``): the credentials go in the query string
(``version=2&token=..&clientId=..&authType=2``), read on every (re)connect. Requests are
JSON text ``{"RequestCode": 15, "InstrumentCount": n, "InstrumentList":
[{"ExchangeSegment": "NSE_EQ", "SecurityId": "1333"}, ...]}``: the request code says the
mode (subscribe 15 ticker, 17 quote, 21 full; unsubscribe 16, 18, 22), at most 100
instruments a message, 5000 a connection, 5 connections. A mode is switched by
unsubscribing from the old one and subscribing in the new one. The heartbeat is WebSocket
ping/pong (Dhan pings every 10 s; the engine pings too and drops a connection whose pong
does not come). Dhan refuses a session inside the stream, with a disconnect packet (code
50) and a reason code: see :func:`disconnect_error`.

**Order updates** (``wss://api-order-update.dhan.co``): a side socket without
instruments; after connecting the client sends ``{"LoginReq": {"MsgCode": 42, "ClientId":
.., "Token": ..}, "UserType": "SELF"}``; order alerts come as JSON text.

**20-level depth** (``wss://depth-api-feed.dhan.co/twentydepth``): the market feed's
query string, subscribe request code 23 (unsubscribe 25), NSE_EQ and NSE_FNO only, 50
instruments a connection.

Keys are ``(exchange_segment, security_id)``: the segment by Dhan's name (``"NSE_EQ"``)
or an :class:`~aio_trader.dhan.constants.ExchangeSegment`, the security id as an ``int``
or a ``str`` of digits; both are normalised to ``(str, int)``, the key records carry
(:attr:`~aio_trader.dhan.ticks.TickerTick.key`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import ClassVar, Final, Literal

from aio_trader.dhan.constants import (
    DEPTH20_MAX_INSTRUMENTS,
    FEED_MAX_CONNECTIONS,
    FEED_MAX_INSTRUMENTS,
    FEED_MAX_INSTRUMENTS_PER_MESSAGE,
    DisconnectReason,
    ExchangeSegment,
    FeedMode,
    FeedRequestCode,
)
from aio_trader.errors import (
    AioTraderError,
    ConnectionLost,
    FeedClosedError,
    PermissionDenied,
    SessionExpired,
)
from aio_trader.feed._engine import check_url, resolve
from aio_trader.feed._protocol import FeedProtocol, Handshake, Message

__all__ = [
    "DEPTH_ROOT",
    "FEED_ROOT",
    "ORDER_ROOT",
    "Credential",
    "DepthProtocol",
    "DhanProtocol",
    "InstrumentKey",
    "check_instruments",
    "disconnect_error",
]

#: Dhan's market feed, order-update socket and 20-level depth feed.
FEED_ROOT: Final = "wss://api-feed.dhan.co"
ORDER_ROOT: Final = "wss://api-order-update.dhan.co"
DEPTH_ROOT: Final = "wss://depth-api-feed.dhan.co/twentydepth"

#: The side socket of order updates (connection 1000 in connection events).
ORDER_SOCKET: Final = "order-updates"

#: A secret as given: the string, or a provider (sync or async) called on every connect.
Credential = str | Callable[[], str | Awaitable[str]]
#: An instrument as the feed keys it: ``(exchange_segment, security_id)``.
InstrumentKey = tuple[str, int]

_SEGMENTS: Final = frozenset(member.value for member in ExchangeSegment)
_DEPTH_SEGMENTS: Final = frozenset({ExchangeSegment.NSE_EQ.value, ExchangeSegment.NSE_FNO.value})
_U32: Final = 0xFFFFFFFF


def _key(value: object) -> InstrumentKey:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise TypeError(
            "an instrument is an (exchange_segment, security_id) pair, e.g. "
            f'("NSE_EQ", 1333); got {value!r}'
        )
    segment, security_id = value
    if isinstance(segment, ExchangeSegment):
        name = segment.value
    elif isinstance(segment, str):
        name = segment.strip().upper()
    else:
        raise TypeError(f"an exchange segment is a str or an ExchangeSegment, got {segment!r}")
    if name not in _SEGMENTS:
        raise ValueError(
            f"unknown exchange segment {segment!r}: one of {', '.join(sorted(_SEGMENTS))}"
        )
    if isinstance(security_id, bool) or not isinstance(security_id, int | str):
        raise TypeError(f"a security id is an int or a str of digits, got {security_id!r}")
    if isinstance(security_id, str):
        text = security_id.strip()
        if not text.isascii() or not text.isdigit():
            raise ValueError(f"a security id is a str of digits, got {security_id!r}")
        security_id = int(text)
    if not 0 < security_id <= _U32:
        raise ValueError(f"a security id is a positive 32-bit int, got {security_id!r}")
    return (name, security_id)


def check_instruments(keys: object) -> list[InstrumentKey]:
    """``keys`` (an iterable of ``(exchange_segment, security_id)`` pairs) normalised to
    ``(str, int)`` pairs, without duplicates, in order. ``TypeError`` for anything that is
    no iterable of pairs (a single pair included), ``ValueError`` for an unknown segment or
    a security id that is not a positive 32-bit number."""
    if isinstance(keys, str | bytes) or not isinstance(keys, Iterable):
        raise TypeError(
            "instruments must be an iterable of (exchange_segment, security_id) pairs, "
            f"got {type(keys).__name__}"
        )
    items = list(keys)
    if len(items) == 2 and isinstance(items[0], str | ExchangeSegment):
        raise TypeError(
            f"instruments must be an iterable of pairs: wrap one pair in a list, [{tuple(items)!r}]"
        )
    return list(dict.fromkeys(_key(item) for item in items))


def _request(code: int, keys: list[InstrumentKey]) -> str:
    return json.dumps(
        {
            "RequestCode": int(code),
            "InstrumentCount": len(keys),
            "InstrumentList": [
                {"ExchangeSegment": segment, "SecurityId": str(security_id)}
                for segment, security_id in keys
            ],
        }
    )


def disconnect_error(reason: int) -> AioTraderError:
    """What a disconnect packet (code 50) with ``reason`` means for a feed.

    807 (token expired), 808 (authentication failed), 809 (token invalid) and 810 (client
    id invalid) are a :class:`~aio_trader.errors.SessionExpired` (the feed ends, no retry:
    log in again, or renew the token and start a new feed); 806 (Data APIs not subscribed)
    a :class:`~aio_trader.errors.PermissionDenied` (ends the feed too); any other reason
    (805 too many connections, 800 internal error ...) a
    :class:`~aio_trader.errors.ConnectionLost`: that connection reconnects with backoff.
    Labels are Dhan's annexure's.
    """
    try:
        known: DisconnectReason | None = DisconnectReason(reason)
    except ValueError:
        known = None
    label = known.label if known is not None else f"unknown reason code {reason}"
    text = f"Dhan's feed disconnected: {label} ({reason})"
    if known is not None and known.is_session_error:
        return SessionExpired(text, code=str(reason), broker="dhan")
    if known is DisconnectReason.DATA_API_NOT_SUBSCRIBED:
        return PermissionDenied(text, code=str(reason), broker="dhan")
    return ConnectionLost(text)


class _Credentials:
    """The client id and the access token (a string or a provider), and every token seen
    (redacted from error texts)."""

    def __init__(self, client_id: str, access_token: Credential) -> None:
        self.client_id = client_id
        self._token: Credential = access_token
        self.seen: list[str] = [access_token] if isinstance(access_token, str) else []

    def set(self, access_token: Credential) -> None:
        if isinstance(access_token, str):
            if not access_token:
                raise ValueError("the access token must be a non-empty str")
            self.seen.append(access_token)
        elif not callable(access_token):
            raise TypeError(
                f"an access token is a str or a callable, got {type(access_token).__name__}"
            )
        self._token = access_token

    async def token(self) -> str:
        token = await resolve(self._token)
        if token not in self.seen:
            self.seen.append(token)
        return token


class _DhanBase(FeedProtocol[InstrumentKey]):
    """What both of Dhan's instrument feeds share: keys, credentials, refusals."""

    heartbeat: ClassVar[Literal["frames", "ping"]] = "ping"
    ping_interval: ClassVar[float] = 10.0

    def __init__(self, *, client_id: str, access_token: Credential, root: str) -> None:
        self.root = check_url("root", root)
        self.credentials = _Credentials(client_id, access_token)

    def set_secret(self, access_token: Credential) -> None:
        """Use ``access_token`` (a string or a provider) from the next (re)connect on."""
        self.credentials.set(access_token)

    def check_keys(self, keys: object) -> list[InstrumentKey]:
        return check_instruments(keys)

    def _query(self, token: str) -> dict[str, str]:
        return {
            "version": "2",
            "token": token,
            "clientId": self.credentials.client_id,
            "authType": "2",
        }

    def secrets(self) -> Iterable[str]:
        return self.credentials.seen

    def refusal(self, status: int) -> AioTraderError | None:
        if status in (401, 403):
            return SessionExpired(
                f"Dhan's feed refused the session (HTTP {status}): the access token or "
                "client id is invalid or expired",
                status_code=status,
                broker="dhan",
            )
        if 400 <= status < 500 and status != 429:
            return FeedClosedError(
                f"Dhan's feed refused the connection with HTTP {status} (not retried: "
                f"check root={self.root!r})"
            )
        return None


class DhanProtocol(_DhanBase):
    """Dhan's market feed, with the order-update socket as a side socket (see the module
    doc). ``order_root=None``: no order-update socket."""

    name: ClassVar[str] = "dhan"
    modes: ClassVar[tuple[str, ...]] = tuple(mode.value for mode in FeedMode)

    def __init__(
        self,
        *,
        client_id: str,
        access_token: Credential,
        root: str,
        order_root: str | None,
    ) -> None:
        super().__init__(client_id=client_id, access_token=access_token, root=root)
        self.order_root = None if order_root is None else check_url("order_root", order_root)
        self.side_sockets = (ORDER_SOCKET,) if order_root is not None else ()  # type: ignore[misc]
        self.max_instruments = FEED_MAX_INSTRUMENTS
        self.max_connections = FEED_MAX_CONNECTIONS
        self.max_per_message = FEED_MAX_INSTRUMENTS_PER_MESSAGE
        self._login_token = ""

    def check_mode(self, mode: object) -> str:
        try:
            return FeedMode(mode).value
        except ValueError:
            raise ValueError(
                f"mode must be one of ticker (ltp), quote, full; got {mode!r}"
            ) from None

    async def handshake(self, socket: str | None) -> Handshake:
        token = await self.credentials.token()
        if socket is None:
            return Handshake(self.root, self._query(token))
        assert self.order_root is not None
        self._login_token = token  # sent in the login message, right after connecting
        return Handshake(self.order_root)

    def login(self, socket: str | None) -> list[Message]:
        if socket is None:
            return []
        message = {
            "LoginReq": {
                "MsgCode": 42,
                "ClientId": self.credentials.client_id,
                "Token": self._login_token,
            },
            "UserType": "SELF",
        }
        return [json.dumps(message)]

    def subscribe(self, mode: str, keys: list[InstrumentKey]) -> list[Message]:
        return [_request(FeedMode(mode).subscribe_code, keys)]

    def unsubscribe(self, mode: str, keys: list[InstrumentKey]) -> list[Message]:
        return [_request(FeedMode(mode).unsubscribe_code, keys)]

    def set_mode(self, mode: str, keys: list[InstrumentKey], previous: str) -> list[Message]:
        if mode == previous:
            return self.subscribe(mode, keys)
        return [*self.unsubscribe(previous, keys), *self.subscribe(mode, keys)]

    def describe(self) -> str:
        order = f" order_root={self.order_root!r}" if self.order_root is not None else ""
        return f"client_id={self.credentials.client_id!r} root={self.root!r}{order}"


class DepthProtocol(_DhanBase):
    """Dhan's 20-level depth feed: one mode (``"depth"``), 50 instruments a connection,
    NSE_EQ and NSE_FNO only."""

    name: ClassVar[str] = "dhan-depth"
    modes: ClassVar[tuple[str, ...]] = ("depth",)

    def __init__(self, *, client_id: str, access_token: Credential, root: str) -> None:
        super().__init__(client_id=client_id, access_token=access_token, root=root)
        self.max_instruments = DEPTH20_MAX_INSTRUMENTS
        self.max_connections = FEED_MAX_CONNECTIONS
        self.max_per_message = DEPTH20_MAX_INSTRUMENTS

    def check_keys(self, keys: object) -> list[InstrumentKey]:
        checked = check_instruments(keys)
        for segment, security_id in checked:
            if segment not in _DEPTH_SEGMENTS:
                raise ValueError(
                    f"the 20-level depth feed serves NSE_EQ and NSE_FNO only, got "
                    f"({segment!r}, {security_id})"
                )
        return checked

    async def handshake(self, socket: str | None) -> Handshake:
        return Handshake(self.root, self._query(await self.credentials.token()))

    def subscribe(self, mode: str, keys: list[InstrumentKey]) -> list[Message]:
        return [_request(FeedRequestCode.SUBSCRIBE_DEPTH, keys)]

    def unsubscribe(self, mode: str, keys: list[InstrumentKey]) -> list[Message]:
        return [_request(FeedRequestCode.UNSUBSCRIBE_DEPTH, keys)]

    def describe(self) -> str:
        return f"client_id={self.credentials.client_id!r} root={self.root!r}"
