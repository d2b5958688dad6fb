"""Each fault switch of the sandbox, at start (config) and at runtime (object and admin API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from aio_trader.sandbox import Faults, Sandbox, SandboxConfig
from aio_trader.sandbox._kite._state import check_enctoken

ORDER = {
    "exchange": "NSE",
    "tradingsymbol": "INFY",
    "transaction_type": "BUY",
    "quantity": "1",
    "product": "CNC",
    "order_type": "MARKET",
    "market_protection": "-1",
}


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(market_interval=None, rate_limit_scale=1000)) as s:
        yield s


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"token {sb.api_key}:{sb.access_token}"}
    async with httpx.AsyncClient(base_url=sb.root_url, headers=headers) as c:
        yield c


def kite_error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert body["status"] == "error"
    return response.status_code, str(body["error_type"])


async def test_http_5xx_burst_answers_503_n_times_then_recovers(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.faults.http_5xx_burst = 2
    first = await client.get("/user/profile")
    second = await client.get("/orders")
    assert kite_error(first) == (503, "NetworkException")
    assert kite_error(second) == (503, "NetworkException")
    assert (await client.get("/user/profile")).status_code == 200
    assert sb.state.stats.http_5xx_sent == 2


async def test_faults_from_the_config_apply_at_start() -> None:
    config = SandboxConfig(market_interval=None, faults=Faults(http_5xx_burst=1))
    async with Sandbox(config) as sb, httpx.AsyncClient(base_url=sb.root_url) as c:
        headers = {"Authorization": f"token {sb.api_key}:{sb.access_token}"}
        assert (await c.get("/user/profile", headers=headers)).status_code == 503
        assert (await c.get("/user/profile", headers=headers)).status_code == 200
    # the config's Faults is a template: runtime changes never leak back into it
    assert config.faults.http_5xx_burst == 1


async def test_latency_delays_every_answer(sb: Sandbox, client: httpx.AsyncClient) -> None:
    sb.faults.latency = 0.2
    started = anyio.current_time()
    assert (await client.get("/user/profile")).status_code == 200
    assert anyio.current_time() - started >= 0.2


async def test_latency_is_cancellable_on_the_client_side(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.faults.latency = 5
    with anyio.move_on_after(0.2) as scope:
        await client.get("/user/profile")
    assert scope.cancelled_caught


async def test_lost_order_reply_books_the_order_and_breaks_the_connection(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.faults.lose_order_reply = True
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.post("/orders/regular", data={**ORDER, "tag": "lost42"})
    (order,) = sb.state.book.by_tag("lost42")
    assert order.status == "COMPLETE"
    assert sb.state.stats.order_replies_lost == 1
    # other calls are answered; the order is visible through the API, found by its tag
    sb.faults.lose_order_reply = False
    orders = (await client.get("/orders")).json()["data"]
    assert [o["tag"] for o in orders] == ["lost42"]
    assert (await client.post("/orders/regular", data=ORDER)).status_code == 200


async def test_lost_reply_does_not_apply_to_refused_orders(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.faults.lose_order_reply = True
    response = await client.post("/orders/regular", data={**ORDER, "quantity": "0"})
    assert kite_error(response) == (400, "InputException")
    assert sb.state.stats.order_replies_lost == 0


async def test_expired_session_answers_403_until_a_new_login(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    sb.expire_session()
    assert kite_error(await client.get("/user/profile")) == (403, "TokenException")
    assert not sb.state.check_token(sb.api_key, sb.access_token)
    assert not check_enctoken(sb.state, sb.user_id, sb.enctoken)
    sb.state.start_session()
    assert (await client.get("/user/profile")).status_code == 200


async def test_admin_endpoints_switch_faults_at_runtime(
    sb: Sandbox, client: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=sb.root_url) as admin:
        answer = await admin.post(
            "/__sandbox__/faults", json={"latency": 0.01, "ws_drop_every": 2, "ws_silence": True}
        )
        assert answer.status_code == 200
        faults: dict[str, Any] = answer.json()["data"]
        assert (faults["latency"], faults["ws_drop_every"], faults["ws_silence"]) == (
            0.01,
            2.0,
            True,
        )
        assert sb.faults.ws_silence is True
        for bad in ({"nope": 1}, {"latency": -1}, {"ws_silence": "yes"}, [1]):
            refused = await admin.post("/__sandbox__/faults", json=bad)
            assert kite_error(refused) == (400, "InputException")
        assert sb.faults.latency == 0.01
        assert (await admin.get("/__sandbox__/faults")).json()["data"]["ws_silence"] is True

        event = sb.state.ws_drop_event()
        epoch = sb.state.ws_drop_epoch
        assert (await admin.post("/__sandbox__/drop_websockets")).status_code == 200
        assert event.is_set()
        assert sb.state.ws_drop_epoch == epoch + 1
        assert not sb.state.ws_drop_event().is_set()

        assert (await admin.post("/__sandbox__/expire_session")).status_code == 200
        assert kite_error(await client.get("/user/profile")) == (403, "TokenException")

        steps = await admin.post("/__sandbox__/step", params={"steps": "5"})
        assert steps.json()["data"] == 5
        bad_steps = await admin.post("/__sandbox__/step", params={"steps": "x"})
        assert kite_error(bad_steps) == (400, "InputException")

        stats = (await admin.get("/__sandbox__/stats")).json()["data"]
        assert stats["refused_403"] == 1
        assert set(stats["refused_429"]) == {"quote", "historical", "order", "other"}


async def test_object_controls(sb: Sandbox) -> None:
    event = sb.state.ws_drop_event()
    sb.drop_websockets()
    assert event.is_set()
    before = sb.state.market.steps
    sb.step_market(3)
    assert sb.state.market.steps == before + 3
    assert sb.faults is sb.state.faults


def test_faults_validate_values() -> None:
    with pytest.raises(ValueError, match="latency"):
        Faults(latency=-1)
    with pytest.raises(ValueError, match="ws_drop_every"):
        Faults(ws_drop_every=0)
    faults = Faults()
    with pytest.raises(ValueError, match="unknown"):
        faults.update({"latency": 1, "bogus": 2})
    assert faults.latency == 0.0
