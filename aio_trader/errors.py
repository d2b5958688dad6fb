"""Every error aio_trader raises, in one place.

Reading this file tells you every way a call can fail::

    AioTraderError
    ├── TransportError              no complete HTTP answer (httpx errors end here)
    │   ├── ConnectError            never reached the server: always safe to retry
    │   ├── RequestTimeout          sent, no answer in time: the server may have acted
    │   └── ConnectionLost          dropped mid-request: the server may have acted
    ├── OutcomeUnknownError         a non-idempotent request may or may not have taken effect
    │   └── OrderOutcomeUnknown     ... an order; reconciliation could not settle it
    ├── FeedClosedError             the WebSocket feed stopped for good
    ├── ClientClosedError (RuntimeError)  a call on a client not opened yet, or closed
    └── KiteError (RuntimeError)    an error answer from Kite, by ``error_type``
        ├── UnexpectedStatus        3xx, 404, 405, other 4xx: a status Kite does not heal
        ├── TokenException          403: session expired or invalid, log in again
        ├── PermissionException     403: not allowed
        ├── InputException          400: missing or bad parameters
        ├── UserException           account problem
        ├── OrderException          order placement / modification failed
        ├── MarginException         insufficient funds
        ├── HoldingException        insufficient holdings
        ├── NetworkException        503: Kite could not reach the exchange (OMS)
        │   └── RateLimitError      429: too many requests
        ├── DataException           502: Kite's internal data error
        └── GeneralException        500 / anything else

Retries: only 5xx answers are retried (``retryable`` is true for them alone); 400,
403, 429 and every other status (3xx, 404, 405, other 4xx) are raised at once: a 404
never heals, so retrying it only delays the error. Every ``KiteError`` is a
``RuntimeError``, the documented contract (``except RuntimeError`` catches 400, 403 and
429 answers). Transport errors are retried only when the request was idempotent or
surely never reached the server. Configuration errors (a bad URL, a wrong type, an
unknown enum value) are ``ValueError``/``TypeError``, raised before any I/O.

Messages never contain secrets (tokens, api secrets, passwords, TOTP values).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

__all__ = [
    "KITE_ERROR_TYPES",
    "NOT_RETRIED_STATUSES",
    "AioTraderError",
    "ClientClosedError",
    "ConnectError",
    "ConnectionLost",
    "DataException",
    "FeedClosedError",
    "GeneralException",
    "HoldingException",
    "InputException",
    "KiteError",
    "MarginException",
    "NetworkException",
    "OrderException",
    "OrderOutcomeUnknown",
    "OutcomeUnknownError",
    "PermissionException",
    "RateLimitError",
    "RequestTimeout",
    "TokenException",
    "TransportError",
    "UnexpectedStatus",
    "UserException",
    "kite_error_from_response",
]

#: HTTP statuses Kite uses for its own refusals: raised at once, never retried. Every other
#: status below 500 is never retried either (``UnexpectedStatus`` unless Kite names a type).
NOT_RETRIED_STATUSES = frozenset({400, 403, 429})


class AioTraderError(Exception):
    """Base of every error raised by aio_trader."""


# -- transport: no complete HTTP answer -------------------------------------------------


class TransportError(AioTraderError):
    """The request failed below HTTP: connect, write, read, protocol or timeout."""

    #: True when the request surely never reached the server.
    never_sent: ClassVar[bool] = False


class ConnectError(TransportError):
    """The connection could not be opened; the request never reached the server."""

    never_sent: ClassVar[bool] = True


class RequestTimeout(TransportError):
    """The request was sent (or partly sent) and no answer came in time."""


class ConnectionLost(TransportError):
    """The connection dropped after the request started; the server may have acted on it."""


# -- ambiguous outcomes ----------------------------------------------------------------


class OutcomeUnknownError(AioTraderError):
    """A non-idempotent request failed after it may have reached the server.

    It was not retried, so nothing was sent twice. Check the server's state (for
    orders: the order book) before trying again.
    """


class OrderOutcomeUnknown(OutcomeUnknownError):
    """An order request failed ambiguously and the order book could not settle it.

    ``tag`` is the client tag the order was sent with, so it can be looked up later.
    """

    def __init__(self, message: str, *, tag: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag


# -- the feed ---------------------------------------------------------------------------


class FeedClosedError(AioTraderError):
    """The WebSocket feed stopped for good (for example: reconnect attempts exhausted)."""


# -- lifecycle --------------------------------------------------------------------------


class ClientClosedError(AioTraderError, RuntimeError):
    """A call on a client that is not open yet (use ``async with`` or ``await open()``) or
    already closed. Raised at once, before any I/O."""


# -- Kite's error answers ---------------------------------------------------------------


class KiteError(AioTraderError, RuntimeError):
    """An error answer from Kite: ``{"status": "error", "message": ..., "error_type": ...}``.

    Carries the HTTP ``status_code``, Kite's ``error_type`` and ``message``.
    """

    default_status: ClassVar[int] = 500

    def __init__(
        self, message: str, *, status_code: int | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = self.default_status if status_code is None else status_code
        self.error_type = type(self).__name__ if error_type is None else error_type

    @property
    def retryable(self) -> bool:
        """True for 5xx answers only: 400, 403, 429 and every other status are raised at once."""
        return 500 <= self.status_code <= 599

    def __str__(self) -> str:
        return f"{self.error_type} (HTTP {self.status_code}): {self.message}"


class TokenException(KiteError):
    """Session expired or invalid (403): log in again."""

    default_status = 403


class PermissionException(KiteError):
    """The account or app is not allowed to do this (403)."""

    default_status = 403


class InputException(KiteError):
    """Missing or invalid parameters (400)."""

    default_status = 400


class UserException(KiteError):
    """A problem with the user's account."""


class OrderException(KiteError):
    """Placing, modifying or cancelling an order failed."""


class MarginException(KiteError):
    """Insufficient funds for the order."""


class HoldingException(KiteError):
    """Insufficient holdings to sell."""


class NetworkException(KiteError):
    """Kite could not reach the exchange or its order system (503)."""

    default_status = 503


class RateLimitError(NetworkException):
    """Too many requests (429); never retried, the client-side limiter should prevent it."""

    default_status = 429


class DataException(KiteError):
    """Kite's internal data error (502)."""

    default_status = 502


class GeneralException(KiteError):
    """Any other error (500)."""


class UnexpectedStatus(KiteError):
    """An answer with a status Kite does not use for its refusals (a 3xx, 404, 405, 409,
    other 4xx) and without one of Kite's ``error_type``s: raised at once, never retried
    (a wrong root URL or route never heals)."""

    default_status = 404


#: Kite's ``error_type`` names and their classes.
KITE_ERROR_TYPES: dict[str, type[KiteError]] = {
    cls.__name__: cls
    for cls in (
        TokenException,
        PermissionException,
        InputException,
        UserException,
        OrderException,
        MarginException,
        HoldingException,
        NetworkException,
        DataException,
        GeneralException,
    )
}

_BY_STATUS: dict[int, type[KiteError]] = {
    400: InputException,
    403: TokenException,
    429: RateLimitError,
    502: DataException,
    503: NetworkException,
}


def kite_error_from_response(status_code: int, body: bytes | str | Any) -> KiteError:
    """The error for an HTTP answer that is not a success.

    ``body`` is the raw body (bytes/str) or the decoded JSON. Kite's ``error_type``
    picks the class (429 is always ``RateLimitError``); a body without one falls
    back to a class by status (``UnexpectedStatus`` for a 3xx or a 4xx other than 400,
    403, 429). Never raises.
    """
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
    error_type: str | None = None
    message = f"HTTP {status_code}"
    if isinstance(data, dict):
        raw_type = data.get("error_type")
        error_type = raw_type if isinstance(raw_type, str) else None
        raw_message = data.get("message")
        if isinstance(raw_message, str) and raw_message:
            message = raw_message
    if status_code == 429:
        cls: type[KiteError] = RateLimitError
    elif error_type in KITE_ERROR_TYPES:
        cls = KITE_ERROR_TYPES[error_type]
    elif status_code < 500 and status_code not in NOT_RETRIED_STATUSES:
        cls = UnexpectedStatus
    else:
        cls = _BY_STATUS.get(status_code, GeneralException)
    return cls(message, status_code=status_code, error_type=error_type or cls.__name__)
