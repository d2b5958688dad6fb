"""The exception hierarchy and the mapping of Kite's error bodies."""

from __future__ import annotations

import json

import anyio
import anyio.lowlevel
import pytest

from aio_trader import errors
from aio_trader.errors import (
    KITE_ERROR_TYPES,
    GeneralException,
    InputException,
    KiteError,
    RateLimitError,
    TokenException,
    UnexpectedStatus,
    kite_error_from_response,
)


@pytest.mark.parametrize("error_type", sorted(KITE_ERROR_TYPES))
def test_each_error_type_maps_to_its_class(error_type: str) -> None:
    body = json.dumps({"status": "error", "message": "boom", "error_type": error_type})
    error = kite_error_from_response(500, body)
    assert type(error) is KITE_ERROR_TYPES[error_type]
    assert type(error).__name__ == error_type
    assert (error.status_code, error.error_type, error.message) == (500, error_type, "boom")
    assert isinstance(error, KiteError)


@pytest.mark.parametrize(
    ("status", "cls"), [(400, InputException), (403, TokenException), (429, RateLimitError)]
)
def test_not_retried_statuses_are_runtime_errors(status: int, cls: type[KiteError]) -> None:
    body = {"status": "error", "message": "no", "error_type": cls.__mro__[0].__name__}
    if status == 429:
        body["error_type"] = "NetworkException"
    error = kite_error_from_response(status, body)
    assert isinstance(error, cls)
    assert isinstance(error, RuntimeError)
    assert not error.retryable
    assert error.status_code == status


def test_429_carries_kites_error_type() -> None:
    error = kite_error_from_response(
        429, b'{"status":"error","message":"Too many requests","error_type":"NetworkException"}'
    )
    assert isinstance(error, RateLimitError)
    assert error.error_type == "NetworkException"
    assert "Too many requests" in str(error)


def test_body_without_json_falls_back_to_status() -> None:
    error = kite_error_from_response(502, b"<html>bad gateway</html>")
    assert isinstance(error, errors.DataException)
    assert error.retryable
    unknown = kite_error_from_response(500, {"error_type": "SomethingNew", "message": "x"})
    assert isinstance(unknown, GeneralException)
    assert unknown.error_type == "SomethingNew"


@pytest.mark.parametrize("status", [301, 302, 307, 308, 401, 404, 405, 409, 410, 418, 499])
def test_statuses_that_never_heal_are_unexpected_and_not_retryable(status: int) -> None:
    error = kite_error_from_response(status, b"<html>moved</html>")
    assert type(error) is errors.KiteUnexpectedStatus  # Kite's: a KiteError too
    assert isinstance(error, UnexpectedStatus)
    assert error.error_type == "UnexpectedStatus"
    assert isinstance(error, RuntimeError)
    assert not error.retryable
    assert error.status_code == status
    assert f"HTTP {status}" in str(error)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_only_5xx_is_retryable(status: int) -> None:
    assert kite_error_from_response(status, b"").retryable


def test_every_public_error_derives_from_the_base() -> None:
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type):
            assert issubclass(value, errors.AioTraderError), name


async def test_async_tests_run_on_both_backends(anyio_backend: str) -> None:
    """The suite's own guarantee: this async test runs once per backend."""
    import sniffio

    await anyio.lowlevel.checkpoint()
    assert sniffio.current_async_library() == anyio_backend
