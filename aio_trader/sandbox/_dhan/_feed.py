"""Dhan's sockets in the sandbox: the market feed (``FEED_PATH``), the order-update socket
(``ORDER_FEED_PATH``) and the 20-level depth feed (``DEPTH_PATH``), served by Starlette.

What a client sees is what Dhan's servers do:

- **Market feed** ``/feed?version=2&token=..&clientId=..&authType=2``. The handshake is
  always accepted; bad credentials are answered inside the stream, as Dhan does: one
  disconnect packet (code 50) with the reason, then a close. Reasons: 808 no token or no
  client id, 810 a wrong client id, 809 a token that is not live, 807 while the session
  is expired (``expire_session()``). A connection past ``max_ws_per_api_key`` for one
  client id disconnects the *oldest* one with 805 (Dhan's rule).
- **Requests** (JSON text): ``{"RequestCode": 15|17|21, "InstrumentCount": n,
  "InstrumentList": [{"ExchangeSegment": "NSE_EQ", "SecurityId": "1333"}, ...]}``
  subscribe in ticker / quote / full (a subscribed instrument switches mode),
  16 / 18 / 22 unsubscribe, 12 closes the connection. Security ids as strings or ints;
  unknown instruments are kept but never tick. More than 100 instruments in a message,
  or more than ``max_tokens_per_ws`` on the connection: disconnect packet 804, close.
  Anything else (bad JSON, a binary message such as the v1 header Dhan's SDK sends after
  ``RequestCode 12``) is ignored.
- **Packets**: ONE packet per WebSocket message (Dhan's SDK reads only the first packet
  of a message). A subscription gets a previous-close packet (code 6) at once; then every
  ``tick_interval`` seconds one packet per subscribed known instrument in its mode
  (ticker 2, quote 4 followed by an OI packet 5 for derivatives, full 8), encoded with
  :mod:`aio_trader.dhan.ticks`' encoders from the core market's prices (one encoding
  per market step). ``tick_interval == 0``: flat out, paced by the socket's backpressure.
- **Heartbeat**: WebSocket pings every 10 s from the server (``ws_ping_interval``: the
  sandbox core pings each socket from a task that ends with the connection), pongs to the
  client's pings.
- **Order updates** ``/order-update``: the client sends ``{"LoginReq": {"MsgCode": 42,
  "ClientId": .., "Token": ..}, "UserType": "SELF"}`` first; bad credentials close the
  socket (1008). Then every order event of the core order engine comes as a camelCase
  ``{"Type": "order_alert", "Data": {...}}`` text message (``Dialect.order_update``).
- **20-level depth** ``/twentydepth?token=..&clientId=..&authType=2``: auth as the market
  feed's; RequestCode 23 subscribes (NSE_EQ, NSE_FNO), 25 unsubscribes; every
  ``tick_interval`` one message per instrument holding its bid and its ask packet.
- **Faults and admin routes**: ``drop_websockets()`` and ``ws_drop_every`` cut every
  socket without a close frame; an expired session ends a market-feed or depth
  connection with disconnect packet 807 and the order socket with close code 1008;
  ``ws_silence`` sends nothing (order updates are lost).
- **Replay** (``SandboxConfig(replay=...)``): the market feed serves a recording's Dhan
  messages instead of the market (``aio_trader/sandbox/_dhan/_replay.py``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import struct
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc
import anyio.lowlevel
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from aio_trader.dhan.constants import DisconnectReason
from aio_trader.dhan.ticks import (
    Depth,
    DepthLevel,
    Disconnect,
    FeedRecord,
    FullTick,
    Ohlc,
    OpenInterest,
    PrevClose,
    QuoteTick,
    TickerTick,
    TwentyDepth,
    encode_depth_message,
    encode_packet,
)
from aio_trader.sandbox._dhan._instruments import token_of
from aio_trader.sandbox._dhan._state import check_access_token

if TYPE_CHECKING:
    from aio_trader.sandbox.market import Market
    from aio_trader.sandbox.state import SandboxState

__all__ = ["DEPTH_PATH", "FEED_PATH", "ORDER_FEED_PATH", "PING_INTERVAL", "routes"]

log = logging.getLogger(__name__)

#: The market feed's path (Dhan: ``wss://api-feed.dhan.co?version=2&token=..``).
FEED_PATH: Final = "/feed"
#: The order-update socket's path (Dhan: ``wss://api-order-update.dhan.co``).
ORDER_FEED_PATH: Final = "/order-update"
#: The 20-level depth feed's path (Dhan: ``wss://depth-api-feed.dhan.co/twentydepth``).
DEPTH_PATH: Final = "/twentydepth"
#: Seconds between the server's WebSocket pings (Dhan: 10).
PING_INTERVAL: Final = 10.0

#: How often a connection re-reads faults and session validity (seconds).
_WATCH_INTERVAL: Final = 0.05
#: A close code no frame can carry: the socket closes without a close frame.
_UNSENDABLE_CLOSE_CODE: Final = 0x1_0000
_EXPIRED_CLOSE_CODE: Final = 1008
_MAX_PER_MESSAGE: Final = 100
_MAX_DEPTH_INSTRUMENTS: Final = 50
_DEPTH_LEVELS: Final = 20

_SUBSCRIBE: Final = {15: "ticker", 17: "quote", 21: "full"}
_UNSUBSCRIBE: Final = {16: "ticker", 18: "quote", 22: "full"}
_DISCONNECT_REQUEST: Final = 12
_DEPTH_SUBSCRIBE: Final = 23
_DEPTH_UNSUBSCRIBE: Final = 25

Key = tuple[str, int]

#: Open market-feed connections per sandbox, oldest first (805 disconnects the oldest).
_OPEN: weakref.WeakKeyDictionary[SandboxState, list[_Connection]] = weakref.WeakKeyDictionary()


# -- packets from the market ---------------------------------------------------------------


def _ohlc(quote: Any) -> Ohlc:
    return Ohlc(quote.open, quote.high, quote.low, quote.close)


def _record(market: Market, key: Key, token: int, mode: str) -> FeedRecord:
    segment, sid = key
    quote = market.quote(token)
    ltt = market.updated_at
    if mode == "ticker":
        return TickerTick(segment, sid, quote.last_price, ltt)
    instrument = market.instruments[token]
    average = instrument.round_price(quote.average_price)
    if mode == "quote":
        return QuoteTick(
            segment,
            sid,
            quote.last_price,
            quote.last_quantity & 0xFFFF,
            ltt,
            average,
            quote.volume,
            quote.sell_quantity,
            quote.buy_quantity,
            _ohlc(quote),
        )
    buy, sell = market.depth(token)
    depth = Depth(
        buy=[DepthLevel(level.quantity, level.price, min(level.orders, 0xFFFF)) for level in buy],
        sell=[DepthLevel(level.quantity, level.price, min(level.orders, 0xFFFF)) for level in sell],
    )
    fno = segment == "NSE_FNO"
    return FullTick(
        segment,
        sid,
        quote.last_price,
        quote.last_quantity & 0xFFFF,
        ltt,
        average,
        quote.volume,
        quote.sell_quantity,
        quote.buy_quantity,
        quote.oi,
        quote.oi_day_high if fno else 0,
        quote.oi_day_low if fno else 0,
        _ohlc(quote),
        depth,
    )


def _packets(market: Market, key: Key, mode: str) -> list[bytes]:
    """The messages (one packet each) an instrument sends in ``mode`` now; none for an
    instrument the sandbox does not know. Cached until the next market step."""

    def build() -> list[bytes]:
        try:
            token = token_of(*key)
        except ValueError:
            return []
        if token not in market.instruments:
            return []
        out = [encode_packet(_record(market, key, token, mode))]
        if mode == "quote" and market.instruments[token].is_derivative:
            out.append(encode_packet(OpenInterest(key[0], key[1], market.quote(token).oi)))
        return out

    return market.per_step(("dhan-packets", key, mode), build)


def _prev_close(market: Market, key: Key) -> bytes | None:
    try:
        token = token_of(*key)
    except ValueError:
        return None
    if token not in market.instruments:
        return None
    quote = market.quote(token)
    return encode_packet(PrevClose(key[0], key[1], quote.close, quote.oi))


def _depth20(market: Market, key: Key) -> bytes | None:
    """One message holding the instrument's bid packet and ask packet (20 levels each)."""

    def build() -> bytes | None:
        try:
            token = token_of(*key)
        except ValueError:
            return None
        instrument = market.instruments.get(token)
        if instrument is None:
            return None
        buy, sell = market.depth(token)
        tick = instrument.tick_size or 0.05
        sides: list[TwentyDepth] = []
        for name, levels, step in (("buy", buy, -tick), ("sell", sell, tick)):
            rows = [DepthLevel(level.quantity, level.price, level.orders) for level in levels]
            last = rows[-1] if rows else DepthLevel(0, market.quote(token).last_price, 0)
            while len(rows) < _DEPTH_LEVELS:
                price = instrument.round_price(last.price + step * (len(rows) - len(levels) + 1))
                rows.append(DepthLevel(last.quantity, max(price, 0.0), max(last.orders, 1)))
            sides.append(TwentyDepth(key[0], key[1], name, market.steps, tuple(rows)))  # type: ignore[arg-type]
        return encode_depth_message(sides)

    return market.per_step(("dhan-depth20", key), build)


def _disconnect_packet(reason: int) -> bytes:
    return encode_packet(Disconnect("IDX_I", 0, reason))


# -- requests ------------------------------------------------------------------------------


def _instruments(request: Mapping[str, Any]) -> list[Key] | None:
    """The request's instruments as keys (unknown segment names dropped), None when its
    ``InstrumentList`` is no list of objects."""
    entries = request.get("InstrumentList")
    if not isinstance(entries, list):
        return None
    keys: list[Key] = []
    for entry in entries:
        if not isinstance(entry, dict):
            return None
        segment = str(entry.get("ExchangeSegment", ""))
        try:
            sid = int(str(entry.get("SecurityId", "")).strip())
            token_of(segment, sid)
        except ValueError:
            continue
        keys.append((segment, sid))
    return list(dict.fromkeys(keys))


def _auth_reason(state: SandboxState, client_id: str, token: str) -> int | None:
    """None for live credentials, else the disconnect reason Dhan gives."""
    if not token or not client_id:
        return DisconnectReason.AUTHENTICATION_FAILED
    if client_id != state.config.client_id:
        return DisconnectReason.CLIENT_ID_INVALID
    if state.faults.session_expired:
        return DisconnectReason.TOKEN_EXPIRED
    if not check_access_token(state, token):
        return DisconnectReason.TOKEN_INVALID
    return None


# -- connections ----------------------------------------------------------------------------


class _Socket:
    """What every Dhan socket shares: a send lock, a cancel scope, the fault watch."""

    def __init__(self, websocket: WebSocket, state: SandboxState) -> None:
        self.websocket = websocket
        self.state = state
        self.started = anyio.current_time()
        self.drop_epoch = state.ws_drop_epoch
        self.send_lock = anyio.Lock()
        self.scope = anyio.CancelScope()
        #: why the connection ends: "dropped", "expired", or a disconnect reason code.
        self.ending: str | int | None = None

    def end(self, why: str | int) -> None:
        if self.ending is None:
            self.ending = why
        self.scope.cancel()

    async def send(self, message: dict[str, Any]) -> bool:
        """Send one ASGI message; False (and the connection ends) when the client is gone."""
        async with self.send_lock:
            try:
                await self.websocket.send(message)
            except (WebSocketDisconnect, OSError, RuntimeError):
                self.scope.cancel()
                return False
        return True

    async def send_bytes(self, data: bytes) -> bool:
        return await self.send({"type": "websocket.send", "bytes": data})

    async def send_text(self, data: str) -> bool:
        return await self.send({"type": "websocket.send", "text": data})

    async def cut(self) -> None:
        """Drop the connection as a network failure would (no close frame): see the Kite
        ticker's ``_cut`` (hypercorn cannot encode the close code, writes nothing)."""
        with contextlib.suppress(struct.error):
            await self.websocket.send({"type": "websocket.close", "code": _UNSENDABLE_CLOSE_CODE})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.send({"type": "websocket.close", "code": code, "reason": reason})

    def valid(self) -> bool:
        raise NotImplementedError

    async def watch(self) -> None:
        """End the connection on a drop fault or once the session is no longer valid."""
        while True:
            if not self.valid():
                self.end("expired")
                return
            if self.state.ws_drop_epoch != self.drop_epoch:
                self.end("dropped")
                return
            every = self.state.faults.ws_drop_every
            if every is not None and anyio.current_time() - self.started >= every:
                self.end("dropped")
                return
            dropped = self.state.ws_drop_event()
            with anyio.move_on_after(_WATCH_INTERVAL):
                await dropped.wait()


class _Connection(_Socket):
    """One market-feed (or, with ``depth``, 20-level depth) connection."""

    def __init__(
        self, websocket: WebSocket, state: SandboxState, token: str, *, depth: bool
    ) -> None:
        super().__init__(websocket, state)
        self.token = token
        self.depth = depth
        limit = state.config.max_tokens_per_ws or 5000
        self.limit = min(limit, _MAX_DEPTH_INSTRUMENTS) if depth else limit
        self.modes: dict[Key, str] = {}
        self.fresh: list[Key] = []  # subscribed since the last send: previous close first
        self.changed = anyio.Event()

    def valid(self) -> bool:
        return not self.state.faults.session_expired and check_access_token(self.state, self.token)

    async def serve(self) -> None:
        async def receive() -> None:
            await self._receive()
            self.scope.cancel()

        with self.scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.watch)
                tg.start_soon(receive)
                if self.state.config.replay is None or self.depth:
                    tg.start_soon(self._send_ticks)
                else:  # a recording instead of the market
                    from aio_trader.sandbox._dhan._replay import send_recording

                    tg.start_soon(send_recording, self)
        with anyio.move_on_after(1):
            if self.ending == "dropped":
                await self.cut()
            elif self.ending == "expired":
                await self._disconnect(DisconnectReason.TOKEN_EXPIRED)
            elif isinstance(self.ending, int):
                await self._disconnect(self.ending)
            elif self.ending == "bye":
                await self.close()

    async def _disconnect(self, reason: int) -> None:
        """Dhan's refusal: a disconnect packet, then a close."""
        packet = _disconnect_packet(reason)
        if self.depth:
            packet = encode_depth_message([Disconnect("NSE_EQ", 0, reason)])
        if await self.send_bytes(packet):
            await self.close()

    async def _receive(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                continue  # Dhan's SDK sends a binary v1 header when it disconnects
            try:
                request = json.loads(text)
            except ValueError:
                log.info("sandbox dhan feed: ignored a message that is not JSON")
                continue
            if not isinstance(request, dict):
                continue
            if self._handle(request):
                return

    def _handle(self, request: Mapping[str, Any]) -> bool:
        """Apply one request; True when the connection ends."""
        code = request.get("RequestCode")
        if code == _DISCONNECT_REQUEST:
            self.end("bye")
            return True
        if self.depth:
            subscribe = "depth" if code == _DEPTH_SUBSCRIBE else None
            unsubscribe = code == _DEPTH_UNSUBSCRIBE
        else:
            subscribe = _SUBSCRIBE.get(code) if isinstance(code, int) else None
            unsubscribe = code in _UNSUBSCRIBE
        if subscribe is None and not unsubscribe:
            return False
        keys = _instruments(request)
        if keys is None:
            return False
        if len(keys) > _MAX_PER_MESSAGE:
            self.end(DisconnectReason.TOO_MANY_INSTRUMENTS)
            return True
        if unsubscribe:
            for key in keys:
                self.modes.pop(key, None)
        else:
            assert subscribe is not None
            new = [key for key in keys if key not in self.modes]
            if len(self.modes) + len(new) > self.limit:
                self.end(DisconnectReason.TOO_MANY_INSTRUMENTS)
                return True
            for key in keys:
                self.modes[key] = subscribe
            self.fresh.extend(new)
        self.changed.set()
        return False

    async def _send_ticks(self) -> None:
        """Previous close for new subscriptions, then one packet per message, every
        ``tick_interval`` (flat out when it is 0)."""
        interval = float(self.state.config.tick_interval)
        stats = self.state.stats
        next_tick = -math.inf
        while True:
            market = self.state.market
            silent = self.state.faults.ws_silence
            if self.fresh:
                fresh, self.fresh = self.fresh, []
                for key in fresh if not self.depth else ():
                    packet = _prev_close(market, key)
                    if packet is not None and not silent and not await self.send_bytes(packet):
                        return
            now = anyio.current_time()
            if self.modes and now >= next_tick:
                sent = 0
                for key, mode in list(self.modes.items()):
                    if silent:
                        break
                    if self.depth:
                        message = _depth20(market, key)
                        messages = [] if message is None else [message]
                    else:
                        messages = _packets(market, key, mode)
                    for data in messages:
                        if not await self.send_bytes(data):
                            return
                        sent += 1
                stats.ws_frames_sent += sent
                stats.ws_ticks_sent += sent
                next_tick = now + interval
                if interval <= 0:
                    await anyio.lowlevel.checkpoint()
                    if not sent:
                        with anyio.move_on_after(_WATCH_INTERVAL):
                            await self.changed.wait()
                        self.changed = anyio.Event()
                    continue
            wake = next_tick if self.modes else math.inf
            with anyio.move_on_after(max(min(wake - anyio.current_time(), 1.0), 0)):
                await self.changed.wait()
            if self.changed.is_set():  # a subscription is answered at once
                self.changed = anyio.Event()
                next_tick = -math.inf


async def _feed(websocket: WebSocket, *, depth: bool) -> None:
    state: SandboxState = websocket.app.state.sandbox
    params = websocket.query_params
    client_id, token = params.get("clientId", ""), params.get("token", "")
    reason = _auth_reason(state, client_id, token)
    connection = _Connection(websocket, state, token, depth=depth)
    await websocket.accept()
    if reason is not None:
        state.stats.ws_connections_refused += 1
        log.info("sandbox dhan feed: refused with disconnect reason %d", reason)
        await connection._disconnect(reason)
        return
    state.stats.ws_connections += 1
    open_ = _OPEN.setdefault(state, [])
    limit = state.config.max_ws_per_api_key or 5
    if not depth:
        open_.append(connection)
        while len(open_) > limit:  # Dhan disconnects the oldest connection
            open_.pop(0).end(DisconnectReason.TOO_MANY_CONNECTIONS)
    try:
        await connection.serve()
    finally:
        if connection in open_:
            open_.remove(connection)


async def feed_endpoint(websocket: WebSocket) -> None:
    """Serve one market-feed connection (see the module doc). On cancellation (server
    shutdown) its tasks stop and the server closes the socket."""
    await _feed(websocket, depth=False)


async def depth_endpoint(websocket: WebSocket) -> None:
    """Serve one 20-level depth connection (see the module doc)."""
    await _feed(websocket, depth=True)


class _OrderSocket(_Socket):
    def __init__(self, websocket: WebSocket, state: SandboxState) -> None:
        super().__init__(websocket, state)
        self.token = ""
        self.logged_in = anyio.Event()

    def valid(self) -> bool:
        return not self.token or check_access_token(self.state, self.token)

    async def serve(self, updates: anyio.abc.ObjectReceiveStream[Any]) -> None:
        async def receive() -> None:
            await self._receive()
            self.scope.cancel()

        with self.scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                tg.start_soon(self.watch)
                tg.start_soon(self._send_updates, updates)
        with anyio.move_on_after(1):
            if self.ending == "dropped":
                await self.cut()
            elif self.ending == "expired":
                await self.close(_EXPIRED_CLOSE_CODE, "session expired")

    def _login(self, text: str) -> bool:
        try:
            message = json.loads(text)
            login = message["LoginReq"]
            client_id, token = str(login["ClientId"]), str(login["Token"])
        except (ValueError, TypeError, KeyError):
            return False
        if _auth_reason(self.state, client_id, token) is not None:
            return False
        self.token = token
        return True

    async def _receive(self) -> None:
        first = await self.websocket.receive()
        text = first.get("text")
        if first["type"] == "websocket.disconnect":
            return
        if text is None or not self._login(text):
            log.info("sandbox dhan order updates: login refused")
            self.ending = "refused"
            await self.close(_EXPIRED_CLOSE_CODE, "authentication failed")
            return
        self.logged_in.set()
        while (await self.websocket.receive())["type"] != "websocket.disconnect":
            pass

    async def _send_updates(self, updates: anyio.abc.ObjectReceiveStream[Any]) -> None:
        await self.logged_in.wait()
        async for update in updates:
            if self.state.faults.ws_silence:
                continue
            if not await self.send_text(self.state.dialect.order_update_text(update)):
                return


async def order_endpoint(websocket: WebSocket) -> None:
    """Serve one order-update connection: the login message, then ``order_alert``s."""
    state: SandboxState = websocket.app.state.sandbox
    # subscribed before the handshake completes: no update can slip past
    with state.order_updates() as updates:
        socket = _OrderSocket(websocket, state)
        await websocket.accept()
        state.stats.ws_connections += 1
        await socket.serve(updates)


def routes() -> list[BaseRoute]:
    """The WebSocket routes of the Dhan dialect."""
    return [
        WebSocketRoute(FEED_PATH, feed_endpoint),
        WebSocketRoute(ORDER_FEED_PATH, order_endpoint),
        WebSocketRoute(DEPTH_PATH, depth_endpoint),
    ]
