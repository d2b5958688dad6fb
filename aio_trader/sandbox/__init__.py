"""A local broker server (Kite Connect v3 today): REST, login, ticker, order book, market,
faults.

A broker-neutral core (``server``, ``config``, ``state``, ``app``, ``market``, ``orders``,
the fault pipeline, the pytest plugin) and one dialect per broker (``_kite``), chosen by
``SandboxConfig(broker=...)``; ``_dialect.py`` says what a dialect supplies.

Needs the ``sandbox`` extra (starlette, hypercorn)::

    from aio_trader.sandbox import Sandbox, SandboxConfig, Faults

    async with Sandbox(SandboxConfig(seed=1)) as sb:
        ...  # sb.root_url, sb.ticker_url, sb.api_key, sb.access_token, sb.faults ...
"""

try:
    from aio_trader.sandbox.config import Faults, OrderRules, SandboxConfig
    from aio_trader.sandbox.market import SandboxInstrument
    from aio_trader.sandbox.server import Sandbox
    from aio_trader.sandbox.state import SandboxState, SandboxStats
except ModuleNotFoundError as _missing:  # a core-only install: say which extra to install
    if (_missing.name or "").partition(".")[0] not in {
        "starlette",
        "hypercorn",
        "multipart",
        "python_multipart",
        "sniffio",
    }:
        raise
    raise ModuleNotFoundError(
        f"aio_trader.sandbox needs the `sandbox` extra "
        f"({(_missing.name or '').partition('.')[0]} is not installed): "
        "pip install 'aio-trader[sandbox]'",
        name=_missing.name,
    ) from None

__all__ = [
    "Faults",
    "OrderRules",
    "Sandbox",
    "SandboxConfig",
    "SandboxInstrument",
    "SandboxState",
    "SandboxStats",
]
