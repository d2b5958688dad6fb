"""What importing a module loads, checked in a fresh interpreter: the layers of the design.

- A codec is pure: importing it loads no HTTP or WebSocket stack.
- The core (errors, backoff, rate limits, the contracts, HTTP, the REST pipeline, the feed
  engine and channel, the codec protocol, recordings and replay, the gateway, the sandbox's
  core) imports no broker package.
- A broker package imports the core and never another broker.
"""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys

import pytest

import aio_trader

#: Top-level packages the pure codec must not pull in.
NETWORK_STACK = {"httpx", "httpcore", "httpx_ws", "wsproto", "h11", "h2", "trio", "anyio"}

#: The brokers, each a package ``aio_trader.<name>`` and a sandbox dialect
#: ``aio_trader.sandbox._<name>`` (broker code too, beside the sandbox's core).
BROKERS = ("kite", "dhan")


def own_prefixes(broker: str) -> tuple[str, str]:
    return (f"aio_trader.{broker}", f"aio_trader.sandbox._{broker}")


BROKER_PREFIXES = tuple(prefix for broker in BROKERS for prefix in own_prefixes(broker))

#: Every module of the broker-neutral core (the sandbox's core included; its dialects are
#: broker code and live in ``aio_trader.sandbox._<broker>``).
CORE = [
    "aio_trader",
    "aio_trader.errors",
    "aio_trader.backoff",
    "aio_trader.ratelimit",
    "aio_trader.abc",
    "aio_trader.http",
    "aio_trader.utils",
    "aio_trader._transport",
    "aio_trader._redact",
    "aio_trader._rest",
    "aio_trader._session",
    "aio_trader._lifecycle",
    "aio_trader._records",
    "aio_trader._frames",
    "aio_trader._codec",
    "aio_trader._recording",
    "aio_trader._twins",
    "aio_trader._tokens",
    "aio_trader._time",
    "aio_trader._lazy",
    "aio_trader._ticksize",
    "aio_trader._bars",
    "aio_trader._calendar",
    "aio_trader._instruments",
    "aio_trader.toolkit",
    "aio_trader._trading",
    "aio_trader.trading",
    "aio_trader.feed",
    "aio_trader.feed._channel",
    "aio_trader.feed._engine",
    "aio_trader.feed._protocol",
    "aio_trader.replay",
    "aio_trader.paper",
    "aio_trader.gateway",
    "aio_trader.gateway._wire",
    "aio_trader.gateway._gateway",
    "aio_trader.gateway._consumer",
    "aio_trader.gateway._record",
    "aio_trader.gateway._redis",
    "aio_trader.sandbox",
    "aio_trader.sandbox._api",
    "aio_trader.sandbox._dialect",
    "aio_trader.sandbox._pipeline",
    "aio_trader.sandbox.app",
    "aio_trader.sandbox.config",
    "aio_trader.sandbox.market",
    "aio_trader.sandbox.orders",
    "aio_trader.sandbox.server",
    "aio_trader.sandbox.state",
    "aio_trader.sandbox.pytest_plugin",
]


def modules_after(statement: str) -> set[str]:
    """The modules loaded by ``statement`` in a fresh interpreter."""
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out))


def package_modules(package: str) -> list[str]:
    """Every module of a package, found on disk."""
    root = __import__(package, fromlist=["__path__"])
    return [package] + [
        info.name for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")
    ]


#: Each broker's modules: its package and its sandbox dialect (when it has one yet).
BROKER_MODULES = {
    broker: [
        module
        for package in own_prefixes(broker)
        if importlib.util.find_spec(package) is not None
        for module in package_modules(package)
    ]
    for broker in BROKERS
}


def loaded_brokers(loaded: set[str]) -> set[str]:
    """The broker modules (packages and sandbox dialects) among ``loaded``."""
    return {name for name in loaded if name.startswith(BROKER_PREFIXES)}


@pytest.mark.parametrize(
    "statement",
    [
        "import aio_trader.kite.ticks",
        "from aio_trader.kite.ticks import decode_frame, encode_frame, FullTick",
        "from aio_trader.kite import decode_frame, FullTick",
        "import aio_trader.dhan.ticks",
        "from aio_trader.dhan.ticks import decode_message, FullTick",
        "import aio_trader.dhan.constants",
    ],
)
def test_a_codec_imports_no_network_stack(statement: str) -> None:
    loaded = modules_after(statement)
    assert {"aio_trader.kite.ticks", "aio_trader.dhan.ticks", "aio_trader.dhan.constants"} & loaded
    assert {name.partition(".")[0] for name in loaded} & NETWORK_STACK == set()
    assert "dhanhq" not in loaded
    assert not {"aio_trader.kite._broker", "aio_trader.kite._feed", "aio_trader.http"} & loaded


def test_the_client_does_import_its_stack() -> None:
    """The check above can see an HTTP stack when one is loaded."""
    loaded = modules_after("from aio_trader.kite import Kite")
    assert "httpx" in loaded


def test_every_core_module_is_listed() -> None:
    """A new module of the core joins CORE (and so the check below)."""
    found = {
        info.name
        for info in pkgutil.walk_packages(aio_trader.__path__, prefix="aio_trader.")
        if not info.name.startswith(("aio_trader._cli", *BROKER_PREFIXES))
    }
    assert found | {"aio_trader"} == set(CORE)


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_no_broker(module: str) -> None:
    loaded = modules_after(f"import {module}")
    assert module in loaded
    assert loaded_brokers(loaded) == set()


@pytest.mark.parametrize(
    ("broker", "module"), [(b, m) for b, modules in BROKER_MODULES.items() for m in modules]
)
def test_a_broker_imports_no_other_broker(broker: str, module: str) -> None:
    loaded = modules_after(f"import {module}")
    others = {name for name in loaded_brokers(loaded) if not name.startswith(own_prefixes(broker))}
    assert others == set()


def test_the_check_sees_a_broker_when_one_is_loaded() -> None:
    assert "aio_trader.kite._broker" in loaded_brokers(
        modules_after("import aio_trader.kite.ticks; from aio_trader.kite import Kite")
    )
