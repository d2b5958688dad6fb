"""Shared test setup: every async test runs on asyncio and on trio."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

#: Reference data (real Kite bodies and packets); tests that need it skip when absent.
MOCKS = Path(__file__).resolve().parents[2] / "shared" / "kiteconnect-mocks"

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "200")),
)
settings.load_profile("default")


@pytest.fixture(scope="session", autouse=True)
def _instrument_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes the instrument cache into the user's real cache directory: the
    default directory (``$AIO_TRADER_CACHE_DIR``) points into pytest's temporary one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIO_TRADER_CACHE_DIR", str(tmp_path_factory.mktemp("instrument-cache")))
        yield


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Both anyio backends, for every async test."""
    return str(request.param)


@pytest.fixture
def mocks() -> Path:
    """The folder of Kite reference responses; skips the test when it is absent."""
    if not MOCKS.is_dir():
        pytest.skip(
            "Kite's reference bodies are not present: git clone "
            "https://github.com/zerodha/kiteconnect-mocks ../shared/kiteconnect-mocks"
        )
    return MOCKS


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark every ``async def`` test for anyio, so none can run on one backend only."""
    inner = getattr(getattr(obj, "hypothesis", None), "inner_test", obj)  # under @given
    if name.startswith("test") and inspect.iscoroutinefunction(inner):
        pytest.mark.anyio(obj)
