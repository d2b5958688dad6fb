"""Dhan's error mapping: an error answer (status, body) -> the neutral category by its
``DH-9xx`` code.

Dhan answers a refusal with ``{"errorType": ..., "errorCode": "DH-9xx", "errorMessage":
...}``; the Data APIs may answer a numeric reason code (``800``-``814``, the annexure's).
Dhan has no exception classes of its own here: the categories of :mod:`aio_trader.errors`
are raised with ``code`` (``"DH-904"``) and ``broker="dhan"``. This is what ``Dhan`` hands
to :class:`aio_trader.http.AsyncRequest`, which imports no broker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from aio_trader.errors import (
    BrokerError,
    BrokerUnavailable,
    InsufficientFunds,
    InvalidInput,
    OrderRejected,
    PermissionDenied,
    RateLimited,
    SessionExpired,
    UnexpectedStatus,
    broker_error_from_response,
)

__all__ = ["DHAN_ERROR_CODES", "dhan_error_from_response"]

#: ``errorCode`` -> the category raised (Dhan's annexure: what each code means).
DHAN_ERROR_CODES: Final[Mapping[str, type[BrokerError]]] = MappingProxyType(
    {
        "DH-901": SessionExpired,  # invalid or expired client id / access token
        "DH-902": PermissionDenied,  # no access: Data APIs not subscribed, no Trading API
        "DH-903": PermissionDenied,  # account problem: segment not active, ...
        "DH-904": RateLimited,  # too many requests
        "DH-905": InvalidInput,  # missing or bad fields
        "DH-906": OrderRejected,  # the order was refused
        "DH-907": InvalidInput,  # data request refused: wrong parameters or no data
        "DH-908": BrokerUnavailable,  # internal server error
        "DH-909": BrokerUnavailable,  # network error
        "DH-910": BrokerUnavailable,  # other errors
        "DH-911": PermissionDenied,  # not a registered static IP
    }
)

#: The Data APIs' numeric reason codes (``DisconnectReason`` of the feed) -> category.
_DATA_CODES: Final[Mapping[int, type[BrokerError]]] = MappingProxyType(
    {
        800: BrokerUnavailable,
        804: InvalidInput,
        805: RateLimited,
        806: PermissionDenied,
        807: SessionExpired,
        808: SessionExpired,
        809: SessionExpired,
        810: SessionExpired,
        811: InvalidInput,
        812: InvalidInput,
        813: InvalidInput,
        814: InvalidInput,
    }
)

_INSUFFICIENT = ("insufficient", "margin shortfall", "not enough")


def _decode(body: bytes | str | Any) -> Any:
    if isinstance(body, bytes | str):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return body


def dhan_error_from_response(status_code: int, body: bytes | str | Any) -> BrokerError:
    """The error for an HTTP answer that is not a usable success (never raises).

    The ``errorCode`` picks the category (:data:`DHAN_ERROR_CODES`; a 429 is always
    ``RateLimited``, a DH-906 about funds ``InsufficientFunds``); a body without a known
    code falls back to the category of its status. The message is Dhan's
    ``errorMessage`` (never a header or a token).
    """
    data = _decode(body)
    if isinstance(data, Mapping) and isinstance(data.get("remarks"), Mapping):
        data = data["remarks"]  # a body in the SDK's wrapper (never from Dhan itself)
    if not isinstance(data, Mapping):
        if 200 <= status_code < 300:
            return BrokerUnavailable(
                "unreadable answer from Dhan", status_code=status_code, broker="dhan"
            )
        error = broker_error_from_response(status_code, b"")
        return type(error)(f"HTTP {status_code}", status_code=status_code, broker="dhan")
    raw_code = data.get("errorCode", data.get("error_code"))
    message = data.get("errorMessage", data.get("error_message"))
    text = message if isinstance(message, str) and message else f"HTTP {status_code}"
    code = str(raw_code) if isinstance(raw_code, str | int) and raw_code != "" else None
    cls: type[BrokerError] | None = None
    if status_code == 429:
        cls = RateLimited
    elif code is not None and code in DHAN_ERROR_CODES:
        cls = DHAN_ERROR_CODES[code]
        if cls is OrderRejected and any(word in text.lower() for word in _INSUFFICIENT):
            cls = InsufficientFunds
    elif code is not None and code.isdigit() and int(code) in _DATA_CODES:
        cls = _DATA_CODES[int(code)]
    if cls is None:
        if 200 <= status_code < 300 or status_code >= 500:
            cls = BrokerUnavailable
        else:
            cls = {
                400: InvalidInput,
                401: SessionExpired,
                403: PermissionDenied,
            }.get(status_code, UnexpectedStatus)
    return cls(text, status_code=status_code, code=code, broker="dhan")
