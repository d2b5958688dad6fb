"""A sandbox that never answers 500: bad input gets Kite's 400 body (or the documented admin
400) and changes nothing; malformed ticker messages get an error frame on an open connection;
a client that goes away is not an error. Property tests throw malformed requests at every
route and malformed messages at the ticker.

Hypothesis drives the examples from a worker thread; each example runs its request on the
test's event loop (``anyio.from_thread.run``), so the sandbox serves on asyncio and on trio.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs
import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.sandbox._kite._rest import kite_routes, session_routes
from aio_trader.sandbox.config import Faults

HANG_GUARD = 30.0
#: Requests per property run: modest so CI stays quick (SANDBOX_FUZZ_EXAMPLES=3000 to dig).
FUZZ_EXAMPLES = int(os.environ.get("SANDBOX_FUZZ_EXAMPLES", "150"))
INFY = 408065
DEEP = "[" * 100_000 + "]" * 100_000  # past the interpreter's recursion limit
NESTED = "[" * 40 + "]" * 40  # within it, past the sandbox's depth limit


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(seed=2, market_interval=None, rate_limit_scale=1000, tick_interval=5)
    async with Sandbox(config) as s:
        yield s


def auth(sb: Sandbox) -> dict[str, str]:
    return {"X-Kite-Version": "3", "Authorization": f"token {sb.api_key}:{sb.access_token}"}


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sb.root_url, headers=auth(sb), timeout=HANG_GUARD) as c:
        yield c


def input_error(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["status"], body["error_type"]) == ("error", "InputException")
    return str(body["message"])


# -- the findings, one by one -------------------------------------------------------------------


async def test_a_multipart_body_without_boundary_is_a_400(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    for content_type in ("multipart/form-data", "multipart/form-data; boundary="):
        response = await client.post(
            "/orders/regular",
            content=b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n",
            headers={"content-type": content_type},
        )
        input_error(response)
    broken = await client.post(
        "/orders/regular",
        content=b"no parts at all",
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code == 400, broken.text
    assert sb.state.book.orders == {}


@pytest.mark.parametrize("body", [DEEP, NESTED, '{"a": NaN}', "[Infinity]"])
async def test_deep_or_non_finite_json_bodies_are_a_400(
    client: httpx.AsyncClient, body: str
) -> None:
    for path in ("/margins/orders", "/margins/basket", "/charges/orders"):
        response = await client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        assert input_error(response) == "Invalid JSON body."


@pytest.mark.parametrize("digits", ["²", "١٢", "߁", "1²"])
async def test_non_ascii_digits_in_numbers_are_a_400(
    sb: Sandbox, client: httpx.AsyncClient, digits: str
) -> None:
    segment = quote(digits)
    for call in (
        client.get(f"/gtt/triggers/{segment}"),
        client.put(f"/gtt/triggers/{segment}", data={"type": "single"}),
        client.delete(f"/gtt/triggers/{segment}"),
        client.get(f"/instruments/historical/{segment}/minute", params={"from": "x", "to": "y"}),
        client.post("/__sandbox__/step", params={"steps": digits}),
        client.post(
            "/mf/sips",
            data={"tradingsymbol": "INF179K01VY8", "amount": "1000", "instalments": digits},
        ),
        client.post(
            "/orders/regular",
            data={
                "exchange": "NSE",
                "tradingsymbol": "INFY",
                "transaction_type": "BUY",
                "order_type": "LIMIT",
                "product": "CNC",
                "price": "100",
                "quantity": digits,
            },
        ),
    ):
        input_error(await call)
    assert sb.state.market.steps == 0
    assert sb.state.book.orders == {}
    # an unknown key in a quote is left out, as Kite does (and is no error)
    response = await client.get("/quote/ltp", params={"i": ["NSE:INFY", digits]})
    assert list(response.json()["data"]) == ["NSE:INFY"]


@pytest.mark.parametrize(
    "body",
    [
        '{"latency": Infinity}',
        '{"latency": NaN}',
        '{"latency": 1e999}',
        '{"latency": 61}',
        '{"ws_drop_every": -Infinity}',
        '{"latency": 0.5, "http_5xx_burst": -1}',
        '{"session_expired": true, "latency": "slow"}',
        '{"latency": 0.5, "nonsense": 1}',
        DEEP,
        '["latency", 1]',
        "not json",
    ],
)
async def test_bad_fault_values_are_a_400_that_changes_nothing(
    sb: Sandbox, client: httpx.AsyncClient, body: str
) -> None:
    before = attrs.asdict(sb.faults)
    response = await client.post("/__sandbox__/faults", content=body)
    input_error(response)
    assert attrs.asdict(sb.faults) == before
    assert (await client.get("/__sandbox__/faults")).json()["data"] == before
    assert (await client.get("/user/profile")).status_code == 200  # no hang, no fault


async def test_a_deeply_nested_ticker_message_gets_an_error_frame_and_the_connection_stays(
    sb: Sandbox,
) -> None:
    url = f"{sb.ticker_url}?api_key={sb.api_key}&access_token={sb.access_token}"
    async with (
        httpx.AsyncClient(timeout=HANG_GUARD) as http,
        aconnect_ws(url, http, max_message_size_bytes=2**22) as ws,
    ):
        for message in (DEEP, NESTED, '{"a": "subscribe", "v": ' + DEEP + "}"):
            await ws.send_text(message)
            error = await next_text(ws)
            assert json.loads(error)["type"] == "error"
        await ws.send_text(json.dumps({"a": "subscribe", "v": [INFY]}))
        frame = await next_binary(ws)
        assert len(frame) > 2  # a tick frame: the connection is alive and serving


async def next_text(ws: AsyncWebSocketSession) -> str:
    while True:
        message = await ws.receive()
        if hasattr(message, "data") and isinstance(message.data, str):
            return message.data


async def next_binary(ws: AsyncWebSocketSession) -> bytes:
    while True:
        data = await ws.receive_bytes()
        if len(data) > 1:  # not a heartbeat
            return data


async def test_a_client_that_goes_away_mid_request_is_no_error(
    sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    head = (
        f"POST /orders/regular HTTP/1.1\r\nHost: {sb.host}\r\n"
        f"Authorization: token {sb.api_key}:{sb.access_token}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
        "exchange=NSE&trading"
    ).encode()
    for _ in range(3):
        async with await anyio.connect_tcp(sb.host, sb.port) as stream:
            await stream.send(head)
    with anyio.fail_after(HANG_GUARD):  # a hang guard, not a timing assertion
        while sb.state.stats.client_disconnects < 3:  # noqa: ASYNC110 - polls a counter
            await anyio.sleep(0.01)
    assert sb.state.book.orders == {}
    async with httpx.AsyncClient(base_url=sb.root_url, headers=auth(sb)) as client:
        assert (await client.get("/user/profile")).status_code == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    assert "Internal error" not in caplog.text


# -- properties: malformed requests at every route, malformed ticker messages --------------------

ADMIN = [
    ("/__sandbox__/ping", "GET"),
    ("/__sandbox__/faults", "GET"),
    ("/__sandbox__/drop_websockets", "POST"),
    ("/__sandbox__/step", "POST"),
    ("/__sandbox__/stats", "GET"),
]


def every_route() -> list[tuple[str, str]]:
    routes = []
    for route in [*kite_routes(), *session_routes()]:
        assert isinstance(route, Route)
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                routes.append((route.path, method))
                if not route.path.startswith(("/session", "/connect", "/api/")):
                    routes.append(("/oms" + route.path, method))
    return routes + ADMIN


NAMES = [
    "exchange", "tradingsymbol", "transaction_type", "quantity", "product", "order_type",
    "price", "trigger_price", "validity", "validity_ttl", "disclosed_quantity",
    "market_protection", "tag", "autoslice", "iceberg_legs", "iceberg_quantity",
    "auction_number", "algo_id", "i", "from", "to", "oi", "continuous", "type", "condition",
    "orders", "uuid", "status", "steps", "amount", "instalments", "frequency", "api_key",
    "checksum", "request_token", "access_token", "refresh_token", "user_id", "password",
    "request_id", "twofa_value", "name", "lhs_exchange", "lhs_tradingsymbol", "operator",
    "rhs_type", "rhs_constant", "basket", "position_type", "old_product", "new_product",
    "mode", "consider_positions", "segment",
]  # fmt: skip
CONDITION = '{"exchange": "NSE", "tradingsymbol": "INFY", "trigger_values": [1], "last_price": 2}'
GTT_ORDERS = '[{"transaction_type": "BUY", "quantity": 1, "order_type": "LIMIT", "product": "CNC"}]'
VALUES = [
    "", " ", "NSE", "NFO", "MCX", "INDICES", "INFY", "NIFTY 50", "NIFTY26DECFUT", "BUY", "SELL",
    "1", "0", "-1", "75", "2250", "1e999", "nan", "-inf", "²", "١٢", "1.5", "99999999999999999999",
    "CNC", "MIS", "CO", "MARKET", "LIMIT", "SL", "SL-M", "IOC", "TTL", "true", "false",
    "regular", "co", "amo", "iceberg", "auction", "single", "two-leg", "ato", ">=",
    "2026-12-01 09:15:00", "2026-12-01T09:15:00", "[]", "{}", "[1, 2]", '{"a": [', NESTED,
    CONDITION, GTT_ORDERS,
    "\x00", "%", "NSE:INFY", "a" * 300,
]  # fmt: skip
SEGMENTS = ["regular", "co", "amo", "²", "-1", "0", "1", "99999999999999999999", "NSE",
            "minute", "day", "buy", "equity", "..", "%00", "a" * 200]  # fmt: skip

texts = st.one_of(st.sampled_from(VALUES), st.text(max_size=24))
loose_fields = st.dictionaries(
    st.one_of(st.sampled_from(NAMES), st.text(max_size=8)), texts, max_size=8
)
#: A valid order (or GTT, alert...) form with a few fields changed: reaches the deep checks.
VALID = {
    "exchange": "NSE", "tradingsymbol": "INFY", "transaction_type": "BUY", "quantity": "1",
    "product": "CNC", "order_type": "LIMIT", "price": "100", "market_protection": "-1",
    "type": "single", "name": "a", "lhs_exchange": "NSE", "lhs_tradingsymbol": "INFY",
    "operator": ">=", "rhs_type": "constant", "rhs_constant": "1", "amount": "1000",
    "condition": CONDITION, "orders": GTT_ORDERS, "from": "2026-12-01 09:15:00",
    "to": "2026-12-01 09:20:00", "position_type": "day", "old_product": "MIS",
    "new_product": "CNC", "frequency": "weekly",
}  # fmt: skip
near_valid = st.builds(
    lambda changes: {**VALID, **changes},
    st.dictionaries(st.sampled_from(NAMES), texts | st.sampled_from(["1e300", "1e12"]), max_size=3),
)
fields = loose_fields | near_valid
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NAMES), inner),
    max_leaves=12,
)
bodies = st.one_of(
    st.just(("none", None)),
    st.tuples(st.just("form"), fields),
    st.tuples(st.just("json"), json_values),
    st.tuples(
        st.sampled_from(
            [
                "multipart/form-data",
                "multipart/form-data; boundary=",
                "multipart/form-data; boundary=b",
                "application/json",
                "application/x-www-form-urlencoded",
                "text/plain",
            ]
        ),
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from([DEEP.encode(), NESTED.encode(), b"--b\r\n\r\n", b"%zz=%"]),
        ),
    ),
)


@st.composite
def malformed_requests(draw: st.DrawFn) -> dict[str, Any]:
    path, method = draw(st.sampled_from(every_route()))
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        segment = draw(st.one_of(st.sampled_from(SEGMENTS), st.text(min_size=1, max_size=12)))
        path = path[:start] + quote(segment, safe="") + path[end + 1 :]
    kind, body = draw(bodies)
    request: dict[str, Any] = {"method": method, "url": path, "params": draw(loose_fields)}
    if method in ("POST", "PUT") or draw(st.booleans()):
        if kind == "form":
            request["data"] = body
        elif kind == "json":  # NaN and Infinity too, which httpx's json= refuses
            request["content"] = json.dumps(body, allow_nan=True)
            request["headers"] = {"content-type": "application/json"}
        elif kind != "none":
            request["content"] = body
            request["headers"] = {"content-type": kind}
    return request


async def drive(examples: Callable[[], None]) -> None:
    """Run a hypothesis test (sync) in a worker thread; it calls back into this event loop."""
    await anyio.to_thread.run_sync(examples)


async def test_malformed_requests_at_every_route_never_get_a_5xx(sb: Sandbox) -> None:
    seen: list[int] = []
    async with httpx.AsyncClient(base_url=sb.root_url, timeout=HANG_GUARD) as client:

        async def send(request: dict[str, Any], authorised: bool) -> int:
            headers = {**(auth(sb) if authorised else {}), **request.pop("headers", {})}
            with anyio.fail_after(HANG_GUARD):
                response = await client.request(**request, headers=headers)
            sb.state.faults.update(attrs.asdict(Faults()))  # an admin call may have set one
            sb.state.start_session()  # a logout may have ended it
            return response.status_code

        @settings(max_examples=FUZZ_EXAMPLES, suppress_health_check=list(HealthCheck))
        @given(malformed_requests(), st.booleans() | st.just(True))
        def examples(request: dict[str, Any], authorised: bool) -> None:
            shown = repr(request)[:300]
            status = anyio.from_thread.run(send, dict(request), authorised)
            seen.append(status)
            assert status < 500, f"{status} for {shown}"

        await drive(examples)
    assert len(seen) > 0
    assert max(seen) < 500
    assert any(status == 400 for status in seen)


async def test_malformed_fault_changes_never_get_a_5xx_nor_apply(sb: Sandbox) -> None:
    names = [field.name for field in attrs.fields(Faults)]
    changes = st.dictionaries(
        st.sampled_from(names) | st.text(max_size=6),
        json_values | st.sampled_from([-1, 61, 1e300, -0.0]),
        max_size=4,
    )
    async with httpx.AsyncClient(base_url=sb.root_url, timeout=HANG_GUARD) as client:

        async def send(body: bytes) -> tuple[int, dict[str, Any]]:
            response = await client.post("/__sandbox__/faults", content=body)
            state = attrs.asdict(sb.state.faults)
            sb.state.faults.update(attrs.asdict(Faults()))
            return response.status_code, state

        @settings(max_examples=100, suppress_health_check=list(HealthCheck))
        @given(changes | json_values)
        def examples(value: Any) -> None:
            body = json.dumps(value, allow_nan=True).encode()
            status, after = anyio.from_thread.run(send, body)
            assert status in (200, 400), status
            if status == 400:
                assert after == attrs.asdict(Faults())  # nothing applied

        await drive(examples)


ticker_messages = st.one_of(
    st.text(max_size=40),
    st.sampled_from([DEEP, NESTED, "null", "[]", '{"a": "mode", "v": ["full", [' + NESTED + "]]}"]),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"a": st.sampled_from(["subscribe", "unsubscribe", "mode", "x"]) | texts, "v": json_values}
    ).map(json.dumps),
)


async def test_malformed_ticker_messages_keep_the_connection_open(sb: Sandbox) -> None:
    url = f"{sb.ticker_url}?api_key={sb.api_key}&access_token={sb.access_token}"
    probe = json.dumps({"a": "probe-7f3a"})
    async with (
        httpx.AsyncClient(timeout=HANG_GUARD) as http,
        aconnect_ws(url, http, max_message_size_bytes=2**24) as ws,
    ):

        async def exchange(message: str | bytes) -> None:
            with anyio.fail_after(HANG_GUARD):
                if isinstance(message, bytes):
                    await ws.send_bytes(message)
                else:
                    await ws.send_text(message)
                await ws.send_text(probe)  # answered in order: its error ends this example
                while "probe-7f3a" not in await next_text(ws):
                    pass

        @settings(max_examples=100, suppress_health_check=list(HealthCheck))
        @given(ticker_messages | st.binary(max_size=64))
        def examples(message: str | bytes) -> None:
            anyio.from_thread.run(exchange, message)

        await drive(examples)
        await ws.send_text(json.dumps({"a": "subscribe", "v": [INFY]}))
        assert len(await next_binary(ws)) > 2
    assert sb.state.stats.ws_connections == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"price": "1e308"},
        {"trigger_price": "1e308", "order_type": "SL"},
        {"quantity": "1e18"},
        {"quantity": "99999999999999999999"},
        {"validity": "TTL", "validity_ttl": "1e18"},
    ],
)
async def test_numbers_too_large_for_any_order_are_a_400(
    sb: Sandbox, client: httpx.AsyncClient, changes: dict[str, str]
) -> None:
    form = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "transaction_type": "BUY",
        "quantity": "1",
        "product": "CNC",
        "order_type": "LIMIT",
        "price": "100",
    }
    input_error(await client.post("/orders/regular", data={**form, **changes}))
    for path in ("/margins/orders", "/margins/basket", "/charges/orders"):
        big = [{**form, "quantity": 10**18, "price": 1e300}]  # inf once multiplied
        input_error(await client.post(path, json=big))
    assert sb.state.book.orders == {}


@pytest.mark.parametrize(
    "span",
    [
        ("9999-12-30", "9999-12-31"),
        ("0001-01-01", "0001-01-02"),
        ("0001-01-01T00:00:00-05:00", "0001-01-02T00:00:00"),
    ],
)
async def test_dates_past_the_candle_clock_are_a_400(
    client: httpx.AsyncClient, span: tuple[str, str]
) -> None:
    params = {"from": span[0], "to": span[1]}
    input_error(await client.get(f"/instruments/historical/{INFY}/day", params=params))
