"""The REST pipeline base (``aio_trader._rest.RestBroker``) through a broker that is not Kite.

``Toy`` is a few lines over the base, against a real scripted server on loopback: its
lifecycle, its limiter per endpoint group, the session-expiry hook, secrets, and the
never-send-an-order-twice algorithm with a ``correlationId`` lookup (Dhan's name for
the client tag). Kite's own use of the base is covered by the test_kite_* files.
"""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import anyio
import attrs
import pytest
from httpserver import Drop, HTTPServer, Reply

from aio_trader import _redact
from aio_trader._records import Record, conversion_failures
from aio_trader._rest import RestBroker, choice, fields, int_arg, segment_id, str_arg
from aio_trader.backoff import Backoff
from aio_trader.errors import (
    BrokerError,
    BrokerUnavailable,
    ClientClosedError,
    InsufficientFunds,
    OrderOutcomeUnknown,
    OrderRejected,
    SessionExpired,
)
from aio_trader.http import AsyncRequest
from aio_trader.ratelimit import Rate

FAST = Backoff(base=0.001, cap=0.005, max_attempts=3)


class Exchange(str, enum.Enum):
    NSE = "NSE"
    BSE = "BSE"


def toy_mapper(status: int, body: bytes) -> BrokerError:
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    code = data.get("errorCode", "T-0") if isinstance(data, dict) else "T-0"
    cls: type[BrokerError] = {
        "T-401": SessionExpired,
        "T-901": InsufficientFunds,
        "T-902": OrderRejected,
    }.get(code, BrokerUnavailable)
    return cls("toy says no", status_code=status, code=code, broker="toy")


def toy_error(status: int, code: str) -> Reply:
    return Reply(status, json.dumps({"errorCode": code}).encode())


def orders_reply(*orders: dict[str, Any]) -> Reply:
    return Reply(200, json.dumps(list(orders)).encode())


class Toy(RestBroker[str]):
    """A broker without an envelope, whose client tag is ``correlationId``."""

    def __init__(self, url: str, **options: Any) -> None:
        options.setdefault("reconcile_delay", 0)
        super().__init__(
            AsyncRequest(url, error_mapper=toy_mapper, backoff=FAST),
            {"orders": (Rate(100, 1),), "other": (Rate(100, 1),)},
            **options,
        )
        self.logins = 0

    def _group(self, method: str, path: str) -> str:
        return "orders" if method != "GET" and path.startswith("/orders") else "other"

    async def authorise(self) -> object:
        return await self._request("GET", "/profile", dict)

    async def orders(self) -> list[dict[str, Any]]:
        return await self._request("GET", "/orders", list)

    async def _by_correlation_id(self, tag: str) -> list[dict[str, Any]]:
        return [order for order in await self.orders() if order.get("correlationId") == tag]

    async def place(self, tag: str) -> Any:
        async def send() -> Any:
            return await self._request("POST", "/orders", dict, json={"correlationId": tag})

        return await self._place_once(send, tag, self._by_correlation_id)


@pytest.fixture
async def server() -> AsyncIterator[HTTPServer]:
    async with anyio.create_task_group() as tg:
        srv = HTTPServer()
        await tg.start(srv.serve)
        yield srv
        tg.cancel_scope.cancel()


def posts(server: HTTPServer) -> int:
    return sum(1 for request in server.requests if request.method == "POST")


# -- lifecycle -----------------------------------------------------------------------------


async def test_nothing_works_before_entry_or_after_exit(server: HTTPServer) -> None:
    server.default = orders_reply()
    toy = Toy(server.url)
    assert not toy.is_open
    with pytest.raises(ClientClosedError, match="Toy is not open"):
        await toy.orders()
    async with toy as entered:
        assert entered is toy
        assert toy.is_open
        await toy.open()  # a no-op while open
        assert await toy.orders() == []
    assert not toy.is_open
    with pytest.raises(ClientClosedError, match="Toy is closed"):
        await toy.orders()
    with pytest.raises(ClientClosedError, match="cannot be reopened"):
        await toy.open()
    assert [r.path for r in server.requests] == ["/orders"]


async def test_a_failed_login_on_entry_closes_the_client(server: HTTPServer) -> None:
    class Failing(Toy):
        async def _on_open(self) -> None:
            await self.authorise()

    server.default = toy_error(401, "T-401")
    toy = Failing(server.url, session_expiry_hook=lambda: None)
    with pytest.raises(SessionExpired):
        await toy.open()
    assert not toy.is_open
    with pytest.raises(ClientClosedError):
        await toy.orders()


async def test_the_session_expiry_hook_runs_on_a_session_expired_answer(
    server: HTTPServer,
) -> None:
    calls: list[str] = []

    async def relogin() -> None:
        calls.append("hook")

    server.default = toy_error(401, "T-401")
    async with Toy(server.url, session_expiry_hook=relogin) as toy:
        with pytest.raises(SessionExpired) as caught:
            await toy.orders()
        assert caught.value.broker == "toy"
        assert calls == ["hook"]
        with pytest.raises(TypeError, match="callable"):
            toy.set_session_expiry_hook("no")  # type: ignore[arg-type]


async def test_each_endpoint_group_has_its_limiter(server: HTTPServer) -> None:
    server.default = orders_reply()
    async with Toy(server.url) as toy:
        await toy.orders()
        await toy.orders()
        assert toy._limiters["other"].statistics().acquired == 2
        assert toy._limiters["orders"].statistics().acquired == 0


async def test_secrets_are_masked_while_open_and_forgotten_after(server: HTTPServer) -> None:
    toy = Toy(server.url)
    toy._remember("toy-secret-before-open")
    assert "toy-secret-before-open" not in _redact._REDACTOR.secrets
    async with toy:
        toy._remember("toy-secret-while-open")
        assert {"toy-secret-before-open", "toy-secret-while-open"} <= set(_redact._REDACTOR.secrets)
    assert "toy-secret-before-open" not in _redact._REDACTOR.secrets
    assert "toy-secret-while-open" not in _redact._REDACTOR.secrets


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"reconcile_attempts": 0}, ValueError),
        ({"reconcile_attempts": 1.5}, TypeError),
        ({"reconcile_delay": -1}, ValueError),
        ({"reconcile_delay": "1"}, TypeError),
        ({"session_expiry_hook": "no"}, TypeError),
    ],
)
def test_bad_options_raise_before_any_io(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Toy("http://127.0.0.1:9", **options)


# -- never send an order twice, by a lookup that is not Kite's --------------------------------


async def test_an_order_lost_on_the_way_back_is_found_by_its_correlation_id(
    server: HTTPServer,
) -> None:
    tag = "corr123"
    server.script(Drop(), orders_reply({"orderId": "7", "correlationId": tag}))
    async with Toy(server.url) as toy:
        found = await toy.place(tag)
    assert found == [{"orderId": "7", "correlationId": tag}]
    assert posts(server) == 1  # sent once, never again


async def test_no_order_found_is_order_outcome_unknown_with_the_tag(server: HTTPServer) -> None:
    server.script(Drop())
    server.default = orders_reply({"orderId": "1", "correlationId": "someone-else"})
    async with Toy(server.url, reconcile_attempts=3) as toy:
        with pytest.raises(OrderOutcomeUnknown) as caught:
            await toy.place("corr9")
    assert caught.value.tag == "corr9"
    assert "no order" in str(caught.value)
    assert posts(server) == 1
    assert [r.path for r in server.requests].count("/orders") == 4  # 1 POST + 3 lookups


async def test_two_orders_with_the_tag_are_not_guessed(server: HTTPServer) -> None:
    tag = "twice"
    server.script(
        Drop(),
        orders_reply(
            {"orderId": "1", "correlationId": tag}, {"orderId": "2", "correlationId": tag}
        ),
    )
    async with Toy(server.url) as toy:
        with pytest.raises(OrderOutcomeUnknown, match="2 orders"):
            await toy.place(tag)
    assert posts(server) == 1


async def test_a_failed_lookup_is_order_outcome_unknown(server: HTTPServer) -> None:
    server.script(Drop(), Drop(), Drop(), Drop())  # the order, then every lookup attempt
    async with Toy(server.url) as toy:
        with pytest.raises(OrderOutcomeUnknown, match="lookup failed") as caught:
            await toy.place("lost")
    assert caught.value.tag == "lost"
    assert posts(server) == 1


@pytest.mark.parametrize(
    ("code", "category"), [("T-901", InsufficientFunds), ("T-902", OrderRejected)]
)
async def test_a_refusal_behind_a_5xx_is_raised_as_itself_without_a_lookup(
    server: HTTPServer, code: str, category: type[BrokerError]
) -> None:
    server.default = toy_error(500, code)
    async with Toy(server.url) as toy:
        with pytest.raises(category) as caught:
            await toy.place("refused")
    assert caught.value.code == code
    assert isinstance(caught.value, OrderRejected)
    assert [r.method for r in server.requests] == ["POST"]  # no lookup, no second POST


# -- the record engine, for a broker that is not Kite --------------------------------------------


@attrs.frozen
class Leg(Record):
    price: float | None = None


@attrs.frozen
class ToyOrder(Record):
    _wire: ClassVar[str] = "Toy"

    orderId: str
    quantity: int | None = None
    legs: tuple[Leg, ...] | None = None
    amo: bool | None = None


def test_the_record_engine_serves_any_broker(caplog: pytest.LogCaptureFixture) -> None:
    before = conversion_failures()
    order = ToyOrder.from_data(
        {"orderId": 7, "quantity": "2", "legs": [{"price": 1}], "amo": "true", "new": 1}
    )
    assert (order.orderId, order.quantity, order.legs, order.amo) == ("7", 2, (Leg(1.0),), True)
    assert order.extra == {"new": 1}
    assert order.to_dict() == {
        "orderId": "7",
        "quantity": 2,
        "legs": [{"price": 1.0}],
        "amo": True,
        "new": 1,
    }
    odd = ToyOrder.from_data({"orderId": "8", "quantity": "many"})
    assert odd.quantity is None
    assert odd.extra == {"quantity": "many"}
    assert conversion_failures() == before + 1
    assert "Toy field ToyOrder.quantity" in caplog.text
    assert "many" not in caplog.text  # the value never reaches the log
    with pytest.raises(BrokerUnavailable, match="required field 'orderId'"):
        ToyOrder.from_data({"quantity": 1})
    with pytest.raises(BrokerUnavailable, match="JSON array"):
        ToyOrder.from_list({"orderId": "1"})  # type: ignore[arg-type]
    assert ToyOrder.from_map({"a": {"orderId": "1"}}) == {"a": ToyOrder(orderId="1")}


# -- validators: a clear error before any I/O --------------------------------------------------


def test_validators() -> None:
    assert fields(a=1, b=None, c=Exchange.NSE) == {"a": 1, "c": "NSE"}
    assert type(fields(c=Exchange.NSE)["c"]) is str
    assert choice(Exchange, "NSE", "exchange") == "NSE"
    assert choice(Exchange, Exchange.BSE, "exchange") == "BSE"
    with pytest.raises(ValueError, match="unknown exchange 'XX': expected one of"):
        choice(Exchange, "XX", "exchange")
    with pytest.raises(TypeError, match="exchange must be a str"):
        choice(Exchange, 1, "exchange")
    assert segment_id(12, "order_id") == "12"
    with pytest.raises(ValueError, match="order_id"):
        segment_id("../orders", "order_id")
    with pytest.raises(TypeError):
        segment_id(True, "order_id")
    assert int_arg(3, "quantity") == 3
    with pytest.raises(TypeError, match="quantity must be an int"):
        int_arg(True, "quantity")
    str_arg(None, "x")
    with pytest.raises(TypeError):
        str_arg(None, "x", optional=False)


# -- layers: the core imports no broker --------------------------------------------------------

CORE = [
    "aio_trader",
    "aio_trader.errors",
    "aio_trader.backoff",
    "aio_trader.ratelimit",
    "aio_trader.abc",
    "aio_trader.http",
    "aio_trader._transport",
    "aio_trader._redact",
    "aio_trader._rest",
    "aio_trader._records",
]
