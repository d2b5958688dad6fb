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


# -- the neutral categories, and Kite's classes in them -------------------------------------

KITE_CATEGORIES = {
    "TokenException": errors.SessionExpired,
    "PermissionException": errors.PermissionDenied,
    "UserException": errors.PermissionDenied,
    "InputException": errors.InvalidInput,
    "OrderException": errors.OrderRejected,
    "MarginException": errors.InsufficientFunds,
    "HoldingException": errors.InsufficientFunds,
    "NetworkException": errors.BrokerUnavailable,
    "DataException": errors.BrokerUnavailable,
    "GeneralException": errors.BrokerUnavailable,
    "RateLimitError": errors.RateLimited,
    "KiteUnexpectedStatus": errors.UnexpectedStatus,
}
CATEGORIES = (
    errors.SessionExpired,
    errors.PermissionDenied,
    errors.RateLimited,
    errors.InvalidInput,
    errors.OrderRejected,
    errors.InsufficientFunds,
    errors.BrokerUnavailable,
    errors.UnexpectedStatus,
)


def test_every_kite_class_has_its_category() -> None:
    assert set(KITE_ERROR_TYPES) <= set(KITE_CATEGORIES)


@pytest.mark.parametrize(("name", "category"), sorted(KITE_CATEGORIES.items()))
def test_each_kite_class_is_caught_by_its_category(
    name: str, category: type[errors.BrokerError]
) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, KiteError)  # `except KiteError` keeps working
    assert issubclass(cls, category)
    error = cls("refused", status_code=403, error_type=name)
    with pytest.raises(category) as caught:
        raise error
    assert caught.value is error
    assert isinstance(error, RuntimeError)
    assert (error.code, error.error_type, error.message) == (name, name, "refused")
    assert (error.status_code, error.broker) == (403, "kite")


@pytest.mark.parametrize("error_type", sorted(KITE_ERROR_TYPES))
def test_kites_answers_land_in_their_category(error_type: str) -> None:
    body = json.dumps({"status": "error", "message": "no", "error_type": error_type})
    error = kite_error_from_response(500, body)
    assert isinstance(error, KITE_CATEGORIES[error_type])
    assert isinstance(error, errors.BrokerError)


def test_a_kite_404_is_an_unexpected_status_and_a_kite_error() -> None:
    error = kite_error_from_response(404, b"")
    assert isinstance(error, UnexpectedStatus)
    assert isinstance(error, KiteError)
    assert str(error) == "UnexpectedStatus (HTTP 404): HTTP 404"


def test_a_rate_limit_is_kites_network_exception_and_rate_limited() -> None:
    error = kite_error_from_response(429, b"")
    assert isinstance(error, errors.RateLimited)
    assert isinstance(error, errors.NetworkException)  # kiteconnect's class for a 429
    assert not error.retryable


@pytest.mark.parametrize("category", CATEGORIES)
def test_categories_stand_alone_for_any_broker(category: type[errors.BrokerError]) -> None:
    error = category("DH-901: token expired", status_code=401, code="DH-901", broker="dhan")
    assert not isinstance(error, KiteError)
    assert isinstance(error, errors.BrokerError)
    assert isinstance(error, RuntimeError)
    assert isinstance(error, errors.AioTraderError)
    assert (error.code, error.broker, error.status_code) == ("DH-901", "dhan", 401)
    assert str(error) == "DH-901 (HTTP 401): DH-901: token expired"
    bare = category("x")
    assert bare.code == category.__name__
    assert bare.broker == ""
    assert bare.retryable == (500 <= bare.status_code <= 599)


def test_insufficient_funds_is_an_order_refusal() -> None:
    assert issubclass(errors.InsufficientFunds, errors.OrderRejected)


def test_the_default_mapping_picks_a_category_by_status() -> None:
    assert type(errors.broker_error_from_response(400, b"")) is errors.InvalidInput
    assert type(errors.broker_error_from_response(401, b"")) is errors.SessionExpired
    assert type(errors.broker_error_from_response(403, b"")) is errors.PermissionDenied
    assert type(errors.broker_error_from_response(429, b"")) is errors.RateLimited
    assert type(errors.broker_error_from_response(503, b"")) is errors.BrokerUnavailable
    assert type(errors.broker_error_from_response(200, b"{")) is errors.BrokerUnavailable
    assert type(errors.broker_error_from_response(302, b"")) is errors.UnexpectedStatus
    error = errors.broker_error_from_response(400, b'{"message": "bad qty"}')
    assert error.message == "bad qty"


def test_the_module_docstring_shows_every_error_class() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert f" {name} " in doc or f" {name}\n" in doc, name
