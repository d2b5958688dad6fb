"""Every error aio_trader raises, in one place.

Reading this file tells you every way a call can fail::

    AioTraderError
    ├── TransportError              no complete HTTP answer (httpx errors end here)
    │   ├── ConnectError            never reached the server: always safe to retry
    │   ├── RequestTimeout          sent, no answer in time: the server may have acted
    │   └── ConnectionLost          dropped mid-request: the server may have acted
    ├── OutcomeUnknownError         a non-idempotent request may or may not have taken effect
    │   └── OrderOutcomeUnknown     ... an order; the lookup by its tag could not settle it
    ├── FeedClosedError             the WebSocket feed stopped for good
    ├── ClientClosedError (RuntimeError)  a call on a client not opened yet, or closed
    └── BrokerError (RuntimeError)  a broker refused: status_code, code, message, broker
        │   -- the categories, the same for every broker --
        ├── SessionExpired          session expired or invalid: log in again
        ├── PermissionDenied        not allowed: permission, account, static IP
        ├── RateLimited             429: too many requests (never retried)
        ├── InvalidInput            missing or bad parameters
        │   └── UnknownInstrument   a symbol the instrument index (or the broker) does not know
        ├── OrderRejected           the broker refused an order (or its change)
        │   └── InsufficientFunds   ... for want of funds or holdings
        ├── BrokerUnavailable       a failure on the broker's side (5xx: retried)
        ├── UnexpectedStatus        3xx, 404, 405, other 4xx: a status that never heals
        │   -- Kite's classes (by ``error_type``), each also in its category --
        └── KiteError               an error answer from Kite
            ├── TokenException      SessionExpired     403: log in again
            ├── PermissionException PermissionDenied   403: not allowed
            ├── UserException       PermissionDenied   a problem with the account
            ├── InputException      InvalidInput       400: missing or bad parameters
            ├── OrderException      OrderRejected      the order was refused
            ├── MarginException     InsufficientFunds  insufficient funds
            ├── HoldingException    InsufficientFunds  insufficient holdings
            ├── NetworkException    BrokerUnavailable  503: Kite could not reach the OMS
            │   └── RateLimitError  RateLimited        429 (a NetworkException, as in kiteconnect)
            ├── DataException       BrokerUnavailable  502: Kite's internal data error
            ├── GeneralException    BrokerUnavailable  500 / anything else
            └── KiteUnexpectedStatus UnexpectedStatus  a status Kite does not use

Catch a category (``except SessionExpired``) to handle a refusal the same way for every
broker; catch a broker's own class (``except TokenException``) for that broker alone.
A broker without classes of its own raises the categories themselves, with its ``code``
and ``broker`` name. ``RateLimitError`` is also a ``BrokerUnavailable`` (through
``NetworkException``, kiteconnect's class for a 429): catch ``RateLimited`` first.

Retries: only 5xx answers are retried (``retryable`` is true for them alone); 400,
403, 429 and every other status (3xx, 404, 405, other 4xx) are raised at once: a 404
never heals, so retrying it only delays the error. Every ``BrokerError`` is a
``RuntimeError``, the documented contract (``except RuntimeError`` catches 400, 403 and
429 answers). Transport errors are retried only when the request was idempotent or
surely never reached the server. Configuration errors (a bad URL, a wrong type, an
unknown enum value) are ``ValueError``/``TypeError``, raised before any I/O.

Which answer becomes which class is each broker's mapping (Kite's:
``aio_trader.kite._errors.kite_error_from_response``), handed to
:class:`aio_trader.http.AsyncRequest`; without one, :func:`broker_error_from_response`
picks a category by status.

Messages never contain secrets (tokens, api secrets, passwords, TOTP values).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

__all__ = [
    "KITE_ERROR_TYPES",
    "NOT_RETRIED_STATUSES",
    "AioTraderError",
    "BrokerError",
    "BrokerUnavailable",
    "ClientClosedError",
    "ConnectError",
    "ConnectionLost",
    "DataException",
    "ErrorMapper",
    "FeedClosedError",
    "GeneralException",
    "HoldingException",
    "InputException",
    "InsufficientFunds",
    "InvalidInput",
    "KiteError",
    "KiteUnexpectedStatus",
    "MarginException",
    "NetworkException",
    "OrderException",
    "OrderOutcomeUnknown",
    "OrderRejected",
    "OutcomeUnknownError",
    "PermissionDenied",
    "PermissionException",
    "RateLimitError",
    "RateLimited",
    "RequestTimeout",
    "SessionExpired",
    "TokenException",
    "TransportError",
    "UnexpectedStatus",
    "UnknownInstrument",
    "UserException",
    "broker_error_from_response",
    "kite_error_from_response",
]

#: HTTP statuses brokers use for their own refusals: raised at once, never retried. Every
#: other status below 500 is never retried either (``UnexpectedStatus`` unless the broker
#: names a class).
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


# -- a broker's refusal: the base and the categories ------------------------------------


class BrokerError(AioTraderError, RuntimeError):
    """An error answer from a broker: its HTTP ``status_code``, its own ``code`` (Kite's
    ``error_type``, Dhan's ``DH-9xx``) and ``message``, and the ``broker``'s name."""

    default_status: ClassVar[int] = 500
    #: The broker's name when the class does not say it (``KiteError``: ``"kite"``).
    default_broker: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        broker: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = self.default_status if status_code is None else status_code
        self.code = type(self).__name__ if code is None else code
        self.broker = self.default_broker if broker is None else broker

    @property
    def retryable(self) -> bool:
        """True for 5xx answers only: 400, 403, 429 and every other status are raised at once."""
        return 500 <= self.status_code <= 599

    def __str__(self) -> str:
        return f"{self.code} (HTTP {self.status_code}): {self.message}"


class SessionExpired(BrokerError):
    """The session (access token) expired or is invalid: log in again."""

    default_status = 401


class PermissionDenied(BrokerError):
    """The account, app or address may not do this (permission, segment, static IP)."""

    default_status = 403


class RateLimited(BrokerError):
    """Too many requests (429); never retried: the client-side limiter should prevent it."""

    default_status = 429


class InvalidInput(BrokerError):
    """Missing or invalid parameters (400)."""

    default_status = 400


class UnknownInstrument(InvalidInput):
    """An instrument symbol that cannot be resolved: no ``EXCHANGE:`` part, not in the
    instrument index, or left out of a quote by the broker. ``symbols``: the ones at fault;
    ``suggestions``: close matches, when cheap to find. Raised before any request when the
    symbol alone is at fault (then ``status_code`` is 400 but nothing was sent)."""

    def __init__(
        self,
        message: str,
        *,
        symbols: tuple[str, ...] = (),
        suggestions: tuple[str, ...] = (),
        status_code: int | None = None,
        code: str | None = None,
        broker: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code, broker=broker)
        self.symbols = symbols
        self.suggestions = suggestions

    def __str__(self) -> str:
        return self.message


class OrderRejected(BrokerError):
    """The broker refused to place, modify or cancel an order: nothing was done."""

    default_status = 400


class InsufficientFunds(OrderRejected):
    """An order refused for want of funds (margin) or holdings to sell."""


class BrokerUnavailable(BrokerError):
    """A failure on the broker's side (5xx, an unreadable answer): retried, then raised."""


class UnexpectedStatus(BrokerError):
    """An answer with a status the broker does not use for its refusals (a 3xx, 404, 405,
    409, other 4xx): raised at once, never retried (a wrong root URL or route never heals)."""

    default_status = 404


#: A broker's mapping from an answer that is not a usable success to its exception:
#: ``(status_code, body) -> BrokerError`` (``body``: the raw bytes). Called for every
#: non-2xx answer, and for a 2xx whose body could not be decoded. Never raises.
ErrorMapper = Callable[[int, bytes], BrokerError]


def _message_of(body: bytes | str | Any) -> tuple[Any, str | None]:
    """The decoded JSON (or None) and its ``message`` string, if any."""
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
    message = data.get("message") if isinstance(data, dict) else None
    return data, message if isinstance(message, str) and message else None


_CATEGORY_BY_STATUS: dict[int, type[BrokerError]] = {
    400: InvalidInput,
    401: SessionExpired,
    403: PermissionDenied,
    429: RateLimited,
}


def broker_error_from_response(status_code: int, body: bytes | str | Any) -> BrokerError:
    """A category for an answer by its status alone (the default of ``AsyncRequest``, for a
    server without a mapping of its own): 400 ``InvalidInput``, 401 ``SessionExpired``,
    403 ``PermissionDenied``, 429 ``RateLimited``, 5xx (or an undecodable 2xx)
    ``BrokerUnavailable``, any other ``UnexpectedStatus``. The message is the body's JSON
    ``message`` when it has one. Never raises."""
    _, message = _message_of(body)
    cls: type[BrokerError]
    if status_code >= 500 or 200 <= status_code < 300:
        cls = BrokerUnavailable
    else:
        cls = _CATEGORY_BY_STATUS.get(status_code, UnexpectedStatus)
    return cls(message or f"HTTP {status_code}", status_code=status_code)


# -- Kite's classes: one per ``error_type``, each in its category --------------------------


class KiteError(BrokerError):
    """An error answer from Kite: ``{"status": "error", "message": ..., "error_type": ...}``.

    Carries the HTTP ``status_code``, Kite's ``error_type`` (also its ``code``) and
    ``message``; ``broker`` is ``"kite"``.
    """

    default_broker = "kite"

    def __init__(
        self, message: str, *, status_code: int | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message, status_code=status_code, code=error_type)

    @property
    def error_type(self) -> str:
        """Kite's ``error_type`` (the same as ``code``)."""
        return self.code


class TokenException(KiteError, SessionExpired):
    """Session expired or invalid (403): log in again."""

    default_status = 403


class PermissionException(KiteError, PermissionDenied):
    """The account or app is not allowed to do this (403)."""

    default_status = 403


class UserException(KiteError, PermissionDenied):
    """A problem with the user's account."""

    default_status = 500


class InputException(KiteError, InvalidInput):
    """Missing or invalid parameters (400)."""

    default_status = 400


class OrderException(KiteError, OrderRejected):
    """Placing, modifying or cancelling an order failed."""

    default_status = 500


class MarginException(KiteError, InsufficientFunds):
    """Insufficient funds for the order."""

    default_status = 500


class HoldingException(KiteError, InsufficientFunds):
    """Insufficient holdings to sell."""

    default_status = 500


class NetworkException(KiteError, BrokerUnavailable):
    """Kite could not reach the exchange or its order system (503)."""

    default_status = 503


class RateLimitError(NetworkException, RateLimited):
    """Too many requests (429); never retried, the client-side limiter should prevent it."""

    default_status = 429


class DataException(KiteError, BrokerUnavailable):
    """Kite's internal data error (502), or an answer that could not be read."""

    default_status = 502


class GeneralException(KiteError, BrokerUnavailable):
    """Any other error (500)."""

    default_status = 500


class KiteUnexpectedStatus(KiteError, UnexpectedStatus):
    """Kite's answer with a status it does not use for its refusals (a 3xx, 404, 405, other
    4xx) and without one of its ``error_type``s: an ``UnexpectedStatus``, and a ``KiteError``
    as before the categories existed."""

    default_status = 404

    def __init__(
        self, message: str, *, status_code: int | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(
            message, status_code=status_code, error_type=error_type or "UnexpectedStatus"
        )


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


def kite_error_from_response(status_code: int, body: bytes | str | Any) -> KiteError:
    """Kite's mapping (see :func:`aio_trader.kite._errors.kite_error_from_response`), kept
    importable here."""
    from aio_trader.kite._errors import kite_error_from_response as mapping

    return mapping(status_code, body)
