"""Importing the codec loads no HTTP or WebSocket stack (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Top-level packages the pure codec must not pull in.
NETWORK_STACK = {"httpx", "httpcore", "httpx_ws", "wsproto", "h11", "h2", "trio", "anyio"}


def modules_after(statement: str) -> set[str]:
    """The modules loaded by ``statement`` in a fresh interpreter."""
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out))


@pytest.mark.parametrize(
    "statement",
    [
        "import aio_trader.kite.ticks",
        "from aio_trader.kite.ticks import decode_frame, encode_frame, FullTick",
        "from aio_trader.kite import decode_frame, FullTick",
    ],
)
def test_the_codec_imports_no_network_stack(statement: str) -> None:
    loaded = modules_after(statement)
    assert "aio_trader.kite.ticks" in loaded
    assert {name.partition(".")[0] for name in loaded} & NETWORK_STACK == set()
    assert not {"aio_trader.kite._broker", "aio_trader.kite._feed", "aio_trader.http"} & loaded


def test_the_client_does_import_its_stack() -> None:
    """The check above can see an HTTP stack when one is loaded."""
    loaded = modules_after("from aio_trader.kite import Kite")
    assert "httpx" in loaded
