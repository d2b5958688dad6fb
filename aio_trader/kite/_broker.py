"""``Kite``: the Kite Connect v3 REST client (every endpoint, both logins), on anyio.

``Kite`` stands on the broker-neutral REST pipeline (:class:`aio_trader._rest.RestBroker`:
lifecycle, limiters, secrets, the session-expiry hook, never sending an order twice) and
keeps only Kite's endpoints and tables. Every endpoint is a few lines saying *what* it
sends and which record it returns; all of them go through one private path,
``RestBroker._request``, which

- prefixes the path (Kite Web serves REST under ``/oms``),
- picks the rate-limit group from the path (``/quote*`` -> quote, ``/instruments/historical``
  -> historical, placing/modifying/cancelling ``/orders/...`` -> order, the rest -> other)
  and paces every attempt with that group's limiter (the slot is stamped when the
  request is written),
- sends it through :class:`aio_trader.http.AsyncRequest` (retries with backoff for what is
  safe to repeat; 400/403/429 raised at once; non-idempotent requests never sent twice),
- calls the session-expiry hook on a 403 ``TokenException`` before raising it,
- unwraps Kite's ``{"status": "success", "data": ...}`` envelope and builds the record
  (``Record.from_kite``) the endpoint names.

Method and parameter names follow Kite's official Python client (``KiteConnect``), so code
moves over by adding ``await``. Differences: results are typed records
(:mod:`aio_trader.kite._models`), not dicts; place/modify/cancel calls return the id;
client-side checks raise ``ValueError`` before any request.

No duplicate orders: see :meth:`Kite.place_order`.
"""

from __future__ import annotations

import datetime
import json as jsonlib
import logging
import math
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

import anyio
import anyio.to_thread

from aio_trader._instruments import (
    IndexCache,
    InstrumentIndex,
    Quotes,
    answered,
    cache_directory,
    split_symbol,
)
from aio_trader._instruments import Instrument as NeutralInstrument
from aio_trader._lifecycle import cancel_open, exit_positions, wait_until_final
from aio_trader._rest import RestBroker, SessionExpiryHook, maybe_await, paced, raise_refusal
from aio_trader._rest import choice as _choice
from aio_trader._rest import fields as _fields
from aio_trader._rest import int_arg as _int_arg
from aio_trader._rest import optional_choice as _optional_choice
from aio_trader._rest import segment_id as _segment_id
from aio_trader._rest import str_arg as _str_arg
from aio_trader._time import IST
from aio_trader.backoff import Backoff
from aio_trader.errors import (
    AioTraderError,
    DataException,
    OutcomeUnknownError,
    TokenException,
)
from aio_trader.http import AsyncRequest
from aio_trader.kite import _trading
from aio_trader.kite._errors import kite_error_from_response
from aio_trader.kite._instruments import neutral_instruments
from aio_trader.kite._models import (
    GTT,
    MFSIP,
    Alert,
    AlertHistory,
    AuctionInstrument,
    AutosliceChild,
    AutosliceResponse,
    BasketMargins,
    Candle,
    Holding,
    Instrument,
    LtpQuote,
    Margins,
    MFHolding,
    MFInstrument,
    MFOrder,
    OhlcQuote,
    Order,
    OrderCharges,
    OrderMargins,
    Position,
    Positions,
    Profile,
    Quote,
    SegmentMargins,
    Session,
    Trade,
    TriggerRange,
    parse_candles,
    parse_instruments,
    parse_mf_instruments,
)
from aio_trader.kite._session import (
    KITE_CONNECT_ROOT,
    KITE_LOGIN_URL,
    KITE_WEB_ROOT,
    KiteSession,
    TokenCache,
    TwoFactor,
    checksum,
    login_url,
    web_login,
)
from aio_trader.kite.constants import (
    LTP_MAX_INSTRUMENTS,
    OHLC_MAX_INSTRUMENTS,
    ORDER_TAG_MAX,
    QUOTE_MAX_INSTRUMENTS,
    TRIGGER_RANGE_MAX_INSTRUMENTS,
    EndpointGroup,
    Exchange,
    Interval,
    MarginSegment,
    OrderType,
    PositionType,
    Product,
    TransactionType,
    Validity,
    Variety,
    rate_limits,
)
from aio_trader.kite.ticks import OrderUpdate
from aio_trader.ratelimit import Rate
from aio_trader.utils import as_completed

if TYPE_CHECKING:
    from aio_trader.abc import _Mapping
    from aio_trader.kite._feed import KiteFeed

__all__ = [
    "DateLike",
    "Kite",
    "ProgressCallback",
    "SessionExpiryHook",
    "historical_chunks",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
#: A date argument: a datetime (naive = IST wall clock), a date, or Kite's string form.
DateLike = datetime.datetime | datetime.date | str
#: Called after each finished chunk of ``historical_bulk`` with ``(done, total)``.
ProgressCallback = Callable[[int, int], object]

_TAG = re.compile(rf"[A-Za-z0-9]{{1,{ORDER_TAG_MAX}}}")
#: Order types that Kite refuses without ``market_protection`` since April 2026.
_PROTECTED_TYPES = frozenset({OrderType.MARKET.value, OrderType.SLM.value})
_NO_PROTECTION = (
    "{what} needs market_protection since April 2026 (Kite refuses it otherwise): pass "
    "market_protection=-1 (automatic) or a percentage above 0 up to 100, give the client a "
    "default with Kite(..., market_protection=-1), or use a LIMIT order"
)
_KITE_TIME = "%Y-%m-%d %H:%M:%S"
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
#: The least margin on order windows: Kite counts orders strictly since April 2026 (no
#: tolerance) and a refused order is costly, so orders keep 0.1 s of slack for the delay
#: between our limiter and Kite's clock (10 orders per 1.1 s: 9.1/s sustained).
_ORDER_MARGIN = 0.1
#: Order statuses that show a cancellation reached Kite.
_CANCELLED = frozenset({"CANCELLED", "CANCEL PENDING"})

#: The statuses an order does not leave (:meth:`Kite.wait_for_order`).
ORDER_FINAL = frozenset({"COMPLETE", "CANCELLED", "REJECTED"})


def _status(order: Order) -> str | None:
    return order.status


def _order_id(order: Order) -> str | None:
    return order.order_id


def _net_quantity(position: Position) -> int | None:
    return position.quantity


def _position_filter(
    value: Callable[[Position], bool] | str | None,
) -> Callable[[Position], bool]:
    """``square_off``'s filter: a predicate, ``"EXCHANGE:SYMBOL"`` or None (all)."""
    if value is None:
        return lambda position: True
    if isinstance(value, str):
        exchange, symbol = _instrument(value)
        return lambda p: p.exchange == exchange and p.tradingsymbol == symbol
    if callable(value):
        return value
    raise TypeError(f"filter must be a callable, 'EXCHANGE:SYMBOL' or None, not {value!r}")


def _instrument(value: str) -> tuple[str, str]:
    """``"EXCHANGE:SYMBOL"`` split, or ``ValueError`` naming it."""
    exchange, colon, symbol = value.partition(":")
    if not (exchange and colon and symbol):
        raise ValueError(f"instrument {value!r} needs its exchange: 'EXCHANGE:SYMBOL'")
    return exchange, symbol


def _order_filter(value: Callable[[Order], bool] | str | None) -> Callable[[Order], bool]:
    """``cancel_all``'s filter: a predicate, ``"EXCHANGE:SYMBOL"`` or None (all)."""
    if value is None:
        return lambda order: True
    if isinstance(value, str):
        exchange, symbol = _instrument(value)
        return lambda order: order.exchange == exchange and order.tradingsymbol == symbol
    if callable(value):
        return value
    raise TypeError(f"filter must be a callable, 'EXCHANGE:SYMBOL' or None, not {value!r}")


# -- small pure helpers -----------------------------------------------------------------


def _json_or_none(value: Any) -> str | None:
    return None if value is None else jsonlib.dumps(value)


def _unwrap(body: Any) -> Any:
    """The ``data`` of Kite's success envelope; CSV text passes through."""
    if isinstance(body, str):
        return body
    if isinstance(body, dict) and body.get("status") == "success" and "data" in body:
        return body["data"]
    raise DataException("expected Kite's {'status': 'success', 'data': ...}", status_code=200)


def _key(name: str, kind: Callable[[Any], T]) -> Callable[[Any], T]:
    """A parser taking the required ``name`` out of a JSON object (e.g. ``order_id``)."""

    def parse(data: Any) -> T:
        if isinstance(data, Mapping) and data.get(name) not in (None, ""):
            return kind(data[name])
        raise DataException(f"answer without {name!r}", status_code=200)

    return parse


def _raw(data: Any) -> Any:
    return data


def _instrument_key(item: Any) -> str:
    if isinstance(item, bool) or not isinstance(item, str | int):
        raise TypeError(
            f"an instrument is an 'EXCHANGE:SYMBOL' str or an int token, got {type(item).__name__}"
        )
    key = str(item)
    if not key:
        raise ValueError("an instrument key is empty")
    if isinstance(item, str) and not key.isdigit():
        split_symbol(key)  # UnknownInstrument for a symbol without its exchange ("INFY")
    return key


def _instrument_keys(instruments: tuple[Any, ...], limit: int) -> list[str]:
    """``EXCHANGE:SYMBOL`` keys (or tokens) from varargs of str/int or collections of them.

    ``TypeError`` for anything else (``bytes`` included: it is not a collection of keys)."""
    keys: list[str] = []
    for item in instruments:
        if isinstance(item, str | int):
            keys.append(_instrument_key(item))
        elif isinstance(item, bytes | bytearray | memoryview | Mapping) or not isinstance(
            item, Iterable
        ):
            raise TypeError(
                "instruments are 'EXCHANGE:SYMBOL' strs or int tokens, or collections of them;"
                f" got {type(item).__name__}"
            )
        else:
            keys.extend(_instrument_key(key) for key in item)
    if not keys:
        raise ValueError("at least one instrument is needed")
    if len(keys) > limit:
        raise ValueError(f"at most {limit} instruments per request, got {len(keys)}")
    return keys


def _protection_value(value: Any) -> float:
    """A valid ``market_protection``: -1 (automatic) or a percentage above 0 up to 100.

    ``TypeError`` for a non-number (``True`` included), ``ValueError`` otherwise (``0``,
    which Kite refuses, and anything out of range)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"market_protection must be a number (-1, or above 0 up to 100), "
            f"got {type(value).__name__}"
        )
    if value == -1 or (0 < value <= 100):
        return value
    raise ValueError(
        f"market_protection must be -1 (automatic) or above 0 up to 100, got {value!r}"
    )


def _kite_time(value: DateLike) -> str:
    """Kite's wire form of a date argument (aware datetimes are converted to IST)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(IST)
        return value.strftime(_KITE_TIME)
    if isinstance(value, datetime.date):
        return value.strftime("%Y-%m-%d")
    return value


def _as_datetime(value: DateLike) -> datetime.datetime:
    """A date argument as an IST datetime; ``ValueError`` for an unreadable string."""
    if isinstance(value, datetime.datetime):
        return value.astimezone(IST) if value.tzinfo else value.replace(tzinfo=IST)
    if isinstance(value, datetime.date):
        return datetime.datetime.combine(value, datetime.time(), IST)
    for pattern in _DATE_FORMATS:
        try:
            return datetime.datetime.strptime(value.strip(), pattern).replace(tzinfo=IST)
        except ValueError:
            continue
    raise ValueError(f"unreadable date {value!r}: use YYYY-MM-DD[ HH:MM:SS]")


def historical_chunks(
    from_date: DateLike, to_date: DateLike, interval: Interval | str
) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """``[from, to]`` cut into Kite's longest ranges for ``interval`` (inclusive, no overlap).

    Raises ``ValueError`` for an unknown interval or ``from`` after ``to``.
    """
    start, end = _as_datetime(from_date), _as_datetime(to_date)
    if start > end:
        raise ValueError("from_date is after to_date")
    step = datetime.timedelta(days=Interval(interval).max_days)
    chunks = []
    while True:
        stop = min(start + step, end)
        chunks.append((start, stop))
        if stop >= end:
            return chunks
        start = stop + datetime.timedelta(seconds=1)


def _group_limits(
    scale: float, margin: float, explicit: Mapping[EndpointGroup, Sequence[Rate]] | None
) -> dict[EndpointGroup, tuple[Rate, ...]]:
    """Each group's paced rates: ``explicit`` ones, else Kite's counts times ``scale`` (as
    the sandbox's ``rate_limit_scale``)."""
    if margin < 0:
        raise ValueError(f"rate_limit_margin must be >= 0, got {margin!r}")
    chosen = {**rate_limits(scale), **(explicit or {})}
    order_margin = max(margin, _ORDER_MARGIN)
    return {
        group: paced(chosen[group], order_margin if group is EndpointGroup.ORDER else margin)
        for group in EndpointGroup
    }


def _group(method: str, path: str) -> EndpointGroup:
    """The rate-limit group of a request (the sandbox and Kite count the same way)."""
    if path.startswith("/quote"):
        return EndpointGroup.QUOTE
    if path.startswith("/instruments/historical/"):
        return EndpointGroup.HISTORICAL
    if method != "GET" and path.startswith("/orders/"):  # place, modify, cancel
        return EndpointGroup.ORDER
    return EndpointGroup.OTHER


# -- the client -------------------------------------------------------------------------


class Kite(RestBroker[EndpointGroup]):
    """Kite Connect v3 REST client; ``async with Kite(...) as kite: await kite.ltp(...)``.

    Logins (pick one):

    - **Kite Connect**: ``Kite(api_key, access_token)``; or ``Kite(api_key)`` then
      ``await kite.generate_session(request_token, api_secret)``.
    - **Kite Web**: ``Kite(enctoken=...)``; or ``Kite(user_id=..., password=...,
      twofa=...)`` (a code, or a sync/async function returning one) or ``totp_secret=``
      (needs the ``totp`` extra). The password login happens on entering ``async with``
      and the enctoken is cached (see ``token_cache``).
    - **A session that renews itself**: ``Kite(session=KiteSession(...))``, shared with
      ``KiteFeed(session=...)``: a call refused for an expired session is sent once more
      after the session logged in again (see :class:`KiteSession`); the api_key or
      user_id come from the session.

    ``root``: the REST root (Kite Connect: ``https://api.kite.trade``; Kite Web:
    ``https://kite.zerodha.com``, REST under ``/oms``), e.g. a sandbox's ``root_url``.
    ``login_root``: the Kite Connect login page base (for :meth:`login_url`).
    ``timeout``: seconds per connect/read/write; ``backoff``: the retry policy
    (default: 3 s doubling to 30 s, 7 attempts); ``max_connections``: HTTP connections
    open at once, kept alive (see :class:`aio_trader.http.AsyncRequest`).
    Rate limits, per endpoint group (:class:`EndpointGroup`): Kite's defaults with their
    request counts multiplied by ``rate_limit_scale`` (as the sandbox's
    ``rate_limit_scale`` does), or ``rate_limits`` for the groups it names
    (``{EndpointGroup.QUOTE: (Rate(1, 1.0),)}``). Every window is ``rate_limit_margin``
    seconds longer, so that jitter between our clock and the server's does not earn a
    429 (cost: 2 % of throughput on a 1 s window; order windows at least 0.1 s longer,
    as Kite counts orders strictly), and calls are spaced evenly, one by one at the
    limit, never in bursts. ``session_expiry_hook``: see
    :meth:`set_session_expiry_hook`.
    ``token_cache``: where Kite Web enctokens are kept (a :class:`TokenCache`; ``True``:
    the user's config directory; ``False``/``None``: no cache).
    ``reconcile_attempts``/``reconcile_delay``: order-book lookups after an ambiguous
    order placement, and the wait between them. ``market_protection``: the client's
    explicit default for MARKET and SL-M orders that give none (-1, or above 0 up to 100;
    without it such orders raise ``ValueError`` before any request, as Kite refuses them).
    ``instrument_cache``: where :meth:`instrument_index` keeps the day's instruments
    (``True``: ``$AIO_TRADER_CACHE_DIR``, else the user's cache directory; a path: that
    directory; ``False``: memory only).

    Nothing is opened here: ``async with`` (or :meth:`open`) creates the HTTP client.
    Wrong argument types raise ``TypeError``; a ``root`` without ``http(s)://``, a
    non-positive ``timeout`` and the other bad values ``ValueError``, before any I/O.

    Secrets (tokens, api secret, password, TOTP) never appear in the repr, logs or errors.

    Every call may raise ``KiteError`` subclasses (Kite's answers: 400/403/429 at once,
    any other non-5xx status as ``UnexpectedStatus`` at once), ``TransportError``
    subclasses (after the retries), ``ClientClosedError`` (a ``RuntimeError``) before
    :meth:`open` or once closed, ``ValueError``/``TypeError`` for arguments checked
    before sending. Reads are retried
    on network errors and 5xx answers; "Cancellation: abandoned" on a read means the
    cancellation propagates at once and nothing changed on the server. Writes say what
    happens in their own docstrings.
    """

    def __init__(
        self,
        api_key: str | None = None,
        access_token: str | None = None,
        *,
        root: str | None = None,
        enctoken: str | None = None,
        user_id: str | None = None,
        password: str | None = None,
        twofa: TwoFactor | None = None,
        totp_secret: str | None = None,
        token_cache: TokenCache | bool | None = True,
        login_root: str = KITE_LOGIN_URL,
        session_expiry_hook: SessionExpiryHook | None = None,
        timeout: float = 7.0,
        backoff: Backoff | None = None,
        max_connections: int = 10,
        rate_limit_scale: float = 1.0,
        rate_limit_margin: float = 0.02,
        rate_limits: Mapping[EndpointGroup, Sequence[Rate]] | None = None,
        reconcile_attempts: int = 3,
        reconcile_delay: float = 0.5,
        market_protection: float | None = None,
        instrument_cache: str | os.PathLike[str] | bool = True,
        session: KiteSession | None = None,
    ) -> None:
        # -- session renewal (issue 19 §3): the account comes from the session
        if session is not None:
            if not isinstance(session, KiteSession):
                raise TypeError(f"session must be a KiteSession, got {type(session).__name__}")
            if access_token or enctoken or password or twofa is not None or totp_secret:
                raise ValueError("give credentials or a session, not both")
            if session.web:
                user_id = user_id or session.user_id
                root = root or session.root
            else:
                api_key = api_key or session.api_key
        for name, value in (
            ("api_key", api_key),
            ("access_token", access_token),
            ("root", root),
            ("enctoken", enctoken),
            ("user_id", user_id),
            ("password", password),
            ("totp_secret", totp_secret),
            ("login_root", login_root),
        ):
            _str_arg(value, name, optional=name != "login_root")
        self._market_protection = (
            None if market_protection is None else _protection_value(market_protection)
        )
        self.web = bool(enctoken or user_id or password)
        if not self.web and not api_key:
            raise ValueError("Kite needs an api_key (Kite Connect) or Kite Web credentials")
        if self.web and not enctoken and not (user_id and password) and session is None:
            raise ValueError("Kite Web login needs an enctoken, or user_id and password")
        root = (root or (KITE_WEB_ROOT if self.web else KITE_CONNECT_ROOT)).rstrip("/")
        super().__init__(
            AsyncRequest(
                root,
                headers={"X-Kite-Version": "3"},
                timeout=timeout,
                backoff=backoff,
                max_connections=max_connections,
                error_mapper=kite_error_from_response,
            ),
            _group_limits(rate_limit_scale, rate_limit_margin, rate_limits),
            session_expiry_hook=session_expiry_hook,
            reconcile_attempts=reconcile_attempts,
            reconcile_delay=reconcile_delay,
            session=session,
        )
        self.api_key = api_key
        self.user_id = user_id
        self.root = root
        self._login_root = login_root
        self._access_token = access_token
        self._enctoken = enctoken
        self._password = password
        self._twofa = twofa
        self._totp_secret = totp_secret
        self._path_prefix = "/oms" if self.web else ""
        if token_cache is True:
            token_cache = TokenCache()
        self._cache: TokenCache | None = token_cache or None
        self._remember(access_token, enctoken, password, totp_secret)
        if isinstance(twofa, str):
            self._remember(twofa)
        self._set_auth()
        self._index_cache = IndexCache(
            "kite", f"{root}{self._path_prefix}/instruments", cache_directory(instrument_cache)
        )

    def __repr__(self) -> str:
        who = f"user_id={self.user_id!r}" if self.web else f"api_key={self.api_key!r}"
        return f"Kite({'web' if self.web else 'connect'}, {who}, root={self.root!r})"

    # -- lifecycle and credentials -------------------------------------------------------

    async def _on_open(self) -> None:
        """On entry: a Kite Web password login (or its cached token); see :meth:`authorise`.

        ``open()`` (from :class:`aio_trader._rest.RestBroker`) creates the HTTP client and
        attaches the log redaction first; it raises what :meth:`authorise` raises, and
        closes the client again on failure or cancellation.
        """
        if self.web and not self._enctoken and self._session is None:
            await self.authorise()

    def _use_credential(self, credential: str) -> None:
        """The shared session's token (issue 19 §3): an enctoken or an access token."""
        if self.web:
            self._use_enctoken(credential)
        else:
            self.set_access_token(credential)

    def _set_auth(self) -> None:
        if self.web:
            auth = f"enctoken {self._enctoken}" if self._enctoken else None
        elif self._access_token:
            auth = f"token {self.api_key}:{self._access_token}"
        else:
            auth = None
        self._http.update_headers({"Authorization": auth})

    @property
    def access_token(self) -> str | None:
        """The Kite Connect access token in use (a secret: never log it)."""
        return self._access_token

    def set_access_token(self, access_token: str) -> None:
        """Use ``access_token`` for subsequent calls (Kite Connect)."""
        self._remember(access_token)
        self._access_token = access_token
        self._set_auth()

    async def authorise(self) -> Profile | Session:
        """Log in with the constructor's credentials, or check the session they give.

        Kite Web with a password: a cached enctoken is tried first (checked with
        ``profile()``; a refused one is dropped), else the password + two-factor login
        runs and its enctoken is cached; returns a ``Session`` (``user_id``,
        ``enctoken``) after a fresh login, the ``Profile`` otherwise. With an
        ``access_token`` or ``enctoken`` only: returns ``profile()``.

        Raises ``TokenException``/``InputException`` when Kite refuses the credentials,
        ``ValueError`` when Kite Connect has no access token yet (use
        :meth:`generate_session`). Cancellation: propagates; the client keeps the
        session it had before (a new one is stored only once complete).
        """
        if not self.web and not self._access_token:
            raise ValueError("no access_token: log in with generate_session(request_token, ...)")
        if not self.web or self._enctoken or not self.user_id or not self._password:
            return await self.profile()
        if self._cache is not None:
            cached = await self._cache.aload(self.user_id)
            if cached:
                self._use_enctoken(cached)
                try:  # a stale cache is expected: not a session expiry for the hook
                    return await self._request(
                        "GET", "/user/profile", Profile.from_kite, hook=False
                    )
                except TokenException:
                    log.info("cached Kite Web session refused; logging in again")
                    self._enctoken = None
                    self._set_auth()
                    await anyio.to_thread.run_sync(self._cache.clear, self.user_id)
        enctoken = await web_login(
            self._http,
            self.user_id,
            self._password,
            twofa=self._twofa,
            totp_secret=self._totp_secret,
        )
        self._use_enctoken(enctoken)
        if self._cache is not None:
            await self._cache.asave(self.user_id, enctoken)
        return Session(user_id=self.user_id, enctoken=enctoken)

    def _use_enctoken(self, enctoken: str) -> None:
        self._remember(enctoken)
        self._enctoken = enctoken
        self._set_auth()

    # -- Kite's tables and envelope, for the one request path (RestBroker._request) ------

    def _group(self, method: str, path: str) -> EndpointGroup:
        return _group(method, path)

    def _unwrap(self, body: Any) -> Any:
        return _unwrap(body)

    # -- sessions -----------------------------------------------------------------------

    def login_url(self) -> str:
        """The Kite Connect login page for this api_key; Kite redirects back with a
        ``request_token`` for :meth:`generate_session`."""
        if not self.api_key:
            raise ValueError("login_url needs an api_key")
        return login_url(self.api_key, self._login_root)

    async def generate_session(self, request_token: str, api_secret: str) -> Session:
        """Trade a login's ``request_token`` for a session; its access token is used from now.

        Returns the ``Session`` (tokens hidden from its repr). Raises ``TokenException``
        for a used/expired token, ``InputException`` for a bad checksum,
        ``OutcomeUnknownError`` if the answer was lost (request tokens are single-use: log
        in again). Cancellation: propagates; the client keeps its previous token.
        """
        self._remember(request_token, api_secret)
        session = await self._request(
            "POST",
            "/session/token",
            Session.from_kite,
            data=_fields(
                api_key=self.api_key,
                request_token=request_token,
                checksum=checksum(str(self.api_key), request_token, api_secret),
            ),
            prefixed=False,
        )
        self._adopt(session)
        return session

    async def renew_access_token(self, refresh_token: str, api_secret: str) -> Session:
        """A new session from a ``refresh_token``; its access token is used from now.

        Returns the ``Session``. Raises ``TokenException`` for an invalid refresh token.
        Cancellation: propagates; the client keeps its previous token.
        """
        self._remember(refresh_token, api_secret)
        session = await self._request(
            "POST",
            "/session/refresh_token",
            Session.from_kite,
            data=_fields(
                api_key=self.api_key,
                refresh_token=refresh_token,
                checksum=checksum(str(self.api_key), refresh_token, api_secret),
            ),
            prefixed=False,
        )
        self._adopt(session)
        return session

    def _adopt(self, session: Session) -> None:
        self._remember(session.refresh_token, session.public_token, session.enctoken)
        if session.access_token:
            self.set_access_token(session.access_token)

    async def invalidate_access_token(self, access_token: str | None = None) -> bool:
        """Log out: invalidate ``access_token`` (default: the one in use). Returns True.

        Safe to repeat, so it is retried like a read. Cancellation: the token may or may
        not be invalidated.
        """
        token = access_token or self._access_token
        self._remember(token)
        return await self._request(
            "DELETE",
            "/session/token",
            bool,
            params=_fields(api_key=self.api_key, access_token=token),
            idempotent=True,
            prefixed=False,
        )

    async def invalidate_refresh_token(self, refresh_token: str) -> bool:
        """Invalidate ``refresh_token``. Returns True. Retried like a read.
        Cancellation: the token may or may not be invalidated."""
        self._remember(refresh_token)
        return await self._request(
            "DELETE",
            "/session/token",
            bool,
            params=_fields(api_key=self.api_key, refresh_token=refresh_token),
            idempotent=True,
            prefixed=False,
        )

    # -- user ----------------------------------------------------------------------------
    # Reads: retried on network errors and 5xx; cancellation abandons the read, nothing
    # changes on the server.

    async def profile(self) -> Profile:
        """The user's profile. Raises ``KiteError`` subclasses. Cancellation: abandoned."""
        return await self._request("GET", "/user/profile", Profile.from_kite)

    @overload
    async def margins(self, segment: None = None) -> Margins: ...
    @overload
    async def margins(self, segment: str) -> SegmentMargins: ...
    async def margins(self, segment: str | None = None) -> Margins | SegmentMargins:
        """Funds and margins: ``Margins`` (every segment) or one ``segment``'s
        ``SegmentMargins`` (``equity``/``commodity``). Cancellation: abandoned."""
        if segment is not None:
            segment = _choice(MarginSegment, segment, "segment")
            return await self._request("GET", f"/user/margins/{segment}", SegmentMargins.from_kite)
        return await self._request("GET", "/user/margins", Margins.from_kite)

    # -- orders ----------------------------------------------------------------------------

    @staticmethod
    def new_tag() -> str:
        """A fresh unique order tag (19 alphanumeric characters), as place_order makes."""
        return "aio" + secrets.token_hex(8)

    async def place_order(
        self,
        variety: str,
        exchange: str,
        tradingsymbol: str,
        transaction_type: str,
        quantity: int,
        product: str,
        order_type: str,
        price: float | None = None,
        validity: str | None = None,
        validity_ttl: int | None = None,
        disclosed_quantity: int | None = None,
        trigger_price: float | None = None,
        iceberg_legs: int | None = None,
        iceberg_quantity: int | None = None,
        auction_number: str | None = None,
        algo_id: str | None = None,
        tag: str | None = None,
        market_protection: float | None = None,
    ) -> str:
        """Place an order (any variety: regular, amo, co, iceberg, auction); returns its id.

        **Never placed twice.** The order carries a ``tag``: a fresh unique one
        (:meth:`new_tag`) unless you give yours (alphanumeric, at most 20 characters,
        else ``ValueError``). The request is sent again only when it surely never
        reached Kite (the connection could not be opened). After an ambiguous failure
        (timeout or drop after sending, a 5xx answer other than Kite's explicit
        refusals such as ``OrderException``, which are raised as is) the order book is searched for
        the tag (``reconcile_attempts`` times, ``reconcile_delay`` apart): if exactly
        one order (not a cover-order leg) carries it, its id is returned; otherwise
        ``OrderOutcomeUnknown`` (with ``.tag``) is raised, chained from the cause. A
        tag of yours is therefore only reliable if you never reuse it: two orders
        found with it raise ``OrderOutcomeUnknown`` rather than guess.

        Checked before any request (``ValueError``/``TypeError``, nothing sent): the
        variety, exchange, transaction_type, product, order_type and validity against
        :mod:`aio_trader.kite.constants`, the tag, and Kite's April-2026 rule: a MARKET
        or SL-M order needs ``market_protection`` (-1: automatic, or a percentage above
        0 up to 100) unless the client has an explicit default
        (``Kite(..., market_protection=-1)``); else use a LIMIT order.

        Raises ``InputException``/``OrderException``/``MarginException``... when Kite
        refuses the order (nothing was placed), ``RateLimitError`` on a 429.
        Cancellation: propagates at once (the send is not shielded); if the request was
        in flight the order may or may not exist. The tag is what settles it: make it
        before the call (:meth:`new_tag`), pass it, and after the cancellation
        :meth:`find_order` tells whether the order was placed.
        """
        fields = self._order_fields(
            variety,
            exchange=exchange,
            tradingsymbol=tradingsymbol,
            transaction_type=transaction_type,
            quantity=quantity,
            product=product,
            order_type=order_type,
            price=price,
            validity=validity,
            validity_ttl=validity_ttl,
            disclosed_quantity=disclosed_quantity,
            trigger_price=trigger_price,
            iceberg_legs=iceberg_legs,
            iceberg_quantity=iceberg_quantity,
            auction_number=auction_number,
            algo_id=algo_id,
            tag=tag,
            market_protection=market_protection,
        )
        found = await self._place(variety, fields)
        if isinstance(found, list):
            return str(found[0].order_id)  # _find_tagged keeps only orders with an id
        return _key("order_id", str)(found)

    async def place_autoslice_order(
        self,
        variety: str,
        exchange: str,
        tradingsymbol: str,
        transaction_type: str,
        quantity: int,
        product: str,
        order_type: str,
        price: float | None = None,
        validity: str | None = None,
        validity_ttl: int | None = None,
        disclosed_quantity: int | None = None,
        trigger_price: float | None = None,
        iceberg_legs: int | None = None,
        iceberg_quantity: int | None = None,
        auction_number: str | None = None,
        algo_id: str | None = None,
        tag: str | None = None,
        market_protection: float | None = None,
    ) -> AutosliceResponse:
        """Place an order that Kite slices when it exceeds the exchange freeze quantity.

        Returns the ``AutosliceResponse``: the first ``order_id`` and one child per
        slice (an ``order_id`` or an ``error``). Same no-duplicate rule as
        :meth:`place_order` (every slice carries the tag); after an ambiguous failure the
        response is rebuilt from the orders found with the tag (errors of refused slices
        are then unknown). Cancellation: as for :meth:`place_order`.
        """
        fields = self._order_fields(
            variety,
            exchange=exchange,
            tradingsymbol=tradingsymbol,
            transaction_type=transaction_type,
            quantity=quantity,
            product=product,
            order_type=order_type,
            price=price,
            validity=validity,
            validity_ttl=validity_ttl,
            disclosed_quantity=disclosed_quantity,
            trigger_price=trigger_price,
            iceberg_legs=iceberg_legs,
            iceberg_quantity=iceberg_quantity,
            auction_number=auction_number,
            algo_id=algo_id,
            tag=tag,
            market_protection=market_protection,
            autoslice="true",
        )
        found = await self._place(variety, fields, slices=True)
        if isinstance(found, list):
            children = tuple(AutosliceChild(order_id=order.order_id) for order in found)
            return AutosliceResponse(order_id=found[0].order_id, children=children)
        return AutosliceResponse.from_kite(found)

    def _order_fields(
        self,
        variety: str,
        *,
        exchange: str,
        tradingsymbol: str,
        transaction_type: str,
        quantity: int,
        product: str,
        order_type: str,
        price: float | None,
        validity: str | None,
        validity_ttl: int | None,
        disclosed_quantity: int | None,
        trigger_price: float | None,
        iceberg_legs: int | None,
        iceberg_quantity: int | None,
        auction_number: str | None,
        algo_id: str | None,
        tag: str | None,
        market_protection: float | None,
        autoslice: str | None = None,
    ) -> dict[str, Any]:
        """A new order's form fields (``variety`` goes in the path), checked before any
        request: Kite's enum values, types, and the April-2026 market-protection rule."""
        _choice(Variety, variety, "variety")
        order_type = _choice(OrderType, order_type, "order_type")
        _str_arg(tradingsymbol, "tradingsymbol", optional=False)
        if not tradingsymbol:
            raise ValueError("tradingsymbol is empty")
        return _fields(
            exchange=_choice(Exchange, exchange, "exchange"),
            tradingsymbol=tradingsymbol,
            transaction_type=_choice(TransactionType, transaction_type, "transaction_type"),
            quantity=_int_arg(quantity, "quantity"),
            product=_choice(Product, product, "product"),
            order_type=order_type,
            price=price,
            validity=_optional_choice(Validity, validity, "validity"),
            validity_ttl=validity_ttl,
            disclosed_quantity=disclosed_quantity,
            trigger_price=trigger_price,
            iceberg_legs=iceberg_legs,
            iceberg_quantity=iceberg_quantity,
            auction_number=auction_number,
            algo_id=algo_id,
            tag=tag,
            market_protection=self._protection(order_type, market_protection, "a new order"),
            autoslice=autoslice,
        )

    def _protection(self, order_type: str | None, value: Any, what: str) -> float | None:
        """The ``market_protection`` to send: the given one (checked), else the client's
        explicit default for MARKET/SL-M; ``ValueError`` when a MARKET/SL-M order has
        neither (Kite would refuse it: a refused order must not cost a round trip)."""
        if value is not None:
            return _protection_value(value)
        if order_type in _PROTECTED_TYPES:
            if self._market_protection is None:
                raise ValueError(_NO_PROTECTION.format(what=f"{order_type} ({what})"))
            return self._market_protection
        return None

    async def _place(self, variety: str, fields: dict[str, Any], slices: bool = False) -> Any:
        """POST the order once (the core's never-twice algorithm, by Kite's ``tag``): its
        answer, or after an ambiguous failure the orders found with its tag."""
        variety = _choice(Variety, variety, "variety")
        tag = fields.setdefault("tag", self.new_tag())
        if not isinstance(tag, str):
            raise TypeError(f"tag must be a str, got {type(tag).__name__}")
        if not _TAG.fullmatch(tag):
            raise ValueError(f"tag must be 1 to {ORDER_TAG_MAX} letters or digits")

        async def send() -> Any:
            return await self._request("POST", f"/orders/{variety}", _raw, data=fields)

        return await self._place_once(send, tag, self._find_tagged, several=slices)

    async def _find_tagged(self, tag: str) -> list[Order]:
        """Top-level orders (with an id) carrying ``tag`` in the order book, now."""
        return [
            order
            for order in await self.orders()
            if (order.tag == tag or tag in (order.tags or ()))
            and order.order_id
            and not order.parent_order_id
        ]

    async def modify_order(
        self,
        variety: str,
        order_id: str,
        parent_order_id: str | None = None,
        quantity: int | None = None,
        price: float | None = None,
        order_type: str | None = None,
        trigger_price: float | None = None,
        validity: str | None = None,
        disclosed_quantity: int | None = None,
        market_protection: float | None = None,
    ) -> str:
        """Modify an open order; returns its id.

        Never sent twice once it may have reached Kite. After an ambiguous failure the
        order's history is read: if its latest state shows every requested value, the id
        is returned; otherwise ``OutcomeUnknownError`` is raised (chained from the cause).
        ``order_type="MARKET"``/``"SL-M"`` needs ``market_protection`` (or the client's
        default), else ``ValueError`` before any request; so do unknown variety,
        order_type or validity values and a malformed ``order_id``.

        Raises ``InputException`` when Kite refuses. Cancellation: propagates; if in
        flight, the change may or may not apply (check ``order_history``).
        """
        variety = _choice(Variety, variety, "variety")
        order_id = _segment_id(order_id, "order_id")
        order_type = _optional_choice(OrderType, order_type, "order_type")
        validity = _optional_choice(Validity, validity, "validity")
        market_protection = self._protection(order_type, market_protection, "a modification")
        changes = _fields(
            quantity=quantity,
            price=price,
            order_type=order_type,
            trigger_price=trigger_price,
            validity=validity,
            disclosed_quantity=disclosed_quantity,
        )
        fields = _fields(
            parent_order_id=parent_order_id, market_protection=market_protection, **changes
        )
        try:
            return await self._request(
                "PUT", f"/orders/{variety}/{order_id}", _key("order_id", str), data=fields
            )
        except OutcomeUnknownError as error:
            raise_refusal(error)
            latest = await self._settle(order_id, error)
            if all(_same(getattr(latest, name), value) for name, value in changes.items()):
                return order_id
            raise OutcomeUnknownError(
                f"modification of order {order_id} may or may not apply: not in its history"
            ) from error

    async def cancel_order(
        self, variety: str, order_id: str, parent_order_id: str | None = None
    ) -> str:
        """Cancel an open order; returns its id.

        Never sent twice once it may have reached Kite. After an ambiguous failure the
        order's history is read: a ``CANCELLED`` / ``CANCEL PENDING`` order returns its id;
        otherwise ``OutcomeUnknownError`` is raised. Raises ``InputException`` when the
        order cannot be cancelled. Cancellation: propagates; if in flight, the order may
        or may not be cancelled.
        """
        variety = _choice(Variety, variety, "variety")
        order_id = _segment_id(order_id, "order_id")
        try:
            return await self._request(
                "DELETE",
                f"/orders/{variety}/{order_id}",
                _key("order_id", str),
                params=_fields(parent_order_id=parent_order_id),
            )
        except OutcomeUnknownError as error:
            raise_refusal(error)
            latest = await self._settle(order_id, error)
            if latest.status in _CANCELLED:
                return order_id
            raise OutcomeUnknownError(
                f"cancellation of order {order_id} may or may not apply: it is {latest.status}"
            ) from error

    async def exit_order(
        self, variety: str, order_id: str, parent_order_id: str | None = None
    ) -> str:
        """Exit a cover order (its stoploss leg); as :meth:`cancel_order`."""
        return await self.cancel_order(variety, order_id, parent_order_id=parent_order_id)

    async def _settle(self, order_id: str, error: OutcomeUnknownError) -> Order:
        """The order's latest state after an ambiguous change, or OutcomeUnknownError."""
        try:
            history = await self.order_history(order_id)
        except AioTraderError as lookup:
            raise OutcomeUnknownError(
                f"order {order_id}: change may or may not apply; history lookup failed "
                f"({type(lookup).__name__})"
            ) from error
        if not history:
            raise OutcomeUnknownError(f"order {order_id}: no history") from error
        return history[-1]

    async def orders(self) -> list[Order]:
        """Today's orders (latest state each). Cancellation: abandoned."""
        return await self._request("GET", "/orders", Order.from_kite_list)

    async def order_history(self, order_id: str) -> list[Order]:
        """Every state of one order, oldest first (``ValueError`` for an empty or malformed
        id, before any request). Cancellation: abandoned."""
        order_id = _segment_id(order_id, "order_id")
        return await self._request("GET", f"/orders/{order_id}", Order.from_kite_list)

    # -- the order's whole life -------------------------------------------------------------

    async def find_order(self, tag: str) -> list[Order]:
        """The top-level orders placed today with ``tag`` (latest state each); an empty
        list when there is none (a sliced order gives several).

        This settles a :meth:`place_order` interrupted by a cancellation (Ctrl-C): give
        it a tag made up front (:meth:`new_tag`) and look that tag up afterwards.
        ``ValueError``/``TypeError`` for a malformed tag, before any request.
        Cancellation: abandoned, nothing changes.
        """
        if not isinstance(tag, str):
            raise TypeError(f"tag must be a str, got {type(tag).__name__}")
        if not _TAG.fullmatch(tag):
            raise ValueError(f"tag must be 1 to {ORDER_TAG_MAX} letters or digits")
        return await self._find_tagged(tag)

    async def wait_for_order(
        self,
        order_id: str,
        feed: KiteFeed | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline the issue asks for)
    ) -> Order:
        """The order's latest state once it is final (``COMPLETE``, ``CANCELLED`` or
        ``REJECTED``). Without ``feed``: by reading its history again and again, paced by
        the client's rate limiter (each read counts against it). With an open
        :class:`KiteFeed`: one read, then the feed's items until the order's final
        :class:`OrderUpdate`, then one more read for the record. The feed's items read
        meanwhile are consumed here: give a feed no other loop reads (if it ends first,
        the wait goes on by reading).

        ``timeout`` in seconds (``None``: wait as long as it takes) raises
        ``TimeoutError`` when it runs out; never returns ``None``. ``ValueError`` for a
        malformed id or a negative timeout, before any request. Cancellation:
        propagates, nothing changes (only reads are sent).
        """
        order_id = _segment_id(order_id, "order_id")

        async def read() -> Order:
            history = await self.order_history(order_id)
            return history[-1] if history else Order()

        def final_update(item: object) -> bool:
            return (
                isinstance(item, OrderUpdate)
                and item.order_id == order_id
                and item.status in ORDER_FINAL
            )

        return await wait_until_final(read, _status, ORDER_FINAL, timeout, feed, final_update)

    async def cancel_all(self, filter: Callable[[Order], bool] | str | None = None) -> list[Order]:
        """Cancel every open top-level order; returns those cancelled (their state before).

        ``filter``: a predicate on :class:`Order`, or an instrument ``"EXCHANGE:SYMBOL"``
        (e.g. ``"NSE:INFY"``); ``None`` cancels all. An order that finished meanwhile
        (Kite refuses, its history shows a final status) is skipped, not an error.
        Cancellation: propagates; orders before it are cancelled, the one in flight may
        or may not be.
        """
        chosen = _order_filter(filter)
        candidates = [o for o in await self.orders() if not o.parent_order_id and chosen(o)]

        async def cancel(order: Order) -> object:
            return await self.cancel_order(order.variety or "regular", str(order.order_id))

        async def latest(order_id: str) -> Order:
            history = await self.order_history(order_id)
            return history[-1] if history else Order()

        return await cancel_open(candidates, _order_id, _status, ORDER_FINAL, cancel, latest)

    async def square_off(
        self,
        filter: Callable[[Position], bool] | str | None = None,
        market_protection: float | None = None,
    ) -> list[str]:
        """Exit the open net positions: a regular MARKET order the other way for each
        non-zero net ``quantity`` (same exchange, symbol and product); returns the order ids.

        ``filter``: a predicate on :class:`Position`, or an instrument ``"EXCHANGE:SYMBOL"``;
        ``None`` exits all. ``market_protection``: as :meth:`place_order`; ``None`` uses
        the client's default, else -1 (automatic). Bad arguments raise ``ValueError``
        before any request. Cancellation: propagates; the exits before it are placed,
        the one in flight may or may not be (each carries a fresh tag, see
        :meth:`find_order`; :meth:`positions` shows what is left).
        """
        chosen = _position_filter(filter)
        if market_protection is not None:
            market_protection = _protection_value(market_protection)
        elif self._market_protection is None:
            market_protection = -1
        positions = [p for p in (await self.positions()).net or () if chosen(p)]

        async def place_exit(position: Position, side: str, quantity: int) -> str:
            return await self.place_order(
                "regular",
                str(position.exchange),
                str(position.tradingsymbol),
                side,
                quantity,
                str(position.product),
                "MARKET",
                market_protection=market_protection,
            )

        return await exit_positions(positions, _net_quantity, place_exit)

    async def trades(self) -> list[Trade]:
        """Today's trades (fills). Cancellation: abandoned."""
        return await self._request("GET", "/trades", Trade.from_kite_list)

    async def order_trades(self, order_id: str) -> list[Trade]:
        """The trades of one order (``ValueError`` for an empty or malformed id, before any
        request). Cancellation: abandoned."""
        order_id = _segment_id(order_id, "order_id")
        return await self._request("GET", f"/orders/{order_id}/trades", Trade.from_kite_list)

    # -- portfolio ---------------------------------------------------------------------------

    async def positions(self) -> Positions:
        """Net and day positions. Cancellation: abandoned."""
        return await self._request("GET", "/portfolio/positions", Positions.from_kite)

    async def holdings(self) -> list[Holding]:
        """Equity holdings. Cancellation: abandoned."""
        return await self._request("GET", "/portfolio/holdings", Holding.from_kite_list)

    async def get_auction_instruments(self) -> list[AuctionInstrument]:
        """Holdings open for today's auctions. Cancellation: abandoned."""
        return await self._request(
            "GET", "/portfolio/holdings/auctions", AuctionInstrument.from_kite_list
        )

    async def convert_position(
        self,
        exchange: str,
        tradingsymbol: str,
        transaction_type: str,
        position_type: str,
        quantity: int,
        old_product: str,
        new_product: str,
    ) -> bool:
        """Move a position to another product; returns True. Not retried once it may have
        reached Kite (``OutcomeUnknownError``: check ``positions()``). Cancellation: the
        conversion may or may not apply."""
        exchange = _choice(Exchange, exchange, "exchange")
        transaction_type = _choice(TransactionType, transaction_type, "transaction_type")
        position_type = _choice(PositionType, position_type, "position_type")
        old_product = _choice(Product, old_product, "old_product")
        new_product = _choice(Product, new_product, "new_product")
        return await self._request(
            "PUT",
            "/portfolio/positions",
            bool,
            data=_fields(
                exchange=exchange,
                tradingsymbol=tradingsymbol,
                transaction_type=transaction_type,
                position_type=position_type,
                quantity=quantity,
                old_product=old_product,
                new_product=new_product,
            ),
        )

    # -- mutual funds ------------------------------------------------------------------------
    # Writes are never sent twice: an ambiguous failure raises OutcomeUnknownError (check
    # mf_orders()/mf_sips()); cancellation leaves them applied or not.

    @overload
    async def mf_orders(self, order_id: None = None) -> list[MFOrder]: ...
    @overload
    async def mf_orders(self, order_id: str) -> MFOrder: ...
    async def mf_orders(self, order_id: str | None = None) -> list[MFOrder] | MFOrder:
        """Mutual fund orders, or the one ``order_id``. Cancellation: abandoned."""
        if order_id is not None:
            order_id = _segment_id(order_id, "order_id")
            return await self._request("GET", f"/mf/orders/{order_id}", MFOrder.from_kite)
        return await self._request("GET", "/mf/orders", MFOrder.from_kite_list)

    async def place_mf_order(
        self,
        tradingsymbol: str,
        transaction_type: str,
        quantity: float | None = None,
        amount: float | None = None,
        tag: str | None = None,
    ) -> str:
        """Place a mutual fund order; returns its id. See the section note on failures."""
        fields = _fields(
            tradingsymbol=tradingsymbol,
            transaction_type=transaction_type,
            quantity=quantity,
            amount=amount,
            tag=tag,
        )
        return await self._request("POST", "/mf/orders", _key("order_id", str), data=fields)

    async def cancel_mf_order(self, order_id: str) -> str:
        """Cancel a mutual fund order; returns its id. See the section note on failures."""
        order_id = _segment_id(order_id, "order_id")
        return await self._request("DELETE", f"/mf/orders/{order_id}", _key("order_id", str))

    @overload
    async def mf_sips(self, sip_id: None = None) -> list[MFSIP]: ...
    @overload
    async def mf_sips(self, sip_id: str) -> MFSIP: ...
    async def mf_sips(self, sip_id: str | None = None) -> list[MFSIP] | MFSIP:
        """Mutual fund SIPs, or the one ``sip_id``. Cancellation: abandoned."""
        if sip_id is not None:
            sip_id = _segment_id(sip_id, "sip_id")
            return await self._request("GET", f"/mf/sips/{sip_id}", MFSIP.from_kite)
        return await self._request("GET", "/mf/sips", MFSIP.from_kite_list)

    async def place_mf_sip(
        self,
        tradingsymbol: str,
        amount: float,
        instalments: int,
        frequency: str,
        initial_amount: float | None = None,
        instalment_day: int | None = None,
        tag: str | None = None,
    ) -> str:
        """Start a SIP; returns its id. See the section note on failures."""
        fields = _fields(
            tradingsymbol=tradingsymbol,
            amount=amount,
            initial_amount=initial_amount,
            instalments=instalments,
            frequency=frequency,
            instalment_day=instalment_day,
            tag=tag,
        )
        return await self._request("POST", "/mf/sips", _key("sip_id", str), data=fields)

    async def modify_mf_sip(
        self,
        sip_id: str,
        amount: float | None = None,
        status: str | None = None,
        instalments: int | None = None,
        frequency: str | None = None,
        instalment_day: int | None = None,
    ) -> str:
        """Change a SIP; returns its id. See the section note on failures."""
        fields = _fields(
            amount=amount,
            status=status,
            instalments=instalments,
            frequency=frequency,
            instalment_day=instalment_day,
        )
        sip_id = _segment_id(sip_id, "sip_id")
        return await self._request("PUT", f"/mf/sips/{sip_id}", _key("sip_id", str), data=fields)

    async def cancel_mf_sip(self, sip_id: str) -> str:
        """Cancel a SIP; returns its id. See the section note on failures."""
        sip_id = _segment_id(sip_id, "sip_id")
        return await self._request("DELETE", f"/mf/sips/{sip_id}", _key("sip_id", str))

    async def mf_holdings(self) -> list[MFHolding]:
        """Mutual fund holdings. Cancellation: abandoned."""
        return await self._request("GET", "/mf/holdings", MFHolding.from_kite_list)

    async def mf_instruments(self) -> list[MFInstrument]:
        """Every mutual fund scheme (a CSV dump, parsed in a worker thread).
        Cancellation: propagates (once a parse already running has finished)."""
        text = await self._request("GET", "/mf/instruments", str)
        return await anyio.to_thread.run_sync(parse_mf_instruments, text)

    # -- market data ----------------------------------------------------------------------------

    async def instruments(self, exchange: str | None = None) -> list[Instrument]:
        """Every instrument, or one ``exchange``'s (a CSV dump, parsed in a worker thread;
        malformed rows are skipped, counted and logged). Cancellation: propagates (once a
        parse already running has finished)."""
        path = "/instruments"
        if exchange is not None:
            path = f"/instruments/{_choice(Exchange, exchange, 'exchange')}"
        text = await self._request("GET", path, str)
        return await anyio.to_thread.run_sync(parse_instruments, text)

    # -- instruments by symbol (issue 19, §1) ---------------------------------------------

    async def instrument_index(self, refresh: bool = False) -> InstrumentIndex:
        """Every instrument by symbol, key and underlying: an
        :class:`~aio_trader.toolkit.InstrumentIndex` of today's :meth:`instruments` dump.

        Downloaded at most once a day (a day's dump is out by 08:30 IST: one fetched
        earlier counts for the day before, and is fetched again after 08:30; one fetched
        later serves until 08:30 the next morning): kept on the client, and in a file under
        ``instrument_cache`` (one per broker and REST root, so a sandbox's never stands in
        for Kite's; replaced atomically; a corrupt file is logged, removed and downloaded
        again), so the next client (or program) the same day reads the file instead.
        ``refresh=True`` downloads again. Concurrent callers share one download.

        Raises what :meth:`instruments` raises (``ClientClosedError`` before :meth:`open`
        or once closed, even when the index is cached). Cancellation: propagates; a
        cancelled download changes nothing (no half-written file, no half-built index: the
        next call downloads again).
        """

        async def download() -> list[NeutralInstrument]:
            records = await self.instruments()
            return await anyio.to_thread.run_sync(neutral_instruments, records)

        self._check_open()  # nothing works before ``async with`` or after it, cached or not
        return await self._index_cache.get(download, refresh)

    async def quote(self, *instruments: str | int | Iterable[str | int]) -> Quotes[str, Quote]:
        """Full quotes keyed like the request (``"NSE:INFY"``; tokens allowed, keyed as
        strs): one key per argument, or collections of them.

        Instruments Kite leaves out of its answer (unknown to it) are named in the
        result's ``missing`` (a :class:`~aio_trader.toolkit.Quotes`, a dict); when none is
        answered the call raises ``UnknownInstrument`` naming them, never returns ``{}``.
        Before any request: ``UnknownInstrument`` for a symbol without its exchange
        (``"INFY"``), ``ValueError`` for more than 500 instruments, ``TypeError`` for
        anything but strs and ints. Cancellation: abandoned."""
        keys = _instrument_keys(instruments, QUOTE_MAX_INSTRUMENTS)
        return await self._quotes("/quote", Quote.from_kite_map, keys)

    async def ohlc(self, *instruments: str | int | Iterable[str | int]) -> Quotes[str, OhlcQuote]:
        """OHLC + last price, as :meth:`quote` (at most 1000, else ``ValueError``)."""
        keys = _instrument_keys(instruments, OHLC_MAX_INSTRUMENTS)
        return await self._quotes("/quote/ohlc", OhlcQuote.from_kite_map, keys)

    async def ltp(self, *instruments: str | int | Iterable[str | int]) -> Quotes[str, LtpQuote]:
        """Last prices, as :meth:`quote` (at most 1000, else ``ValueError``)."""
        keys = _instrument_keys(instruments, LTP_MAX_INSTRUMENTS)
        return await self._quotes("/quote/ltp", LtpQuote.from_kite_map, keys)

    async def _quotes(
        self, path: str, parse: Callable[[Any], dict[str, R]], keys: list[str]
    ) -> Quotes[str, R]:
        answer = await self._request("GET", path, parse, params={"i": keys})
        return answered(answer, keys, "kite")

    async def trigger_range(
        self, transaction_type: str, *instruments: str | int | Iterable[str | int]
    ) -> dict[str, TriggerRange]:
        """Cover-order trigger ranges for ``transaction_type`` (BUY/SELL), keyed like the
        request (at most 500, else ``ValueError``). Cancellation: abandoned."""
        side = transaction_type
        if isinstance(side, str) and not isinstance(side, TransactionType):
            side = side.upper()  # Kite's path takes it in lower case; accept either
        side = _choice(TransactionType, side, "transaction_type")
        keys = _instrument_keys(instruments, TRIGGER_RANGE_MAX_INSTRUMENTS)
        return await self._request(
            "GET",
            f"/instruments/trigger_range/{side.lower()}",
            TriggerRange.from_kite_map,
            params={"i": keys},
        )

    async def historical_data(
        self,
        instrument_token: int,
        from_date: DateLike,
        to_date: DateLike,
        interval: Interval | str,
        continuous: bool = False,
        oi: bool = False,
    ) -> list[Candle]:
        """Candles of one instrument in ``[from_date, to_date]`` (one request: the range must
        fit Kite's maximum for ``interval``; :meth:`historical_bulk` splits longer ones).

        Dates: datetimes (naive = IST), dates, or ``YYYY-MM-DD[ HH:MM:SS]`` strings.
        Returns ``Candle`` records (IST-aware ``date``; ``oi`` with ``oi=True``). Raises
        ``InputException`` for what Kite refuses. Cancellation: abandoned.
        """
        token = _int_arg(instrument_token, "instrument_token")
        interval = _choice(Interval, interval, "interval")
        params: dict[str, str | int] = {
            "from": _kite_time(from_date),
            "to": _kite_time(to_date),
            "interval": str(interval),
            "continuous": int(continuous),
            "oi": int(oi),
        }
        return await self._request(
            "GET",
            f"/instruments/historical/{token}/{interval}",
            parse_candles,
            params=params,
        )

    async def historical_bulk(
        self,
        instrument_tokens: Iterable[int],
        from_date: DateLike,
        to_date: DateLike,
        interval: Interval | str,
        *,
        continuous: bool = False,
        oi: bool = False,
        on_progress: ProgressCallback | None = None,
        concurrency: int | None = None,
    ) -> dict[int, list[Candle]]:
        """Candles of many instruments at the historical rate limit: ``{token: [Candle...]}``.

        Ranges longer than Kite's maximum for ``interval`` are split into chunks
        (:func:`historical_chunks`); every (instrument, chunk) request runs concurrently
        (at most ``concurrency`` in flight; default: twice the per-second limit, at
        least 4, at most ``max_connections``: a request waiting for a connection holds
        its group's turn and only slows the others down), paced by the client's
        historical limiter, so no 429s. Each
        instrument's candles come back in time order, a candle repeated at a chunk
        boundary only once. ``on_progress(done, total)`` (sync
        or async) is called after each request finishes. Duplicate tokens are fetched
        once.

        Raises ``ValueError`` for bad dates/interval (before any request), else the first
        failure (the other requests are cancelled, nothing partial is returned).
        Cancellation: every request in flight is cancelled; nothing is returned.
        """
        tokens = list(dict.fromkeys(int(token) for token in instrument_tokens))
        chunks = historical_chunks(from_date, to_date, interval)
        total = len(tokens) * len(chunks)
        if concurrency is None:
            rates = self._limiters[EndpointGroup.HISTORICAL].rates
            per_second = min(rate.count / rate.period for rate in rates)
            concurrency = min(max(4, math.ceil(2 * per_second)), self._http.max_connections)
        jobs = {
            (token, index): self.historical_data(token, start, stop, interval, continuous, oi)
            for token in tokens
            for index, (start, stop) in enumerate(chunks)
        }
        parts: dict[tuple[int, int], list[Candle]] = {}
        async with as_completed(jobs, limit=concurrency) as finished:
            async for key, candles in finished:
                parts[key] = candles
                if on_progress is not None:
                    await maybe_await(on_progress(len(parts), total))
        return {token: _joined(parts[token, i] for i in range(len(chunks))) for token in tokens}

    # -- GTT ------------------------------------------------------------------------------------
    # Writes are never sent twice: an ambiguous failure raises OutcomeUnknownError (check
    # get_gtts()); cancellation leaves them applied or not.

    async def get_gtts(self) -> list[GTT]:
        """Every GTT trigger. Cancellation: abandoned."""
        return await self._request("GET", "/gtt/triggers", GTT.from_kite_list)

    async def get_gtt(self, trigger_id: int | str) -> GTT:
        """One GTT trigger. Cancellation: abandoned."""
        trigger_id = _segment_id(trigger_id, "trigger_id")
        return await self._request("GET", f"/gtt/triggers/{trigger_id}", GTT.from_kite)

    async def place_gtt(
        self,
        trigger_type: str,
        tradingsymbol: str,
        exchange: str,
        trigger_values: Sequence[float],
        last_price: float,
        orders: Sequence[Mapping[str, Any]],
    ) -> int:
        """Create a GTT (``single``: one trigger value and order; ``two-leg``: two); returns
        the trigger id. Each order needs transaction_type, quantity, order_type, product,
        price (else ``ValueError``, before any request). See the section note on failures.
        """
        form = _gtt_form(trigger_type, tradingsymbol, exchange, trigger_values, last_price, orders)
        return await self._request("POST", "/gtt/triggers", _key("trigger_id", int), data=form)

    async def modify_gtt(
        self,
        trigger_id: int | str,
        trigger_type: str,
        tradingsymbol: str,
        exchange: str,
        trigger_values: Sequence[float],
        last_price: float,
        orders: Sequence[Mapping[str, Any]],
    ) -> int:
        """Replace a GTT's condition and orders (as :meth:`place_gtt`); returns its id."""
        trigger_id = _segment_id(trigger_id, "trigger_id")
        form = _gtt_form(trigger_type, tradingsymbol, exchange, trigger_values, last_price, orders)
        return await self._request(
            "PUT", f"/gtt/triggers/{trigger_id}", _key("trigger_id", int), data=form
        )

    async def delete_gtt(self, trigger_id: int | str) -> int:
        """Delete a GTT; returns its id. See the section note on failures."""
        trigger_id = _segment_id(trigger_id, "trigger_id")
        return await self._request("DELETE", f"/gtt/triggers/{trigger_id}", _key("trigger_id", int))

    # -- margin and charges calculators (pure computations: retried like reads) --------------

    async def order_margins(self, params: Sequence[Mapping[str, Any]]) -> list[OrderMargins]:
        """Margins each order of ``params`` would need. Cancellation: abandoned."""
        return await self._request(
            "POST",
            "/margins/orders",
            OrderMargins.from_kite_list,
            json=list(params),
            idempotent=True,
        )

    async def basket_order_margins(
        self,
        params: Sequence[Mapping[str, Any]],
        consider_positions: bool = True,
        mode: str | None = None,
    ) -> BasketMargins:
        """Margins of a basket (``mode="compact"``: totals only). Cancellation: abandoned."""
        query = _fields(consider_positions=str(consider_positions).lower(), mode=mode)
        return await self._request(
            "POST",
            "/margins/basket",
            BasketMargins.from_kite,
            params=query,
            json=list(params),
            idempotent=True,
        )

    async def get_virtual_contract_note(
        self, params: Sequence[Mapping[str, Any]]
    ) -> list[OrderCharges]:
        """Charges of each (executed) order of ``params``. Cancellation: abandoned."""
        return await self._request(
            "POST",
            "/charges/orders",
            OrderCharges.from_kite_list,
            json=list(params),
            idempotent=True,
        )

    # -- alerts -----------------------------------------------------------------------------------
    # Writes are never sent twice: an ambiguous failure raises OutcomeUnknownError (check
    # get_alerts()); cancellation leaves them applied or not.

    async def get_alerts(self, status: str | None = None) -> list[Alert]:
        """Every alert (or those with ``status``). Cancellation: abandoned."""
        return await self._request(
            "GET", "/alerts", Alert.from_kite_list, params=_fields(status=status)
        )

    async def get_alert(self, uuid: str) -> Alert:
        """One alert. Cancellation: abandoned."""
        uuid = _segment_id(uuid, "uuid")
        return await self._request("GET", f"/alerts/{uuid}", Alert.from_kite)

    async def create_alert(
        self,
        name: str,
        type: str,
        lhs_exchange: str,
        lhs_tradingsymbol: str,
        lhs_attribute: str,
        operator: str,
        rhs_type: str,
        rhs_constant: float | None = None,
        rhs_exchange: str | None = None,
        rhs_tradingsymbol: str | None = None,
        rhs_attribute: str | None = None,
        basket: Mapping[str, Any] | None = None,
    ) -> Alert:
        """Create an alert (``simple``, or ``ato`` placing ``basket`` when it fires); returns
        it. See the section note on failures."""
        form = _fields(
            name=name,
            type=type,
            lhs_exchange=lhs_exchange,
            lhs_tradingsymbol=lhs_tradingsymbol,
            lhs_attribute=lhs_attribute,
            operator=operator,
            rhs_type=rhs_type,
            rhs_constant=rhs_constant,
            rhs_exchange=rhs_exchange,
            rhs_tradingsymbol=rhs_tradingsymbol,
            rhs_attribute=rhs_attribute,
            basket=_json_or_none(basket),
        )
        return await self._request("POST", "/alerts", Alert.from_kite, data=form)

    async def modify_alert(
        self,
        uuid: str,
        name: str,
        type: str,
        lhs_exchange: str,
        lhs_tradingsymbol: str,
        lhs_attribute: str,
        operator: str,
        rhs_type: str,
        rhs_constant: float | None = None,
        rhs_exchange: str | None = None,
        rhs_tradingsymbol: str | None = None,
        rhs_attribute: str | None = None,
        basket: Mapping[str, Any] | None = None,
        status: str | None = None,
    ) -> Alert:
        """Replace an alert's definition (as :meth:`create_alert`; ``status`` enables or
        disables it); returns it. See the section note on failures."""
        uuid = _segment_id(uuid, "uuid")
        form = _fields(
            name=name,
            type=type,
            lhs_exchange=lhs_exchange,
            lhs_tradingsymbol=lhs_tradingsymbol,
            lhs_attribute=lhs_attribute,
            operator=operator,
            rhs_type=rhs_type,
            rhs_constant=rhs_constant,
            rhs_exchange=rhs_exchange,
            rhs_tradingsymbol=rhs_tradingsymbol,
            rhs_attribute=rhs_attribute,
            basket=_json_or_none(basket),
            status=status,
        )
        return await self._request("PUT", f"/alerts/{uuid}", Alert.from_kite, data=form)

    async def delete_alert(self, *uuids: str) -> None:
        """Delete one or more alerts (one request). See the section note on failures."""
        if not uuids:
            raise ValueError("at least one alert uuid is needed")
        await self._request("DELETE", "/alerts", _raw, params=[("uuid", u) for u in uuids])

    async def get_alert_history(self, uuid: str) -> list[AlertHistory]:
        """When an alert fired, with the quotes then. Cancellation: abandoned."""
        uuid = _segment_id(uuid, "uuid")
        return await self._request("GET", f"/alerts/{uuid}/history", AlertHistory.from_kite_list)

    # -- neutral operations: AbstractBroker's, through this mapping --------------------------
    _neutral: ClassVar[_Mapping | None] = (
        _trading  # kite/_trading.py: the neutral enums and records <-> Kite's
    )


def _joined(parts: Iterable[list[Candle]]) -> list[Candle]:
    """Consecutive chunks' candles as one list; a candle repeated at a chunk boundary (Kite
    selects day candles by date, so a boundary inside a day returns that day twice) once."""
    out: list[Candle] = []
    for part in parts:
        if out:
            last = out[-1].date
            part = [candle for candle in part if candle.date > last]
        out.extend(part)
    return out


def _same(actual: Any, wanted: Any) -> bool:
    """Whether an order field shows a requested value (numbers compared as numbers)."""
    if isinstance(actual, int | float) and not isinstance(wanted, str):
        return float(actual) == float(wanted)
    return str(actual) == str(wanted)


def _gtt_form(
    trigger_type: str,
    tradingsymbol: str,
    exchange: str,
    trigger_values: Sequence[float],
    last_price: float,
    orders: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """A GTT's form fields (condition and orders as JSON); ``ValueError`` when malformed."""
    legs = {"single": 1, "two-leg": 2}.get(str(trigger_type))
    if legs is None:
        raise ValueError("trigger_type must be 'single' or 'two-leg'")
    if len(trigger_values) != legs or len(orders) != legs:
        raise ValueError(f"a {trigger_type} GTT needs {legs} trigger value(s) and order(s)")
    required = ("transaction_type", "quantity", "order_type", "product", "price")
    exchange = _choice(Exchange, exchange, "exchange")
    legs_out = []
    for order in orders:
        missing = [name for name in required if name not in order]
        if missing:
            raise ValueError(f"GTT order without {', '.join(missing)}")
        legs_out.append(
            {
                "exchange": exchange,
                "tradingsymbol": tradingsymbol,
                "transaction_type": _choice(
                    TransactionType, order["transaction_type"], "transaction_type"
                ),
                "quantity": int(order["quantity"]),
                "order_type": _choice(OrderType, order["order_type"], "order_type"),
                "product": _choice(Product, order["product"], "product"),
                "price": float(order["price"]),
            }
        )
    condition = {
        "exchange": exchange,
        "tradingsymbol": tradingsymbol,
        "trigger_values": [float(value) for value in trigger_values],
        "last_price": float(last_price),
    }
    return {
        "type": str(trigger_type),
        "condition": jsonlib.dumps(condition),
        "orders": jsonlib.dumps(legs_out),
    }
