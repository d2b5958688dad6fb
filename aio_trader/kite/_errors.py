"""Kite's error mapping: an error answer (status, body) -> the class of its ``error_type``.

The classes live in :mod:`aio_trader.errors` (the one tree), each in its neutral
category; this module is what ``Kite`` hands to :class:`aio_trader.http.AsyncRequest`,
which imports no broker.
"""

from __future__ import annotations

from typing import Any

from aio_trader.errors import (
    KITE_ERROR_TYPES,
    NOT_RETRIED_STATUSES,
    DataException,
    GeneralException,
    InputException,
    KiteError,
    KiteUnexpectedStatus,
    NetworkException,
    RateLimitError,
    TokenException,
    _message_of,
)

__all__ = ["KITE_ERROR_TYPES", "kite_error_from_response"]

_BY_STATUS: dict[int, type[KiteError]] = {
    400: InputException,
    403: TokenException,
    429: RateLimitError,
    502: DataException,
    503: NetworkException,
}


def kite_error_from_response(status_code: int, body: bytes | str | Any) -> KiteError:
    """The error for an HTTP answer that is not a usable success.

    ``body`` is the raw body (bytes/str) or the decoded JSON. Kite's ``error_type``
    picks the class (429 is always ``RateLimitError``); a body without one falls
    back to a class by status (``KiteUnexpectedStatus`` for a 3xx or a 4xx other than
    400, 403, 429). A 2xx status means its body could not be read: ``DataException``.
    Never raises.
    """
    data, message = _message_of(body)
    if 200 <= status_code < 300:
        return DataException(
            f"unreadable answer ({len(body) if isinstance(body, bytes | str) else 0} bytes)",
            status_code=status_code,
        )
    raw_type = data.get("error_type") if isinstance(data, dict) else None
    error_type = raw_type if isinstance(raw_type, str) else None
    if status_code == 429:
        cls: type[KiteError] = RateLimitError
    elif error_type in KITE_ERROR_TYPES:
        cls = KITE_ERROR_TYPES[error_type]
    elif status_code < 500 and status_code not in NOT_RETRIED_STATUSES:
        cls = KiteUnexpectedStatus
    else:
        cls = _BY_STATUS.get(status_code, GeneralException)
    return cls(
        message or f"HTTP {status_code}",
        status_code=status_code,
        error_type=error_type,
    )
