"""``AsyncRequest``: one ``httpx.AsyncClient`` with retries, rate limits and error mapping.

The single REST request path of the library, broker-neutral: it imports no broker
package. Per call it takes a slot from the given ``RateLimiter`` (before every
attempt, stamped when the request is written: see below), sends the request, decodes
the answer and decides what to retry; an error answer becomes an exception through the
broker's mapper (``error_mapper``: ``(status_code, body) -> BrokerError``; Kite's is
``aio_trader.kite._errors.kite_error_from_response``; the default,
``errors.broker_error_from_response``, picks a neutral category by status):

| outcome | idempotent (GET by default) | not idempotent (the rest) |
|---|---|---|
| 2xx, body decodes | returned | returned |
| 400 / 403 / 429 | the mapper's ``BrokerError`` at once | the same at once |
| 3xx, 404, 405, other 4xx | ``UnexpectedStatus`` (or the broker's class) at once | same |
| 5xx, bad 2xx body | retried; last ``BrokerError`` | ``OutcomeUnknownError`` |
| connect failed | retried; ``ConnectError`` | retried; ``ConnectError`` |
| timeout or drop | retried; ``RequestTimeout`` or ``ConnectionLost`` | ``OutcomeUnknownError`` |

Only what can heal is retried: a network error or a 5xx. A 404 (wrong root or route),
a 405 or a redirect answers the same way every time, so it is raised at once (the seed
retried every non-200, which turned a typo into minutes of backoff).

So a non-idempotent request (placing, modifying, cancelling an order: POST, PUT,
DELETE) is sent again only when it surely never reached the server. When it may
have reached it (a timeout, a drop, a 5xx answer from a gateway that may have passed
it on), ``OutcomeUnknownError`` is raised, chained ``from`` the cause (whose
``error_type``/``message`` a broker may inspect) and nothing is sent twice: the
caller (the broker) settles it, e.g. by looking up the order's tag.

Bodies are decoded by content type: JSON -> the parsed object, as is (Kite's
``{"status": "success", "data": ...}`` envelope is unwrapped by the broker, which
knows its API; this layer stays broker-neutral); ``text/*`` (CSV) -> ``str``;
anything else -> ``bytes``. Error answers (and a 2xx body that cannot be decoded)
become ``BrokerError``s through the mapper.

Pacing: with a ``limiter``, each attempt waits for its turn (``RateLimiter.reserve``)
before it asks for a connection, and its slot is stamped when the request's first
bytes are written (httpcore's ``send_request_headers`` trace event), not when the turn
came: waiting for a pooled connection, connecting, or a busy event loop between the
two cannot bring two requests closer on the wire than the limiter allows. An attempt
that never writes (cancelled, the connection could not be opened) takes no slot.

httpx's exceptions are translated here, and only here: connect / connect-timeout /
pool-timeout / proxy -> ``ConnectError``; read / write timeout -> ``RequestTimeout``;
read / write / close errors and a server that disconnects -> ``ConnectionLost``;
any other transport failure -> ``TransportError`` (not retried); a malformed URL ->
``ValueError``. Callers never see an httpx exception (it is kept as ``__cause__``).

Lifecycle: an ``AsyncRequest`` owns no resource until it is opened (``async with``, or
``await open()`` ... ``await aclose()``): the ``httpx.AsyncClient`` is created then. A
request before ``open`` or after ``aclose`` raises ``ClientClosedError`` at once.

Bodies: form bodies are encoded to bytes here and sent from a plain (non-generator)
stream, so a request cancelled while its body is being written leaves no async
generator unfinalised (httpx's own byte stream is one: trio then warns with a
``ResourceWarning``).

Sending: when no proxy comes from the environment and redirects are not followed, a
request goes straight to the client's transport (``aio_trader._transport``: httpx's, on a
network backend with a cheap idle-connection check), skipping ``AsyncClient.send``'s
auth/redirect/hook machinery; cookies an answer sets are still kept, and a client holding
cookies sends through ``AsyncClient.send``. The bytes on the wire are the same.

Observing errors (e.g. a 403 ``SessionExpired`` meaning "log in again") is left to
the caller, which catches the raised ``BrokerError`` in its own single request path.

Logging (``aio_trader.http``): method, path and status at DEBUG, retries at INFO;
never headers, query strings or bodies, so tokens never reach a log.
"""

from __future__ import annotations

import json as jsonlib
import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlencode
from urllib.request import getproxies

import anyio
import anyio.abc
import httpx

from aio_trader._transport import Transport
from aio_trader.backoff import Backoff, retry
from aio_trader.errors import (
    BrokerError,
    ClientClosedError,
    ConnectError,
    ConnectionLost,
    ErrorMapper,
    OutcomeUnknownError,
    RequestTimeout,
    TransportError,
    broker_error_from_response,
)
from aio_trader.ratelimit import RateLimiter, Reservation

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


class _Retry(Exception):
    """Internal: an answer worth retrying (5xx, undecodable body); carries its error."""

    def __init__(self, error: BrokerError) -> None:
        super().__init__(str(error))
        self.error = error


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


def _form_value(value: Primitive) -> str:
    """A form value as httpx encodes it (``True`` -> ``true``, ``None`` -> empty)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


def _encoded(data: Params) -> str:
    """Fields url-encoded as httpx encodes them (``urlencode`` of the pairs; ``True`` ->
    ``true``); a sequence value (or repeated pairs) repeats the key."""
    pairs: list[tuple[str, str]] = []
    items = data.items() if isinstance(data, Mapping) else data
    for key, value in items:
        if isinstance(value, list | tuple):
            pairs.extend((key, _form_value(v)) for v in value)
        else:
            pairs.append((key, _form_value(value)))  # type: ignore[arg-type]
    return urlencode(pairs)


def _form_bytes(data: Params) -> bytes:
    """Form fields, url-encoded, as the bytes of a request body."""
    return _encoded(data).encode("ascii")


#: Routes whose joined URL is kept (paths with ids make the set open-ended: it is bounded).
_ROUTES_KEPT = 256


class _Chunk:
    """An async iterator yielding one bytes chunk; a plain object, not a generator."""

    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body: bytes | None = body

    def __aiter__(self) -> _Chunk:
        return self

    async def __anext__(self) -> bytes:
        body, self._body = self._body, None
        if body is None:
            raise StopAsyncIteration
        return body


class _Body(httpx.AsyncByteStream):
    """A request body sent in one chunk, re-iterable (a retry sends it again), with
    nothing to finalise when a send is cancelled half-way."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Chunk(self._body)


def _check_timeout(timeout: float, name: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(timeout).__name__}")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"{name} must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _check_base_url(base_url: str) -> httpx.URL:
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid base_url: {exc}") from None
    if base_url and (url.scheme not in ("http", "https") or not url.host):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    return url


def _decode(response: httpx.Response) -> Any:
    """The body by content type: JSON -> object, text/* -> str, else bytes."""
    content_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        return jsonlib.loads(response.content)
    if content_type.startswith("text/"):
        return response.text
    return response.content


async def _send_direct(
    client: httpx.AsyncClient, transport: httpx.AsyncHTTPTransport, request: httpx.Request
) -> httpx.Response:
    """``client.send(request)`` for a client without auth, hooks, redirects to follow or
    proxies: straight to its transport, the body read, cookies the answer sets kept."""
    response = await transport.handle_async_request(request)
    response.request = request
    try:
        await response.aread()
    except BaseException:
        await response.aclose()
        raise
    if "set-cookie" in response.headers:
        client.cookies.extract_cookies(response)
    return response


class AsyncRequest(anyio.abc.AsyncResource):
    """One ``httpx.AsyncClient`` with retries, rate limits and error mapping.

    ``base_url`` is joined with each call's path; ``headers`` are sent with every call
    (change them later with ``update_headers``); ``timeout`` (seconds) applies to each
    connect/read/write/pool phase; ``backoff`` is the default retry policy.
    ``error_mapper``: the broker's ``(status_code, body) -> BrokerError`` for an answer
    that is not a usable success (default: a neutral category by status).
    ``max_connections``: connections open at once, all kept alive between calls (more
    concurrent calls wait for a free one; a wait longer than ``timeout`` is a
    ``ConnectError``, retried as such). A malformed ``base_url`` (or one without
    ``http://``/``https://``), a non-positive ``timeout`` and ``max_connections < 1``
    raise ``ValueError``; wrong types ``TypeError``. Nothing is opened here.

    Why 10 by default, kept alive: httpx's default keeps 20 of up to 100, and its pool
    closes an idle connection whenever more than that exist, so many concurrent callers
    reconnect; and the pool's bookkeeping on every request grows with the square of the
    connections open. Ten in flight carry Kite's rate limits at a few hundred ms per call,
    as Kite's official client (``requests``' 10 pooled connections) does. A call that
    waits for a connection holds its limiter's turn (its slot is stamped only when it
    is written), so pacing stays right, but the other calls of its group wait behind it:
    keep the calls in flight within ``max_connections`` where throughput matters
    (``Kite.historical_bulk`` does).

    Use ``async with AsyncRequest(...) as http:`` (the HTTP client is created on entry,
    closed on exit), or ``await http.open()`` ... ``await http.aclose()``. It cannot be
    reopened once closed.
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
        error_mapper: ErrorMapper | None = None,
    ) -> None:
        if error_mapper is not None and not callable(error_mapper):
            raise TypeError("error_mapper must be callable: (status_code, body) -> BrokerError")
        self._error_mapper: ErrorMapper = error_mapper or broker_error_from_response
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise TypeError(f"max_connections must be an int, got {type(max_connections).__name__}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections!r}")
        self._base_url = _check_base_url(base_url)
        self._timeout = _check_timeout(timeout)
        self.backoff = Backoff() if backoff is None else backoff
        self.max_connections = max_connections
        self._follow_redirects = follow_redirects
        self._headers = httpx.Headers(dict(headers or {}))
        self._client: httpx.AsyncClient | None = None
        self._closed = False
        #: path -> base_url joined with it, built once per route (httpx would parse and
        #: merge both on every request).
        self._routes: dict[str, httpx.URL] = {}
        #: (path, query) -> the whole URL: a caller polling the same instruments sends the
        #: same query again and again (bounded like ``_routes``).
        self._queried: dict[tuple[str, str], httpx.URL] = {}
        #: The transport, when requests may go to it directly (see ``open``), else None.
        self._transport: Transport | None = None
        #: The per-phase timeouts of a request sent directly (httpx's extension).
        self._timeouts = httpx.Timeout(self._timeout).as_dict()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._client is not None else "not open"
        return f"AsyncRequest({str(self._base_url)!r}, {state})"

    @property
    def client(self) -> httpx.AsyncClient:
        """The underlying client (e.g. for httpx-ws), once open (else ``ClientClosedError``).
        Errors raised by using it directly are httpx's own: translating them is then the
        user's job."""
        if self._client is None:
            raise self._not_open()
        return self._client

    @property
    def is_open(self) -> bool:
        """True between ``open()`` (or entering ``async with``) and ``aclose()``."""
        return self._client is not None

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` ran."""
        return self._closed

    def _not_open(self) -> ClientClosedError:
        if self._closed:
            return ClientClosedError("AsyncRequest is closed (it cannot be reopened)")
        return ClientClosedError("AsyncRequest is not open: use `async with` or `await open()`")

    def update_headers(self, headers: Mapping[str, str | None]) -> None:
        """Set default headers for later calls; a ``None`` value removes that header.
        Works before ``open()`` too (they are used when it opens)."""
        for name, value in headers.items():
            if value is None:
                self._headers.pop(name, None)
            else:
                self._headers[name] = value
        if self._client is not None:
            self._client.headers = self._headers

    async def open(self) -> None:
        """Create the HTTP client (no I/O: connections open on first use). Idempotent while
        open; ``ClientClosedError`` once closed. ``async with`` calls it; pair it with
        ``await aclose()``. Cancellation: not a checkpoint; the client is open on return."""
        if self._closed:
            raise self._not_open()
        if self._client is None:
            limits = httpx.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_connections,
            )
            # Direct sending: without redirects to follow or a proxy from the environment
            # (httpx reads the same variables), ``AsyncClient.send`` adds nothing a request
            # here needs but cookies (kept below), at ~10% of a call's CPU (auth and
            # redirect flows, hooks, the cookie jar's urllib round trip on every answer).
            # The client keeps this transport, so ``client`` users share its pool.
            direct = not self._follow_redirects and not any(
                getproxies().get(scheme) for scheme in ("http", "https", "all")
            )
            self._transport = Transport(limits) if direct else None
            self._client = httpx.AsyncClient(
                base_url=self._base_url,
                headers=self._headers,
                timeout=self._timeout,
                follow_redirects=self._follow_redirects,
                limits=limits,
                transport=self._transport,
            )

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def aclose(self) -> None:
        """Close the client and its connections. Idempotent; also fine if never opened.

        Cancellation: the connections are closed anyway (shielded), then it propagates;
        the client is closed either way.
        """
        client, self._client, self._closed = self._client, None, True
        if client is not None:
            with anyio.CancelScope(shield=True):
                await client.aclose()

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
        timeout: float | None = None,  # noqa: ASYNC109 (httpx's per-phase timeout, not a deadline)
    ) -> Any:
        """Send one request, with retries, and return the decoded body.

        ``params``: query string; ``data``: form body; ``json``: JSON body; list values
        or repeated pairs repeat a key. ``headers`` add to the defaults for this call.
        ``limiter``: every attempt waits for its turn, and takes its slot when it is
        written (none if it never is). ``idempotent``: whether the
        request may be sent again after it may have reached the server; ``None``
        means True for GET/HEAD/OPTIONS only (say ``idempotent=True`` for a PUT or
        DELETE that is safe to repeat). ``backoff``/``timeout`` override the defaults.

        Returns the body: JSON -> parsed object, ``text/*`` -> ``str``, else ``bytes``.

        Raises the mapper's ``BrokerError`` for error answers (5xx after the retries;
        every other status at once: 400/403/429 by the broker's code, a 3xx/404/405/other
        4xx as ``UnexpectedStatus``), ``ConnectError`` / ``RequestTimeout`` /
        ``ConnectionLost`` / ``TransportError`` when the transport fails,
        ``OutcomeUnknownError`` when a non-idempotent request failed after it may
        have reached the server, ``ValueError`` for a malformed URL,
        ``ClientClosedError`` (a ``RuntimeError``) before ``open()`` or once closed.

        Cancellation: propagates at once, whether during a rate-limit wait or before
        the request is written (no slot is taken), the exchange or a backoff wait (no
        further attempt is made). A request cancelled while in flight may or may not
        have reached the server.
        """
        method = method.upper()
        client = self._client
        if client is None:
            raise self._not_open()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        where = f"{method} {path.partition('?')[0]}"
        if timeout is not None:
            timeout = _check_timeout(timeout)
        if data is not None and json is not None:
            raise ValueError(f"{where}: give a form body (data) or a JSON body, not both")
        body = None if data is None else _form_bytes(data)
        if json is not None:
            body = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
        try:
            url = self._routes.get(path)
            if url is None:
                url = client.build_request("GET", path).url
                if len(self._routes) >= _ROUTES_KEPT:
                    self._routes.clear()
                self._routes[path] = url
            if params:
                query = _encoded(params)
                whole = self._queried.get((path, query))
                if whole is None:
                    if url.query:
                        query = f"{url.query.decode('ascii')}&{query}"
                    whole = url.copy_with(query=query.encode("ascii"))
                    if len(self._queried) >= _ROUTES_KEPT:
                        self._queried.clear()
                    self._queried[path, _encoded(params)] = whole
                url = whole
            transport = self._transport
            if transport is not None and not client.cookies:
                # What build_request makes of it, without its merging and copying.
                merged = client.headers.copy()
                if headers:
                    merged.update(headers)
                request = httpx.Request(
                    method,
                    url,
                    headers=merged,
                    content=body,
                    extensions={
                        "timeout": self._timeouts
                        if timeout is None
                        else httpx.Timeout(timeout).as_dict()
                    },
                )
            else:
                transport = None
                request = client.build_request(
                    method,
                    url,
                    content=body,
                    headers=headers,
                    timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
                )
        except httpx.InvalidURL as exc:
            raise ValueError(f"{where}: {exc}") from None
        if body is not None:
            request.headers["Content-Type"] = (
                "application/json" if json is not None else "application/x-www-form-urlencoded"
            )
            request.stream = _Body(body)
        turn: list[Reservation] = []
        if limiter is not None:

            async def trace(event: str, info: Mapping[str, Any]) -> None:
                if turn and event.endswith(".send_request_headers.started"):
                    turn[0].take()  # the request is being written: the slot is stamped now

            request.extensions["trace"] = trace

        async def attempt() -> Any:
            try:
                if limiter is not None:
                    turn[:] = [await limiter.reserve()]
                if transport is None:
                    response = await client.send(request)
                else:
                    response = await _send_direct(client, transport, request)
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
            finally:
                if turn:
                    turn.pop().release()  # never written: no slot taken (no-op once taken)
            log.debug("%s -> %d", where, response.status_code)
            if response.is_success:
                try:
                    return _decode(response)
                except ValueError:
                    error = self._error_mapper(response.status_code, response.content)
                    heals = True  # a body cut short on the way may come whole next time
            else:
                error = self._error_mapper(response.status_code, response.content)
                heals = error.retryable  # 5xx only
            if not heals:
                raise error
            if idempotent:
                raise _Retry(error)
            raise OutcomeUnknownError(
                f"{where} answered {error}; it may have acted on it; not retried"
            ) from error

        def retryable(exc: Exception) -> bool:
            if isinstance(exc, ConnectError | _Retry):
                return True
            return isinstance(exc, RequestTimeout | ConnectionLost) and idempotent

        def on_retry(exc: Exception, attempt: int, delay: float) -> None:
            log.info("%s failed (%s); retry %d in %.3g s", where, exc, attempt, delay)

        try:
            return await retry(
                attempt, backoff=backoff or self.backoff, retryable=retryable, on_retry=on_retry
            )
        except _Retry as last:
            raise last.error from None

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
