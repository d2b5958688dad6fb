"""``Kite`` under the sandbox's faults: retries, no retries, the expiry hook, no duplicate
orders, and a burst of concurrent calls that stays under the rate limits."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from httpserver import Drop, HTTPServer, Reply, Stall, json_reply, kite_error

from aio_trader.backoff import Backoff
from aio_trader.errors import (
    InputException,
    NetworkException,
    OrderException,
    OrderOutcomeUnknown,
    OutcomeUnknownError,
    RateLimitError,
    TokenException,
)
from aio_trader.kite import EndpointGroup, Kite
from aio_trader.ratelimit import Rate
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.utils import gather

FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)
SCALE = 20


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(seed=2, market_interval=None, rate_limit_scale=SCALE, opening_cash=1e8)
    async with Sandbox(config) as sb:
        yield sb


def client(sb: Sandbox, **options: Any) -> Kite:
    options.setdefault("rate_limit_scale", SCALE)
    return Kite(
        sb.api_key,
        sb.access_token,
        root=sb.root_url,
        backoff=FAST,
        reconcile_delay=0.01,
        **options,
    )


async def test_5xx_is_retried_then_succeeds(sb: Sandbox) -> None:
    async with client(sb) as kite:
        sb.faults.http_5xx_burst = 2
        before = sb.state.stats.requests
        assert (await kite.profile()).user_id == sb.user_id
        assert sb.state.stats.http_5xx_sent == 2
        assert sb.state.stats.requests - before == 3


async def test_5xx_exhausting_the_attempts_raises_the_last_error(sb: Sandbox) -> None:
    async with client(sb) as kite:
        sb.faults.http_5xx_burst = 10
        with pytest.raises(NetworkException) as caught:
            await kite.holdings()
        assert caught.value.status_code == 503
        assert sb.state.stats.http_5xx_sent == FAST.max_attempts


async def test_400_403_429_are_not_retried(sb: Sandbox) -> None:
    hooked: list[str] = []
    # A client whose quote limit is far above the sandbox's earns a 429.
    loose = {EndpointGroup.QUOTE: (Rate(1000, 1.0),)}
    async with client(
        sb, rate_limits=loose, session_expiry_hook=lambda: hooked.append("x")
    ) as kite:
        stats = sb.state.stats
        before = stats.requests
        with pytest.raises(InputException) as bad:
            await kite.historical_data(408065, "2024-01-02", "2024-01-01", "day")
        assert bad.value.status_code == 400
        assert stats.requests - before == 1

        before = stats.requests

        sent = 0

        async def hammer() -> None:
            nonlocal sent
            for _ in range(30):  # the sandbox allows 20 per second at this scale
                sent += 1
                await kite.ltp("NSE:INFY")

        with pytest.raises(RateLimitError) as limited:
            await hammer()
        assert limited.value.status_code == 429
        assert isinstance(limited.value, RuntimeError)
        assert stats.refused_429["quote"] == 1
        assert stats.requests - before == sent  # the refused call was not repeated

        sb.expire_session()
        before = stats.requests
        with pytest.raises(TokenException) as expired:
            await kite.profile()
        assert expired.value.status_code == 403
        assert stats.requests - before == 1
        assert hooked == ["x"]


async def test_async_expiry_hook_runs_before_the_error_and_can_log_in_again(
    sb: Sandbox,
) -> None:
    calls: list[str] = []

    async def relogin() -> None:
        calls.append("hook")
        sb.state.start_session()  # what a real hook would trigger: a fresh login

    async with client(sb) as kite:
        kite.set_session_expiry_hook(relogin)
        sb.expire_session()
        with pytest.raises(TokenException):
            await kite.margins()
        assert calls == ["hook"]
        assert (await kite.profile()).user_id == sb.user_id  # the session works again
        with pytest.raises(TypeError):
            kite.set_session_expiry_hook("not callable")  # type: ignore[arg-type]


async def test_lost_order_reply_books_exactly_one_order_and_returns_its_id(sb: Sandbox) -> None:
    async with client(sb) as kite:
        sb.faults.lose_order_reply = True
        order_id = await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "MARKET", market_protection=-1
        )
        sb.faults.lose_order_reply = False
        assert sb.state.stats.order_replies_lost == 1
        assert sb.state.stats.orders_booked == 1
        (order,) = await kite.orders()
        assert order.order_id == order_id
        assert order.tag is not None
        assert order.tag.startswith("aio")


async def test_lost_reply_with_the_callers_tag(sb: Sandbox) -> None:
    async with client(sb) as kite:
        sb.faults.lose_order_reply = True
        order_id = await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "MARKET", market_protection=-1, tag="mine1"
        )
        assert [o.order_id for o in await kite.orders()] == [order_id]
        # The same tag again: two orders carry it, so the client refuses to guess.
        with pytest.raises(OrderOutcomeUnknown) as unknown:
            await kite.place_order(
                "regular",
                "NSE",
                "INFY",
                "BUY",
                1,
                "CNC",
                "MARKET",
                market_protection=-1,
                tag="mine1",
            )
        assert unknown.value.tag == "mine1"
        assert sb.state.stats.orders_booked == 2


async def test_lost_autoslice_reply_is_rebuilt_from_the_order_book(sb: Sandbox) -> None:
    async with client(sb) as kite:
        sb.faults.lose_order_reply = True
        sliced = await kite.place_autoslice_order(
            "regular",
            "NFO",
            "NIFTY26DECFUT",
            "BUY",
            75 * 30,
            "NRML",
            "MARKET",
            market_protection=-1,
        )
        assert sb.state.stats.orders_booked == 2
        assert sliced.children is not None
        assert {c.order_id for c in sliced.children} == {o.order_id for o in await kite.orders()}


async def test_order_5xx_is_not_resent_and_the_outcome_is_unknown(sb: Sandbox) -> None:
    async with client(sb) as kite:
        sb.faults.http_5xx_burst = 1
        with pytest.raises(OrderOutcomeUnknown) as unknown:
            await kite.place_order(
                "regular",
                "NSE",
                "INFY",
                "BUY",
                1,
                "CNC",
                "MARKET",
                market_protection=-1,
                tag="probe42",
            )
        assert unknown.value.tag == "probe42"
        assert isinstance(unknown.value.__cause__, OutcomeUnknownError)
        assert sb.state.stats.orders_booked == 0
        assert await kite.orders() == []


async def test_ambiguous_modify_and_cancel_are_not_resent(sb: Sandbox) -> None:
    async with client(sb) as kite:
        last = (await kite.ltp("NSE:INFY"))["NSE:INFY"].last_price or 0
        price = round(last * 0.8, 1)
        order_id = await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=price
        )
        before = sb.state.stats.requests
        sb.faults.http_5xx_burst = 1
        with pytest.raises(OutcomeUnknownError, match="modification"):
            await kite.modify_order("regular", order_id, quantity=3)
        sb.faults.http_5xx_burst = 1
        with pytest.raises(OutcomeUnknownError, match="cancellation"):
            await kite.cancel_order("regular", order_id)
        # Each: one write (answered 503, not repeated) and one history read.
        assert sb.state.stats.requests - before == 4
        history = await kite.order_history(order_id)
        assert history[-1].status == "OPEN"
        assert history[-1].quantity == 1


#: The burst runs client and server in one event loop: at 20x its ~480 requests/s load the
#: loop enough to delay requests past the sandbox's jitter tolerance; 10x does not.
BURST_SCALE = 10


async def test_burst_of_1000_mixed_concurrent_calls_earns_no_429() -> None:
    rng = random.Random(5)
    config = SandboxConfig(seed=2, market_interval=None, rate_limit_scale=BURST_SCALE)
    async with Sandbox(config) as sb, client(sb, rate_limit_scale=BURST_SCALE) as kite:
        calls = (
            [lambda: kite.ltp("NSE:INFY", "NSE:TCS")] * 20
            + [lambda: kite.quote("NSE:INFY")] * 10
            + [lambda: kite.ohlc("NSE:TCS")] * 10
            + [lambda: kite.historical_data(408065, "2024-01-01", "2024-01-31", "day")] * 140
            + [
                lambda: kite.place_order(
                    "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=100.0
                )
            ]
            * 300
            + [kite.profile, kite.margins, kite.positions, kite.holdings] * 130
        )
        assert len(calls) == 1000
        rng.shuffle(calls)
        results = await gather(*(call() for call in calls))
        assert len(results) == 1000
        assert sb.state.stats.refused_429 == dict.fromkeys(sb.state.stats.refused_429, 0)
        assert sb.state.stats.orders_booked == 300


# -- exact failure shapes the sandbox does not produce: a scripted loopback server ----------


@pytest.fixture
async def scripted() -> AsyncIterator[HTTPServer]:
    async with anyio.create_task_group() as tg:
        server = HTTPServer()
        await tg.start(server.serve)
        yield server
        tg.cancel_scope.cancel()


def scripted_client(server: HTTPServer) -> Kite:
    return Kite("key", "token", root=server.url, backoff=FAST, timeout=0.5, reconcile_delay=0.01)


ORDER = ("regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", 1500.0)


async def test_kites_explicit_refusal_with_a_5xx_is_raised_without_lookup(
    scripted: HTTPServer,
) -> None:
    scripted.script(kite_error(500, "OrderException", "Order rejected by the RMS."))
    async with scripted_client(scripted) as kite:
        with pytest.raises(OrderException, match="rejected"):
            await kite.place_order(*ORDER)
    assert [r.method for r in scripted.requests] == ["POST"]


@pytest.mark.parametrize("failure", [Reply(502, b"<html>bad gateway</html>", "text/html"), Stall()])
async def test_ambiguous_failure_finds_the_order_by_tag(
    scripted: HTTPServer, failure: Reply | Stall
) -> None:
    book = [
        {"order_id": "111", "tag": "other"},
        {"order_id": "222", "tag": "scripted1"},
        {"order_id": "333", "tag": "scripted1", "parent_order_id": "222"},
    ]
    scripted.script(failure, json_reply([]), json_reply(book))
    async with scripted_client(scripted) as kite:
        assert await kite.place_order(*ORDER, tag="scripted1") == "222"
    assert [(r.method, r.path) for r in scripted.requests] == [
        ("POST", "/orders/regular"),
        ("GET", "/orders"),
        ("GET", "/orders"),
    ]
    assert b"tag=scripted1" in scripted.requests[0].body


async def test_failed_lookup_raises_order_outcome_unknown(scripted: HTTPServer) -> None:
    scripted.script(Drop(), *[kite_error(403, "TokenException", "expired")] * 3)
    async with scripted_client(scripted) as kite:
        with pytest.raises(OrderOutcomeUnknown, match="lookup failed") as unknown:
            await kite.place_order(*ORDER, tag="lost1")
    assert unknown.value.tag == "lost1"
    assert [r.method for r in scripted.requests] == ["POST", "GET"]


async def test_cancelled_placement_propagates_at_once(scripted: HTTPServer) -> None:
    scripted.script(Stall())
    placed: list[str] = []
    async with scripted_client(scripted) as kite, anyio.create_task_group() as group:

        async def place() -> None:
            placed.append(await kite.place_order(*ORDER, tag="cancel1"))

        group.start_soon(place)
        await scripted.wait_for_requests(1)  # the POST is in flight: cancel it now
        group.cancel_scope.cancel()
    assert placed == []
    assert [r.method for r in scripted.requests] == ["POST"]


async def test_ambiguous_modify_and_cancel_settle_from_the_order_history(
    scripted: HTTPServer,
) -> None:
    history = [
        {"order_id": "9", "status": "OPEN", "quantity": 1, "price": 10.0},
        {"order_id": "9", "status": "OPEN", "quantity": 2, "price": 9.5},
    ]
    cancelled = [*history, {"order_id": "9", "status": "CANCELLED", "quantity": 2}]
    scripted.script(
        Drop(), json_reply(history), Reply(502, b"bad gateway", "text/plain"), json_reply(cancelled)
    )
    async with scripted_client(scripted) as kite:
        assert await kite.modify_order("regular", "9", quantity=2, price=9.5) == "9"
        assert await kite.cancel_order("regular", "9") == "9"
    assert [(r.method, r.path) for r in scripted.requests] == [
        ("PUT", "/orders/regular/9"),
        ("GET", "/orders/9"),
        ("DELETE", "/orders/regular/9"),
        ("GET", "/orders/9"),
    ]
