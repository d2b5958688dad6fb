"""aio_trader: async (anyio) clients for Indian stockbroker APIs.

Names are loaded on first use (PEP 562 ``__getattr__``), so importing this package
loads no HTTP or WebSocket library until a name that needs one is touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aio_trader import _lazy

if TYPE_CHECKING:  # the names as mypy and IDEs see them
    from aio_trader.abc import (
        AbstractBroker,
        AbstractFeeder,
    )
    from aio_trader.backoff import (
        Backoff,
    )
    from aio_trader.errors import (
        AioTraderError,
    )
    from aio_trader.http import (
        AsyncRequest,
    )
    from aio_trader.ratelimit import (
        Rate,
        RateLimiter,
    )

__version__ = "0.1.0"

#: public name -> the private module that defines it
_EXPORTS: dict[str, str] = {
    "AbstractBroker": "aio_trader.abc",
    "AbstractFeeder": "aio_trader.abc",
    "AioTraderError": "aio_trader.errors",
    "AsyncRequest": "aio_trader.http",
    "Backoff": "aio_trader.backoff",
    "Rate": "aio_trader.ratelimit",
    "RateLimiter": "aio_trader.ratelimit",
}

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

__getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
