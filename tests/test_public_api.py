"""The public API surface is pinned: nothing leaks or vanishes by accident."""

from __future__ import annotations

import importlib

import pytest

import aio_trader

PUBLIC = [
    "AbstractBroker",
    "AbstractFeeder",
    "AioTraderError",
    "AsyncRequest",
    "Backoff",
    "Rate",
    "RateLimiter",
    "__version__",
]

MODULES = {
    "aio_trader.abc": ["AbstractBroker", "AbstractFeeder"],
    "aio_trader.backoff": ["Attempts", "Backoff", "retry"],
    "aio_trader.gateway": [
        "FeedGap",
        "FrameInfo",
        "Gateway",
        "GatewayStatistics",
        "Recorder",
        "RedisFeed",
        "RedisFeedItem",
        "RedisFeedStatistics",
        "record",
    ],
    "aio_trader.feed": [
        "Batches",
        "Channel",
        "ConnectionEvent",
        "FeedConnected",
        "FeedCounters",
        "FeedDisconnected",
        "FeedEngine",
        "FeedProtocol",
        "FeedStatistics",
        "Handshake",
        "Message",
        "Overflow",
        "RawFrame",
        "Sender",
        "make_channel",
        "never_a_record",
    ],
    "aio_trader.paper": ["Paper"],
    "aio_trader.replay": ["ReplayFeed", "ReplayStatistics"],
    "aio_trader.toolkit": [
        "CACHE_DIR_ENV",
        "MARKET_CLOSE",
        "MARKET_OPEN",
        "NSE_HOLIDAYS",
        "PRE_OPEN_END",
        "PRE_OPEN_START",
        "Bar",
        "BarBuilder",
        "Instrument",
        "InstrumentIndex",
        "Quotes",
        "bars_from",
        "holiday_name",
        "is_trading_day",
        "next_trading_day",
        "previous_trading_day",
        "round_to_tick",
        "session_close",
        "session_open",
    ],
    "aio_trader.trading": [
        "EXCHANGES",
        "Funds",
        "Holding",
        "Order",
        "OrderRequest",
        "OrderStatus",
        "OrderType",
        "Position",
        "Product",
        "Side",
        "Validity",
        "new_tag",
    ],
    "aio_trader.http": ["AsyncRequest", "Params", "RequestOptions"],
    "aio_trader.ratelimit": ["Rate", "RateLimiter", "RateLimiterStatistics", "Reservation"],
    "aio_trader.utils": [
        "Shutdown",
        "as_completed",
        "gather",
        "graceful_shutdown",
        "run_until_signal",
    ],
}


def test_top_level_all_is_pinned() -> None:
    assert sorted(aio_trader.__all__) == sorted(PUBLIC)
    for name in aio_trader.__all__:
        assert getattr(aio_trader, name) is not None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_all_is_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(MODULES[module])
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_top_level_names_are_the_module_objects() -> None:
    from aio_trader import abc, backoff, errors, http, ratelimit

    assert aio_trader.AbstractBroker is abc.AbstractBroker
    assert aio_trader.AsyncRequest is http.AsyncRequest
    assert aio_trader.Backoff is backoff.Backoff
    assert aio_trader.RateLimiter is ratelimit.RateLimiter
    assert aio_trader.AioTraderError is errors.AioTraderError


@pytest.mark.parametrize(
    "package", ["aio_trader", "aio_trader.kite", "aio_trader.gateway", "aio_trader.feed"]
)
def test_lazy_packages_load_names_on_first_use_and_list_them(package: str) -> None:
    mod = importlib.import_module(package)
    assert set(mod.__all__) <= set(dir(mod))
    name = next(n for n in mod.__all__ if n != "__version__")
    value = getattr(mod, name)
    assert vars(mod)[name] is value  # cached in the package after the first read
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        mod.no_such_name  # noqa: B018


def test_session_classes_are_public_from_their_broker_package() -> None:
    """Issue 19 §3: a session that renews itself, per broker, on the core's ``Session``."""
    from aio_trader import dhan, kite
    from aio_trader._session import Session
    from aio_trader.dhan import _session as dhan_session
    from aio_trader.kite import _session as kite_session

    assert "KiteSession" in kite.__all__
    assert "DhanSession" in dhan.__all__
    assert kite.KiteSession is kite_session.KiteSession
    assert dhan.DhanSession is dhan_session.DhanSession
    assert issubclass(kite.KiteSession, Session)
    assert issubclass(dhan.DhanSession, Session)
    assert "DhanSession" in dhan_session.__all__


def test_kite_names_the_examples_need_are_public() -> None:
    """What an example or a docs snippet needs is importable from ``aio_trader.kite``."""
    from aio_trader import kite
    from aio_trader.kite import _broker, _frames

    assert "historical_chunks" in kite.__all__
    assert kite.historical_chunks is _broker.historical_chunks
    assert kite.to_pandas is _frames.to_pandas
    assert kite.to_polars is _frames.to_polars
