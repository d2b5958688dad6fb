"""aio_trader: async (anyio) clients for Indian stockbroker APIs."""

from aio_trader.abc import AbstractBroker, AbstractFeeder
from aio_trader.backoff import Backoff
from aio_trader.errors import AioTraderError
from aio_trader.http import AsyncRequest
from aio_trader.ratelimit import Rate, RateLimiter

__version__ = "0.1.0"

__all__ = [
    "AbstractBroker",
    "AbstractFeeder",
    "AioTraderError",
    "AsyncRequest",
    "Backoff",
    "Rate",
    "RateLimiter",
    "__version__",
]
