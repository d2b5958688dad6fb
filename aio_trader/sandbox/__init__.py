"""A local Kite Connect v3 compatible server: REST, login, ticker, order book, market, faults.

Needs the ``sandbox`` extra (starlette, hypercorn)::

    from aio_trader.sandbox import Sandbox, SandboxConfig, Faults

    async with Sandbox(SandboxConfig(seed=1)) as sb:
        ...  # sb.root_url, sb.ticker_url, sb.api_key, sb.access_token, sb.faults ...
"""

from aio_trader.sandbox.config import Faults, SandboxConfig
from aio_trader.sandbox.market import SandboxInstrument
from aio_trader.sandbox.server import Sandbox
from aio_trader.sandbox.state import SandboxState, SandboxStats

__all__ = [
    "Faults",
    "Sandbox",
    "SandboxConfig",
    "SandboxInstrument",
    "SandboxState",
    "SandboxStats",
]
