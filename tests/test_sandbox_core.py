"""The sandbox's broker-neutral core and its dialect seam: imports, configuration, and how
errors leave ``async with Sandbox(...)`` and the pytest fixture."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import anyio
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aio_trader.errors import TokenException
from aio_trader.kite import Kite, KiteFeed
from aio_trader.ratelimit import Rate
from aio_trader.sandbox import OrderRules, Sandbox, SandboxConfig, SandboxInstrument
from aio_trader.sandbox._api import ApiError
from aio_trader.sandbox._dialect import Dialect, load_dialect
from aio_trader.sandbox._kite import DIALECT, KiteDialect
from aio_trader.sandbox._pipeline import Call, Endpoint
from aio_trader.sandbox.config import RULE_NAMES, brokers
from aio_trader.sandbox.orders import Order, OrderTables
from aio_trader.sandbox.state import SandboxState

#: The sandbox core: every module of ``aio_trader.sandbox`` that is not a dialect.
CORE = (
    "aio_trader.sandbox",
    "aio_trader.sandbox._api",
    "aio_trader.sandbox._dialect",
    "aio_trader.sandbox._pipeline",
    "aio_trader.sandbox.app",
    "aio_trader.sandbox.config",
    "aio_trader.sandbox.market",
    "aio_trader.sandbox.orders",
    "aio_trader.sandbox.pytest_plugin",
    "aio_trader.sandbox.server",
    "aio_trader.sandbox.state",
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )


def test_the_kite_dialect_is_found_without_being_imported() -> None:
    done = run_python(
        "import sys\nfrom aio_trader.sandbox.config import brokers\n"
        "print(','.join(brokers()), 'aio_trader.sandbox._kite' in sys.modules,"
        " 'aio_trader.sandbox._dhan' in sys.modules)"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["dhan,kite", "False", "False"]


def test_the_kite_dialect_implements_the_interface() -> None:
    dialect: Dialect = load_dialect("kite")
    assert dialect is DIALECT
    assert isinstance(dialect, KiteDialect)
    assert dialect.name == "kite"
    assert dialect.order_group in dialect.rate_limits
    assert "MARKET" in dialect.order_tables.order_types
    assert dialect.max_ws_connections == 3
    assert dialect.max_ws_instruments == 3000
    assert dialect.orders_per_minute == 200


# -- configuration ------------------------------------------------------------------------------


def test_broker_defaults_to_kite_and_an_unknown_one_is_refused() -> None:
    assert SandboxConfig().broker == "kite"
    assert SandboxConfig(broker="kite").broker == "kite"
    assert brokers() == ("dhan", "kite")
    for bad in ("dhan-x", "KITE", "", "api", "kite/../x"):
        with pytest.raises(ValueError, match="unknown broker"):
            SandboxConfig(broker=bad)
    with pytest.raises(ValueError, match="unknown broker"):
        Sandbox(broker="zerodha")  # before anything starts: no event loop needed


def test_rules_by_name_or_by_value() -> None:
    assert SandboxConfig(rules="before-2026").rules == OrderRules.before_2026()
    assert SandboxConfig(rules="2026").rules == OrderRules()
    assert SandboxConfig(rules=OrderRules.before_2026()).rules == OrderRules.before_2026()
    assert SandboxConfig().rules == OrderRules()
    assert RULE_NAMES == ("2026", "before-2026")
    assert [OrderRules.named(name) for name in RULE_NAMES] == [
        OrderRules(),
        OrderRules.before_2026(),
    ]
    with pytest.raises(ValueError, match="unknown order rules 'before-2025'"):
        SandboxConfig(rules="before-2025")
    with pytest.raises(TypeError, match="rules must be"):
        SandboxConfig(rules=2026)  # type: ignore[arg-type]


def test_broker_limits_fill_in_what_the_config_leaves_open() -> None:
    from aio_trader.sandbox.state import SandboxState

    config = SandboxConfig()
    assert (config.max_tokens_per_ws, config.max_ws_per_api_key, config.orders_per_minute) == (
        None,
        None,
        None,
    )
    state = SandboxState(config)
    assert state.config.max_tokens_per_ws == 3000
    assert state.config.max_ws_per_api_key == 3
    assert state.config.orders_per_minute == 200
    mine = SandboxState(SandboxConfig(max_tokens_per_ws=5, max_ws_per_api_key=1))
    assert (mine.config.max_tokens_per_ws, mine.config.max_ws_per_api_key) == (5, 1)
    for field in ("max_tokens_per_ws", "max_ws_per_api_key", "orders_per_minute"):
        with pytest.raises(ValueError, match=field):
            SandboxConfig(**{field: 0})


async def test_before_2026_rules_by_name_accept_an_unprotected_market_order() -> None:
    order = {
        "exchange": "NSE",
        "tradingsymbol": "INFY",
        "transaction_type": "BUY",
        "order_type": "MARKET",
        "quantity": "1",
        "product": "CNC",
    }
    for rules, expected in (("2026", 400), ("before-2026", 200)):
        async with (
            Sandbox(rules=rules, market_interval=None) as sb,
            httpx.AsyncClient(
                base_url=sb.root_url,
                headers={"Authorization": f"token {sb.api_key}:{sb.access_token}"},
            ) as client,
        ):
            response = await client.post("/orders/regular", data=order)
            assert response.status_code == expected, response.text


# -- errors leave as themselves -----------------------------------------------------------------


class Boom(Exception):
    pass


async def test_an_error_in_the_body_comes_out_as_itself() -> None:
    with pytest.raises(Boom) as caught:
        async with Sandbox(market_interval=0.01) as sb:
            raise Boom("mine")
    assert type(caught.value) is Boom
    with pytest.raises(RuntimeError, match="not running"):
        _ = sb.port


async def test_a_library_error_in_the_body_comes_out_as_itself() -> None:
    # the pattern users write: a client inside the sandbox, a refusal caught by its class
    with pytest.raises(TokenException) as caught:
        async with (
            Sandbox() as sb,
            Kite(api_key=sb.api_key, access_token="wrong", root=sb.root_url) as kite,
        ):
            await kite.profile()
    assert type(caught.value) is TokenException


async def test_a_feed_error_in_the_body_comes_out_as_itself() -> None:
    # a ticker connection (and its tasks in the sandbox) is open when the body fails
    async def body() -> None:
        async with (
            Sandbox(tick_interval=0.01) as sb,
            KiteFeed(api_key=sb.api_key, access_token=sb.access_token, root=sb.ticker_url) as f,
        ):
            await f.subscribe([408065])
            async for _ in f:
                raise Boom("after a tick")

    with pytest.raises(Boom):
        await body()


async def test_cancelling_the_body_stops_the_sandbox_quietly() -> None:
    with anyio.CancelScope() as scope:
        async with Sandbox(market_interval=0.01) as sb:
            await anyio.sleep(0.05)  # the market clock ticks meanwhile
            scope.cancel()  # once running, however long starting took on a busy machine
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    with pytest.raises(RuntimeError, match="not running"):
        _ = sb.port
    async with Sandbox() as again:  # nothing left behind
        assert again.port


FIXTURE_TEST = """
import pytest

from aio_trader.kite import Kite

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param

@pytest.mark.anyio
async def test_refused(kite_sandbox):
    async with Kite(api_key=kite_sandbox.api_key, access_token="wrong",
                    root=kite_sandbox.root_url) as kite:
        await kite.profile()

@pytest.mark.anyio
async def test_mine(kite_sandbox):
    raise LookupError("mine")
"""


def test_an_error_in_a_test_using_the_fixture_comes_out_as_itself(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(FIXTURE_TEST)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rf", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "4 failed" in out, out
    for backend in ("asyncio", "trio"):
        assert (
            f"FAILED test_user.py::test_refused[{backend}] - aio_trader.errors.TokenException"
            in (out)
        ), out
        assert f"FAILED test_user.py::test_mine[{backend}] - LookupError: mine" in out, out
    assert "ExceptionGroup" not in out, out


# -- another dialect on the same core -----------------------------------------------------------


class ToyState:
    """A broker's own state: counts market steps."""

    def __init__(self) -> None:
        self.steps = 0

    def on_market_step(self) -> None:
        self.steps += 1


class ToyDialect:
    """A made-up broker, to show the core runs any dialect: JSON routes under ``/v2``,
    ``{"errorCode": ...}`` bodies, one rate-limited group, an ``access-token`` header."""

    name = "toy"
    rate_limits: Mapping[str, tuple[Rate, ...]] = MappingProxyType(
        {"data": (Rate(2, 60),), "orders": (Rate(5, 1), Rate(100, 60))}
    )
    order_group = "orders"
    orders_per_minute = 100
    max_ws_connections = 5
    max_ws_instruments = 100
    order_tables = OrderTables(
        varieties=("regular",),
        order_types=("MARKET", "LIMIT"),
        products=("CNC", "MIS"),
        validities=("DAY",),
    )

    def load_instruments(self) -> Mapping[int, SandboxInstrument]:
        stock = SandboxInstrument(
            instrument_token=1333,
            exchange_token=1333,
            tradingsymbol="HDFCBANK",
            name="HDFC BANK",
            base_price=1600.0,
            expiry=None,
            strike=0.0,
            tick_size=0.05,
            lot_size=1,
            instrument_type="EQ",
            segment="NSE",
            exchange="NSE",
        )
        return {stock.instrument_token: stock}

    def create_state(self, state: SandboxState) -> ToyState:
        return ToyState()

    def routes(self) -> list[BaseRoute]:
        async def ltp(call: Call) -> Any:
            return {"HDFCBANK": call.state.market.last_price(1333)}

        async def place(call: Call) -> Any:
            params = {**call.body, "exchange": "NSE"}  # the engine's vocabulary
            return {"orderId": call.state.book.place("regular", params).order_id}

        return [
            Route("/v2/ltp", Endpoint(ltp, group="data"), methods=["GET"]),
            Route("/v2/orders", Endpoint(place, group="orders", orders=True), methods=["POST"]),
        ]

    def success(self, data: Any) -> Response:
        return JSONResponse(data)

    def error_response(self, error: ApiError) -> Response:
        code = {"input": "DH-905", "session": "DH-901", "rate_limit": "DH-904"}.get(error.kind)
        body = {"errorCode": code or "DH-908", "errorMessage": error.message}
        return JSONResponse(body, status_code=error.status)

    def auth_error(self, request: Request, state: SandboxState) -> ApiError | None:
        token = request.headers.get("access-token", "")
        return None if state.check_token(state.config.api_key, token) else _toy_refusal()

    def order_update(self, state: SandboxState, order: Order, status: str | None) -> Any:
        return {"orderId": order.order_id, "status": status or order.status}


def _toy_refusal() -> ApiError:
    return ApiError(401, "session", "Invalid access token")


async def test_the_core_serves_another_dialect(monkeypatch: pytest.MonkeyPatch) -> None:
    toy: Dialect = ToyDialect()
    # a dialect package would be found by name; this one is handed to the core directly
    monkeypatch.setattr("aio_trader.sandbox.state.load_dialect", lambda broker: toy)
    async with (
        Sandbox(market_interval=None, rules="before-2026") as sb,
        httpx.AsyncClient(base_url=sb.root_url) as anonymous,
        httpx.AsyncClient(
            base_url=sb.root_url, headers={"access-token": sb.access_token}
        ) as client,
    ):
        assert sb.state.dialect is toy
        assert (await anonymous.get("/__sandbox__/ping")).json() == "pong"
        refused = await anonymous.get("/v2/ltp")
        assert (refused.status_code, refused.json()["errorCode"]) == (401, "DH-901")
        unknown = await client.get("/orders")  # a Kite path: not this broker's
        assert (unknown.status_code, unknown.json()["errorCode"]) == (404, "DH-908")
        assert (await client.get("/v2/ltp")).json() == {
            "HDFCBANK": sb.state.market.last_price(1333)
        }
        await client.get("/v2/ltp")  # the second of 2 a minute
        limited = await client.get("/v2/ltp")
        assert (limited.status_code, limited.json()["errorCode"]) == (429, "DH-904")
        assert sb.state.stats.refused_429 == {"data": 1, "orders": 0}
        with sb.state.order_updates() as updates:
            order = {
                "tradingsymbol": "HDFCBANK",
                "transaction_type": "BUY",
                "order_type": "MARKET",
                "product": "CNC",
                "quantity": 1,
            }
            placed = (await client.post("/v2/orders", json=order)).json()
            assert sb.state.book.orders[placed["orderId"]].status == "COMPLETE"
            first = updates.receive_nowait()
            assert first["orderId"] == placed["orderId"]
        bad = await client.post("/v2/orders", json={**order, "product": "NRML"})
        assert (bad.status_code, bad.json()["errorCode"]) == (400, "DH-905")
        sb.step_market(3)
        broker = sb.state.broker
        assert isinstance(broker, ToyState)
        assert broker.steps == 3
        assert sb.state.config.max_ws_per_api_key == 5


def test_the_cli_offers_the_configs_brokers_and_rules() -> None:
    from aio_trader._cli.sandbox import BROKERS, RULES
    from aio_trader.sandbox.config import brokers

    assert RULES == RULE_NAMES
    assert set(BROKERS) == set(brokers())
