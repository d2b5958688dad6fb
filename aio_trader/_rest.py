"""The REST pipeline every broker's client stands on: :class:`RestBroker`.

A broker's REST client (``Kite``; later ``Dhan``) subclasses ``RestBroker`` and brings
only what is its own: its endpoints (a few lines each: *what* is sent and which record
comes back), its tables (rate limits per endpoint group, and which group a request falls
in), its envelope (:meth:`RestBroker._unwrap`), its login on entry
(:meth:`RestBroker._on_open`) and its error mapper (handed to the ``AsyncRequest``).
Everything else is here, once:

- **lifecycle**: nothing is open before ``async with`` (or ``await open()``); entering
  opens the HTTP client and attaches the log redaction; leaving closes both. A call
  before entry or after exit raises ``ClientClosedError`` at once, before any I/O;
- **one request path** (:meth:`RestBroker._request`): the closed check, the limiter of
  the request's endpoint group (its slot stamped when the request is written), the send
  through :class:`aio_trader.http.AsyncRequest` (retries, the broker's error mapper), the
  session renewal (a request refused with ``SessionExpired`` is sent once more after the
  shared :class:`aio_trader._session.Session` logged in again), the session-expiry hook on
  a ``SessionExpired`` that comes out, the envelope unwrap and the record conversion
  (``parse``);
- **secrets**: registered for log redaction while the client is open, forgotten on close;
- **argument validators** (:func:`fields`, :func:`choice`, :func:`segment_id`,
  :func:`int_arg`, :func:`str_arg`): a clear ``TypeError``/``ValueError`` before any I/O;
- **never send an order twice** (:meth:`RestBroker._place_once`): a new order is sent
  once, retried only when it surely never reached the broker; after an ambiguous failure
  the order is looked up by its client tag (Kite ``tag``, Dhan ``correlationId``: the
  broker supplies "find orders by tag"), else ``OrderOutcomeUnknown(tag=...)``.

This module imports no broker package.
"""

from __future__ import annotations

import enum
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from aio_trader._redact import forget, protect, redaction
from aio_trader._session import Session
from aio_trader.abc import AbstractBroker
from aio_trader.errors import (
    AioTraderError,
    ClientClosedError,
    InvalidInput,
    OrderOutcomeUnknown,
    OrderRejected,
    OutcomeUnknownError,
    PermissionDenied,
    SessionExpired,
)
from aio_trader.http import AsyncRequest, Params
from aio_trader.ratelimit import Rate, RateLimiter

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "REFUSALS",
    "RestBroker",
    "SessionExpiryHook",
    "choice",
    "fields",
    "int_arg",
    "maybe_await",
    "optional_choice",
    "paced",
    "raise_refusal",
    "segment_id",
    "str_arg",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
#: An order record as the broker's lookup returns it.
OrderT = TypeVar("OrderT")
#: An endpoint group (Kite: ``EndpointGroup``).
G = TypeVar("G", bound=Hashable)

#: Called (no arguments; sync or async) on a ``SessionExpired`` answer, before it is raised.
SessionExpiryHook = Callable[[], object]

#: Spacing between calls, as a fraction of the even share of the first window.
SPACING = 0.9

#: Categories that mean "refused, nothing done", even when a broker sends them with a
#: 5xx status (Kite answers ``OrderException`` with HTTP 500 by default): an ambiguous
#: failure caused by one of them is that refusal, not an unknown outcome.
REFUSALS = (OrderRejected, InvalidInput, PermissionDenied, SessionExpired)

#: A path segment id (order, trigger, alert, SIP...): letters, digits, ``_`` and ``-``.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


# -- argument validators: a clear error before any I/O ---------------------------------


def fields(**values: Any) -> dict[str, Any]:
    """Form or query fields, explicitly named, without the ``None`` ones; enum members
    become their value."""
    return {k: _plain(v) for k, v in values.items() if v is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    return str(value) if isinstance(value, str) else value


def choice(kind: type[enum.Enum], value: Any, name: str) -> str:
    """``value`` as one of ``kind``'s values (a member or its exact string), else
    ``TypeError``/``ValueError`` naming the allowed values."""
    if isinstance(value, kind):
        return str(value.value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    allowed = [str(member.value) for member in kind]
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}: expected one of {', '.join(allowed)}")
    return value


def optional_choice(kind: type[enum.Enum], value: Any, name: str) -> str | None:
    """:func:`choice`, with ``None`` passed through."""
    return None if value is None else choice(kind, value, name)


def segment_id(value: Any, name: str) -> str:
    """An id put into a URL path: a non-empty str (or int) of letters, digits, ``_``, ``-``;
    else ``TypeError``/``ValueError`` (``"../orders"`` never leaves)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    text = str(value)
    if not _ID.fullmatch(text):
        raise ValueError(f"{name} must be a non-empty id of letters, digits, '_' or '-': {text!r}")
    return text


def int_arg(value: Any, name: str) -> int:
    """``value`` when it is an ``int`` (not a ``bool``), else ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def str_arg(value: Any, name: str, *, optional: bool = True) -> None:
    """``TypeError`` unless ``value`` is a ``str`` (or ``None`` when ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")


# -- pacing and small helpers ------------------------------------------------------------


def paced(rates: Sequence[Rate], margin: float) -> tuple[Rate, ...]:
    """``rates`` with every window ``margin`` seconds longer (for the jitter between our
    clock and the server's), plus a spacing between calls (90 % of the first window over
    its count: the windows still cap the rate, the spacing only stops bursts, and its
    slack absorbs late wake-ups), so calls go out one by one at the limit."""
    longer = tuple(Rate(rate.count, rate.period + margin) for rate in rates)
    first = longer[0]
    if first.count == 1:
        return longer
    return (Rate(1, SPACING * first.period / first.count), *longer)


async def maybe_await(value: object) -> None:
    """Await ``value`` if it is awaitable (the result of a sync-or-async callback)."""
    if inspect.isawaitable(value):
        await value


def raise_refusal(error: OutcomeUnknownError) -> None:
    """Raise the cause of ``error`` when it is the broker's explicit refusal
    (:data:`REFUSALS`), not an ambiguity; else return."""
    if isinstance(error.__cause__, REFUSALS):
        raise error.__cause__ from None


# -- the base ----------------------------------------------------------------------------


class RestBroker(AbstractBroker, Generic[G]):
    """The base of a broker's REST client (see the module docstring).

    ``http``: the client's ``AsyncRequest`` (not open yet; built with the broker's root,
    headers and error mapper). ``limits``: every endpoint group's rates, already paced
    (see :func:`paced`). ``session_expiry_hook``: see :meth:`set_session_expiry_hook`.
    ``session``: the login's :class:`~aio_trader._session.Session`, shared with feeds (its
    credential is taken on :meth:`open` and before every request; see :meth:`_request`).
    ``reconcile_attempts``/``reconcile_delay``: lookups by tag after an ambiguous order
    placement, and the wait between them. Nothing is opened here.
    """

    #: A prefix put before every API path (Kite Web: ``/oms``); session routes skip it.
    _path_prefix: str = ""

    def __init__(
        self,
        http: AsyncRequest,
        limits: Mapping[G, Sequence[Rate]],
        *,
        session_expiry_hook: SessionExpiryHook | None = None,
        reconcile_attempts: int = 3,
        reconcile_delay: float = 0.5,
        session: Session | None = None,
    ) -> None:
        if session is not None and not isinstance(session, Session):
            raise TypeError(f"session must be a session object, got {type(session).__name__}")
        if isinstance(reconcile_delay, bool) or not isinstance(reconcile_delay, int | float):
            raise TypeError("reconcile_delay must be a number of seconds")
        if not reconcile_delay >= 0:
            raise ValueError(f"reconcile_delay must be >= 0, got {reconcile_delay!r}")
        if int_arg(reconcile_attempts, "reconcile_attempts") < 1:
            raise ValueError("reconcile_attempts must be >= 1")
        if session_expiry_hook is not None and not callable(session_expiry_hook):
            raise TypeError("the session expiry hook must be callable")
        self._http = http
        self._limiters: dict[G, RateLimiter] = {
            group: RateLimiter(*rates, name=str(group)) for group, rates in limits.items()
        }
        self._hook = session_expiry_hook
        self._session = session
        #: The session's generation whose credential this client uses (-1: none yet).
        self._session_generation = -1
        self._reconcile_attempts = reconcile_attempts
        self._reconcile_delay = reconcile_delay
        # Masked in the HTTP stack's logs while the client is open (open() registers them,
        # aclose() forgets them): nothing process-wide outlives the client.
        self._secrets: list[str] = []
        self._opened = False
        self._closed = False

    # -- what a broker supplies ----------------------------------------------------------

    def _group(self, method: str, path: str) -> G:
        """The endpoint group (rate-limit table row) of a request."""
        raise NotImplementedError

    def _unwrap(self, body: Any) -> Any:
        """The payload of a successful answer (the broker's envelope taken off)."""
        return body

    async def _on_open(self) -> None:
        """Run once the HTTP client is open (a login on entry); nothing by default."""

    def _use_credential(self, credential: str) -> None:
        """Send ``credential`` (the shared session's) with every request from now on."""
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        r""":meth:`open` the client and return it; leaving the block :meth:`aclose`\ s it."""
        await self.open()
        return self

    async def open(self) -> None:
        """Open the client: its HTTP client, the log redaction, then the broker's login on
        entry if it has one. ``async with`` calls it; call it yourself (then
        :meth:`aclose`) where a block does not fit, e.g. in a notebook.

        Before it, and after :meth:`aclose`, every call raises ``ClientClosedError`` (a
        ``RuntimeError``) at once; a closed client cannot be reopened. On failure or
        cancellation the client is closed again before the exception propagates.
        Opening twice is a no-op.
        """
        name = type(self).__name__
        if self._closed:
            raise ClientClosedError(f"{name} is closed (it cannot be reopened): make a new one")
        if self._opened:
            return
        await self._http.open()
        redaction.attach()
        protect(*self._secrets)
        self._opened = True
        try:
            if self._session is not None:  # log in first if the session has no token yet
                await self._session.credential()
                self._session_credential()
            await self._on_open()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the HTTP client, forget the secrets and detach the log redaction.
        Idempotent; fine on a client never opened. ``close()`` is an alias.

        Cancellation: the client is closed anyway (shielded), then it propagates.
        """
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._http.aclose()
        if self._opened:
            self._opened = False
            forget(*self._secrets)
            redaction.detach()
        self._secrets.clear()

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` (or entering ``async with``) and :meth:`aclose`."""
        return self._opened

    def _check_open(self) -> None:
        if not self._opened:
            name = type(self).__name__
            raise ClientClosedError(
                f"{name} is closed"
                if self._closed
                else f"{name} is not open: use `async with {name}(...) as client` "
                "or `await client.open()`"
            )

    def _remember(self, *values: str | None) -> None:
        """Mask these secrets in the HTTP stack's logs while this client is open."""
        kept = tuple(v for v in values if v and v not in self._secrets)
        if self._opened:
            protect(*kept)
        self._secrets.extend(kept)

    def set_session_expiry_hook(self, method: SessionExpiryHook) -> None:
        """Call ``method()`` (sync, or async: awaited) on every ``SessionExpired`` answer
        (Kite: a 403 ``TokenException``), before the exception is raised; an exception
        from the hook propagates instead. With a ``session`` that renews, it runs only when
        the renewal could not save the call (the ``SessionExpired`` comes out)."""
        if not callable(method):
            raise TypeError("the session expiry hook must be callable")
        self._hook = method

    @property
    def session(self) -> Session | None:
        """The session given to the constructor (shared with feeds), if any."""
        return self._session

    def _session_credential(self) -> int:
        """Take the session's credential if it changed; return its generation (read first:
        the credential sent is of that generation or newer); 0 without a session."""
        if self._session is None:
            return 0
        generation = self._session.generation
        if generation != self._session_generation:
            credential = self._session.current()
            if credential is not None:
                self._use_credential(credential)
                self._session_generation = generation
        return generation

    # -- the one request path --------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        params: Params | None = None,
        data: Params | None = None,
        json: Any = None,
        idempotent: bool | None = None,
        prefixed: bool = True,
        hook: bool = True,
    ) -> T:
        """Send one call and return ``parse(payload)``.

        The request's group limiter paces it; ``prefixed=False``: a session route, sent
        without the API prefix; ``hook=False``: a ``SessionExpired`` answer neither renews
        the session nor calls the session-expiry hook (a stale cached session is expected,
        not an expiry; a login route must not log in again).

        **Session renewal.** With a ``session`` that can renew, a request refused with
        ``SessionExpired`` (the broker's definite refusal: Kite's 403 ``TokenException``,
        Dhan's DH-901 / 401) was not acted upon, so it is sent once more after the session
        logged in again (one login for every request refused with the same credential:
        see :meth:`Session.renew`). This holds for orders too: a refused order was not
        placed. An ambiguous failure (a timeout, a dropped connection) is never a session
        refusal and is never resent here (orders go through the tag lookup instead). If
        the renewal fails, the original ``SessionExpired`` is raised, chained from the
        renewal's error; a second refusal after a renewal is raised as it is. The
        session-expiry hook runs before a ``SessionExpired`` comes out, not when the
        renewal saved the call.

        Raises what :meth:`AsyncRequest.request` raises, and what ``parse`` raises.
        Cancellation: propagates; during a renewal, see :meth:`Session.renew` (the old
        credential stays).
        """
        self._check_open()
        limiter = self._limiters[self._group(method, path)]
        where = (self._path_prefix if prefixed else "") + path

        async def send() -> Any:
            return await self._http.request(
                method,
                where,
                params=params,
                data=data,
                json=json,
                limiter=limiter,
                idempotent=idempotent,
            )

        generation = self._session_credential()
        try:
            body = await send()
        except SessionExpired as refused:
            if not hook:
                raise
            if not await self._renewed(refused, generation):
                await self._expired()
                raise
            self._session_credential()
            try:
                body = await send()  # once: the broker refused the first, nothing was done
            except SessionExpired:
                await self._expired()
                raise
        return parse(self._unwrap(body))

    async def _renewed(self, refused: SessionExpired, generation: int) -> bool:
        """True once the shared session renewed after ``refused`` (a request sent with
        ``generation``'s credential): send it again. False without a session that can
        renew. When the renewal fails: the hook, then ``refused`` chained from its error."""
        session = self._session
        if session is None or not session.can_renew:
            return False
        try:
            await session.renew(generation)
        except Exception as failure:
            await self._expired()
            raise refused from failure
        log.info("session renewed; sending the refused request again")
        return True

    async def _expired(self) -> None:
        """Call the session-expiry hook (if any) before a ``SessionExpired`` comes out."""
        if self._hook is not None:
            await maybe_await(self._hook())

    # -- never send an order twice -----------------------------------------------------------

    async def _place_once(
        self,
        send: Callable[[], Awaitable[T]],
        tag: str,
        find_by_tag: Callable[[str], Awaitable[Sequence[OrderT]]],
        *,
        several: bool = False,
    ) -> T | list[OrderT]:
        """Send a new order once; after an ambiguous failure, find it by its client tag.

        ``send()`` places the order (a non-idempotent request: ``AsyncRequest`` sends it
        again only when it surely never reached the broker). When it raises
        ``OutcomeUnknownError``: the broker's explicit refusal behind it (:data:`REFUSALS`)
        is raised as itself; otherwise ``find_by_tag(tag)`` (one look at the order book:
        the top-level orders carrying ``tag``) is asked up to ``reconcile_attempts``
        times, ``reconcile_delay`` apart, until it finds something. Exactly one order
        found (or any, with ``several``: an order the broker sliced) is returned as a
        list; none, too many, or a failed lookup raise ``OrderOutcomeUnknown(tag=tag)``,
        chained from the original failure. Nothing is ever sent twice.

        Returns ``send()``'s result, or the list of orders found. Cancellation:
        propagates at once; an order in flight may or may not exist (look it up by tag).
        """
        try:
            return await send()
        except OutcomeUnknownError as error:
            raise_refusal(error)
            log.warning("order placement may have failed (%s); looking up tag %s", error, tag)
            try:
                found: Sequence[OrderT] = []
                for attempt in range(self._reconcile_attempts):
                    if attempt:
                        await anyio.sleep(self._reconcile_delay)
                    found = await find_by_tag(tag)
                    if found:
                        break
            except AioTraderError as lookup:
                raise OrderOutcomeUnknown(
                    f"order with tag {tag} may or may not be placed; the order book lookup "
                    f"failed ({type(lookup).__name__})",
                    tag=tag,
                ) from error
            if len(found) == 1 or (several and found):
                log.info("order with tag %s was placed", tag)
                return list(found)
            what = "no order" if not found else f"{len(found)} orders"
            raise OrderOutcomeUnknown(
                f"order with tag {tag} may or may not be placed: {what} found with the tag",
                tag=tag,
            ) from error
