"""``AsyncRequest``: one ``httpx.AsyncClient`` with retries, rate limits and error mapping.

The single REST request path of the library. Per call it takes a slot from the
given ``RateLimiter`` (before every attempt), sends the request, decodes the answer
and decides what to retry:

| outcome | idempotent (GET by default) | not idempotent (the rest) |
|---|---|---|
| 2xx, body decodes | returned | returned |
| 400 / 403 / 429 | ``KiteError`` at once | ``KiteError`` at once |
| other status, bad 2xx body | retried; last ``KiteError`` | ``OutcomeUnknownError`` |
| connect failed | retried; ``ConnectError`` | retried; ``ConnectError`` |
| timeout or drop | retried; ``RequestTimeout`` or ``ConnectionLost`` | ``OutcomeUnknownError`` |

So a non-idempotent request (placing, modifying, cancelling an order: POST, PUT,
DELETE) is sent again only when it surely never reached the server. When it may
have reached it (a timeout, a drop, a 5xx answer from a gateway that may have passed
it on), ``OutcomeUnknownError`` is raised, chained ``from`` the cause (whose
``error_type``/``message`` a broker may inspect) and nothing is sent twice: the
caller (the broker) settles it, e.g. by looking up the order's tag.

Bodies are decoded by content type: JSON -> the parsed object, as is (Kite's
``{"status": "success", "data": ...}`` envelope is unwrapped by the broker, which
knows its API; this layer stays broker-neutral); ``text/*`` (CSV) -> ``str``;
anything else -> ``bytes``. Error answers become ``KiteError``s through
``errors.kite_error_from_response``.

httpx's exceptions are translated here, and only here: connect / connect-timeout /
pool-timeout / proxy -> ``ConnectError``; read / write timeout -> ``RequestTimeout``;
read / write / close errors and a server that disconnects -> ``ConnectionLost``;
any other transport failure -> ``TransportError`` (not retried); a malformed URL ->
``ValueError``. Callers never see an httpx exception (it is kept as ``__cause__``).

Observing errors (e.g. a 403 ``TokenException`` meaning "log in again") is left to
the caller, which catches the raised ``KiteError`` in its own single request path.

Logging (``aio_trader.http``): method, path and status at DEBUG, retries at INFO;
never headers, query strings or bodies, so tokens never reach a log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict

import httpx

from aio_trader.backoff import Backoff, retry
from aio_trader.errors import (
    ConnectError,
    ConnectionLost,
    DataException,
    KiteError,
    OutcomeUnknownError,
    RequestTimeout,
    TransportError,
    kite_error_from_response,
)
from aio_trader.ratelimit import RateLimiter

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

__all__ = ["AsyncRequest", "Params", "RequestOptions"]

log = logging.getLogger(__name__)

Primitive = str | int | float | bool | None
#: Query or form fields; a sequence value (or repeated pairs) repeats the key: ``i=A&i=B``.
Params = Mapping[str, Primitive | Sequence[Primitive]] | Sequence[tuple[str, Primitive]]

#: Methods that are idempotent unless the caller says otherwise.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# httpx exception -> ours. Order matters: the first matching class wins.
_TRANSLATION: tuple[tuple[type[Exception], type[TransportError]], ...] = (
    (httpx.ConnectError, ConnectError),
    (httpx.ConnectTimeout, ConnectError),
    (httpx.PoolTimeout, ConnectError),
    (httpx.ProxyError, ConnectError),
    (httpx.TimeoutException, RequestTimeout),
    (httpx.NetworkError, ConnectionLost),
    (httpx.RemoteProtocolError, ConnectionLost),
)


class RequestOptions(TypedDict, total=False):
    """Keyword options of ``AsyncRequest.request`` and its per-method shortcuts."""

    params: Params | None
    data: Params | None
    json: Any
    headers: Mapping[str, str] | None
    limiter: RateLimiter | None
    idempotent: bool | None
    backoff: Backoff | None
    timeout: float | None


def _translate(exc: Exception) -> TransportError:
    """Our error for an httpx exception (message: the exception's type and text)."""
    for httpx_type, ours in _TRANSLATION:
        if isinstance(exc, httpx_type):
            return ours(f"{type(exc).__name__}: {exc}")
    return TransportError(f"{type(exc).__name__}: {exc}")


def _form(data: Params | None) -> Mapping[str, Any] | None:
    """Form fields as a mapping; repeated pairs become a list under one key."""
    if data is None or isinstance(data, Mapping):
        return data
    fields: dict[str, list[Primitive]] = {}
    for key, value in data:
        fields.setdefault(key, []).append(value)
    return fields


def _decode(response: httpx.Response) -> Any:
    """The body by content type: JSON -> object, text/* -> str, else bytes."""
    content_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        return json.loads(response.content)
    if content_type.startswith("text/"):
        return response.text
    return response.content


class AsyncRequest:
    """One ``httpx.AsyncClient`` with retries, rate limits and error mapping.

    ``base_url`` is joined with each call's path; ``headers`` are sent with every call
    (change them later with ``update_headers``); ``timeout`` (seconds) applies to each
    connect/read/write/pool phase; ``backoff`` is the default retry policy.
    ``max_connections``: connections open at once, all kept alive between calls (more
    concurrent calls wait for a free one; a wait longer than ``timeout`` is a
    ``ConnectError``, retried as such). A malformed ``base_url`` raises ``ValueError``,
    so does ``max_connections < 1``.

    Why 10 by default, kept alive: httpx's default keeps 20 of up to 100, and its pool
    closes an idle connection whenever more than that exist, so many concurrent callers
    reconnect; and the pool's bookkeeping on every request grows with the square of the
    connections open. Ten in flight carry Kite's rate limits at a few hundred ms per call,
    as Kite's official client (``requests``' 10 pooled connections) does. A call that
    waits for a connection has already taken its rate-limit slot and reaches the server
    late: keep the calls in flight within ``max_connections`` where pacing matters
    (``Kite.historical_bulk`` does).

    Use ``async with AsyncRequest(...) as http:``; leaving closes the client.
    """

    def __init__(
        self,
        base_url: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 7.0,
        backoff: Backoff | None = None,
        follow_redirects: bool = False,
        max_connections: int = 10,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections!r}")
        self.backoff = Backoff() if backoff is None else backoff
        self.max_connections = max_connections
        try:
            self._client = httpx.AsyncClient(
                base_url=base_url,
                headers=dict(headers or {}),
                timeout=timeout,
                follow_redirects=follow_redirects,
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
            )
        except httpx.InvalidURL as exc:
            raise ValueError(f"invalid base_url: {exc}") from None

    def __repr__(self) -> str:
        return f"AsyncRequest({str(self._client.base_url)!r})"

    @property
    def client(self) -> httpx.AsyncClient:
        """The underlying client (e.g. for httpx-ws). Errors raised by using it
        directly are httpx's own: translating them is then the user's job."""
        return self._client

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` ran."""
        return self._client.is_closed

    def update_headers(self, headers: Mapping[str, str | None]) -> None:
        """Set default headers for later calls; a ``None`` value removes that header."""
        for name, value in headers.items():
            if value is None:
                self._client.headers.pop(name, None)
            else:
                self._client.headers[name] = value

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client and its connections. Idempotent.

        Cancellation: the connections are closed anyway (httpcore shields that), then
        it propagates; the client is closed either way.
        """
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        data: Params | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        limiter: RateLimiter | None = None,
        idempotent: bool | None = None,
        backoff: Backoff | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request, with retries, and return the decoded body.

        ``params``: query string; ``data``: form body; ``json``: JSON body; list values
        or repeated pairs repeat a key. ``headers`` add to the defaults for this call.
        ``limiter``: a slot is taken before every attempt. ``idempotent``: whether the
        request may be sent again after it may have reached the server; ``None``
        means True for GET/HEAD/OPTIONS only (say ``idempotent=True`` for a PUT or
        DELETE that is safe to repeat). ``backoff``/``timeout`` override the defaults.

        Returns the body: JSON -> parsed object, ``text/*`` -> ``str``, else ``bytes``.

        Raises ``KiteError`` subclasses for error answers (400/403/429 at once, never
        retried; others after the retries), ``ConnectError`` / ``RequestTimeout`` /
        ``ConnectionLost`` / ``TransportError`` when the transport fails,
        ``OutcomeUnknownError`` when a non-idempotent request failed after it may
        have reached the server, ``ValueError`` for a malformed URL, ``RuntimeError``
        once closed.

        Cancellation: propagates at once, whether during a rate-limit wait (no slot
        is taken), the exchange or a backoff wait (no further attempt is made). A
        request cancelled while in flight may or may not have reached the server.
        """
        method = method.upper()
        if self.closed:
            raise RuntimeError("AsyncRequest is closed")
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        where = f"{method} {path.partition('?')[0]}"
        try:
            request = self._client.build_request(
                method,
                path,
                params=params if params is None or isinstance(params, Mapping) else list(params),
                data=_form(data),
                json=json,
                headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.InvalidURL as exc:
            raise ValueError(f"{where}: {exc}") from None

        async def attempt() -> Any:
            if limiter is not None:
                await limiter.acquire()
            try:
                response = await self._client.send(request)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise ValueError(f"{where}: {exc}") from None
            except (httpx.HTTPError, httpx.StreamError) as exc:
                failure = _translate(exc)
                failure.__cause__ = exc
                log.debug("%s -> %r", where, failure)
                if idempotent or failure.never_sent:
                    raise failure from exc
                raise OutcomeUnknownError(
                    f"{where} may have reached the server ({failure}); not retried"
                ) from failure
            log.debug("%s -> %d", where, response.status_code)
            if response.is_success:
                try:
                    return _decode(response)
                except ValueError as exc:
                    error: KiteError = DataException(
                        f"undecodable body: {exc}", status_code=response.status_code
                    )
            else:
                error = kite_error_from_response(response.status_code, response.content)
            if idempotent or not error.retryable:
                raise error
            raise OutcomeUnknownError(
                f"{where} answered {error}; it may have acted on it; not retried"
            ) from error

        def retryable(exc: Exception) -> bool:
            if isinstance(exc, ConnectError):
                return True
            if isinstance(exc, RequestTimeout | ConnectionLost):
                return idempotent
            return isinstance(exc, KiteError) and exc.retryable and idempotent

        def on_retry(exc: Exception, attempt: int, delay: float) -> None:
            log.info("%s failed (%s); retry %d in %.3g s", where, exc, attempt, delay)

        return await retry(
            attempt, backoff=backoff or self.backoff, retryable=retryable, on_retry=on_retry
        )

    async def get(self, path: str, **options: Unpack[RequestOptions]) -> Any:
        """``request("GET", path, ...)``: idempotent unless told otherwise."""
        return await self.request("GET", path, **options)

    async def post(self, path: str, **options: Unpack[RequestOptions]) -> Any:
        """``request("POST", path, ...)``: not idempotent unless told otherwise."""
        return await self.request("POST", path, **options)

    async def put(self, path: str, **options: Unpack[RequestOptions]) -> Any:
        """``request("PUT", path, ...)``: not idempotent unless told otherwise."""
        return await self.request("PUT", path, **options)

    async def patch(self, path: str, **options: Unpack[RequestOptions]) -> Any:
        """``request("PATCH", path, ...)``: not idempotent unless told otherwise."""
        return await self.request("PATCH", path, **options)

    async def delete(self, path: str, **options: Unpack[RequestOptions]) -> Any:
        """``request("DELETE", path, ...)``: not idempotent unless told otherwise."""
        return await self.request("DELETE", path, **options)
