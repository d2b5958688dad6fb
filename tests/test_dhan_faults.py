"""``Dhan`` under the sandbox's faults: retries for reads, never a duplicate order (lost
replies, 5xx bursts, 50 concurrent placements), ambiguous writes not resent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from aio_trader.backoff import Backoff
from aio_trader.dhan import Dhan
from aio_trader.errors import (
    BrokerUnavailable,
    OrderOutcomeUnknown,
    OutcomeUnknownError,
    SessionExpired,
)
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.utils import gather

FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)
SCALE = 20


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(
        broker="dhan", seed=2, market_interval=None, rate_limit_scale=SCALE, opening_cash=1e9
    )
    async with Sandbox(config) as sandbox:
        yield sandbox


def client(sb: Sandbox, **options: Any) -> Dhan:
    options.setdefault("rate_limit_scale", SCALE)
    return Dhan(
        client_id=sb.client_id,
        access_token=sb.access_token,
        root=sb.root_url,
        backoff=FAST,
        reconcile_delay=0.01,
        **options,
    )


MARKET = ("1333", "NSE_EQ", "BUY", 1, "MARKET", "INTRADAY")


async def test_5xx_on_a_read_is_retried_then_succeeds(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        sb.faults.http_5xx_burst = 2
        before = sb.state.stats.requests
        assert (await dhan.fund_limits()).dhan_client_id == sb.client_id
        assert sb.state.stats.http_5xx_sent == 2
        assert sb.state.stats.requests - before == 3
        sb.faults.http_5xx_burst = 10
        with pytest.raises(BrokerUnavailable) as caught:
            await dhan.positions()
        assert (caught.value.code, caught.value.status_code) == ("DH-908", 503)
        assert sb.state.stats.http_5xx_sent == 2 + FAST.max_attempts


async def test_lost_reply_books_exactly_one_order_and_returns_its_id(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        sb.faults.lose_order_reply = True
        order_id = await dhan.place_order(*MARKET, market_protection=-1)
        sb.faults.lose_order_reply = False
        assert sb.state.stats.order_replies_lost == 1
        assert sb.state.stats.orders_booked == 1
        (order,) = await dhan.orders()
        assert order.order_id == order_id
        assert order.correlation_id is not None
        assert order.correlation_id.startswith("aio")


async def test_lost_reply_with_the_callers_correlation_id(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        sb.faults.lose_order_reply = True
        order_id = await dhan.place_order(*MARKET, market_protection=-1, correlation_id="mine-1")
        assert [o.order_id for o in await dhan.orders()] == [order_id]
        assert (await dhan.order_by_correlation_id("mine-1")).order_id == order_id


async def test_a_5xx_on_placement_is_not_resent_and_the_outcome_is_unknown(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        sb.faults.http_5xx_burst = 1
        with pytest.raises(OrderOutcomeUnknown) as unknown:
            await dhan.place_order(*MARKET, market_protection=-1, correlation_id="probe-42")
        assert unknown.value.tag == "probe-42"
        assert isinstance(unknown.value.__cause__, OutcomeUnknownError)
        assert sb.state.stats.orders_booked == 0
        assert await dhan.orders() == []


async def test_ambiguous_modify_and_cancel_are_not_resent(sb: Sandbox) -> None:
    async with client(sb) as dhan:
        order_id = await dhan.place_order("1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=100.0)
        before = sb.state.stats.requests
        sb.faults.http_5xx_burst = 1
        with pytest.raises(OutcomeUnknownError):
            await dhan.modify_order(order_id, "LIMIT", quantity=3, price=100.0)
        sb.faults.http_5xx_burst = 1
        with pytest.raises(OutcomeUnknownError):
            await dhan.cancel_order(order_id)
        # each: one write (answered 503, not repeated), one read that shows it did not apply
        assert sb.state.stats.requests - before == 4
        order = await dhan.order(order_id)
        assert (order.order_status, order.quantity) == ("PENDING", 1)


async def test_the_session_expiry_hook_runs_on_dh_901(sb: Sandbox) -> None:
    calls: list[str] = []

    async def relogin() -> None:
        calls.append("hook")
        sb.state.start_session()

    async with client(sb, session_expiry_hook=relogin) as dhan:
        sb.expire_session()
        with pytest.raises(SessionExpired) as expired:
            await dhan.orders()
        assert expired.value.code == "DH-901"
        assert calls == ["hook"]
        assert await dhan.orders() == []


@pytest.mark.parametrize("fault", ["lost replies", "5xx burst"])
async def test_50_concurrent_placements_never_duplicate(sb: Sandbox, fault: str) -> None:
    async with client(sb) as dhan:
        if fault == "lost replies":
            sb.faults.lose_order_reply = True
        else:
            sb.faults.http_5xx_burst = 10  # the first ten placements answer 503, unbooked

        async def place(index: int) -> str | Exception:
            try:
                return await dhan.place_order(
                    *MARKET, market_protection=-1, correlation_id=f"burst-{index}"
                )
            except OrderOutcomeUnknown as error:
                return error

        results = await gather(*(place(i) for i in range(50)))
        sb.faults.lose_order_reply = False
        orders = await dhan.orders()
        by_correlation: dict[str, list[str]] = {}
        for order in orders:
            by_correlation.setdefault(str(order.correlation_id), []).append(str(order.order_id))
        assert all(len(ids) == 1 for ids in by_correlation.values())  # never twice
        for index, result in enumerate(results):
            booked = by_correlation.get(f"burst-{index}")
            if isinstance(result, str):
                assert booked == [result]
            else:
                assert booked is None  # unknown outcome: and indeed not booked
                assert result.tag == f"burst-{index}"
        if fault == "lost replies":
            assert all(isinstance(r, str) for r in results)
            assert sb.state.stats.order_replies_lost == 50
        else:
            # the burst answers any request (lookups too): some placements got a 503
            unknown = sum(isinstance(r, Exception) for r in results)
            assert 1 <= unknown <= 10
            assert sb.state.stats.http_5xx_sent == 10
            assert len(orders) == 50 - unknown
        assert len(orders) == sb.state.stats.orders_booked
