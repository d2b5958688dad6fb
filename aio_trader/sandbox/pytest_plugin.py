"""pytest plugin: the ``kite_sandbox`` and ``dhan_sandbox`` fixtures, a running sandbox per
test.

Registered through the ``pytest11`` entry point, so it must import without the ``sandbox``
extra installed: the server is imported lazily inside the fixtures.

Use it from async tests (anyio's pytest plugin runs them)::

    @pytest.mark.anyio
    async def test_my_strategy(kite_sandbox):
        async with Kite(api_key=kite_sandbox.api_key, access_token=kite_sandbox.access_token,
                        root=kite_sandbox.root_url) as kite:
            ...

Override ``kite_sandbox_config`` in your ``conftest.py`` to change seed, faults, limits...
A test that fails fails with its own exception, never an ``ExceptionGroup``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from aio_trader.sandbox import Sandbox, SandboxConfig


@pytest.fixture
def kite_sandbox_config() -> SandboxConfig:
    """The configuration ``kite_sandbox`` starts with (defaults; override to customise)."""
    from aio_trader.sandbox import SandboxConfig

    return SandboxConfig()


@pytest.fixture
async def kite_sandbox(kite_sandbox_config: SandboxConfig) -> AsyncIterator[Sandbox]:
    """A started ``Sandbox`` on a free loopback port, stopped after the test."""
    from aio_trader.sandbox import Sandbox

    async with Sandbox(kite_sandbox_config) as sandbox:
        yield sandbox


@pytest.fixture
def dhan_sandbox_config() -> SandboxConfig:
    """The configuration ``dhan_sandbox`` starts with (Dhan's dialect; override to customise)."""
    from aio_trader.sandbox import SandboxConfig

    return SandboxConfig(broker="dhan")


@pytest.fixture
async def dhan_sandbox(dhan_sandbox_config: SandboxConfig) -> AsyncIterator[Sandbox]:
    """A started Dhan ``Sandbox`` on a free loopback port, stopped after the test:
    ``root_url`` (ends in ``/v2``), ``feed_url``, ``order_feed_url``, ``client_id``,
    ``access_token``."""
    from aio_trader.sandbox import Sandbox

    async with Sandbox(dhan_sandbox_config) as sandbox:
        yield sandbox
