"""Kite's ticker protocol for the feed engine (:class:`KiteProtocol`).

Credentials go in the handshake's query string (Kite Connect: ``api_key`` and
``access_token``; Kite Web: the web client's parameters with ``user_id`` and ``enctoken``),
read on every (re)connect. Messages are JSON text frames ``{"a": action, "v": value}``;
a subscription starts in ``quote`` mode and is switched by a ``mode`` message. Kite sends
a 1-byte binary frame as its heartbeat. A 403 at the handshake means the session is invalid
or expired (:class:`~aio_trader.errors.TokenException`, fatal); another 4xx than 429 never
heals (a wrong URL: :class:`~aio_trader.errors.FeedClosedError`). 3000 instruments per
connection, 3 connections per api_key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar, Final, Literal

from aio_trader.errors import AioTraderError, FeedClosedError, TokenException
from aio_trader.feed._engine import check_url, resolve
from aio_trader.feed._protocol import FeedProtocol, Handshake, Message
from aio_trader.kite.constants import TICKER_MAX_CONNECTIONS, TICKER_MAX_INSTRUMENTS, Mode

__all__ = ["KITE_CONNECT_ROOT", "KITE_WEB_ROOT", "Credential", "KiteProtocol", "check_tokens"]

#: Kite Connect's ticker, and Kite Web's (the browser client's).
KITE_CONNECT_ROOT: Final = "wss://ws.kite.trade"
KITE_WEB_ROOT: Final = "wss://ws.zerodha.com"
#: The query parameters Kite Web's own client adds (with ``user_id``, ``enctoken``, ``uid``).
_KITE_WEB_PARAMS: Final = {"api_key": "kitefront", "user-agent": "kite3-web", "version": "3.0.0"}

#: A secret as given: the string, or a provider (sync or async) called on every connect.
Credential = str | Callable[[], str | Awaitable[str]]


def _check_iterable(tokens: object) -> Iterable[Any]:
    if isinstance(tokens, int | str | bytes) or not isinstance(tokens, Iterable):
        raise TypeError(f"tokens must be an iterable of ints, got {type(tokens).__name__}")
    return tokens


def check_tokens(tokens: object) -> list[int]:
    """The tokens as a list without duplicates; ``TypeError`` for anything but ints,
    ``ValueError`` for ints out of uint32's range."""
    out = list(dict.fromkeys(_check_iterable(tokens)))
    for token in out:
        if not isinstance(token, int) or isinstance(token, bool):
            raise TypeError(f"instrument tokens are ints, got {token!r}")
        if not 0 < token <= 0xFFFFFFFF:
            raise ValueError(f"instrument tokens are positive 32-bit ints, got {token!r}")
    return out


def _message(action: str, value: object) -> str:
    return json.dumps({"a": action, "v": value})


class KiteProtocol(FeedProtocol[int]):
    """Kite's ticker (see the module doc). ``secret`` is the access token (Kite Connect) or
    the enctoken (Kite Web, when ``user_id`` is given); :meth:`set_secret` renews it."""

    name: ClassVar[str] = "kite"
    modes: ClassVar[tuple[str, ...]] = (Mode.LTP.value, Mode.QUOTE.value, Mode.FULL.value)
    heartbeat: ClassVar[Literal["frames", "ping"]] = "frames"
    heartbeat_size: ClassVar[int] = 2  # a 1-byte frame; a tick frame has 2 or more

    def __init__(
        self,
        *,
        api_key: str,
        secret: Credential,
        user_id: str | None,
        root: str,
    ) -> None:
        self.max_instruments = TICKER_MAX_INSTRUMENTS
        self.max_connections = TICKER_MAX_CONNECTIONS
        self.max_per_message = None
        self.web = user_id is not None
        self.api_key = api_key
        self.user_id = user_id or ""
        self.root = check_url("root", root)
        self._secret: Credential = secret
        #: Every secret seen (redacted from error texts, a renewed one and the old alike).
        self._secrets: list[str] = [secret] if isinstance(secret, str) else []

    def set_secret(self, secret: Credential) -> None:
        """Use ``secret`` (a string or a provider) from the next (re)connect on."""
        if isinstance(secret, str):
            if not secret:
                raise ValueError("the token must be a non-empty str")
            self._secrets.append(secret)
        elif not callable(secret):
            raise TypeError(f"a token is a str or a callable, got {type(secret).__name__}")
        self._secret = secret

    def check_keys(self, keys: object) -> list[int]:
        return check_tokens(keys)

    def check_mode(self, mode: object) -> str:
        return Mode(mode)

    async def handshake(self, socket: str | None) -> Handshake:
        secret = await resolve(self._secret)
        if secret not in self._secrets:
            self._secrets.append(secret)
        if self.web:
            params = {
                **_KITE_WEB_PARAMS,
                "user_id": self.user_id,
                "enctoken": secret,
                "uid": str(int(time.time() * 1000)),
            }
            return Handshake(self.root, params)
        params = {"api_key": self.api_key, "access_token": secret}
        return Handshake(self.root, params, {"X-Kite-Version": "3"})

    def secrets(self) -> Iterable[str]:
        return self._secrets

    def subscribe(self, mode: str, keys: list[int]) -> list[Message]:
        return [_message("subscribe", keys), _message("mode", [str(mode), keys])]

    def unsubscribe(self, mode: str, keys: list[int]) -> list[Message]:
        return [_message("unsubscribe", keys)]

    def set_mode(self, mode: str, keys: list[int], previous: str) -> list[Message]:
        return [_message("mode", [str(mode), keys])]

    def refusal(self, status: int) -> AioTraderError | None:
        if status == 403:
            what = "enctoken" if self.web else "access token"
            return TokenException(
                f"the ticker refused the session (HTTP 403): the {what} is invalid or "
                "expired; log in again",
                status_code=403,
            )
        if 400 <= status < 500 and status != 429:
            return FeedClosedError(
                f"the ticker refused the connection with HTTP {status} (not retried: "
                f"check root={self.root!r})"
            )
        return None

    def describe(self) -> str:
        who = f"user_id={self.user_id!r}" if self.web else f"api_key={self.api_key!r}"
        return f"{who} root={self.root!r}"
