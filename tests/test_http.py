"""AsyncRequest against a real, scripted HTTP server on loopback (both backends)."""

from __future__ import annotations

import gc
import json
import logging
import socket
import sys
import warnings
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
import pytest
from httpserver import Drop, HTTPServer, Reply, Stall, json_reply, kite_error

from aio_trader.backoff import Backoff
from aio_trader.errors import (
    AioTraderError,
    BrokerError,
    BrokerUnavailable,
    ClientClosedError,
    ConnectError,
    ConnectionLost,
    DataException,
    GeneralException,
    InputException,
    InvalidInput,
    KiteError,
    NetworkException,
    OutcomeUnknownError,
    PermissionDenied,
    PermissionException,
    RateLimited,
    RateLimitError,
    RequestTimeout,
    SessionExpired,
    TokenException,
    TransportError,
    UnexpectedStatus,
)
from aio_trader.http import AsyncRequest
from aio_trader.kite._errors import kite_error_from_response
from aio_trader.ratelimit import Rate, RateLimiter

ATTEMPTS = 3
FAST = Backoff(base=0.001, factor=2, cap=0.005, max_attempts=ATTEMPTS)
#: These tests pin Kite's answers through AsyncRequest: it gets Kite's mapper.
KITE = kite_error_from_response


@pytest.fixture
async def server() -> AsyncIterator[HTTPServer]:
    async with anyio.create_task_group() as tg:
        srv = HTTPServer()
        await tg.start(srv.serve)
        yield srv
        tg.cancel_scope.cancel()


@pytest.fixture
async def http(server: HTTPServer) -> AsyncIterator[AsyncRequest]:
    async with AsyncRequest(server.url, error_mapper=KITE, backoff=FAST, timeout=5) as client:
        yield client


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- answers that are raised at once ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (400, "InputException", InputException),
        (403, "TokenException", TokenException),
        (403, "PermissionException", PermissionException),
        (429, "NetworkException", RateLimitError),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_400_403_429_raise_at_once(
    server: HTTPServer,
    http: AsyncRequest,
    method: str,
    status: int,
    error_type: str,
    cls: type[KiteError],
) -> None:
    server.default = kite_error(status, error_type, "refused: try again later")
    with pytest.raises(cls) as caught:
        await http.request(method, "/orders")
    assert isinstance(caught.value, RuntimeError)
    assert caught.value.status_code == status
    assert caught.value.error_type == error_type
    assert caught.value.message == "refused: try again later"
    assert len(server.requests) == 1


# -- retried answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (500, "GeneralException", GeneralException),
        (502, "DataException", DataException),
        (503, "NetworkException", NetworkException),
    ],
)
async def test_5xx_retried_up_to_the_limit_then_raised(
    server: HTTPServer, http: AsyncRequest, status: int, error_type: str, cls: type[KiteError]
) -> None:
    server.script(kite_error(status, error_type, "first"), kite_error(status, error_type, "second"))
    server.default = kite_error(status, error_type, "last")
    with pytest.raises(cls) as caught:
        await http.get("/quote")
    assert caught.value.message == "last"  # the last error, not the first
    assert caught.value.status_code == status
    assert len(server.requests) == ATTEMPTS


async def test_5xx_then_success_returns_the_body(server: HTTPServer, http: AsyncRequest) -> None:
    server.script(kite_error(503, "NetworkException", "busy"), Reply(502, b"<html>gateway</html>"))
    server.default = json_reply({"NSE:INFY": {"last_price": 1500.5}})
    body = await http.get("/quote/ltp")
    assert body == {"status": "success", "data": {"NSE:INFY": {"last_price": 1500.5}}}
    assert len(server.requests) == 3


async def test_dropped_connections_are_retried_for_get(
    server: HTTPServer, http: AsyncRequest
) -> None:
    server.default = Drop()
    with pytest.raises(ConnectionLost):
        await http.get("/orders")
    assert len(server.requests) == ATTEMPTS


async def test_dropped_then_answered_get_succeeds(server: HTTPServer, http: AsyncRequest) -> None:
    server.script(Drop())
    assert await http.get("/user/profile") == {"status": "success", "data": {}}
    assert len(server.requests) == 2


# -- never send a non-idempotent request twice ------------------------------------------


async def test_post_dropped_after_the_server_received_it_is_sent_once(
    server: HTTPServer, http: AsyncRequest
) -> None:
    server.default = Drop()
    with pytest.raises(OutcomeUnknownError) as caught:
        await http.post("/orders/regular", data={"tradingsymbol": "INFY", "quantity": 1})
    assert isinstance(caught.value.__cause__, ConnectionLost)
    assert len(server.requests) == 1
    assert server.requests[0].body == b"tradingsymbol=INFY&quantity=1"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_non_get_methods_are_not_idempotent_by_default(
    server: HTTPServer, http: AsyncRequest, method: str
) -> None:
    server.default = Drop()
    with pytest.raises(OutcomeUnknownError):
        await http.request(method, "/orders/regular/151220000000000")
    assert [r.method for r in server.requests] == [method]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_explicitly_idempotent_requests_are_retried_with_the_same_body(
    server: HTTPServer, http: AsyncRequest, method: str
) -> None:
    server.default = Drop()
    with pytest.raises(ConnectionLost):
        await http.request(method, "/session/token", data={"a": "1"}, idempotent=True)
    assert [(r.method, r.body) for r in server.requests] == [(method, b"a=1")] * ATTEMPTS


async def test_get_marked_not_idempotent_is_sent_once(
    server: HTTPServer, http: AsyncRequest
) -> None:
    server.default = Drop()
    with pytest.raises(OutcomeUnknownError):
        await http.get("/orders", idempotent=False)
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_post_5xx_is_not_retried_and_outcome_unknown(
    server: HTTPServer, http: AsyncRequest, status: int
) -> None:
    server.default = kite_error(status, "NetworkException", "upstream trouble")
    with pytest.raises(OutcomeUnknownError) as caught:
        await http.post("/orders/regular", data={"quantity": 1})
    cause = caught.value.__cause__
    assert isinstance(cause, KiteError)
    assert (cause.status_code, cause.error_type) == (status, "NetworkException")
    assert len(server.requests) == 1


async def test_post_timeout_is_not_retried_and_outcome_unknown(server: HTTPServer) -> None:
    server.default = Stall()
    async with AsyncRequest(server.url, error_mapper=KITE, backoff=FAST, timeout=0.2) as http:
        with pytest.raises(OutcomeUnknownError) as caught:
            await http.post("/orders/regular", data={"quantity": 1})
    assert isinstance(caught.value.__cause__, RequestTimeout)
    assert len(server.requests) == 1


async def test_get_timeout_is_retried_then_raised(server: HTTPServer, http: AsyncRequest) -> None:
    server.default = Stall()
    with pytest.raises(RequestTimeout):
        await http.get("/orders", timeout=0.2)  # per call; the client's default is 5 s
    assert len(server.requests) == ATTEMPTS


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_refused_connection_is_retried_even_for_post(
    method: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aio_trader.http")
    async with AsyncRequest(f"http://127.0.0.1:{closed_port()}", backoff=FAST) as http:
        with pytest.raises(ConnectError) as caught:
            await http.request(method, "/orders/regular")
    assert caught.value.never_sent
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == ATTEMPTS - 1


# -- decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b'{"a": [1, 2]}', {"a": [1, 2]}),
        ("application/json; charset=utf-8", b'{"b": "\xe2\x82\xb9"}', {"b": "₹"}),
        ("text/csv", b"instrument_token,tradingsymbol\n408065,INFY\n", None),
        ("text/plain; charset=utf-8", b"pong", "pong"),
        ("application/gzip", b"\x1f\x8b\x08\x00", b"\x1f\x8b\x08\x00"),
        ("application/octet-stream", b"\x00\x01\xff", b"\x00\x01\xff"),
    ],
)
async def test_bodies_are_decoded_by_content_type(
    server: HTTPServer, http: AsyncRequest, content_type: str, body: bytes, expected: object
) -> None:
    server.default = Reply(200, body, content_type)
    result = await http.get("/instruments")
    if expected is None:
        assert result == body.decode()
        assert isinstance(result, str)
    else:
        assert result == expected
        assert type(result) is type(expected)


async def test_undecodable_json_is_retried_for_get_then_raised(
    server: HTTPServer, http: AsyncRequest
) -> None:
    server.default = Reply(200, b"{not json")
    with pytest.raises(DataException) as caught:
        await http.get("/quote")
    assert caught.value.status_code == 200
    assert len(server.requests) == ATTEMPTS


async def test_undecodable_answer_to_post_is_outcome_unknown(
    server: HTTPServer, http: AsyncRequest
) -> None:
    server.default = Reply(200, b"")
    with pytest.raises(OutcomeUnknownError) as caught:
        await http.post("/orders/regular")
    assert isinstance(caught.value.__cause__, DataException)
    assert len(server.requests) == 1


# -- what is sent -------------------------------------------------------------------------


async def test_query_form_json_and_headers_are_sent(server: HTTPServer) -> None:
    headers = {"X-Kite-Version": "3", "Authorization": "token key:secret"}
    async with AsyncRequest(server.url, headers=headers, error_mapper=KITE, backoff=FAST) as http:
        await http.get("/quote", params={"i": ["NSE:INFY", "NSE:TCS"]})
        await http.get("/quote", params=[("i", "NSE:INFY"), ("i", "BSE:SENSEX")])
        await http.post("/orders/regular", data=[("a", "1"), ("a", "2"), ("b", "x y")])
        await http.put("/orders/regular/1", json={"quantity": 2}, headers={"X-Extra": "yes"})
        http.update_headers({"Authorization": None, "X-Kite-Version": "4"})
        await http.delete("/orders/regular/1")
    first, second, form, put, delete = server.requests
    assert first.query == "i=NSE%3AINFY&i=NSE%3ATCS"
    assert second.query == "i=NSE%3AINFY&i=BSE%3ASENSEX"
    assert first.headers["x-kite-version"] == "3"
    assert first.headers["authorization"] == "token key:secret"
    assert form.body == b"a=1&a=2&b=x+y"
    assert form.headers["content-type"] == "application/x-www-form-urlencoded"
    assert (put.method, put.body) == ("PUT", b'{"quantity":2}')
    assert put.headers["x-extra"] == "yes"
    assert delete.method == "DELETE"
    assert "authorization" not in delete.headers
    assert delete.headers["x-kite-version"] == "4"


async def test_logs_carry_method_path_status_but_no_secrets(
    server: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aio_trader")
    server.script(kite_error(503, "NetworkException", "busy"))
    headers = {"Authorization": "token key:SECRETTOKEN"}
    async with AsyncRequest(server.url, headers=headers, error_mapper=KITE, backoff=FAST) as http:
        await http.get("/quote", params={"access_token": "SECRETQUERY"})
    assert "GET /quote -> 503" in caplog.text
    assert "GET /quote -> 200" in caplog.text
    assert "SECRET" not in caplog.text
    assert "SECRET" not in repr(http)


# -- translation: no httpx exception escapes --------------------------------------------


async def test_no_httpx_exception_escapes(server: HTTPServer) -> None:
    async def failure(url: str, action: Reply | Drop | Stall | None, method: str) -> Exception:
        if action is not None:
            server.default = action
        try:
            async with AsyncRequest(url, error_mapper=KITE, backoff=FAST, timeout=0.2) as http:
                await http.request(method, "/x")
        except Exception as exc:
            return exc
        raise AssertionError("no error")

    refused = f"http://127.0.0.1:{closed_port()}"
    bad_gzip = Reply(200, b"not gzip", "text/plain", headers=(("Content-Encoding", "gzip"),))
    cases = [
        (refused, None, "GET", ConnectError),
        (refused, None, "POST", ConnectError),
        (server.url, Drop(), "GET", ConnectionLost),
        (server.url, Drop(), "POST", OutcomeUnknownError),
        (server.url, Stall(), "GET", RequestTimeout),
        (server.url, bad_gzip, "GET", TransportError),
        (server.url, bad_gzip, "POST", OutcomeUnknownError),
        ("ftp://127.0.0.1", None, "GET", ValueError),
        ("http://[::1", None, "GET", ValueError),
    ]
    for url, action, method, expected in cases:
        error = await failure(url, action, method)
        assert isinstance(error, expected), (url, action, method, error)
        assert not isinstance(error, httpx.HTTPError | httpx.InvalidURL | httpx.StreamError)
        assert isinstance(error, AioTraderError) or expected is ValueError


async def test_closed_client_raises_runtime_error(server: HTTPServer) -> None:
    http = AsyncRequest(server.url)
    async with http:
        pass
    assert http.closed
    with pytest.raises(RuntimeError, match="closed"):
        await http.get("/x")
    assert server.requests == []


# -- cancellation and rate limits -------------------------------------------------------


async def test_cancel_during_a_retry_wait_stops_the_loop(server: HTTPServer) -> None:
    server.default = kite_error(503, "NetworkException", "busy")
    finished = False

    async def get(http: AsyncRequest) -> None:
        nonlocal finished
        await http.get("/quote")
        finished = True

    async with (
        AsyncRequest(
            server.url, error_mapper=KITE, backoff=Backoff(base=30, max_attempts=5)
        ) as http,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(get, http)
        await server.wait_for_requests(1)
        await anyio.sleep(0.2)  # the 503 is in: the client is in its 30 s wait
        tg.cancel_scope.cancel()
    await anyio.sleep(0.1)
    assert not finished
    assert len(server.requests) == 1  # no attempt after the cancel


async def test_every_attempt_takes_a_rate_limit_slot(
    server: HTTPServer, http: AsyncRequest
) -> None:
    limiter = RateLimiter(Rate(2, 0.1))
    server.script(kite_error(503, "NetworkException", "busy"))
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(lambda: http.get("/quote", limiter=limiter))
    elapsed = anyio.current_time() - start
    assert limiter.statistics().acquired == 6  # five calls, one of them retried
    assert len(server.requests) == 6
    assert elapsed >= 0.2  # six slots at 2 per 0.1 s: the last no earlier than 0.2 s


# -- connections ----------------------------------------------------------------------------


async def test_max_connections_caps_the_requests_in_flight(server: HTTPServer) -> None:
    server.default = Stall()
    async with (
        AsyncRequest(
            server.url, error_mapper=KITE, backoff=FAST, timeout=5, max_connections=2
        ) as http,
        anyio.create_task_group() as tg,
    ):
        for _ in range(5):
            tg.start_soon(http.get, "/stall")
        await server.wait_for_requests(2)
        await anyio.sleep(0.1)  # the other three wait for a connection
        assert len(server.requests) == 2
        tg.cancel_scope.cancel()


def test_max_connections_below_one_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        AsyncRequest("http://127.0.0.1", max_connections=0)


async def test_aclose_under_cancellation_still_closes(server: HTTPServer) -> None:
    http = AsyncRequest(server.url)
    await http.open()
    await http.get("/x")
    with anyio.CancelScope() as scope:
        scope.cancel()
        await http.aclose()
    assert http.closed
    with pytest.raises(RuntimeError, match="closed"):
        await http.get("/x")


# -- what is never retried: statuses that do not heal (#10) ------------------------------


@pytest.mark.parametrize("status", [301, 307, 404, 405, 409, 418])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_3xx_404_405_other_4xx_raise_at_once(
    server: HTTPServer, http: AsyncRequest, method: str, status: int
) -> None:
    server.default = Reply(status, b"<html>nope</html>", "text/html")
    with pytest.raises(UnexpectedStatus) as caught:
        await http.request(method, "/nowhere")
    assert isinstance(caught.value, KiteError | RuntimeError)
    assert caught.value.status_code == status
    assert f"HTTP {status}" in str(caught.value)
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert len(server.requests) == 1


async def test_404_with_kites_error_type_keeps_its_class_and_is_not_retried(
    server: HTTPServer, http: AsyncRequest
) -> None:
    server.default = kite_error(404, "GeneralException", "Route not found")
    with pytest.raises(GeneralException) as caught:
        await http.get("/nowhere")
    assert caught.value.status_code == 404
    assert not caught.value.retryable
    assert len(server.requests) == 1


# -- configuration errors: before any I/O ---------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"base_url": "127.0.0.1:8000"}, ValueError),
        ({"base_url": "ws://127.0.0.1"}, ValueError),
        ({"base_url": "http://"}, ValueError),
        ({"base_url": 123}, TypeError),
        ({"base_url": "http://127.0.0.1", "timeout": 0}, ValueError),
        ({"base_url": "http://127.0.0.1", "timeout": -1}, ValueError),
        ({"base_url": "http://127.0.0.1", "timeout": float("nan")}, ValueError),
        ({"base_url": "http://127.0.0.1", "timeout": "7"}, TypeError),
        ({"base_url": "http://127.0.0.1", "max_connections": 2.5}, TypeError),
    ],
)
def test_bad_configuration_raises_in_the_constructor(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        AsyncRequest(**kwargs)  # type: ignore[arg-type]


async def test_bad_per_call_timeout_is_a_value_error_before_any_request(
    server: HTTPServer, http: AsyncRequest
) -> None:
    with pytest.raises(ValueError, match="timeout"):
        await http.get("/x", timeout=0)
    assert server.requests == []


# -- lifecycle: nothing owned before open ---------------------------------------------------


async def test_nothing_is_open_before_entry_and_a_call_fails_at_once(server: HTTPServer) -> None:
    http = AsyncRequest(server.url)
    assert not http.is_open
    assert not http.closed
    assert "not open" in repr(http)
    with pytest.raises(ClientClosedError, match="not open"):
        await http.get("/x")
    with pytest.raises(ClientClosedError):
        _ = http.client
    http.update_headers({"X-Early": "1"})  # allowed before open, used once open
    await http.open()
    await http.open()  # idempotent while open
    assert http.is_open
    await http.get("/x")
    await http.aclose()
    await http.aclose()  # idempotent
    with pytest.raises(ClientClosedError, match="closed"):
        await http.get("/x")
    with pytest.raises(ClientClosedError, match="reopened"):
        await http.open()
    assert len(server.requests) == 1
    assert server.requests[0].headers["x-early"] == "1"


async def test_aclose_without_open_is_fine(server: HTTPServer) -> None:
    http = AsyncRequest(server.url)
    await http.aclose()
    assert http.closed
    assert server.requests == []


# -- cancelling a POST leaves no unfinalised body generator (trio warns otherwise) ----------


async def test_cancelled_post_leaves_no_resource_warning() -> None:
    """A server that never reads: the 4 MB body blocks mid-write and the call is cancelled."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    accepted: list[anyio.abc.SocketStream] = []

    async def hold(stream: anyio.abc.SocketStream) -> None:
        accepted.append(stream)
        await anyio.sleep_forever()

    # Earlier tests' garbage is collected first, outside the check: only what this call
    # leaves behind counts (coredis, for one, leaves memory streams behind a Redis restart).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, hold)
            async with AsyncRequest(
                f"http://127.0.0.1:{port}", error_mapper=KITE, backoff=FAST
            ) as http:
                with anyio.move_on_after(0.3) as scope:
                    await http.post("/orders/regular", data={"x": "a" * 4_000_000})
                assert scope.cancelled_caught
            tg.cancel_scope.cancel()
        for stream in accepted:
            await stream.aclose()
        await listener.aclose()
        unraisable: list[object] = []
        hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
        try:
            gc.collect()
            await anyio.lowlevel.checkpoint()
            gc.collect()
        finally:
            sys.unraisablehook = hook
    assert unraisable == []  # httpx's own byte stream leaves its async generator here


# -- each route's URL is built once ---------------------------------------------------------


async def test_route_urls_are_built_once_and_match_httpx(server: HTTPServer) -> None:
    async with AsyncRequest(f"{server.url}/base", error_mapper=KITE, backoff=FAST) as http:
        await http.get("/quote/ltp", params={"i": ["NSE:INFY", "NSE:TCS"], "flag": True})
        await http.get("/quote/ltp", params=[("i", "BSE:SENSEX")])
        await http.get("/x?fixed=1", params={"more": "a b"})
        await http.get("/x?fixed=1")
        assert set(http._routes) == {"/quote/ltp", "/x?fixed=1"}
        for n in range(300):  # ids make routes open-ended: the cache stays bounded
            await http.get(f"/orders/{n}")
        assert len(http._routes) <= 256
    targets = [r.target for r in server.requests[:4]]
    assert targets == [
        "/base/quote/ltp?i=NSE%3AINFY&i=NSE%3ATCS&flag=true",
        "/base/quote/ltp?i=BSE%3ASENSEX",
        "/base/x?fixed=1&more=a+b",
        "/base/x?fixed=1",
    ]


# -- requests sent straight to the transport (no proxy, no redirects to follow) ------------


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy in the environment (where the tests run may set one)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.usefixtures("no_proxy")
async def test_direct_requests_are_the_ones_httpx_builds(server: HTTPServer) -> None:
    headers = {"X-Kite-Version": "3", "Authorization": "token key:secret"}
    async with AsyncRequest(server.url, headers=headers, error_mapper=KITE, backoff=FAST) as http:
        assert http._transport is not None  # the direct path is the one measured here
        await http.get("/quote/ltp", params={"i": "NSE:INFY"}, headers={"X-Extra": "1"})
        await http.post("/orders/regular", data={"a": "1"})
        client = http.client
        built = client.build_request(
            "GET", "/quote/ltp", params={"i": "NSE:INFY"}, headers={"X-Extra": "1"}
        )
        await client.send(built)
        form = client.build_request("POST", "/orders/regular", data={"a": "1"})
        await client.send(form)
    direct_get, direct_post, httpx_get, httpx_post = server.requests
    for ours, theirs in ((direct_get, httpx_get), (direct_post, httpx_post)):
        assert (ours.method, ours.target, ours.body) == (theirs.method, theirs.target, theirs.body)
        assert ours.headers == theirs.headers


@pytest.mark.usefixtures("no_proxy")
async def test_cookies_an_answer_sets_are_kept_and_sent_back(server: HTTPServer) -> None:
    server.script(
        Reply(headers=(("Set-Cookie", "enctoken=abc; Path=/"),)),
        Reply(),
    )
    async with AsyncRequest(server.url, error_mapper=KITE, backoff=FAST) as http:
        await http.post("/api/twofa", data={"twofa_value": "123456"})
        assert http.client.cookies.get("enctoken") == "abc"
        await http.get("/oms/user/profile")
    assert "cookie" not in server.requests[0].headers
    assert server.requests[1].headers["cookie"] == "enctoken=abc"


async def test_a_proxy_from_the_environment_is_used(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with AsyncRequest("http://kite.invalid", error_mapper=KITE, backoff=FAST) as http:
        assert http._transport is None  # through client.send, which mounts the proxy
        assert await http.get("/quote/ltp", params={"i": "NSE:INFY"}) == {
            "status": "success",
            "data": {},
        }
    assert server.requests[0].target == "http://kite.invalid/quote/ltp?i=NSE%3AINFY"


async def test_redirects_are_followed_when_asked(server: HTTPServer) -> None:
    server.script(Reply(302, b"", "text/plain", headers=(("Location", "/elsewhere"),)), Reply())
    async with AsyncRequest(
        server.url, error_mapper=KITE, backoff=FAST, follow_redirects=True
    ) as http:
        assert http._transport is None
        assert await http.get("/here") == {"status": "success", "data": {}}
    assert [r.target for r in server.requests] == ["/here", "/elsewhere"]


# -- the transport's check of idle keep-alive connections (aio_trader._transport) ---------


class KeepAliveServer:
    """HTTP/1.1 on loopback that keeps connections open, answering each request with
    ``{"status": "success", "data": n}``; it closes a connection after ``close_after``
    answers on it (a server dropping an idle keep-alive connection)."""

    def __init__(self, close_after: int = 0) -> None:
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []  # request lines
        self.closed = anyio.Event()
        self.port = 0

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        await listener.serve(self._handle)

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        from anyio.streams.buffered import BufferedByteReceiveStream

        self.connections += 1
        reader = BufferedByteReceiveStream(stream)
        answered = 0
        async with stream:
            while True:
                try:
                    head = await reader.receive_until(b"\r\n\r\n", 65536)
                except (anyio.EndOfStream, anyio.IncompleteRead):
                    return
                lines = head.split(b"\r\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.receive_exactly(length)
                self.requests.append(lines[0])
                body = b'{"status": "success", "data": %d}' % len(self.requests)
                await stream.send(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                answered += 1
                if answered == self.close_after:
                    break
        self.closed.set()


@pytest.fixture
async def keepalive() -> AsyncIterator[KeepAliveServer]:
    async with anyio.create_task_group() as tg:
        srv = KeepAliveServer(close_after=1)
        await tg.start(srv.serve)
        yield srv
        tg.cancel_scope.cancel()


@pytest.mark.usefixtures("no_proxy")
async def test_an_order_after_the_server_dropped_the_idle_connection_is_sent_once(
    keepalive: KeepAliveServer,
) -> None:
    async with AsyncRequest(
        f"http://127.0.0.1:{keepalive.port}", error_mapper=KITE, backoff=FAST
    ) as http:
        assert await http.get("/quote/ltp") == {"status": "success", "data": 1}
        await keepalive.closed.wait()  # the connection the pool keeps is now dead
        # Written to the dead connection it would fail (OutcomeUnknownError: not retried);
        # the transport sees the socket readable (EOF) and opens a new one instead.
        answer = await http.post("/orders/regular", data={"variety": "regular"})
    assert answer == {"status": "success", "data": 2}
    assert keepalive.requests == [b"GET /quote/ltp HTTP/1.1", b"POST /orders/regular HTTP/1.1"]
    assert keepalive.connections == 2


@pytest.mark.usefixtures("no_proxy")
async def test_a_live_idle_connection_is_reused() -> None:
    async with anyio.create_task_group() as tg:
        srv = KeepAliveServer()
        await tg.start(srv.serve)
        async with AsyncRequest(
            f"http://127.0.0.1:{srv.port}", error_mapper=KITE, backoff=FAST
        ) as http:
            for _ in range(5):
                await http.get("/quote/ltp")
                await anyio.lowlevel.checkpoint()
        tg.cancel_scope.cancel()
    assert (len(srv.requests), srv.connections) == (5, 1)


@pytest.mark.usefixtures("no_proxy")
async def test_the_pool_runs_on_the_cheap_readability_check(anyio_backend: str) -> None:
    from aio_trader._transport import _Stream

    async with anyio.create_task_group() as tg:
        srv = KeepAliveServer()
        await tg.start(srv.serve)
        async with AsyncRequest(
            f"http://127.0.0.1:{srv.port}", error_mapper=KITE, backoff=FAST
        ) as http:
            await http.get("/quote/ltp")
            assert http._transport is not None
            (connection,) = http._transport._pool.connections  # httpx's attribute: _transport
            stream = connection._connection._network_stream  # type: ignore[union-attr]
            assert isinstance(stream, _Stream)
            # inside it, httpcore's own stream for the running loop (trio's under trio)
            assert type(stream._inner).__module__ == f"httpcore._backends.{anyio_backend}".replace(
                "asyncio", "anyio"
            )
            assert stream.get_extra_info("is_readable") is False
            assert not connection.has_expired()
        tg.cancel_scope.cancel()


async def _until_readable(stream: Any) -> None:
    with anyio.fail_after(5):
        while not stream.get_extra_info("is_readable"):  # noqa: ASYNC110 (the poll is the test)
            await anyio.sleep(0.001)


async def test_the_stream_is_readable_only_when_data_or_eof_waits() -> None:
    from aio_trader._transport import _Backend

    async with anyio.create_task_group() as tg:
        accepted: list[anyio.abc.SocketStream] = []
        got_one = anyio.Event()

        async def handle(peer: anyio.abc.SocketStream) -> None:
            accepted.append(peer)
            got_one.set()
            await anyio.sleep_forever()

        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.start_soon(listener.serve, handle)
        stream = await _Backend().connect_tcp("127.0.0.1", port)
        await got_one.wait()
        assert stream.get_extra_info("is_readable") is False  # idle, open
        assert stream.get_extra_info("socket") is not None  # the rest is the inner stream's
        await accepted[0].send(b"x")
        await _until_readable(stream)  # data nobody asked for
        assert await stream.read(10) == b"x"
        assert stream.get_extra_info("is_readable") is False
        await accepted[0].aclose()
        await _until_readable(stream)  # EOF
        assert await stream.read(10) == b""
        assert stream.get_extra_info("is_readable") is True  # EOF stays readable
        await stream.aclose()
        assert stream.get_extra_info("is_readable") is True  # closed: never reused
        tg.cancel_scope.cancel()


# -- pacing: a rate-limit slot is stamped when the request is written ----------------------


async def test_the_slot_is_stamped_when_written_and_a_request_never_written_takes_none(
    server: HTTPServer,
) -> None:
    limiter = RateLimiter(Rate(100, 60))
    server.script(Stall())  # the first request holds the only connection
    async with (
        AsyncRequest(server.url, backoff=FAST, timeout=5, max_connections=1) as http,
        anyio.create_task_group() as tg,
    ):
        first, second = anyio.CancelScope(), anyio.CancelScope()

        async def call(scope: anyio.CancelScope) -> None:
            with scope:
                await http.get("/quote", limiter=limiter)

        tg.start_soon(call, first)
        await server.wait_for_requests(1)
        tg.start_soon(call, second)  # its turn comes at once; then it waits for a connection
        await anyio.wait_all_tasks_blocked()
        assert limiter.statistics().acquired == 1  # turn taken, nothing written, no slot
        second.cancel()  # cancelled before it was written: it gives the turn back
        await anyio.wait_all_tasks_blocked()
        assert limiter.statistics().acquired == 1
        third = anyio.CancelScope()
        tg.start_soon(call, third)  # not blocked by the cancelled one's turn
        await anyio.wait_all_tasks_blocked()
        assert limiter.statistics().acquired == 1  # waiting for the connection, not written
        first.cancel()  # frees the connection: the third request is written now
        await server.wait_for_requests(2)
    assert limiter.statistics().acquired == 2
    assert len(server.requests) == 2


async def test_a_request_that_cannot_connect_takes_no_slot() -> None:
    limiter = RateLimiter(Rate(100, 60))
    async with AsyncRequest(f"http://127.0.0.1:{closed_port()}", backoff=FAST) as http:
        with pytest.raises(ConnectError):
            await http.get("/x", limiter=limiter)
    assert limiter.statistics().acquired == 0


# -- the broker's mapper: AsyncRequest knows no broker --------------------------------------


def toy_mapper(status: int, body: bytes) -> BrokerError:
    """A broker that is not Kite: ``{"errorCode": "T-1", "errorMessage": ...}``."""
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    code, message = data.get("errorCode", "T-0"), data.get("errorMessage", "?")
    cls: type[BrokerError] = {
        "T-401": SessionExpired,
        "T-429": RateLimited,
        "T-400": InvalidInput,
    }.get(code, BrokerUnavailable)
    return cls(message, status_code=status, code=code, broker="toy")


def toy_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, json.dumps({"errorCode": code, "errorMessage": message}).encode())


@pytest.mark.parametrize(
    ("status", "code", "category"),
    [(401, "T-401", SessionExpired), (429, "T-429", RateLimited), (400, "T-400", InvalidInput)],
)
async def test_a_non_kite_mapper_decides_the_error(
    server: HTTPServer, status: int, code: str, category: type[BrokerError]
) -> None:
    server.default = toy_error(status, code, "refused by toy")
    async with AsyncRequest(server.url, error_mapper=toy_mapper, backoff=FAST) as http:
        with pytest.raises(category) as caught:
            await http.post("/orders")
    error = caught.value
    assert type(error) is category  # the mapper's class, no Kite class involved
    assert not isinstance(error, KiteError)
    assert isinstance(error, RuntimeError)
    assert (error.status_code, error.code, error.message, error.broker) == (
        status,
        code,
        "refused by toy",
        "toy",
    )
    assert str(error) == f"{code} (HTTP {status}): refused by toy"
    assert len(server.requests) == 1


async def test_a_non_kite_mappers_5xx_is_retried_then_raised(server: HTTPServer) -> None:
    server.default = toy_error(503, "T-503", "busy")
    async with AsyncRequest(server.url, error_mapper=toy_mapper, backoff=FAST) as http:
        with pytest.raises(BrokerUnavailable) as caught:
            await http.get("/quote")
    assert caught.value.retryable
    assert len(server.requests) == ATTEMPTS


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (400, InvalidInput),
        (401, SessionExpired),
        (403, PermissionDenied),
        (404, UnexpectedStatus),
        (429, RateLimited),
        (502, BrokerUnavailable),
    ],
)
async def test_without_a_mapper_the_status_picks_a_neutral_category(
    server: HTTPServer, status: int, category: type[BrokerError]
) -> None:
    server.default = Reply(status, b'{"message": "nope"}')
    async with AsyncRequest(server.url, backoff=FAST) as http:
        with pytest.raises(category) as caught:
            await http.get("/x")
    assert type(caught.value) is category
    assert caught.value.message == "nope"
    assert caught.value.status_code == status


async def test_an_undecodable_success_goes_through_the_mapper(server: HTTPServer) -> None:
    server.default = Reply(200, b"{cut sh")
    async with AsyncRequest(server.url, error_mapper=toy_mapper, backoff=FAST) as http:
        with pytest.raises(BrokerUnavailable) as caught:
            await http.get("/x")
    assert caught.value.status_code == 200
    assert len(server.requests) == ATTEMPTS


def test_the_mapper_must_be_callable() -> None:
    with pytest.raises(TypeError, match="error_mapper"):
        AsyncRequest("http://127.0.0.1", error_mapper="kite")  # type: ignore[arg-type]
