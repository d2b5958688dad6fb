"""AbstractBroker and AbstractFeeder: the shape every broker package provides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import anyio
import anyio.lowlevel
import pytest
from anyio.abc import AsyncResource

from aio_trader import AbstractBroker, AbstractFeeder


def test_abstract_methods_are_pinned() -> None:
    assert AbstractBroker.__abstractmethods__ == {"authorise", "aclose"}
    assert AbstractFeeder.__abstractmethods__ == {
        "subscribe",
        "unsubscribe",
        "set_mode",
        "__aiter__",
        "statistics",
        "aclose",
    }


def test_abstract_classes_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError):
        AbstractBroker()  # type: ignore[abstract]
    with pytest.raises(TypeError):
        AbstractFeeder()  # type: ignore[abstract]


class Broker(AbstractBroker):
    def __init__(self) -> None:
        self.session: str | None = None
        self.closed = 0

    async def authorise(self) -> str:
        await anyio.lowlevel.checkpoint()
        self.session = "session"
        return self.session

    async def aclose(self) -> None:
        self.closed += 1


class Feeder(AbstractFeeder[int, tuple[int, str]]):
    """A feed over a memory stream: what a subclass provides, end to end."""

    def __init__(self) -> None:
        self.modes: dict[int, str] = {}
        self._send, self._receive = anyio.create_memory_object_stream[tuple[int, str]](10)

    async def subscribe(self, keys: Iterable[int], mode: str | None = None) -> None:
        for key in keys:
            self.modes[key] = mode or "quote"
            await self._send.send((key, self.modes[key]))

    async def unsubscribe(self, keys: Iterable[int]) -> None:
        for key in keys:
            self.modes.pop(key, None)
        await anyio.lowlevel.checkpoint()

    async def set_mode(self, mode: str, keys: Iterable[int]) -> None:
        await self.subscribe([key for key in keys if key in self.modes], mode)

    def __aiter__(self) -> AsyncIterator[tuple[int, str]]:
        return self._receive

    def statistics(self) -> object:
        return self._receive.statistics()

    async def aclose(self) -> None:
        self._send.close()


def test_both_are_anyio_async_resources() -> None:
    assert issubclass(AbstractBroker, AsyncResource)
    assert issubclass(AbstractFeeder, AsyncResource)


async def test_close_is_an_alias_of_aclose_and_authorize_of_authorise() -> None:
    broker = Broker()
    assert await broker.authorize() == "session"  # the seed's spelling
    await broker.close()
    await broker.aclose()
    assert broker.closed == 2


async def test_a_feeders_close_is_an_alias_of_aclose() -> None:
    feed = Feeder()
    await feed.subscribe([1])
    await feed.close()  # the seed's name
    assert [item async for item in feed] == [(1, "quote")]


async def test_a_broker_is_an_async_context_manager_that_closes() -> None:
    async with Broker() as broker:
        assert await broker.authorise() == "session"
    assert broker.closed == 1


async def test_a_broker_closes_when_the_body_raises() -> None:
    broker = Broker()
    with pytest.raises(LookupError):
        async with broker:
            raise LookupError
    assert broker.closed == 1


async def test_a_feeder_subscribes_and_iterates() -> None:
    async with Feeder() as feed:
        await feed.subscribe([408065, 884737], mode="full")
        await feed.set_mode("ltp", [408065])
        await feed.unsubscribe([884737])
        await feed.close()
        received = [item async for item in feed]
    assert received == [(408065, "full"), (884737, "full"), (408065, "ltp")]
    assert feed.modes == {408065: "ltp"}


BUILT_BEFORE_A_LOOP = {
    "Kite": "from aio_trader.kite import Kite; Kite('k', 't')",
    "KiteFeed": "from aio_trader.kite import KiteFeed; KiteFeed('k', 't')",
    "RawKiteFeed": "from aio_trader.kite import RawKiteFeed; RawKiteFeed('k', 't')",
    "Dhan": "from aio_trader.dhan import Dhan; Dhan(client_id='1', access_token='t')",
    "DhanFeed": "from aio_trader.dhan import DhanFeed; DhanFeed(client_id='1', access_token='t')",
    "DhanDepthFeed": (
        "from aio_trader.dhan import DhanDepthFeed; DhanDepthFeed(client_id='1', access_token='t')"
    ),
    "RawDhanFeed": (
        "from aio_trader.dhan import RawDhanFeed; RawDhanFeed(client_id='1', access_token='t')"
    ),
    "AsyncRequest": "from aio_trader import AsyncRequest; AsyncRequest('http://localhost')",
    "Gateway": (
        "from aio_trader.gateway import Gateway; Gateway('k', 't', redis='redis://localhost:1')"
    ),
    "RedisFeed": "from aio_trader.gateway import RedisFeed; RedisFeed('redis://localhost:1', 'c')",
    "ReplayFeed": "from aio_trader.replay import ReplayFeed; ReplayFeed('session.parquet')",
    "Sandbox": "from aio_trader.sandbox import Sandbox; Sandbox()",
}


@pytest.mark.parametrize("statement", BUILT_BEFORE_A_LOOP.values(), ids=BUILT_BEFORE_A_LOOP.keys())
def test_every_client_and_feed_can_be_built_outside_an_event_loop(statement: str) -> None:
    """Built at module level or before ``anyio.run``: nothing needs a loop until entry
    (anyio's locks, events and cancel scopes are made then)."""
    exec(statement, {})  # a synchronous test: no event loop runs here
