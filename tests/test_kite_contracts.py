"""``Kite``'s edge contracts against the sandbox (#10, #11): what fails fast and never costs a
request, the client's lifecycle, no process-wide side effects, and the April-2026 order rules.

Every "before any request" claim is checked by the sandbox's own request counter.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pyotp
import pytest
from httpserver import HTTPServer, Reply

from aio_trader import _redact
from aio_trader.backoff import Backoff
from aio_trader.errors import ClientClosedError, KiteError, UnexpectedStatus
from aio_trader.kite import Kite, TokenCache
from aio_trader.kite import _session as kite_session
from aio_trader.kite.constants import EndpointGroup
from aio_trader.sandbox import Sandbox, SandboxConfig

FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)
SCALE = 20


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(seed=4, market_interval=None, rate_limit_scale=SCALE)
    async with Sandbox(config) as sb:
        yield sb


def client(sb: Sandbox, **options: Any) -> Kite:
    options.setdefault("rate_limit_scale", SCALE)
    options.setdefault("backoff", FAST)
    return Kite(sb.api_key, sb.access_token, root=sb.root_url, **options)


@pytest.fixture
async def kite(sb: Sandbox) -> AsyncIterator[Kite]:
    async with client(sb) as kite:
        yield kite


def seen(sb: Sandbox) -> int:
    return sb.state.stats.requests


# -- what is retried: statuses that never heal are raised after one request --------------


@pytest.fixture
async def scripted() -> AsyncIterator[HTTPServer]:
    async with anyio.create_task_group() as tg:
        server = HTTPServer()
        await tg.start(server.serve)
        yield server
        tg.cancel_scope.cancel()


@pytest.mark.parametrize(
    "reply",
    [
        Reply(404, b"<html>not found</html>", "text/html"),
        Reply(405, b"", "text/plain"),
        Reply(307, b"", "text/plain", headers=(("Location", "/elsewhere"),)),
        Reply(409, b"{}"),
    ],
    ids=["404", "405", "307", "409"],
)
@pytest.mark.parametrize("call", ["read", "order"])
async def test_statuses_that_never_heal_cost_one_request(
    scripted: HTTPServer, reply: Reply, call: str
) -> None:
    scripted.default = reply
    async with Kite("key", "token", root=scripted.url, backoff=FAST) as kite:
        order = ("regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", 1.0)
        request = kite.profile() if call == "read" else kite.place_order(*order)
        with pytest.raises(UnexpectedStatus) as caught:
            await request
    assert caught.value.status_code == reply.status
    assert isinstance(caught.value, RuntimeError)
    assert len(scripted.requests) == 1  # not retried; an order is not looked up either


async def test_a_wrong_root_against_the_sandbox_fails_at_once(sb: Sandbox) -> None:
    async with Kite(sb.api_key, sb.access_token, root=f"{sb.root_url}/nowhere", backoff=FAST) as k:
        with pytest.raises(KiteError) as caught:
            await k.profile()
    assert caught.value.status_code == 404
    assert not caught.value.retryable


async def test_5xx_is_still_retried(sb: Sandbox, kite: Kite) -> None:
    sb.faults.http_5xx_burst = 2
    assert (await kite.profile()).user_id == sb.user_id
    assert seen(sb) == 3


# -- configuration errors: before any I/O ----------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda sb: Kite(sb.api_key, sb.access_token, root=sb.root_url[7:]), ValueError),
        (lambda sb: Kite(sb.api_key, sb.access_token, root="ws://127.0.0.1:1"), ValueError),
        (lambda sb: Kite(sb.api_key, sb.access_token, root=sb.root_url, timeout=0), ValueError),
        (lambda sb: Kite(sb.api_key, sb.access_token, root=sb.root_url, timeout=-1), ValueError),
        (lambda sb: Kite(123, 456), TypeError),
        (lambda sb: Kite(sb.api_key, sb.access_token, root=123), TypeError),
        (lambda sb: Kite(sb.api_key, sb.access_token, market_protection=0), ValueError),
        (lambda sb: Kite(sb.api_key, sb.access_token, reconcile_delay=-1), ValueError),
    ],
)
async def test_bad_constructor_arguments_raise_before_any_request(
    sb: Sandbox, make: Callable[[Sandbox], Kite], error: type[Exception]
) -> None:
    with pytest.raises(error):
        make(sb)
    assert seen(sb) == 0


LIMIT = {"price": 100.0}

#: (call, expected error): each must fail before any request leaves the client.
BAD_CALLS: list[tuple[str, Callable[[Kite], Awaitable[object]], type[Exception]]] = [
    ("bytes instruments", lambda k: k.quote(b"NSE:INFY"), TypeError),  # type: ignore[arg-type]
    ("bytes in a list", lambda k: k.ltp([b"NSE:INFY"]), TypeError),  # type: ignore[list-item]
    ("float instrument", lambda k: k.ohlc(1.5), TypeError),  # type: ignore[arg-type]
    ("empty order id", lambda k: k.order_history(""), ValueError),
    ("slash in an id", lambda k: k.order_trades("x/y"), ValueError),
    ("path in a segment", lambda k: k.margins("../orders"), ValueError),
    ("unknown segment", lambda k: k.margins("futures"), ValueError),
    ("int as order id", lambda k: k.order_history(None), TypeError),  # type: ignore[arg-type]
    ("gtt id", lambda k: k.get_gtt("1/../2"), ValueError),
    ("alert uuid", lambda k: k.get_alert(""), ValueError),
    ("unknown exchange dump", lambda k: k.instruments("NSEX"), ValueError),
    (
        "unknown interval",
        lambda k: k.historical_data(408065, "2024-01-01", "2024-01-02", "1h"),
        ValueError,
    ),
    (
        "str token",
        lambda k: k.historical_data("408065", "2024-01-01", "2024-01-02", "day"),
        TypeError,
    ),  # type: ignore[arg-type]
    ("trigger range side", lambda k: k.trigger_range("HOLD", "NSE:INFY"), ValueError),
    (
        "unknown variety",
        lambda k: k.place_order("regularx", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", **LIMIT),
        ValueError,
    ),
    (
        "unknown exchange",
        lambda k: k.place_order("regular", "NSEX", "INFY", "BUY", 1, "CNC", "LIMIT", **LIMIT),
        ValueError,
    ),
    (
        "unknown side",
        lambda k: k.place_order("regular", "NSE", "INFY", "buy", 1, "CNC", "LIMIT", **LIMIT),
        ValueError,
    ),
    (
        "unknown product",
        lambda k: k.place_order("regular", "NSE", "INFY", "BUY", 1, "XYZ", "LIMIT", **LIMIT),
        ValueError,
    ),
    (
        "unknown order type",
        lambda k: k.place_order("regular", "NSE", "INFY", "BUY", 1, "CNC", "MKT"),
        ValueError,
    ),
    (
        "unknown validity",
        lambda k: k.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", validity="GTC", **LIMIT
        ),
        ValueError,
    ),
    (
        "str quantity",
        lambda k: k.place_order("regular", "NSE", "INFY", "BUY", "1", "CNC", "LIMIT", **LIMIT),
        TypeError,
    ),  # type: ignore[arg-type]
    (
        "bad tag",
        lambda k: k.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", tag="a-b", **LIMIT
        ),
        ValueError,
    ),
    (
        "autoslice variety",
        lambda k: k.place_autoslice_order("bad", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", **LIMIT),
        ValueError,
    ),
    ("modify variety", lambda k: k.modify_order("bad", "1", quantity=2), ValueError),
    ("modify id", lambda k: k.modify_order("regular", "", quantity=2), ValueError),
    ("modify order type", lambda k: k.modify_order("regular", "1", order_type="STOP"), ValueError),
    ("cancel variety", lambda k: k.cancel_order("bogus", "1"), ValueError),
    ("cancel id", lambda k: k.cancel_order("regular", "../1"), ValueError),
    (
        "convert product",
        lambda k: k.convert_position("NSE", "INFY", "BUY", "day", 1, "CNC", "XX"),
        ValueError,
    ),
    (
        "gtt leg product",
        lambda k: k.place_gtt(
            "single",
            "INFY",
            "NSE",
            [1.0],
            2.0,
            [
                {
                    "transaction_type": "BUY",
                    "quantity": 1,
                    "order_type": "LIMIT",
                    "product": "XX",
                    "price": 1.0,
                }
            ],
        ),
        ValueError,
    ),
    ("mf order id", lambda k: k.cancel_mf_order("a/b"), ValueError),
    ("sip id", lambda k: k.cancel_mf_sip(""), ValueError),
]


@pytest.mark.parametrize(("name", "call", "error"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
async def test_bad_arguments_raise_before_any_request(
    sb: Sandbox,
    kite: Kite,
    name: str,
    call: Callable[[Kite], Awaitable[object]],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await call(kite)
    assert seen(sb) == 0, name


async def test_enum_members_and_their_strings_both_pass(sb: Sandbox, kite: Kite) -> None:
    from aio_trader.kite.constants import Exchange, OrderType, Product, TransactionType, Variety

    last = (await kite.ltp("NSE:INFY"))["NSE:INFY"].last_price or 0
    order_id = await kite.place_order(
        Variety.REGULAR, Exchange.NSE, "INFY", TransactionType.BUY, 1, Product.CNC,
        OrderType.LIMIT, price=round(last * 0.8, 1),
    )  # fmt: skip
    assert (await kite.order_history(order_id))[-1].order_type == "LIMIT"


# -- lifecycle: nothing owned before open, a clear error before and after ----------------------


async def test_a_call_before_open_or_after_close_raises_at_once(sb: Sandbox) -> None:
    kite = client(sb)
    assert not kite.is_open
    with pytest.raises(ClientClosedError, match="not open"):
        await kite.profile()
    assert isinstance(ClientClosedError("x"), RuntimeError)
    await kite.open()  # the notebook way
    assert kite.is_open
    assert (await kite.profile()).user_id == sb.user_id
    await kite.aclose()
    await kite.aclose()  # idempotent
    await kite.close()  # the seed's name, an alias
    with pytest.raises(ClientClosedError, match="closed"):
        await kite.profile()
    with pytest.raises(ClientClosedError, match="reopened"):
        await kite.open()
    assert seen(sb) == 1


async def test_a_client_never_opened_can_be_closed_and_owns_nothing(sb: Sandbox) -> None:
    kite = client(sb)
    assert kite._http.is_open is False
    await kite.aclose()
    assert seen(sb) == 0


async def test_authorize_is_the_seeds_spelling_of_authorise(sb: Sandbox, kite: Kite) -> None:
    assert (await kite.authorize()) == await kite.authorise()


# -- no process-wide side effects: the log redaction lives and dies with the clients ----------


def _redactors() -> list[str]:
    return [
        name
        for name in _redact._GUARDED
        if any(isinstance(f, _redact._Redactor) for f in logging.getLogger(name).filters)
    ]


def test_importing_the_package_installs_no_log_filter() -> None:
    code = (
        "import logging, aio_trader, aio_trader.kite\n"
        "from aio_trader.kite import Kite, KiteFeed, TokenCache\n"
        "import aio_trader.kite._session, aio_trader.kite._broker\n"
        "names = ['httpx', 'httpcore.connection', 'httpcore.http11']\n"
        "print(sum(len(logging.getLogger(n).filters) for n in names))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "0"


async def test_redaction_is_attached_while_a_client_is_open_and_removed_after(
    sb: Sandbox,
) -> None:
    assert _redactors() == []
    async with client(sb) as first:
        assert _redactors() == list(_redact._GUARDED)
        async with client(sb) as second:
            await second.profile()
        assert _redactors() == list(_redact._GUARDED)  # counted: one still open
        await first.profile()
    assert _redactors() == []
    assert _redact._REDACTOR.secrets == {}  # every secret forgotten


async def test_no_secret_in_debug_logs_of_calls_and_a_web_login(
    sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "aio_trader"):
        caplog.set_level(logging.DEBUG, logger=name)
    code = str(pyotp.TOTP(sb.config.totp_secret).now())
    async with (
        client(sb) as kite,
        Kite(
            user_id=sb.user_id,
            password=sb.password,
            twofa=code,
            root=sb.root_url,
            token_cache=None,
            backoff=FAST,
            rate_limit_scale=SCALE,
        ) as web,
    ):
        await kite.profile()
        await kite.invalidate_access_token()  # the token travels in the query string
        await web.profile()
        enctoken = web._enctoken
    assert caplog.records  # the HTTP stack did log at DEBUG
    assert enctoken
    for secret in (sb.access_token, sb.password, code, enctoken, sb.api_secret):
        assert secret not in caplog.text
    assert _redactors() == []


# -- Kite Web: an enctoken with '/', '+', '=' survives the cookie's quotes ----------------


async def test_web_login_with_a_realistic_enctoken_works_after_login() -> None:
    token = "x9Lp/8Ke+Zq3N0aa/YbOW+vK0c1JH9m2Q==" + "Rt/2+w="
    config = SandboxConfig(seed=4, market_interval=None, enctoken=token, rate_limit_scale=SCALE)
    async with Sandbox(config) as sb:
        code = str(pyotp.TOTP(sb.config.totp_secret).now())
        async with Kite(
            user_id=sb.user_id,
            password=sb.password,
            twofa=code,
            root=sb.root_url,
            token_cache=None,
            backoff=FAST,
            rate_limit_scale=SCALE,
        ) as kite:
            assert kite._enctoken == token  # no quotes kept from the Set-Cookie header
            assert (await kite.profile()).user_id == sb.user_id
            assert await kite.positions() is not None
        assert sb.state.stats.refused_403 == 0


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ('"a/b+c=="', "a/b+c=="),
        ("plain", "plain"),
        ('"with \\"quote\\" and \\054 comma"', 'with "quote" and , comma'),
        ('"', '"'),
        (None, None),
    ],
)
def test_cookie_values_are_unquoted(raw: str | None, value: str | None) -> None:
    assert kite_session._unquote_cookie(raw) == value


# -- token cache ----------------------------------------------------------------------------


def test_token_cache_ignores_expires_at_without_offset(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    path = cache.save("AB1234", "tok")
    record = json.loads(path.read_text())
    record["expires_at"] = "2999-01-01T00:00:00"  # no offset
    path.write_text(json.dumps(record))
    os.chmod(path, 0o600)
    assert cache.load("AB1234") is None
    assert cache.load("AB1234", now=datetime.datetime(2000, 1, 1)) is None  # naive now too


def test_token_cache_files_are_private(tmp_path: Path) -> None:
    path = TokenCache(tmp_path / "dir").save("AB1234", "tok")
    if os.name == "posix":
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700


# -- the April-2026 order rules in the client (#11) --------------------------------------------

MARKET_CASES: list[tuple[str, Callable[[Kite], Awaitable[object]]]] = [
    ("market", lambda k: k.place_order("regular", "NSE", "INFY", "BUY", 1, "CNC", "MARKET")),
    (
        "sl-m",
        lambda k: k.place_order(
            "regular", "NSE", "INFY", "SELL", 1, "MIS", "SL-M", trigger_price=10.0
        ),
    ),
    (
        "autoslice",
        lambda k: k.place_autoslice_order("regular", "NSE", "INFY", "BUY", 1, "CNC", "MARKET"),
    ),
    ("modify", lambda k: k.modify_order("regular", "123", order_type="MARKET")),
    ("modify sl-m", lambda k: k.modify_order("regular", "123", order_type="SL-M")),
]


@pytest.mark.parametrize(("name", "call"), MARKET_CASES, ids=[c[0] for c in MARKET_CASES])
async def test_market_orders_without_protection_fail_before_any_request(
    sb: Sandbox, kite: Kite, name: str, call: Callable[[Kite], Awaitable[object]]
) -> None:
    with pytest.raises(ValueError, match="market_protection") as caught:
        await call(kite)
    assert "LIMIT" in str(caught.value)  # both ways out are named
    assert seen(sb) == 0, name
    assert sb.state.stats.orders_booked == 0


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-2, ValueError), (100.5, ValueError), (True, TypeError), ("5", TypeError)],
)
async def test_bad_market_protection_values_fail_before_any_request(
    sb: Sandbox, kite: Kite, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "MARKET",
            market_protection=value,  # type: ignore[arg-type]
        )  # fmt: skip
    assert seen(sb) == 0


async def test_protected_market_orders_and_the_clients_explicit_default(sb: Sandbox) -> None:
    async with client(sb) as kite:
        own = await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "MARKET", market_protection=2.5
        )
    async with client(sb, market_protection=-1) as kite:
        by_default = await kite.place_order("regular", "NSE", "INFY", "BUY", 1, "CNC", "MARKET")
        book = {order.order_id: order for order in await kite.orders()}
    assert {own, by_default} <= set(book)
    assert sb.state.stats.orders_booked == 2


async def test_limit_orders_need_no_protection(sb: Sandbox, kite: Kite) -> None:
    last = (await kite.ltp("NSE:INFY"))["NSE:INFY"].last_price or 0
    order_id = await kite.place_order(
        "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=round(last * 0.8, 1)
    )
    assert order_id


async def test_a_burst_of_orders_at_kites_real_limits_earns_no_429() -> None:
    """25 orders at once against the sandbox at Kite's own limits (10/s strictly)."""
    config = SandboxConfig(seed=4, market_interval=None)
    async with (
        Sandbox(config) as sb,
        Kite(sb.api_key, sb.access_token, root=sb.root_url, backoff=FAST) as kite,
    ):
        last = (await kite.ltp("NSE:INFY"))["NSE:INFY"].last_price or 0
        price = round(last * 0.8, 1)
        placed: list[str] = []

        async def place() -> None:
            placed.append(
                await kite.place_order(
                    "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=price
                )
            )

        async with anyio.create_task_group() as tg:
            for _ in range(25):
                tg.start_soon(place)
    assert len(placed) == 25
    assert sb.state.stats.refused_429[EndpointGroup.ORDER] == 0
    assert sb.state.stats.orders_booked == 25


def test_order_windows_keep_a_tenth_of_a_second_for_kites_strict_count() -> None:
    from aio_trader.kite._broker import _group_limits
    from aio_trader.ratelimit import Rate

    limits = _group_limits(1.0, 0.02, None)
    assert Rate(10, 1.1) in limits[EndpointGroup.ORDER]
    assert Rate(200, 60.1) in limits[EndpointGroup.ORDER]
    assert Rate(5000, 86400.1) in limits[EndpointGroup.ORDER]
    assert Rate(10, 1.02) in limits[EndpointGroup.OTHER]  # others keep the plain margin
    assert Rate(10, 1.5) in _group_limits(1.0, 0.5, None)[EndpointGroup.ORDER]
