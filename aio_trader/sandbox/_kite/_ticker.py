"""Kite's ticker in the sandbox: Kite's streaming WebSocket protocol, served by Starlette.

Mounted by Kite's dialect as ``WebSocketRoute("/ws", ticker_endpoint)``; the sandbox state is
``websocket.app.state.sandbox``. What a client sees is what Kite's ticker does:

- **Handshake**: ``?api_key=..&access_token=..`` (Kite Connect) or
  ``?api_key=kitefront&user_id=..&enctoken=..`` (Kite Web, extra web-agent params ignored).
  Bad or expired credentials: HTTP 403 with a Kite ``TokenException`` body, no upgrade.
  More than ``max_ws_per_api_key`` open connections for one api_key (one user for Kite Web):
  HTTP 429 with a Kite ``NetworkException`` body. Both count in
  ``stats.ws_connections_refused``.
- **Client messages** (JSON text): ``{"a": "subscribe", "v": [tokens]}`` (mode "quote", also
  for a token subscribed again), ``{"a": "unsubscribe", "v": [tokens]}``,
  ``{"a": "mode", "v": [mode, [tokens]]}`` (tokens not subscribed are ignored). Unknown
  tokens are kept but produce no packets, as on Kite. Past ``max_tokens_per_ws`` subscribed
  tokens the excess is refused with an ``{"type": "error", "data": ...}`` text frame; a
  malformed message gets the same error frame and changes nothing. The connection stays open.
- **Ticks**: every ``tick_interval`` seconds one binary frame with a packet per subscribed
  (known) token in its mode, the first one at once after a subscription change. With
  ``tick_interval == 0`` frames go out back to back, paced only by the socket's backpressure
  (one encoding per market step serves every frame of that step). With nothing to tick, a
  1-byte heartbeat frame after each second without a frame.
- **Order postbacks**: each order change as a ``{"type": "order", "data": {...}}`` text frame.
- **Faults**, read live: ``ws_drop_every`` (seconds after the connection opened) and
  ``drop_websockets()`` cut the connection as a network failure would: the socket closes with
  no close frame (clients report 1006 / a network error). An expired or invalidated session
  (``session_expired``, logout) closes it with code 1008 and reason "session expired".
  ``ws_silence`` sends nothing at all (postbacks are lost). ``ws_malformed_binary`` follows each
  tick frame with a broken one (a packet count too high, a packet of unknown length among good
  ones, or a truncated packet, in turn); ``ws_malformed_text`` follows each tick frame or
  heartbeat with a broken text frame (bad JSON, not an object, unknown type, in turn).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import struct
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
from starlette.datastructures import QueryParams
from starlette.websockets import WebSocket, WebSocketDisconnect

from aio_trader.kite.ticks import FeedError, encode_frame, encode_text
from aio_trader.sandbox._api import ApiError, load_json
from aio_trader.sandbox._kite._quotes import snapshot
from aio_trader.sandbox._kite._state import check_enctoken
from aio_trader.sandbox._kite._wire import error_response

if TYPE_CHECKING:
    from aio_trader.sandbox.market import Market
    from aio_trader.sandbox.state import SandboxState

__all__ = [
    "EXPIRED_CLOSE_CODE",
    "HEARTBEAT",
    "HEARTBEAT_INTERVAL",
    "KITE_WEB_API_KEY",
    "ticker_endpoint",
]

log = logging.getLogger(__name__)

#: The frame Kite sends when there is nothing to say, and how often (seconds).
HEARTBEAT: Final = b"\x00"
HEARTBEAT_INTERVAL: Final = 1.0
#: Close code sent when the session is no longer valid (expired, or logged out).
EXPIRED_CLOSE_CODE: Final = 1008
#: A close code no frame can carry (> 0xFFFF): see ``_Connection._cut``.
_UNSENDABLE_CLOSE_CODE: Final = 0x1_0000
#: The api_key Kite Web's ticker connects with (``user_id`` + ``enctoken`` authenticate).
KITE_WEB_API_KEY: Final = "kitefront"

MODES: Final = ("ltp", "quote", "full")
DEFAULT_MODE: Final = "quote"
#: How often a connection re-reads faults and session validity (seconds).
WATCH_INTERVAL: Final = 0.05
#: Broken text frames sent in turn under ``ws_malformed_text``: bad JSON, not an object,
#: an unknown message type.
BAD_TEXT_FRAMES: Final = (
    '{"type": "order", "data": {"order_id": ',
    "[1, 2, 3]",
    '{"type": "sandbox-unknown", "data": {}}',
)


# -- client messages ---------------------------------------------------------------------


def _tokens(value: object) -> list[int] | None:
    """The instrument tokens of a message's value, or None when it is not a list of ints."""
    if not isinstance(value, list):
        return None
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        return None
    return list(dict.fromkeys(value))


def _brief(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@attrs.define
class _Subscriptions:
    """One connection's subscribed tokens and their modes, changed by Kite's client messages."""

    limit: int
    modes: dict[int, str] = attrs.Factory(dict)
    #: Bumped on every change (keys the frame cache).
    version: int = 0

    def handle(self, message: str) -> str | None:
        """Apply one client text message; return an error to send back, or None if all went."""
        try:
            parsed = load_json(message)
        except ValueError:
            return f"invalid JSON message: {_brief(message)}"
        if not isinstance(parsed, dict):
            return f"message must be a JSON object: {_brief(parsed)}"
        action, value = parsed.get("a"), parsed.get("v")
        if action == "subscribe":
            tokens = _tokens(value)
            return self._subscribe(tokens) if tokens is not None else _bad_value(action, value)
        if action == "unsubscribe":
            tokens = _tokens(value)
            if tokens is None:
                return _bad_value(action, value)
            for token in tokens:
                self.modes.pop(token, None)
            self.version += 1
            return None
        if action == "mode":
            if not (isinstance(value, list) and len(value) == 2 and value[0] in MODES):
                return _bad_value(action, value)
            tokens = _tokens(value[1])
            if tokens is None:
                return _bad_value(action, value)
            for token in tokens:
                if token in self.modes:
                    self.modes[token] = value[0]
            self.version += 1
            return None
        return f"unknown action {_brief(action)}: expected subscribe, unsubscribe or mode"

    def _subscribe(self, tokens: list[int]) -> str | None:
        new = [t for t in tokens if t not in self.modes]
        room = max(self.limit - len(self.modes), 0)
        refused = new[room:]
        refused_set = set(refused)
        for token in tokens:
            if token not in refused_set:
                self.modes[token] = DEFAULT_MODE
        self.version += 1
        if refused:
            return (
                f"too many instruments: at most {self.limit} per connection, "
                f"{len(refused)} refused (first: {refused[0]})"
            )
        return None


def _bad_value(action: str, value: object) -> str:
    shape = "[mode, [tokens]]" if action == "mode" else "[tokens]"
    return f"invalid value for {action!r}: expected {shape}, got {_brief(value)}"


# -- frames ------------------------------------------------------------------------------


def _packets(frame: bytes) -> list[bytes]:
    """Split a well-formed frame (as built by ``encode_frame``) into its packets."""
    packets, at = [], 2
    for _ in range(int.from_bytes(frame[:2], "big")):
        length = int.from_bytes(frame[at : at + 2], "big")
        packets.append(frame[at + 2 : at + 2 + length])
        at += 2 + length
    return packets


def _join(packets: Iterable[bytes], count: int) -> bytes:
    body = b"".join(len(p).to_bytes(2, "big") + p for p in packets)
    return count.to_bytes(2, "big") + body


def _corrupt_frame(frame: bytes, variant: int) -> bytes:
    """A broken copy of a (non-empty) tick frame, in one of three ways: ``variant % 3``.

    0: declares one packet more than it holds; 1: a 13-byte packet of unknown kind between
    the good ones; 2: the last packet cut short of its declared length.
    """
    packets = _packets(frame)
    kind = variant % 3
    if kind == 0:
        return _join(packets, len(packets) + 1)
    if kind == 1:
        middle = len(packets) // 2
        junk = bytes(range(13))
        return _join([*packets[:middle], junk, *packets[middle:]], len(packets) + 1)
    whole = _join(packets, len(packets))
    return whole[: len(whole) - len(packets[-1]) // 2]


def _build_frame(market: Market, modes: Mapping[int, str]) -> tuple[bytes, int]:
    """The tick frame for these subscriptions and how many packets it holds."""
    ticks = []
    for token, mode in modes.items():
        try:
            ticks.append(snapshot(market, token, mode))
        except KeyError:
            continue  # unknown token: subscribed, never ticks (as on Kite)
    return encode_frame(ticks), len(ticks)


# -- connections -------------------------------------------------------------------------


def _limit(value: int | None) -> int:
    """A limit of ``state.config`` (filled in from the dialect: never None there)."""
    if value is None:  # pragma: no cover - SandboxState fills every limit in
        raise RuntimeError("a sandbox limit was left unset")
    return value


@attrs.frozen
class _Credentials:
    api_key: str
    user_id: str
    secret: str = attrs.field(repr=False)

    @classmethod
    def from_query(cls, params: QueryParams) -> _Credentials:
        api_key = params.get("api_key", "")
        if api_key == KITE_WEB_API_KEY:
            return cls(api_key, params.get("user_id", ""), params.get("enctoken", ""))
        return cls(api_key, "", params.get("access_token", ""))

    @property
    def limit_key(self) -> str:
        return (
            f"{self.api_key}/{self.user_id}" if self.api_key == KITE_WEB_API_KEY else self.api_key
        )

    def valid(self, state: SandboxState) -> bool:
        """True while the credentials are live (False once the session expired)."""
        if self.api_key == KITE_WEB_API_KEY:
            return check_enctoken(state, self.user_id, self.secret)
        return bool(state.check_token(self.api_key, self.secret))


async def ticker_endpoint(websocket: WebSocket) -> None:
    """Serve one ticker connection until the client leaves or a fault closes it.

    Refused handshakes are answered over HTTP (403 bad/expired credentials, 429 too many
    connections) and never upgraded. On cancellation (server shutdown) the connection's tasks
    stop and the server closes the socket.
    """
    state: SandboxState = websocket.app.state.sandbox
    credentials = _Credentials.from_query(websocket.query_params)
    key = credentials.limit_key
    refusal = None
    if not credentials.valid(state):
        secret = "enctoken" if credentials.api_key == KITE_WEB_API_KEY else "access_token"
        refusal = ApiError(403, "session", f"Invalid `api_key` or `{secret}`.")
    elif state.ws_open[key] >= (limit := _limit(state.config.max_ws_per_api_key)):
        message = f"Too many connections: at most {limit} ticker connections per api_key."
        refusal = ApiError(429, "rate_limit", message)
    if refusal is not None:
        state.stats.ws_connections_refused += 1
        log.info("ticker handshake refused with HTTP %d", refusal.status)
        await websocket.send_denial_response(error_response(refusal))
        return
    state.ws_open[key] += 1
    try:
        # subscribed before the handshake completes: no postback or drop can slip past
        with state.order_updates() as updates:
            connection = _Connection(websocket, state, credentials, updates)
            await websocket.accept()
            state.stats.ws_connections += 1
            await connection.serve()
    finally:
        state.ws_open[key] -= 1


class _Connection:
    """The tasks of one accepted connection: receive, tick, postbacks, watch for faults."""

    def __init__(
        self,
        websocket: WebSocket,
        state: SandboxState,
        credentials: _Credentials,
        updates: anyio.abc.ObjectReceiveStream[dict[str, Any]],
    ) -> None:
        self.websocket = websocket
        self.state = state
        self.credentials = credentials
        self.updates = updates
        self.started = anyio.current_time()
        self.drop_epoch = state.ws_drop_epoch
        self.subscriptions = _Subscriptions(limit=_limit(state.config.max_tokens_per_ws))
        self.changed = anyio.Event()
        self.send_lock = anyio.Lock()
        self.scope = anyio.CancelScope()
        self.cache_key: object = None
        self.cache: tuple[bytes, int] = (b"", 0)

    async def serve(self) -> None:
        ending: Literal["expired", "dropped"] | None = None

        async def watch() -> None:
            nonlocal ending
            ending = await self._watch()
            self.scope.cancel()

        async def receive() -> None:
            await self._receive()
            self.scope.cancel()

        with self.scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                tg.start_soon(receive)
                if self.state.config.replay is None:
                    tg.start_soon(self._send_ticks)
                else:  # a recording instead of the market
                    from aio_trader.sandbox._kite._replay import send_recording

                    tg.start_soon(send_recording, self)
                tg.start_soon(self._send_postbacks)
        if ending is not None:
            log.info("sandbox ticker: connection %s", ending)
        with anyio.move_on_after(1):
            if ending == "expired":
                close = {"code": EXPIRED_CLOSE_CODE, "reason": "session expired"}
                await self._send({"type": "websocket.close", **close})
            elif ending == "dropped":
                await self._cut()

    async def _cut(self) -> None:
        """Drop the connection as a network failure would: the socket closes, no close frame.

        ASGI has no "abort". Hypercorn marks the stream closed before it encodes the close
        frame; a code no frame can carry makes that encoding fail (``struct.error``), so
        nothing is written, and hypercorn closes the socket when the endpoint returns.
        (tests/test_sandbox_ticker.py pins this on the wire.)
        """
        with contextlib.suppress(struct.error):
            await self.websocket.send({"type": "websocket.close", "code": _UNSENDABLE_CLOSE_CODE})

    async def _send(self, message: dict[str, Any]) -> bool:
        """Send one ASGI message; False (and the connection ends) when the client is gone."""
        async with self.send_lock:
            try:
                await self.websocket.send(message)
            except (WebSocketDisconnect, OSError, RuntimeError):
                self.scope.cancel()
                return False
        return True

    async def _send_bytes(self, data: bytes) -> bool:
        return await self._send({"type": "websocket.send", "bytes": data})

    async def _send_text(self, data: str) -> bool:
        return await self._send({"type": "websocket.send", "text": data})

    async def _receive(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                error: str | None = "binary messages are not understood: send JSON text"
            else:
                error = self.subscriptions.handle(text)
                self.changed.set()
            if error is not None:
                await self._send_text(encode_text(FeedError(error)))

    async def _watch(self) -> Literal["expired", "dropped"]:
        """Wait for a reason to end: a session no longer valid, or a drop (fault)."""
        while True:
            if not self.credentials.valid(self.state):
                return "expired"
            if self.state.ws_drop_epoch != self.drop_epoch:
                return "dropped"
            every = self.state.faults.ws_drop_every
            if every is not None and anyio.current_time() - self.started >= every:
                return "dropped"
            dropped = self.state.ws_drop_event()
            with anyio.move_on_after(WATCH_INTERVAL):
                await dropped.wait()

    def _frame(self) -> tuple[bytes, int]:
        market = self.state.market
        # the market changes only by steps and quotes set from outside: one encoding per
        # version serves every frame of it
        key = (self.subscriptions.version, id(market), market.version)
        if key != self.cache_key:
            self.cache = _build_frame(market, self.subscriptions.modes)
            self.cache_key = key
        return self.cache

    async def _send_ticks(self) -> None:
        """Tick frames every ``tick_interval``; heartbeats when idle; broken frames on fault.

        "Idle" is nothing to tick: no subscription, or only tokens the sandbox does not know.
        """
        interval = float(self.state.config.tick_interval)
        stats = self.state.stats
        variants = itertools.count()
        last_sent = anyio.current_time()
        next_tick = -math.inf
        while True:
            now = anyio.current_time()
            faults = self.state.faults
            frame, count = self._frame()
            if faults.ws_silence:
                last_sent = now
            elif count and now >= next_tick:
                if not await self._send_bytes(frame):
                    return
                stats.ws_frames_sent += 1
                stats.ws_ticks_sent += count
                if faults.ws_malformed_binary:
                    await self._send_bytes(_corrupt_frame(frame, next(variants)))
                if faults.ws_malformed_text:
                    await self._send_text(BAD_TEXT_FRAMES[next(variants) % len(BAD_TEXT_FRAMES)])
                last_sent, next_tick = now, now + interval
                if interval <= 0:
                    await anyio.lowlevel.checkpoint()  # flat out, yet fair to other tasks
                    continue
            elif now - last_sent >= HEARTBEAT_INTERVAL:
                if not await self._send_bytes(HEARTBEAT):
                    return
                if faults.ws_malformed_text:
                    await self._send_text(BAD_TEXT_FRAMES[next(variants) % len(BAD_TEXT_FRAMES)])
                last_sent = now
            wake = last_sent + HEARTBEAT_INTERVAL
            if count:
                wake = min(wake, next_tick)
            if faults.ws_silence:
                wake = now + WATCH_INTERVAL
            with anyio.move_on_after(max(wake - anyio.current_time(), 0)):
                await self.changed.wait()
            if self.changed.is_set():  # a subscription change is answered at once
                self.changed = anyio.Event()
                next_tick = -math.inf

    async def _send_postbacks(self) -> None:
        async for update in self.updates:
            if self.state.faults.ws_silence:
                continue  # silence loses postbacks, as a dead network would
            try:
                text = self.state.dialect.order_update_text(update)
            except ValueError:
                log.exception(
                    "order postback %s not sent: not a Kite postback", update.get("order_id")
                )
                continue
            await self._send_text(text)
