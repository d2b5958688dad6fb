"""The sandbox ticker speaks Kite's WebSocket protocol: handshake, modes, heartbeats, postbacks,
limits and faults, over real loopback sockets (httpx-ws as the client)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
import wsproto.events
from httpx_ws import (
    AsyncWebSocketSession,
    WebSocketDisconnect,
    WebSocketNetworkError,
    WebSocketUpgradeError,
    aconnect_ws,
)

from aio_trader.kite.ticks import (
    FeedError,
    FullTick,
    IndexFullTick,
    IndexQuoteTick,
    LtpTick,
    MalformedPacket,
    OrderUpdate,
    QuoteTick,
    decode_frame,
    decode_text,
    encode_frame,
)
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.sandbox._kite._quotes import snapshot
from aio_trader.sandbox._kite._ticker import EXPIRED_CLOSE_CODE, HEARTBEAT

#: Generous guard against a hang (a failing test, not a speed claim); also the timeout of
#: every HTTP client here, so that a loaded machine slows a test down without failing it.
HANG_GUARD = 30.0
#: Large enough for a full-mode frame of many tokens.
MAX_MESSAGE = 4 << 20

EXPECTED_LENGTHS = {
    # (mode, index?) -> packet length on the wire
    ("ltp", False): 8,
    ("ltp", True): 8,
    ("quote", False): 44,
    ("quote", True): 28,
    ("full", False): 184,
    ("full", True): 32,
}
EXPECTED_KINDS = {
    ("ltp", False): LtpTick,
    ("ltp", True): LtpTick,
    ("quote", False): QuoteTick,
    ("quote", True): IndexQuoteTick,
    ("full", False): FullTick,
    ("full", True): IndexFullTick,
}


def packet_lengths(frame: bytes) -> dict[int, int]:
    """{token: packet length} of a well-formed frame, parsed independently of the codec."""
    lengths, at = {}, 2
    for _ in range(int.from_bytes(frame[:2], "big")):
        length = int.from_bytes(frame[at : at + 2], "big")
        lengths[int.from_bytes(frame[at + 2 : at + 6], "big")] = length
        at += 2 + length
    assert at == len(frame)
    return lengths


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    """A sandbox with a fast ticker and a still market (prices move only when stepped)."""
    async with Sandbox(SandboxConfig(tick_interval=0.05, market_interval=None)) as sandbox:
        yield sandbox


def tokens(sb: Sandbox) -> dict[str, int]:
    """One instrument token per segment name ("NSE", "INDICES", "CDS-FUT", ...)."""
    first: dict[str, int] = {}
    for token, instrument in sb.state.market.instruments.items():
        first.setdefault(instrument.segment, token)
    return first


def ws_url(sb: Sandbox, **params: str) -> str:
    query = params or {"api_key": sb.api_key, "access_token": sb.access_token}
    return str(httpx.URL(sb.ticker_url, params=query))


@contextlib.asynccontextmanager
async def connect(sb: Sandbox, **params: str) -> AsyncIterator[AsyncWebSocketSession]:
    async with (
        httpx.AsyncClient(timeout=HANG_GUARD) as client,
        aconnect_ws(ws_url(sb, **params), client, max_message_size_bytes=MAX_MESSAGE) as ws,
    ):
        yield ws


async def send(ws: AsyncWebSocketSession, action: str, value: Any) -> None:
    await ws.send_text(json.dumps({"a": action, "v": value}))


async def next_message(
    ws: AsyncWebSocketSession, accept: Callable[[str | bytes], bool]
) -> str | bytes:
    """The next text or binary message that ``accept`` takes (others are skipped)."""
    with anyio.fail_after(HANG_GUARD):
        while True:
            event = await ws.receive()
            if isinstance(event, wsproto.events.Message) and accept(event.data):
                return event.data


async def next_frame(
    ws: AsyncWebSocketSession, accept: Callable[[bytes], bool] = lambda f: True
) -> bytes:
    """The next tick frame (not a heartbeat) that ``accept`` takes."""
    data = await next_message(ws, lambda d: isinstance(d, bytes) and len(d) > 2 and accept(d))
    assert isinstance(data, bytes)
    return data


async def next_text(ws: AsyncWebSocketSession) -> str:
    data = await next_message(ws, lambda d: isinstance(d, str))
    assert isinstance(data, str)
    return data


@contextlib.asynccontextmanager
async def raw_upgrade(
    sb: Sandbox, query: str
) -> AsyncIterator[tuple[anyio.abc.ByteStream, list[bytes], bytes]]:
    """A WebSocket upgrade request sent by hand: the stream, the answer's head lines, and
    the bytes that came after the head."""
    url = httpx.URL(sb.ticker_url)
    assert url.host
    assert url.port
    request = (
        f"GET {url.path}?{query} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    async with await anyio.connect_tcp(url.host, url.port) as stream:
        await stream.send(request.encode())
        answer = b""
        with anyio.fail_after(HANG_GUARD):
            while b"\r\n\r\n" not in answer:
                answer += await stream.receive()
        head, _, rest = answer.partition(b"\r\n\r\n")
        yield stream, head.split(b"\r\n"), rest


async def raw_handshake(sb: Sandbox, query: str) -> tuple[bytes, bytes]:
    """The status line and body the server answers a hand-made upgrade request with."""
    async with raw_upgrade(sb, query) as (stream, head, body):
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        with anyio.fail_after(HANG_GUARD):
            while len(body) < length:
                body += await stream.receive()
    return head[0], body


def frame_opcodes(data: bytes) -> list[int]:
    """The opcodes of the (unmasked) server frames in ``data``: 1 text, 2 binary, 8 close."""
    opcodes, at = [], 0
    while at < len(data):
        opcodes.append(data[at] & 0x0F)
        length, at = data[at + 1] & 0x7F, at + 2
        if length >= 126:
            size = 2 if length == 126 else 8
            length, at = int.from_bytes(data[at : at + size], "big"), at + size
        at += length
    return opcodes


def status(answer: tuple[bytes, bytes]) -> int:
    return int(answer[0].split()[1])


# -- handshake -----------------------------------------------------------------------------


async def test_bad_credentials_get_a_real_http_403(sb: Sandbox) -> None:
    wrong = {
        "wrong token": f"api_key={sb.api_key}&access_token=wrong",
        "wrong api_key": f"api_key=other&access_token={sb.access_token}",
        "nothing": "",
    }
    for query in wrong.values():
        line, body = await raw_handshake(sb, query)
        assert line.startswith(b"HTTP/1.1 403 ")
        assert json.loads(body)["error_type"] == "TokenException"
        assert sb.access_token.encode() not in body
    with pytest.raises(WebSocketUpgradeError) as info:
        async with connect(sb, api_key=sb.api_key, access_token="wrong"):
            pass
    assert info.value.response.status_code == 403
    assert sb.state.stats.ws_connections_refused == len(wrong) + 1
    assert sb.state.stats.ws_connections == 0


async def test_kite_web_handshake_uses_user_id_and_enctoken(sb: Sandbox) -> None:
    web = {"api_key": "kitefront", "user_id": sb.user_id, "uid": "1", "user-agent": "kite3-web"}
    async with connect(sb, **web, enctoken=sb.enctoken) as ws:
        await send(ws, "subscribe", [tokens(sb)["NSE"]])
        assert packet_lengths(await next_frame(ws)) == {tokens(sb)["NSE"]: 44}
    query = str(httpx.QueryParams({**web, "enctoken": "wrong"}))
    assert status(await raw_handshake(sb, query)) == 403


async def test_expired_session_refuses_handshakes_and_closes_open_connections(
    sb: Sandbox,
) -> None:
    async with connect(sb) as ws:
        sb.expire_session()
        with pytest.raises(WebSocketDisconnect) as info:
            await next_message(ws, lambda d: False)
        assert info.value.code == EXPIRED_CLOSE_CODE
    query = f"api_key={sb.api_key}&access_token={sb.access_token}"
    assert status(await raw_handshake(sb, query)) == 403


async def test_session_expired_fault_flag_is_read_live(sb: Sandbox) -> None:
    query = f"api_key={sb.api_key}&access_token={sb.access_token}"
    sb.faults.session_expired = True
    assert status(await raw_handshake(sb, query)) == 403
    sb.faults.session_expired = False
    assert status(await raw_handshake(sb, query)) == 101


async def test_connections_per_api_key_are_limited(sb: Sandbox) -> None:
    limit = sb.state.config.max_ws_per_api_key
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(limit):
            await stack.enter_async_context(connect(sb))
        with pytest.raises(WebSocketUpgradeError) as info:
            async with connect(sb):
                pass
        assert info.value.response.status_code == 429
        line, body = await raw_handshake(sb, f"api_key={sb.api_key}&access_token={sb.access_token}")
        assert line.startswith(b"HTTP/1.1 429 ")
        assert json.loads(body)["error_type"] == "NetworkException"
        assert sb.state.stats.ws_connections_refused == 2
        # Kite Web connections are counted per user, apart from the app's api_key
        web = {"api_key": "kitefront", "user_id": sb.user_id, "enctoken": sb.enctoken}
        async with connect(sb, **web):
            pass
    # the slots are freed when the connections close
    with anyio.fail_after(HANG_GUARD):
        while True:
            try:
                async with connect(sb):
                    break
            except WebSocketUpgradeError:
                await anyio.sleep(0.05)
    assert sb.state.stats.ws_connections == limit + 2


# -- subscriptions and modes ---------------------------------------------------------------


async def test_modes_give_kite_packet_kinds_and_lengths_including_indices(sb: Sandbox) -> None:
    by_segment = tokens(sb)
    chosen = [by_segment[s] for s in ("NSE", "INDICES", "CDS-FUT", "BCD-FUT", "MCX-FUT")]
    index = by_segment["INDICES"]
    async with connect(sb) as ws:
        await send(ws, "subscribe", chosen)
        for mode in ("quote", "full", "ltp", "quote"):
            await send(ws, "mode", [mode, chosen])
            expected = {t: EXPECTED_LENGTHS[mode, t == index] for t in chosen}
            frame = await next_frame(ws, lambda f, e=expected: packet_lengths(f) == e)  # type: ignore[misc]
            malformed: list[MalformedPacket] = []
            ticks = decode_frame(frame, malformed.append)
            assert not malformed
            assert [t.instrument_token for t in ticks] == chosen
            for tick in ticks:
                assert type(tick) is EXPECTED_KINDS[mode, tick.instrument_token == index]
                assert tick.mode == mode
                # a still market: the tick is the sandbox's state, to the wire's precision
                state = snapshot(sb.state.market, tick.instrument_token, mode)
                assert tick == decode_frame(encode_frame([state]))[0]


async def test_ticks_follow_each_market_step(sb: Sandbox) -> None:
    chosen = [tokens(sb)["NSE"], tokens(sb)["INDICES"], tokens(sb)["NFO-OPT"]]

    def state_frame() -> bytes:
        return encode_frame(snapshot(sb.state.market, t, "full") for t in chosen)

    async with connect(sb) as ws:
        await send(ws, "subscribe", chosen)
        await send(ws, "mode", ["full", chosen])
        for _ in range(3):
            expected = state_frame()
            assert await next_frame(ws, lambda f, e=expected: f == e) == expected  # type: ignore[misc]
            sb.step_market()
            assert state_frame() != expected  # the market moved, and so must the frames


async def test_flat_out_ticking_keeps_the_server_responsive() -> None:
    async with (
        Sandbox(SandboxConfig(tick_interval=0.0)) as sb,
        connect(sb) as ws,
        httpx.AsyncClient(base_url=sb.root_url, timeout=HANG_GUARD) as rest,
    ):
        chosen = [t for t, i in sb.state.market.instruments.items() if i.segment != "INDICES"]
        await send(ws, "subscribe", chosen[:200])
        await send(ws, "mode", ["full", chosen[:200]])
        await next_frame(ws, lambda f: len(packet_lengths(f)) == 200)
        # the client reads nothing now: the server's sender is blocked on a full socket
        headers = {"Authorization": f"token {sb.api_key}:{sb.access_token}"}
        for _ in range(3):
            assert (await rest.get("/user/profile", headers=headers)).status_code == 200
        for _ in range(100):  # and the stream goes on
            assert len(packet_lengths(await next_frame(ws))) == 200
        assert sb.state.stats.ws_frames_sent >= 101


async def test_subscribe_defaults_to_quote_and_unsubscribe_stops_ticks(sb: Sandbox) -> None:
    nse, mcx = tokens(sb)["NSE"], tokens(sb)["MCX-FUT"]
    async with connect(sb) as ws:
        await send(ws, "subscribe", [nse, mcx])
        assert packet_lengths(await next_frame(ws)) == {nse: 44, mcx: 44}
        await send(ws, "mode", ["full", [mcx]])
        await next_frame(ws, lambda f: packet_lengths(f) == {nse: 44, mcx: 184})
        await send(ws, "unsubscribe", [nse])
        await next_frame(ws, lambda f: packet_lengths(f) == {mcx: 184})
        # subscribing again resets the mode to quote, as Kite's clients expect
        await send(ws, "subscribe", [mcx])
        await next_frame(ws, lambda f: packet_lengths(f) == {mcx: 44})
        await send(ws, "unsubscribe", [mcx])
        await next_message(ws, lambda d: d == HEARTBEAT)


async def test_unknown_tokens_are_ignored(sb: Sandbox) -> None:
    nse = tokens(sb)["NSE"]
    unknown = 1  # no instrument has this token
    assert unknown not in sb.state.market.instruments
    async with connect(sb) as ws:
        await send(ws, "subscribe", [unknown])
        assert await next_message(ws, lambda d: True) == HEARTBEAT  # nothing to tick: idle
        await send(ws, "subscribe", [unknown, nse])
        assert packet_lengths(await next_frame(ws)) == {nse: 44}


async def test_heartbeat_every_second_when_idle(sb: Sandbox) -> None:
    async with connect(sb) as ws:
        connected = anyio.current_time()
        assert await next_message(ws, lambda d: True) == HEARTBEAT
        assert anyio.current_time() - connected >= 0.8


async def test_malformed_client_messages_get_error_frames_and_the_connection_stays(
    sb: Sandbox,
) -> None:
    nse = tokens(sb)["NSE"]
    bad_messages = [
        "not json",
        "[1, 2]",
        json.dumps({"a": "dance", "v": [nse]}),
        json.dumps({"a": "subscribe", "v": "408065"}),
        json.dumps({"a": "subscribe", "v": [nse, "x"]}),
        json.dumps({"a": "mode", "v": ["fastest", [nse]]}),
        json.dumps({"a": "mode", "v": [nse]}),
    ]
    async with connect(sb) as ws:
        for message in bad_messages:
            await ws.send_text(message)
            record = decode_text(await next_text(ws))
            assert isinstance(record, FeedError), message
        await ws.send_bytes(b"\x00\x01")
        assert isinstance(decode_text(await next_text(ws)), FeedError)
        await send(ws, "subscribe", [nse])
        assert packet_lengths(await next_frame(ws)) == {nse: 44}


async def test_3000_tokens_per_connection_then_an_error_and_the_excess_refused(
    sb: Sandbox,
) -> None:
    limit = sb.state.config.max_tokens_per_ws
    assert limit == 3000
    known = [t for t, i in sb.state.market.instruments.items() if i.segment == "NSE"][:2]
    unknown = [t for t in range(10**9, 10**9 + limit) if t not in sb.state.market.instruments]
    async with connect(sb) as ws:
        await send(ws, "subscribe", unknown[: limit - 1])  # unknown tokens count, never tick
        await send(ws, "subscribe", known)  # one fits, one does not
        error = decode_text(await next_text(ws))
        assert isinstance(error, FeedError)
        assert "3000" in error.message
        assert packet_lengths(await next_frame(ws)) == {known[0]: 44}
        await send(ws, "unsubscribe", unknown[:1])
        await send(ws, "subscribe", known[1:])
        await next_frame(ws, lambda f: packet_lengths(f) == {known[0]: 44, known[1]: 44})


# -- order postbacks -----------------------------------------------------------------------


async def test_order_postbacks_arrive_as_text_frames_after_a_rest_order(sb: Sandbox) -> None:
    headers = {"X-Kite-Version": "3", "Authorization": f"token {sb.api_key}:{sb.access_token}"}
    order = {
        "exchange": "NSE",
        "tradingsymbol": sb.state.market.instruments[tokens(sb)["NSE"]].tradingsymbol,
        "transaction_type": "BUY",
        "quantity": "1",
        "product": "CNC",
        "order_type": "MARKET",
        "market_protection": "-1",
        "validity": "DAY",
    }
    async with (
        connect(sb) as ws,
        httpx.AsyncClient(base_url=sb.root_url, timeout=HANG_GUARD) as rest,
    ):
        reply = await rest.post("/orders/regular", data=order, headers=headers)
        assert reply.status_code == 200, reply.text
        order_id = reply.json()["data"]["order_id"]
        statuses = []
        while "COMPLETE" not in statuses:
            text = await next_text(ws)
            assert json.loads(text)["type"] == "order"
            update = decode_text(text)
            assert isinstance(update, OrderUpdate)
            assert update.order_id == order_id
            statuses.append(update.status)
        assert statuses[-1] == "COMPLETE"


# -- faults --------------------------------------------------------------------------------


async def test_drop_every_n_seconds_closes_the_connection(sb: Sandbox) -> None:
    sb.faults.ws_drop_every = 0.3
    async with connect(sb) as ws:
        start = anyio.current_time()
        with pytest.raises(WebSocketNetworkError):  # cut, no close frame
            await next_message(ws, lambda d: False)
        assert anyio.current_time() - start >= 0.2


async def test_drop_websockets_closes_every_connection_now(sb: Sandbox) -> None:
    async with connect(sb) as first, connect(sb) as second:
        sb.drop_websockets()
        for ws in (first, second):
            with pytest.raises(WebSocketNetworkError):
                await next_message(ws, lambda d: False)
    async with connect(sb) as ws:  # new connections are not affected
        await send(ws, "subscribe", [tokens(sb)["NSE"]])
        await next_frame(ws)


async def test_a_drop_closes_the_socket_without_a_close_frame(sb: Sandbox) -> None:
    query = f"api_key={sb.api_key}&access_token={sb.access_token}"
    async with raw_upgrade(sb, query) as (stream, head, data):
        assert head[0].startswith(b"HTTP/1.1 101 ")
        await stream.send(b"\x81\x80\x00\x00\x00\x00")  # an empty masked text frame
        with anyio.fail_after(HANG_GUARD):
            while not data.endswith(b'"}'):  # its error answer, a text frame
                data += await stream.receive()
        sb.drop_websockets()
        with anyio.fail_after(HANG_GUARD), contextlib.suppress(anyio.EndOfStream):
            while True:
                data += await stream.receive()
    # the connection ended with nothing after that answer: no close frame
    assert frame_opcodes(data) == [1]


async def test_malformed_binary_frames_mix_broken_and_good_packets(sb: Sandbox) -> None:
    nse, index = tokens(sb)["NSE"], tokens(sb)["INDICES"]
    sb.faults.ws_malformed_binary = True
    malformed: list[MalformedPacket] = []
    good: list[int] = []
    async with connect(sb) as ws:
        await send(ws, "subscribe", [nse, index])
        while len(malformed) < 3:
            ticks = decode_frame(await next_frame(ws), malformed.append)
            good.extend(t.instrument_token for t in ticks)
    assert {nse, index} <= set(good)


async def test_malformed_text_frames(sb: Sandbox) -> None:
    sb.faults.ws_malformed_text = True
    async with connect(sb) as ws:
        await send(ws, "subscribe", [tokens(sb)["NSE"]])  # a broken text after each tick frame
        seen = [decode_text(await next_text(ws)) for _ in range(3)]
    assert all(isinstance(record, MalformedPacket) for record in seen)


async def test_silence_sends_nothing_until_switched_off(sb: Sandbox) -> None:
    sb.faults.ws_silence = True
    async with connect(sb) as ws:
        await send(ws, "subscribe", [tokens(sb)["NSE"]])
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=1.5)  # no tick, no heartbeat
        sb.faults.ws_silence = False
        await next_frame(ws)


async def test_admin_endpoints_switch_ticker_faults_live(sb: Sandbox) -> None:
    async with (
        connect(sb) as ws,
        httpx.AsyncClient(base_url=sb.root_url, timeout=HANG_GUARD) as admin,
    ):
        await send(ws, "subscribe", [tokens(sb)["NSE"]])
        await next_frame(ws)
        reply = await admin.post("/__sandbox__/faults", json={"ws_malformed_text": True})
        assert reply.status_code == 200
        assert isinstance(decode_text(await next_text(ws)), MalformedPacket)
        assert (await admin.post("/__sandbox__/drop_websockets")).status_code == 200
        with pytest.raises(WebSocketNetworkError):
            await next_message(ws, lambda d: False)


async def test_logout_closes_the_tickers_of_that_access_token(sb: Sandbox) -> None:
    async with (
        connect(sb) as ws,
        httpx.AsyncClient(base_url=sb.root_url, timeout=HANG_GUARD) as rest,
    ):
        params = {"api_key": sb.api_key, "access_token": sb.access_token}
        reply = await rest.delete("/session/token", params=params, headers={"X-Kite-Version": "3"})
        assert reply.status_code == 200
        with pytest.raises(WebSocketDisconnect) as info:
            await next_message(ws, lambda d: False)
        assert info.value.code == EXPIRED_CLOSE_CODE


async def test_heartbeats_fill_the_gaps_between_slow_ticks() -> None:
    async with Sandbox(SandboxConfig(tick_interval=2.5)) as sb, connect(sb) as ws:
        await send(ws, "subscribe", [tokens(sb)["NSE"]])
        assert len(await next_message(ws, lambda d: True)) > 2  # the first frame comes at once
        assert await next_message(ws, lambda d: True) == HEARTBEAT  # then silence is filled


async def test_stats_count_connections_frames_and_ticks(sb: Sandbox) -> None:
    chosen = sorted(sb.state.market.instruments)[:5]
    async with connect(sb) as ws:
        await send(ws, "subscribe", chosen)
        for _ in range(3):
            await next_frame(ws)
    stats = sb.state.stats
    assert stats.ws_connections == 1
    assert stats.ws_frames_sent >= 3
    assert stats.ws_ticks_sent >= 3 * len(chosen)


async def test_sandbox_shutdown_ends_open_connections() -> None:
    ended: list[BaseException] = []

    async def hold_connection(sb: Sandbox, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        # the whole connection lives in this task: opened, read, ended and closed here
        async with connect(sb) as ws:
            await send(ws, "subscribe", [tokens(sb)["NSE"]])
            await next_frame(ws)
            task_status.started()
            try:
                await next_message(ws, lambda d: False)
            except (WebSocketDisconnect, WebSocketNetworkError) as end:
                ended.append(end)

    # the sandbox (inner) shuts down with the connection open; the group waits for the client
    async with (
        anyio.create_task_group() as tg,
        Sandbox(SandboxConfig(tick_interval=0.05)) as sb,
    ):
        await tg.start(hold_connection, sb)
    # the client saw the end of the connection, not a hang
    assert len(ended) == 1
