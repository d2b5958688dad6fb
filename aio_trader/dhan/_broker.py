"""``Dhan``: the DhanHQ API v2 REST client (every v2 endpoint), on anyio.

``Dhan`` stands on the broker-neutral REST pipeline (:class:`aio_trader._rest.RestBroker`:
lifecycle, limiters per endpoint group, secrets, the session-expiry hook, never sending an
order twice) and keeps only Dhan's endpoints and tables. Every endpoint is a few lines
saying *what* it sends and which record it returns; all go through
``RestBroker._request``, which picks the rate-limit group (``/marketfeed/*`` quote,
``/charts/*`` and ``/optionchain*`` data, order writes order, the rest other), sends it
through :class:`aio_trader.http.AsyncRequest` (Dhan's ``DH-9xx`` mapping:
:mod:`aio_trader.dhan._errors`), calls the session-expiry hook on ``DH-901`` and builds
the record (:mod:`aio_trader.dhan._models`).

Names are Pythonic (``orders``, ``fund_limits``, ``ltp``) with the parameter names of
Dhan's official SDK (``security_id``, ``exchange_segment``, ``transaction_type``,
``quantity``, ``order_type``, ``product_type``, ``price``, ``trigger_price``,
``validity``...); ``docs/dhan.md`` maps each SDK method to ours. Differences from the SDK:
results are typed records, errors are exceptions, write calls return the order id, and
client-side checks raise ``ValueError``/``TypeError`` before any request.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar, overload

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
from aio_trader._rest import int_arg as _int_arg
from aio_trader._rest import segment_id as _segment_id
from aio_trader._rest import str_arg as _str_arg
from aio_trader._time import IST
from aio_trader.backoff import Backoff
from aio_trader.dhan import _trading
from aio_trader.dhan._errors import dhan_error_from_response
from aio_trader.dhan._instruments import neutral_instruments
from aio_trader.dhan._limits import rate_limits
from aio_trader.dhan._models import (
    Candle,
    ConditionalTrigger,
    ConsentResponse,
    EdisForm,
    EdisStatus,
    ExitAllResponse,
    ForeverOrder,
    FundLimits,
    Holding,
    Instrument,
    IpInfo,
    IpResponse,
    KillSwitch,
    LedgerEntry,
    LtpQuote,
    MarginCalculation,
    MultiMargin,
    OhlcQuote,
    OptionChain,
    Order,
    OrderResponse,
    PnlExit,
    Position,
    Profile,
    Quote,
    Record,
    SuperOrder,
    TokenInfo,
    Trade,
    TriggerResponse,
    parse_candles,
    parse_instruments,
    parse_quotes,
)
from aio_trader.dhan._session import (
    DHAN_AUTH_ROOT,
    DHAN_ROOT,
    SCRIP_MASTER_ROOT,
    DhanSession,
    TokenStore,
    consent_login_url,
    totp_now,
)
from aio_trader.dhan.constants import (
    MAX_MODIFICATIONS,
    QUOTE_MAX_INSTRUMENTS,
    AmoTime,
    DhanEndpointGroup,
    ExchangeSegment,
    InstrumentType,
    KillSwitchStatus,
    LegName,
    OrderStatus,
    OrderType,
    ProductType,
    TransactionType,
    Validity,
)
from aio_trader.dhan.ticks import OrderUpdate
from aio_trader.errors import (
    AioTraderError,
    InvalidInput,
    OrderRejected,
    OutcomeUnknownError,
    SessionExpired,
)
from aio_trader.http import AsyncRequest
from aio_trader.ratelimit import Rate
from aio_trader.utils import as_completed

if TYPE_CHECKING:
    from aio_trader.abc import _Mapping
    from aio_trader.dhan._feed import DhanFeed

__all__ = ["DateLike", "Dhan", "InstrumentsArg", "intraday_chunks"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R", bound=Record)
#: A date argument: a datetime (naive = IST wall clock), a date, or ``YYYY-MM-DD[ HH:MM:SS]``.
DateLike = datetime.datetime | datetime.date | str
#: Instruments of a quote call: ``{segment: [ids]}``, ``[(segment, id), ...]``, symbols
#: (``"NSE:INFY"``, one or a collection, mixed with pairs).
InstrumentsArg = Mapping[Any, Iterable[Any]] | Iterable[tuple[Any, Any] | str] | str
#: Pairs only (the result is keyed by pairs), symbols only (keyed by symbols).
_Pairs = Mapping[Any, Iterable[Any]] | Iterable[tuple[Any, Any]]
_Symbols = str | Iterable[str]

#: A correlation id: letters, digits, ``_``, ``-`` and spaces, 1 to 30 characters.
_CORRELATION: Final = re.compile(r"[A-Za-z0-9_\- ]{1,30}")
_PROTECTED: Final = frozenset({OrderType.MARKET.value, OrderType.STOP_LOSS_MARKET.value})
_NO_PROTECTION: Final = (
    "{what} needs market_protection (Dhan turns API market orders into protected LIMIT "
    "orders since March 2026): pass market_protection=-1 (Dhan's automatic protection) or a "
    "percentage above 0 up to 100 (sent as a LIMIT / STOP_LOSS order that far from the "
    "reference price), give the client a default with Dhan(..., market_protection=-1), or "
    "use a LIMIT order"
)
#: The least margin on order windows (a refused order is costly).
_ORDER_MARGIN: Final = 0.1
#: Most days of one intraday candle request.
INTRADAY_MAX_DAYS: Final = 90
_INTERVALS: Final = (1, 5, 15, 25, 60)
_DATE_FORMATS: Final = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_ORDER_WRITES: Final = ("/orders", "/super/orders", "/forever/orders")


# -- small pure helpers ---------------------------------------------------------------------


def _raw(data: Any) -> Any:
    return data


def _origin(root: str) -> str:
    """``scheme://host[:port]`` of a URL (a sandbox serves Dhan's hosts there)."""
    scheme, _, rest = root.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _same(actual: Any, wanted: Any) -> bool:
    """Whether an order field shows a requested value (numbers compared as numbers)."""
    if isinstance(actual, int | float) and not isinstance(wanted, str):
        return float(actual) == float(wanted)
    return str(actual) == str(wanted)


def _order_id(data: Any) -> str:
    response = OrderResponse.from_dhan(data)
    if not response.order_id:
        raise OrderRejected(
            "Dhan answered without an orderId", status_code=200, code="malformed", broker="dhan"
        )
    return response.order_id


def _segment(value: Any) -> str:
    return _choice(ExchangeSegment, value, "exchange_segment")


def _security(value: Any, name: str = "security_id") -> str:
    """A security id as Dhan's REST takes it: a str of digits (an int is accepted)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"{name} must be a str or int, got {type(value).__name__}")
    text = str(value)
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{name} must be digits, got {text!r}")
    return text


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _positive_int(value: Any, name: str) -> int:
    if _int_arg(value, name) <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return int(value)


def _protection_value(value: Any) -> float:
    """-1 (Dhan's automatic protection) or a percentage above 0 up to 100."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"market_protection must be a number (-1, or above 0 up to 100), "
            f"got {type(value).__name__}"
        )
    if value == -1 or 0 < value <= 100:
        return float(value)
    raise ValueError(
        f"market_protection must be -1 (automatic) or above 0 up to 100, got {value!r}"
    )


def _correlation(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"correlation_id must be a str, got {type(value).__name__}")
    if not _CORRELATION.fullmatch(value):
        raise ValueError("correlation_id must be 1 to 30 letters, digits, '_', '-' or spaces")
    return value


#: The statuses an order does not leave (:meth:`Dhan.wait_for_order`).
ORDER_FINAL = frozenset({"TRADED", "CANCELLED", "REJECTED", "EXPIRED"})


def _status(order: Order) -> str | None:
    return order.order_status


def _order_key(order: Order) -> str | None:
    return order.order_id


def _net_quantity(position: Position) -> int | None:
    return position.net_qty


def _position_filter(
    value: Callable[[Position], bool] | str | int | None,
) -> Callable[[Position], bool]:
    """``square_off``'s filter: a predicate, a ``security_id`` or None (all)."""
    if value is None:
        return lambda position: True
    if isinstance(value, str | int) and not isinstance(value, bool):
        security_id = str(value)
        return lambda position: position.security_id == security_id
    if callable(value):
        return value
    raise TypeError(f"filter must be a callable, a security_id or None, not {value!r}")


def _order_filter(
    value: Callable[[Order], bool] | str | int | None,
) -> Callable[[Order], bool]:
    """``cancel_all``'s filter: a predicate, a ``security_id`` or None (all)."""
    if value is None:
        return lambda order: True
    if isinstance(value, str | int) and not isinstance(value, bool):
        security_id = str(value)
        return lambda order: order.security_id == security_id
    if callable(value):
        return value
    raise TypeError(f"filter must be a callable, a security_id or None, not {value!r}")


def _tag(correlation_id: str | None, tag: str | None) -> str | None:
    """``correlation_id``, or the SDK's name for it, ``tag`` (both: they must agree)."""
    if correlation_id is not None and tag is not None and correlation_id != tag:
        raise ValueError("give correlation_id or tag (the SDK's name for it), not both")
    return correlation_id if correlation_id is not None else tag


def _as_datetime(value: DateLike, name: str) -> datetime.datetime:
    """A date argument as an aware IST datetime; ``ValueError``/``TypeError`` otherwise."""
    if isinstance(value, datetime.datetime):
        return value.astimezone(IST) if value.tzinfo else value.replace(tzinfo=IST)
    if isinstance(value, datetime.date):
        return datetime.datetime.combine(value, datetime.time(), IST)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a date, a datetime or a str, got {type(value).__name__}")
    for pattern in _DATE_FORMATS:
        try:
            return datetime.datetime.strptime(value.strip(), pattern).replace(tzinfo=IST)
        except ValueError:
            continue
    raise ValueError(f"unreadable {name} {value!r}: use YYYY-MM-DD[ HH:MM:SS]")


def _wire_date(value: DateLike, name: str, *, with_time: bool) -> str:
    """Dhan's form of a date argument: ``YYYY-MM-DD`` (a date, or ``with_time=False``) or
    ``YYYY-MM-DD HH:MM:SS`` (IST)."""
    moment = _as_datetime(value, name)
    is_date = isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)
    if is_date or (isinstance(value, str) and len(value.strip()) == 10) or not with_time:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _dated(*values: DateLike) -> bool:
    """True when every value is a date (not a datetime) or a ``YYYY-MM-DD`` string: Dhan
    then counts whole days, the last one included."""
    return all(
        (isinstance(v, datetime.date) and not isinstance(v, datetime.datetime))
        or (isinstance(v, str) and len(v.strip()) == 10)
        for v in values
    )


def intraday_chunks(
    from_date: DateLike, to_date: DateLike
) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """``[from, to]`` cut into Dhan's intraday requests (at most 90 days each, no overlap).

    Raises ``ValueError`` when ``from`` is after ``to``."""
    start, end = _as_datetime(from_date, "from_date"), _as_datetime(to_date, "to_date")
    if start > end:
        raise ValueError("from_date is after to_date")
    step = datetime.timedelta(days=INTRADAY_MAX_DAYS)
    chunks = []
    while True:
        stop = min(start + step, end)
        chunks.append((start, stop))
        if stop >= end:
            return chunks
        start = stop + datetime.timedelta(seconds=1)


def _instrument_pairs(given: InstrumentsArg) -> list[tuple[str, str] | str]:
    """The instruments asked, in order, without duplicates: pairs normalised to
    ``(segment, security_id str)``, symbols kept as given (checked for their ``EXCHANGE:``
    part: ``UnknownInstrument`` without one). ``TypeError`` / ``ValueError`` for the rest."""
    instruments: Any = given
    asked: list[tuple[str, str] | str] = []
    if isinstance(instruments, Mapping):
        for segment, ids in instruments.items():
            if isinstance(ids, str | int | bytes):
                raise TypeError("a segment maps to a collection of security ids")
            asked.extend((_segment(segment), _security(sid)) for sid in ids)
    else:
        if isinstance(instruments, str):
            instruments = [instruments]
        if isinstance(instruments, bytes):
            raise TypeError("instruments: {segment: [ids]}, [(segment, id), ...] or symbols")
        for item in instruments:
            if isinstance(item, str):
                split_symbol(item)
                asked.append(item)
                continue
            if not isinstance(item, tuple) or len(item) != 2:
                raise TypeError("instruments: {segment: [ids]}, [(segment, id), ...] or symbols")
            asked.append((_segment(item[0]), _security(item[1])))
    asked = list(dict.fromkeys(asked))
    if not asked:
        raise ValueError("at least one instrument is needed")
    return asked


def _group_limits(
    scale: float,
    margin: float,
    explicit: Mapping[DhanEndpointGroup, Sequence[Rate]] | None,
) -> dict[DhanEndpointGroup, tuple[Rate, ...]]:
    if margin < 0:
        raise ValueError(f"rate_limit_margin must be >= 0, got {margin!r}")
    chosen = {**rate_limits(scale), **(explicit or {})}
    order_margin = max(margin, _ORDER_MARGIN)
    return {
        group: paced(chosen[group], order_margin if group is DhanEndpointGroup.ORDER else margin)
        for group in DhanEndpointGroup
    }


def _group(method: str, path: str) -> DhanEndpointGroup:
    """The rate-limit group of a request (the sandbox counts the same way)."""
    if path.startswith("/marketfeed/"):
        return DhanEndpointGroup.QUOTE
    if path.startswith(("/charts/", "/optionchain")):
        return DhanEndpointGroup.DATA
    if method != "GET" and (path.startswith(_ORDER_WRITES) or path == "/positions"):
        return DhanEndpointGroup.ORDER
    return DhanEndpointGroup.OTHER


def _body(**values: Any) -> dict[str, Any]:
    """A JSON body: Dhan's names, without the ``None`` values."""
    return {key: value for key, value in values.items() if value is not None}


# -- the client -----------------------------------------------------------------------------


class Dhan(RestBroker[DhanEndpointGroup]):
    """DhanHQ API v2 REST client: ``async with Dhan(client_id=..., access_token=...) as
    dhan: await dhan.orders()``.

    ``root``: the REST root (``https://api.dhan.co/v2``; a sandbox's ``root_url``);
    ``auth_root``: Dhan's auth host (PIN + TOTP, the consent flow); ``scrip_root``: where
    the scrip-master CSVs live (both default to Dhan's, or, with another ``root``, to that
    server's origin and its ``/api-data``: where the sandbox serves them).
    Credentials: ``access_token``, or ``pin`` with ``totp_secret`` (needs the ``totp``
    extra) or ``totp`` (a code) to get one on entry, or ``token_store`` (a
    :class:`TokenStore`; ``True``: the user's config directory) to reuse one from an
    earlier run (tokens obtained here are stored there); or ``session`` (a
    :class:`DhanSession`, shared with ``DhanFeed(session=...)``: a call refused for an
    expired session is sent once more after the session renewed its token; the
    ``client_id`` comes from the session).

    Rate limits per group (:class:`DhanEndpointGroup`): Dhan's (orders 10/s, 250/min,
    1000/h, 7000/day; data 5/s, 100,000/day; quotes 1/s; the rest 20/s) with counts
    multiplied by ``rate_limit_scale``, or ``rate_limits`` for the groups it names; every
    window ``rate_limit_margin`` seconds longer (default 0.05 s, orders at least 0.1 s:
    room for the jitter between our clock and the server's), calls spaced
    evenly. ``market_protection``: the client's default for MARKET and STOP_LOSS_MARKET
    orders that give none (see :meth:`place_order`). ``reconcile_attempts`` /
    ``reconcile_delay``: lookups by correlation id after an ambiguous placement.
    ``instrument_cache``: where :meth:`instrument_index` keeps the day's instruments
    (``True``: ``$AIO_TRADER_CACHE_DIR``, else the user's cache directory; a path: that
    directory; ``False``: memory only).

    Nothing is opened here. Wrong types raise ``TypeError``, bad values ``ValueError``,
    before any I/O. Secrets never appear in the repr, logs or errors.

    Every call may raise the categories of :mod:`aio_trader.errors` with Dhan's ``code``
    (``SessionExpired`` DH-901, ``RateLimited`` DH-904, ``InvalidInput`` DH-905,
    ``OrderRejected`` DH-906, ``PermissionDenied`` DH-911 (static IP)...),
    ``TransportError`` subclasses after the retries, ``ClientClosedError`` before
    :meth:`open` or once closed. Reads are retried on network errors and 5xx answers;
    "Cancellation: abandoned" on a read means the cancellation propagates at once and
    nothing changed on the server.
    """

    def __init__(
        self,
        client_id: str | None = None,
        access_token: str | None = None,
        *,
        root: str = DHAN_ROOT,
        auth_root: str | None = None,
        scrip_root: str | None = None,
        pin: str | None = None,
        totp: str | None = None,
        totp_secret: str | None = None,
        token_store: TokenStore | bool | None = None,
        session_expiry_hook: SessionExpiryHook | None = None,
        timeout: float = 7.0,
        backoff: Backoff | None = None,
        max_connections: int = 10,
        rate_limit_scale: float = 1.0,
        rate_limit_margin: float = 0.05,
        rate_limits: Mapping[DhanEndpointGroup, Sequence[Rate]] | None = None,
        reconcile_attempts: int = 3,
        reconcile_delay: float = 0.5,
        market_protection: float | None = None,
        instrument_cache: str | os.PathLike[str] | bool = True,
        session: DhanSession | None = None,
    ) -> None:
        # -- session renewal (issue 19 §3): the account comes from the session
        if session is not None:
            if not isinstance(session, DhanSession):
                raise TypeError(f"session must be a DhanSession, got {type(session).__name__}")
            if access_token or pin or totp or totp_secret:
                raise ValueError("give credentials or a session, not both")
            if client_id is not None and client_id != session.client_id:
                raise ValueError("client_id differs from the session's")
            client_id = session.client_id
            if root == DHAN_ROOT and session.root != DHAN_ROOT:
                root = session.root
            auth_root = auth_root or session.auth_root
        for name, value in (
            ("client_id", client_id),
            ("access_token", access_token),
            ("pin", pin),
            ("totp", totp),
            ("totp_secret", totp_secret),
        ):
            _str_arg(value, name)
        _str_arg(root, "root", optional=False)
        _str_arg(auth_root, "auth_root")
        _str_arg(scrip_root, "scrip_root")
        if not client_id:
            raise ValueError("Dhan needs a client_id (your dhanClientId)")
        self._market_protection = (
            None if market_protection is None else _protection_value(market_protection)
        )
        root = root.rstrip("/")
        super().__init__(
            AsyncRequest(
                root,
                headers={
                    "Accept": "application/json",
                    "client-id": client_id,
                    "dhanClientId": client_id,
                },
                timeout=timeout,
                backoff=backoff,
                max_connections=max_connections,
                error_mapper=dhan_error_from_response,
            ),
            _group_limits(rate_limit_scale, rate_limit_margin, rate_limits),
            session_expiry_hook=session_expiry_hook,
            reconcile_attempts=reconcile_attempts,
            reconcile_delay=reconcile_delay,
            session=session,
        )
        self.client_id = client_id
        self.root = root
        origin = _origin(root)
        if auth_root is None:
            auth_root = DHAN_AUTH_ROOT if root == DHAN_ROOT else origin
        if scrip_root is None:
            scrip_root = SCRIP_MASTER_ROOT if root == DHAN_ROOT else f"{origin}/api-data"
        self.auth_root = auth_root.rstrip("/")
        self.scrip_root = scrip_root.rstrip("/")
        self._access_token = access_token
        self._pin = pin
        self._totp = totp
        self._totp_secret = totp_secret
        if token_store is True:
            token_store = TokenStore()
        self._store: TokenStore | None = token_store or None
        #: modifications sent per order id (Dhan allows 25 per order).
        self._modifications: dict[str, int] = {}
        self._remember(access_token, pin, totp, totp_secret)
        self._set_auth()
        self._index_cache = IndexCache(
            "dhan", f"{self.scrip_root}/{_SCRIP_MASTER}", cache_directory(instrument_cache)
        )

    def __repr__(self) -> str:
        return f"Dhan(client_id={self.client_id!r}, root={self.root!r})"

    # -- lifecycle and credentials -------------------------------------------------------

    def _group(self, method: str, path: str) -> DhanEndpointGroup:
        return _group(method, path)

    async def _on_open(self) -> None:
        """On entry: a stored token (``token_store``; checked with :meth:`profile`, and
        dropped if Dhan refuses it), else a token from the PIN and TOTP when given.
        Raises what :meth:`generate_access_token` raises."""
        if self._access_token:
            return
        if self._store is not None:
            stored = await self._store.aload(self.client_id)
            if stored:
                self.set_access_token(stored)
                try:  # a stale token is expected here: not a session expiry for the hook
                    await self._request("GET", "/profile", Profile.from_dhan, hook=False)
                    return
                except SessionExpired:
                    log.info("stored Dhan token refused; dropping it")
                    self._access_token = None
                    self._set_auth()
                    await anyio.to_thread.run_sync(self._store.clear, self.client_id)
        if self._pin and (self._totp or self._totp_secret):
            await self.generate_access_token(self._pin, self._totp)

    def _set_auth(self) -> None:
        self._http.update_headers({"access-token": self._access_token})

    def _use_credential(self, credential: str) -> None:
        """The shared session's token (issue 19 §3)."""
        self.set_access_token(credential)

    async def authorise(self) -> Profile | TokenInfo:
        """Log in with the constructor's credentials, or check the token they give.

        With a token (given or stored): returns :meth:`profile`. Without one: a token from
        the PIN and TOTP (:meth:`generate_access_token`, a ``TokenInfo``). Raises
        ``SessionExpired`` when Dhan refuses them, ``ValueError`` when there is nothing
        to log in with. Cancellation: propagates; the client keeps the token it had."""
        if self._access_token:
            return await self.profile()
        if self._pin and (self._totp or self._totp_secret):
            return await self.generate_access_token(self._pin, self._totp)
        raise ValueError(
            "no access_token: pass one, a token_store holding one, or pin with totp_secret"
        )

    @property
    def access_token(self) -> str | None:
        """The access token in use (a secret: never log it)."""
        return self._access_token

    def set_access_token(self, access_token: str) -> None:
        """Use ``access_token`` for subsequent calls."""
        _str_arg(access_token, "access_token", optional=False)
        self._remember(access_token)
        self._access_token = access_token
        self._set_auth()

    async def _use_token(self, info: TokenInfo) -> TokenInfo:
        if not info.access_token:
            raise SessionExpired(
                "Dhan answered without an accessToken", status_code=200, broker="dhan"
            )
        self.set_access_token(info.access_token)
        if self._store is not None:
            await self._store.asave(self.client_id, info.access_token, info.expiry_time)
        return info

    async def renew_token(self) -> TokenInfo:
        """``GET /RenewToken``: a new token for 24 h more (the old one stops working); the
        client uses (and stores) it. Raises ``SessionExpired`` for an expired token.
        Cancellation: propagates; the client keeps its token unless the answer arrived."""
        self._check_open()
        info = await self._request(
            "GET", "/RenewToken", TokenInfo.from_dhan, idempotent=False, hook=False
        )
        return await self._use_token(info)

    async def generate_access_token(
        self, pin: str | None = None, totp: str | None = None
    ) -> TokenInfo:
        """A token from the account's PIN and a TOTP code (``POST
        auth.dhan.co/app/generateAccessToken``); the client uses (and stores) it.

        ``pin``/``totp`` default to the constructor's; without a ``totp`` the code comes
        from ``totp_secret`` (needs ``pyotp``). Raises ``SessionExpired`` when Dhan
        refuses them, ``ValueError`` when something is missing.
        """
        pin = pin or self._pin
        _str_arg(pin, "pin")
        _str_arg(totp, "totp")
        if not pin:
            raise ValueError("generate_access_token needs the account's pin")
        if totp is None:
            if self._totp_secret:
                totp = totp_now(self._totp_secret)
            elif self._totp:
                totp = self._totp
            else:
                raise ValueError("generate_access_token needs a totp code or totp_secret")
        self._remember(pin, totp)
        query = {"dhanClientId": self.client_id, "pin": pin, "totp": totp}
        info = await self._request(
            "POST",
            f"{self.auth_root}/app/generateAccessToken",
            TokenInfo.from_dhan,
            params=query,
            idempotent=True,
            hook=False,
        )
        return await self._use_token(info)

    async def generate_consent(self, api_key: str, api_secret: str) -> ConsentResponse:
        """Step 1 of the API-key flow: a ``consent_app_id`` (then open
        :meth:`consent_login_url` in a browser)."""
        _str_arg(api_key, "api_key", optional=False)
        _str_arg(api_secret, "api_secret", optional=False)
        self._remember(api_secret)
        self._check_open()
        body = await self._http.request(
            "POST",
            f"{self.auth_root}/app/generate-consent",
            params={"client_id": self.client_id},
            headers={"app_id": api_key, "app_secret": api_secret},
            limiter=self._limiters[DhanEndpointGroup.OTHER],
            idempotent=True,
        )
        return ConsentResponse.from_dhan(body)

    def consent_login_url(self, consent_app_id: str) -> str:
        """Step 2: the page the user opens (Dhan redirects with ``?tokenId=...``)."""
        return consent_login_url(consent_app_id, self.auth_root)

    async def consume_consent(self, token_id: str, api_key: str, api_secret: str) -> TokenInfo:
        """Step 3: the access token for the browser login's ``token_id``; the client uses
        (and stores) it."""
        for name, value in (
            ("token_id", token_id),
            ("api_key", api_key),
            ("api_secret", api_secret),
        ):
            _str_arg(value, name, optional=False)
        self._remember(api_secret, token_id)
        self._check_open()
        body = await self._http.request(
            "GET",
            f"{self.auth_root}/app/consumeApp-consent",
            params={"tokenId": token_id},
            headers={"app_id": api_key, "app_secret": api_secret},
            limiter=self._limiters[DhanEndpointGroup.OTHER],
            idempotent=False,
        )
        return await self._use_token(TokenInfo.from_dhan(body))

    # -- orders -----------------------------------------------------------------------------

    @staticmethod
    def new_correlation_id() -> str:
        """A fresh unique correlation id (19 characters), as :meth:`place_order` makes."""
        return "aio" + secrets.token_hex(8)

    def _protected(self, order_type: str, market_protection: Any, what: str) -> float | None:
        if market_protection is not None:
            return _protection_value(market_protection)
        if order_type in _PROTECTED:
            if self._market_protection is None:
                raise ValueError(_NO_PROTECTION.format(what=f"{order_type} ({what})"))
            return self._market_protection
        return None

    async def _protected_price(
        self,
        order_type: str,
        percent: float,
        segment: str,
        security_id: str,
        side: str,
        trigger_price: float | None,
        tick_size: float,
    ) -> tuple[str, float]:
        """(order type, price) of a MARKET / STOP_LOSS_MARKET order sent with a protection
        percentage: a LIMIT (STOP_LOSS) order ``percent`` beyond the reference price (the
        last price; the trigger for stop orders), on the tick grid."""
        if order_type == OrderType.STOP_LOSS_MARKET.value:
            if not trigger_price:
                raise ValueError("a STOP_LOSS_MARKET order needs a trigger_price")
            reference = trigger_price
            new_type = OrderType.STOP_LOSS.value
        else:
            quotes = await self.ltp({segment: [security_id]})
            found = quotes.get((segment, security_id))
            if found is None or not found.last_price:
                raise InvalidInput(
                    f"no last price for {segment} {security_id}: cannot protect a MARKET order",
                    code="DH-905",
                    broker="dhan",
                )
            reference = found.last_price
            new_type = OrderType.LIMIT.value
        factor = 1 + percent / 100 if side == "BUY" else 1 - percent / 100
        ticks = reference * factor / tick_size
        rounded = math.floor(ticks) if side == "BUY" else math.ceil(ticks)
        return new_type, round(max(rounded, 1) * tick_size, 6)

    async def _order_body(
        self,
        *,
        security_id: Any,
        exchange_segment: Any,
        transaction_type: Any,
        quantity: Any,
        order_type: Any,
        product_type: Any,
        price: Any,
        trigger_price: Any,
        disclosed_quantity: Any,
        validity: Any,
        after_market_order: bool,
        amo_time: Any,
        bo_profit_value: Any,
        bo_stop_loss_value: Any,
        correlation_id: str,
        market_protection: Any,
        tick_size: float,
        what: str,
    ) -> dict[str, Any]:
        """A new order's JSON body, checked before any request (types, Dhan's enums,
        the correlation id, market protection)."""
        segment = _segment(exchange_segment)
        security = _security(security_id)
        side = _choice(TransactionType, transaction_type, "transaction_type")
        kind = _choice(OrderType, order_type, "order_type")
        product = _choice(ProductType, product_type, "product_type")
        validity = _choice(Validity, validity, "validity")
        quantity = _positive_int(quantity, "quantity")
        price = 0.0 if price is None else _number(price, "price")
        trigger = 0.0 if trigger_price is None else _number(trigger_price, "trigger_price")
        if kind in (OrderType.LIMIT.value, OrderType.STOP_LOSS.value) and price <= 0:
            raise ValueError(f"a {kind} order needs a price above 0")
        if kind in (OrderType.STOP_LOSS.value, OrderType.STOP_LOSS_MARKET.value) and trigger <= 0:
            raise ValueError(f"a {kind} order needs a trigger_price above 0")
        _number(tick_size, "tick_size")
        if tick_size <= 0:
            raise ValueError("tick_size must be above 0")
        disclosed = (
            0 if disclosed_quantity is None else _int_arg(disclosed_quantity, "disclosed_quantity")
        )
        protection = self._protected(kind, market_protection, what)
        if protection is not None and protection != -1 and kind in _PROTECTED:
            kind, price = await self._protected_price(
                kind, protection, segment, security, side, trigger, tick_size
            )
        body = _body(
            dhanClientId=self.client_id,
            correlationId=correlation_id,
            transactionType=side,
            exchangeSegment=segment,
            productType=product,
            orderType=kind,
            validity=validity,
            securityId=security,
            quantity=quantity,
            disclosedQuantity=disclosed,
            price=price,
            triggerPrice=trigger,
            afterMarketOrder=bool(after_market_order),
            amoTime=_choice(AmoTime, amo_time, "amo_time") if after_market_order else None,
            boProfitValue=None
            if bo_profit_value is None
            else _number(bo_profit_value, "bo_profit_value"),
            boStopLossValue=None
            if bo_stop_loss_value is None
            else _number(bo_stop_loss_value, "bo_stop_loss_value"),
        )
        return body

    async def place_order(
        self,
        security_id: str | int,
        exchange_segment: str,
        transaction_type: str,
        quantity: int,
        order_type: str,
        product_type: str,
        price: float | None = None,
        trigger_price: float | None = None,
        disclosed_quantity: int | None = None,
        after_market_order: bool = False,
        validity: str = "DAY",
        amo_time: str = "OPEN",
        bo_profit_value: float | None = None,
        bo_stop_loss_value: float | None = None,
        correlation_id: str | None = None,
        tag: str | None = None,
        market_protection: float | None = None,
        tick_size: float = 0.05,
    ) -> str:
        """Place an order; returns its id (``orderId``).

        **Never placed twice.** The order carries a ``correlation_id`` (Dhan's
        ``correlationId``): a fresh unique one (:meth:`new_correlation_id`) unless you
        give yours (1 to 30 letters, digits, ``_``, ``-``, spaces; ``tag``, the SDK's name,
        works too). The request is sent
        again only when it surely never reached Dhan. After an ambiguous failure (a
        timeout or drop after sending, a 5xx) the order is looked up with
        ``GET /orders/external/{correlationId}`` (``reconcile_attempts`` times,
        ``reconcile_delay`` apart): found, its id is returned; else
        ``OrderOutcomeUnknown`` (``.tag`` is the correlation id) is raised.

        **Market protection**, checked before any request: a MARKET or STOP_LOSS_MARKET
        order needs ``market_protection`` (or the client's default): ``-1`` sends it as
        is and Dhan applies its own protection (since March 2026 Dhan turns API market
        orders into protected LIMIT orders); a percentage above 0 up to 100 sends a
        LIMIT (STOP_LOSS) order that far beyond the last price (the trigger price),
        rounded inwards to ``tick_size`` (one ``ltp`` call first for MARKET orders).
        Without one: ``ValueError``, nothing sent.

        Raises ``InvalidInput`` (DH-905) / ``OrderRejected`` (DH-906) when Dhan refuses
        the order, ``PermissionDenied`` (DH-911) from an address that is not your
        static IP, ``RateLimited`` on a 429. Cancellation: propagates at once (the send is
        not shielded); if the request was in flight the order may or may not exist. The
        correlation id settles it: make it before the call (:meth:`new_correlation_id`),
        pass it, and after the cancellation :meth:`find_order` tells whether the order
        was placed.
        """
        correlation = self._correlation_of(correlation_id, tag)
        body = await self._order_body(
            security_id=security_id,
            exchange_segment=exchange_segment,
            transaction_type=transaction_type,
            quantity=quantity,
            order_type=order_type,
            product_type=product_type,
            price=price,
            trigger_price=trigger_price,
            disclosed_quantity=disclosed_quantity,
            validity=validity,
            after_market_order=after_market_order,
            amo_time=amo_time,
            bo_profit_value=bo_profit_value,
            bo_stop_loss_value=bo_stop_loss_value,
            correlation_id=correlation,
            market_protection=market_protection,
            tick_size=tick_size,
            what="a new order",
        )
        return await self._place_one("/orders", body, correlation)

    async def place_slice_order(
        self,
        security_id: str | int,
        exchange_segment: str,
        transaction_type: str,
        quantity: int,
        order_type: str,
        product_type: str,
        price: float | None = None,
        trigger_price: float | None = None,
        disclosed_quantity: int | None = None,
        after_market_order: bool = False,
        validity: str = "DAY",
        amo_time: str = "OPEN",
        correlation_id: str | None = None,
        tag: str | None = None,
        market_protection: float | None = None,
        tick_size: float = 0.05,
    ) -> list[str]:
        """Place an order Dhan slices at the exchange's freeze quantity
        (``POST /orders/slicing``); returns the ids of the slices. Same checks and
        never-twice rule as :meth:`place_order` (every slice carries the correlation id;
        after an ambiguous failure the order book is searched for it)."""
        correlation = self._correlation_of(correlation_id, tag)
        body = await self._order_body(
            security_id=security_id,
            exchange_segment=exchange_segment,
            transaction_type=transaction_type,
            quantity=quantity,
            order_type=order_type,
            product_type=product_type,
            price=price,
            trigger_price=trigger_price,
            disclosed_quantity=disclosed_quantity,
            validity=validity,
            after_market_order=after_market_order,
            amo_time=amo_time,
            bo_profit_value=None,
            bo_stop_loss_value=None,
            correlation_id=correlation,
            market_protection=market_protection,
            tick_size=tick_size,
            what="a sliced order",
        )

        async def send() -> Any:
            return await self._request("POST", "/orders/slicing", _raw, json=body)

        async def find(tag: str) -> list[Order]:
            return [o for o in await self.orders() if o.correlation_id == tag and o.order_id]

        found = await self._place_once(send, correlation, find, several=True)
        if isinstance(found, list) and found and isinstance(found[0], Order):
            return [str(order.order_id) for order in found]
        answers = found if isinstance(found, list) else [found]
        return [_order_id(answer) for answer in answers]

    def _correlation_of(self, correlation_id: str | None, tag: str | None) -> str:
        """A new order's correlation id: the one given (or ``tag``, the SDK's name),
        checked; a new one when neither is given."""
        given = _tag(correlation_id, tag)
        return self.new_correlation_id() if given is None else _correlation(given)

    async def _place_one(self, path: str, body: dict[str, Any], correlation: str) -> str:
        """POST ``body`` to ``path`` once (:meth:`_place_once`, settled by the correlation
        id after an ambiguous failure); the one order's id."""

        async def send() -> Any:
            return await self._request("POST", path, _raw, json=body)

        found = await self._place_once(send, correlation, self._find_correlated)
        if isinstance(found, list):
            return str(found[0].order_id)
        return _order_id(found)

    async def _find_correlated(self, correlation_id: str) -> list[Order]:
        """The order carrying ``correlation_id`` (``GET /orders/external/{id}``), or []."""
        try:
            order = await self.order_by_correlation_id(correlation_id)
        except (InvalidInput, OrderRejected):  # Dhan's "no such order"
            return []
        return [order] if order.order_id else []

    async def modify_order(
        self,
        order_id: str,
        order_type: str,
        leg_name: str | None = None,
        quantity: int | None = None,
        price: float | None = None,
        trigger_price: float | None = None,
        disclosed_quantity: int | None = None,
        validity: str = "DAY",
        market_protection: float | None = None,
        tick_size: float = 0.05,
    ) -> str:
        """Modify a pending order (``PUT /orders/{orderId}``); returns its id.

        Checked before any request: Dhan allows 25 modifications per order, and this
        client counts the ones it sent: a 26th raises ``ValueError`` (nothing sent).
        A change to MARKET / STOP_LOSS_MARKET needs ``market_protection`` as in
        :meth:`place_order`. Never sent twice: after an ambiguous failure the order is
        read, and its id returned if it shows the change, else ``OutcomeUnknownError``.
        Cancellation: the modification may or may not be applied.
        """
        order_id = _segment_id(order_id, "order_id")
        done = self._modifications.get(order_id, 0)
        if done >= MAX_MODIFICATIONS:
            raise ValueError(
                f"order {order_id} was modified {done} times: Dhan allows {MAX_MODIFICATIONS}"
            )
        kind = _choice(OrderType, order_type, "order_type")
        protection = self._protected(kind, market_protection, "a modification")
        body = _body(
            dhanClientId=self.client_id,
            orderId=order_id,
            orderType=kind,
            legName=None if leg_name is None else _choice(LegName, leg_name, "leg_name"),
            quantity=None if quantity is None else _positive_int(quantity, "quantity"),
            price=None if price is None else _number(price, "price"),
            disclosedQuantity=None
            if disclosed_quantity is None
            else _int_arg(disclosed_quantity, "disclosed_quantity"),
            triggerPrice=None if trigger_price is None else _number(trigger_price, "trigger_price"),
            validity=_choice(Validity, validity, "validity"),
        )
        if protection is not None and protection != -1 and kind in _PROTECTED:
            current = await self.order(order_id)
            kind, new_price = await self._protected_price(
                kind,
                protection,
                str(current.exchange_segment),
                str(current.security_id),
                str(current.transaction_type),
                body.get("triggerPrice") or current.trigger_price,
                tick_size,
            )
            body.update(orderType=kind, price=new_price)
        self._modifications[order_id] = done + 1
        try:
            return _order_id(await self._request("PUT", f"/orders/{order_id}", _raw, json=body))
        except OutcomeUnknownError as error:
            raise_refusal(error)
            latest = await self._settle(order_id, error)
            wanted = {
                "quantity": body.get("quantity"),
                "price": body.get("price"),
                "trigger_price": body.get("triggerPrice"),
                "order_type": body.get("orderType"),
            }
            if all(
                value is None or _same(getattr(latest, name), value)
                for name, value in wanted.items()
            ):
                return order_id
            raise OutcomeUnknownError(
                f"modification of order {order_id} may or may not apply: the order does not show it"
            ) from error

    async def cancel_order(self, order_id: str) -> str:
        """Cancel a pending order (``DELETE /orders/{orderId}``); returns its id.

        Never sent twice once it may have reached Dhan. After an ambiguous failure the
        order is read: ``CANCELLED`` returns its id, anything else raises
        ``OutcomeUnknownError``. Cancellation: propagates; if in flight, the order may or
        may not be cancelled."""
        order_id = _segment_id(order_id, "order_id")
        try:
            return _order_id(await self._request("DELETE", f"/orders/{order_id}", _raw))
        except OutcomeUnknownError as error:
            raise_refusal(error)
            latest = await self._settle(order_id, error)
            if latest.order_status == OrderStatus.CANCELLED.value:
                return order_id
            raise OutcomeUnknownError(
                f"cancellation of order {order_id} may or may not apply: it is "
                f"{latest.order_status}"
            ) from error

    async def _settle(self, order_id: str, error: OutcomeUnknownError) -> Order:
        """The order's state after an ambiguous change, or ``OutcomeUnknownError``."""
        try:
            return await self.order(order_id)
        except AioTraderError as lookup:
            raise OutcomeUnknownError(
                f"order {order_id}: the change may or may not apply; the lookup failed "
                f"({type(lookup).__name__})"
            ) from error

    async def orders(self) -> list[Order]:
        """Today's order book (``GET /orders``). Cancellation: abandoned."""
        return await self._request("GET", "/orders", Order.from_dhan_list)

    async def order(self, order_id: str) -> Order:
        """One order (``GET /orders/{orderId}``). Cancellation: abandoned."""
        order_id = _segment_id(order_id, "order_id")
        return await self._request("GET", f"/orders/{order_id}", _one(Order))

    async def order_by_correlation_id(self, correlation_id: str) -> Order:
        """The order placed with ``correlation_id`` (``GET /orders/external/{id}``)."""
        correlation = _correlation(correlation_id)
        return await self._request("GET", f"/orders/external/{correlation}", _one(Order))

    # -- the order's whole life -------------------------------------------------------------

    async def find_order(self, tag: str) -> list[Order]:
        """The orders placed today with the correlation id ``tag`` (latest state each);
        an empty list when there is none (a sliced order gives several).

        This settles a :meth:`place_order` interrupted by a cancellation (Ctrl-C): give
        it a correlation id made up front (:meth:`new_correlation_id`) and look it up
        afterwards. ``ValueError``/``TypeError`` for a malformed id, before any request.
        Cancellation: abandoned, nothing changes.
        """
        tag = _correlation(tag)
        return [o for o in await self.orders() if o.correlation_id == tag and o.order_id]

    async def wait_for_order(
        self,
        order_id: str,
        feed: DhanFeed | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline the issue asks for)
    ) -> Order:
        """The order once its status is final (``TRADED``, ``CANCELLED``, ``REJECTED`` or
        ``EXPIRED``). Without ``feed``: by reading it again and again, paced by the
        client's rate limiter (each read counts against it). With an open
        :class:`DhanFeed`: one read, then the feed's items until the order's final
        :class:`OrderUpdate`, then one more read for the record. The feed's items read
        meanwhile are consumed here: give a feed no other loop reads (if it ends first,
        the wait goes on by reading).

        ``timeout`` in seconds (``None``: wait as long as it takes) raises
        ``TimeoutError`` when it runs out; never returns ``None``. ``ValueError`` for a
        malformed id or a negative timeout, before any request. Cancellation:
        propagates, nothing changes (only reads are sent).
        """
        order_id = _segment_id(order_id, "order_id")

        def final_update(item: object) -> bool:
            return (
                isinstance(item, OrderUpdate)
                and item.order_id == order_id
                and item.status in ORDER_FINAL
            )

        return await wait_until_final(
            lambda: self.order(order_id), _status, ORDER_FINAL, timeout, feed, final_update
        )

    async def cancel_all(
        self, filter: Callable[[Order], bool] | str | int | None = None
    ) -> list[Order]:
        """Cancel every open order; returns those cancelled (their state before).

        ``filter``: a predicate on :class:`Order`, or an instrument's ``security_id``;
        ``None`` cancels all. An order that finished meanwhile (Dhan refuses, the order
        now shows a final status) is skipped, not an error. Cancellation: propagates;
        orders before it are cancelled, the one in flight may or may not be.
        """
        chosen = _order_filter(filter)
        candidates = [o for o in await self.orders() if chosen(o)]

        async def cancel(order: Order) -> object:
            return await self.cancel_order(str(order.order_id))

        return await cancel_open(candidates, _order_key, _status, ORDER_FINAL, cancel, self.order)

    async def square_off(
        self,
        filter: Callable[[Position], bool] | str | int | None = None,
        market_protection: float | None = None,
    ) -> list[str]:
        """Exit the open positions: a MARKET order the other way for each non-zero
        ``net_qty`` (same security, segment and product); returns the order ids.

        ``filter``: a predicate on :class:`Position`, or a ``security_id``; ``None``
        exits all. ``market_protection``: as :meth:`place_order`; ``None`` uses the
        client's default, else -1 (automatic). Bad arguments raise ``ValueError`` before
        any request. Cancellation: propagates; the exits before it are placed, the one
        in flight may or may not be (each carries a fresh correlation id, see
        :meth:`find_order`; :meth:`positions` shows what is left).
        """
        chosen = _position_filter(filter)
        if market_protection is not None:
            market_protection = _protection_value(market_protection)
        elif self._market_protection is None:
            market_protection = -1
        positions = [p for p in await self.positions() if chosen(p)]

        async def place_exit(position: Position, side: str, quantity: int) -> str:
            return await self.place_order(
                str(position.security_id),
                str(position.exchange_segment),
                side,
                quantity,
                "MARKET",
                str(position.product_type),
                market_protection=market_protection,
            )

        return await exit_positions(positions, _net_quantity, place_exit)

    # -- super orders -------------------------------------------------------------------------

    async def place_super_order(
        self,
        security_id: str | int,
        exchange_segment: str,
        transaction_type: str,
        quantity: int,
        order_type: str,
        product_type: str,
        price: float,
        target_price: float = 0.0,
        stop_loss_price: float = 0.0,
        trailing_jump: float = 0.0,
        correlation_id: str | None = None,
        tag: str | None = None,
        market_protection: float | None = None,
        tick_size: float = 0.05,
    ) -> str:
        """Place a super order (entry, target and stop-loss legs); returns the entry's id.
        Never placed twice (as :meth:`place_order`, by correlation id)."""
        if (
            _number(target_price, "target_price") <= 0
            and _number(stop_loss_price, "stop_loss_price") <= 0
        ):
            raise ValueError("a super order needs target_price or stop_loss_price above 0")
        correlation = self._correlation_of(correlation_id, tag)
        body = await self._order_body(
            security_id=security_id,
            exchange_segment=exchange_segment,
            transaction_type=transaction_type,
            quantity=quantity,
            order_type=order_type,
            product_type=product_type,
            price=price,
            trigger_price=None,
            disclosed_quantity=None,
            validity="DAY",
            after_market_order=False,
            amo_time=None,
            bo_profit_value=None,
            bo_stop_loss_value=None,
            correlation_id=correlation,
            market_protection=market_protection,
            tick_size=tick_size,
            what="a super order",
        )
        for key in ("triggerPrice", "disclosedQuantity", "afterMarketOrder", "validity"):
            body.pop(key, None)
        body.update(
            targetPrice=float(target_price),
            stopLossPrice=float(stop_loss_price),
            trailingJump=_number(trailing_jump, "trailing_jump"),
        )
        return await self._place_one("/super/orders", body, correlation)

    async def modify_super_order(
        self,
        order_id: str,
        order_type: str,
        leg_name: str,
        quantity: int | None = None,
        price: float | None = None,
        target_price: float | None = None,
        stop_loss_price: float | None = None,
        trailing_jump: float | None = None,
    ) -> str:
        """Modify one leg of a super order; returns its id."""
        order_id = _segment_id(order_id, "order_id")
        body = _body(
            dhanClientId=self.client_id,
            orderId=order_id,
            orderType=_choice(OrderType, order_type, "order_type"),
            legName=_choice(LegName, leg_name, "leg_name"),
            quantity=None if quantity is None else _positive_int(quantity, "quantity"),
            price=None if price is None else _number(price, "price"),
            targetPrice=None if target_price is None else _number(target_price, "target_price"),
            stopLossPrice=None
            if stop_loss_price is None
            else _number(stop_loss_price, "stop_loss_price"),
            trailingJump=None if trailing_jump is None else _number(trailing_jump, "trailing_jump"),
        )
        return _order_id(await self._request("PUT", f"/super/orders/{order_id}", _raw, json=body))

    async def cancel_super_order(self, order_id: str, leg_name: str = "ENTRY_LEG") -> str:
        """Cancel a super order (the entry leg: all of it) or one of its legs."""
        order_id = _segment_id(order_id, "order_id")
        leg = _choice(LegName, leg_name, "leg_name")
        return _order_id(await self._request("DELETE", f"/super/orders/{order_id}/{leg}", _raw))

    async def super_orders(self) -> list[SuperOrder]:
        """Today's super orders with their legs. Cancellation: abandoned."""
        return await self._request("GET", "/super/orders", SuperOrder.from_dhan_list)

    # -- forever orders -----------------------------------------------------------------------

    async def place_forever_order(
        self,
        security_id: str | int,
        exchange_segment: str,
        transaction_type: str,
        product_type: str,
        order_type: str,
        quantity: int,
        price: float,
        trigger_price: float,
        order_flag: str = "SINGLE",
        disclosed_quantity: int = 0,
        validity: str = "DAY",
        price1: float = 0.0,
        trigger_price1: float = 0.0,
        quantity1: int = 0,
        correlation_id: str | None = None,
        tag: str | None = None,
    ) -> str:
        """Place a forever order (``SINGLE``: one trigger; ``OCO``: two); returns its id.
        An ambiguous failure raises ``OutcomeUnknownError`` (check :meth:`forever_orders`)."""
        if order_flag not in ("SINGLE", "OCO"):
            raise ValueError(f"order_flag must be SINGLE or OCO, got {order_flag!r}")
        body = _body(
            dhanClientId=self.client_id,
            correlationId=None
            if correlation_id is None and tag is None
            else _correlation(_tag(correlation_id, tag)),
            orderFlag=order_flag,
            transactionType=_choice(TransactionType, transaction_type, "transaction_type"),
            exchangeSegment=_segment(exchange_segment),
            productType=_choice(ProductType, product_type, "product_type"),
            orderType=_choice(OrderType, order_type, "order_type"),
            validity=_choice(Validity, validity, "validity"),
            securityId=_security(security_id),
            quantity=_positive_int(quantity, "quantity"),
            disclosedQuantity=_int_arg(disclosed_quantity, "disclosed_quantity"),
            price=_number(price, "price"),
            triggerPrice=_number(trigger_price, "trigger_price"),
            price1=_number(price1, "price1"),
            triggerPrice1=_number(trigger_price1, "trigger_price1"),
            quantity1=_int_arg(quantity1, "quantity1"),
        )
        return _order_id(await self._request("POST", "/forever/orders", _raw, json=body))

    async def modify_forever_order(
        self,
        order_id: str,
        order_flag: str,
        order_type: str,
        leg_name: str,
        quantity: int,
        price: float,
        trigger_price: float,
        disclosed_quantity: int = 0,
        validity: str = "DAY",
    ) -> str:
        """Modify a forever order's leg; returns its id."""
        order_id = _segment_id(order_id, "order_id")
        body = _body(
            dhanClientId=self.client_id,
            orderId=order_id,
            orderFlag=order_flag,
            orderType=_choice(OrderType, order_type, "order_type"),
            legName=_choice(LegName, leg_name, "leg_name"),
            quantity=_positive_int(quantity, "quantity"),
            price=_number(price, "price"),
            disclosedQuantity=_int_arg(disclosed_quantity, "disclosed_quantity"),
            triggerPrice=_number(trigger_price, "trigger_price"),
            validity=_choice(Validity, validity, "validity"),
        )
        return _order_id(await self._request("PUT", f"/forever/orders/{order_id}", _raw, json=body))

    async def cancel_forever_order(self, order_id: str) -> str:
        """Cancel a forever order; returns its id."""
        order_id = _segment_id(order_id, "order_id")
        return _order_id(await self._request("DELETE", f"/forever/orders/{order_id}", _raw))

    async def forever_orders(self) -> list[ForeverOrder]:
        """Every forever order (one record per leg). Cancellation: abandoned."""
        return await self._request("GET", "/forever/orders", ForeverOrder.from_dhan_list)

    # -- conditional triggers -------------------------------------------------------------------

    async def place_conditional_trigger(
        self, condition: Mapping[str, Any], orders: Sequence[Mapping[str, Any]]
    ) -> TriggerResponse:
        """Create a conditional trigger: ``condition`` and ``orders`` in Dhan's JSON
        (``securityId``, ``exchangeSegment``, ``comparisonType``...)."""
        body = _trigger_body(self.client_id, condition, orders)
        return await self._request("POST", "/alerts/orders", TriggerResponse.from_dhan, json=body)

    async def modify_conditional_trigger(
        self,
        alert_id: str,
        condition: Mapping[str, Any],
        orders: Sequence[Mapping[str, Any]] | None = None,
    ) -> TriggerResponse:
        """Change a conditional trigger's condition (and orders)."""
        alert_id = _segment_id(alert_id, "alert_id")
        body = _trigger_body(self.client_id, condition, orders, optional_orders=True)
        body["alertId"] = alert_id
        return await self._request(
            "PUT", f"/alerts/orders/{alert_id}", TriggerResponse.from_dhan, json=body
        )

    async def cancel_conditional_trigger(self, alert_id: str) -> TriggerResponse:
        """Delete a conditional trigger."""
        alert_id = _segment_id(alert_id, "alert_id")
        return await self._request(
            "DELETE", f"/alerts/orders/{alert_id}", TriggerResponse.from_dhan
        )

    async def conditional_triggers(self) -> list[ConditionalTrigger]:
        """Every conditional trigger. Cancellation: abandoned."""
        return await self._request("GET", "/alerts/orders", ConditionalTrigger.from_dhan_list)

    async def conditional_trigger(self, alert_id: str) -> ConditionalTrigger:
        """One conditional trigger. Cancellation: abandoned."""
        alert_id = _segment_id(alert_id, "alert_id")
        return await self._request("GET", f"/alerts/orders/{alert_id}", _one(ConditionalTrigger))

    # -- trades and statements ------------------------------------------------------------------

    async def trades(self) -> list[Trade]:
        """Today's trades (``GET /trades``). Cancellation: abandoned."""
        return await self._request("GET", "/trades", Trade.from_dhan_list)

    async def order_trades(self, order_id: str) -> list[Trade]:
        """The trades of one order (``GET /trades/{orderId}``)."""
        order_id = _segment_id(order_id, "order_id")
        return await self._request("GET", f"/trades/{order_id}", _listed(Trade))

    async def trade_history(
        self, from_date: DateLike, to_date: DateLike, page_number: int = 0
    ) -> list[Trade]:
        """Past trades between two dates, one page (``GET /trades/{from}/{to}/{page}``)."""
        start = _wire_date(from_date, "from_date", with_time=False)
        end = _wire_date(to_date, "to_date", with_time=False)
        page = _int_arg(page_number, "page_number")
        if page < 0:
            raise ValueError("page_number must be >= 0")
        return await self._request("GET", f"/trades/{start}/{end}/{page}", _listed(Trade))

    async def ledger(self, from_date: DateLike, to_date: DateLike) -> list[LedgerEntry]:
        """The ledger between two dates (``GET /ledger``)."""
        params = {
            "from-date": _wire_date(from_date, "from_date", with_time=False),
            "to-date": _wire_date(to_date, "to_date", with_time=False),
        }
        return await self._request("GET", "/ledger", _listed(LedgerEntry), params=params)

    # -- portfolio ----------------------------------------------------------------------------

    async def positions(self) -> list[Position]:
        """Open positions (``GET /positions``). Cancellation: abandoned."""
        return await self._request("GET", "/positions", Position.from_dhan_list)

    async def holdings(self) -> list[Holding]:
        """Demat holdings (``GET /holdings``); none: ``[]``. Cancellation: abandoned."""
        try:
            return await self._request("GET", "/holdings", Holding.from_dhan_list)
        except OrderRejected as error:  # Dhan answers DH-906 "no holdings" for none
            if "holding" in error.message.lower():
                return []
            raise

    async def convert_position(
        self,
        from_product_type: str,
        exchange_segment: str,
        position_type: str,
        security_id: str | int,
        convert_qty: int,
        to_product_type: str,
    ) -> None:
        """Move ``convert_qty`` of a position to another product (``POST
        /positions/convert``). An ambiguous failure raises ``OutcomeUnknownError``."""
        if position_type not in ("LONG", "SHORT"):
            raise ValueError(f"position_type must be LONG or SHORT, got {position_type!r}")
        body = _body(
            dhanClientId=self.client_id,
            fromProductType=_choice(ProductType, from_product_type, "from_product_type"),
            exchangeSegment=_segment(exchange_segment),
            positionType=position_type,
            securityId=_security(security_id),
            convertQty=_positive_int(convert_qty, "convert_qty"),
            toProductType=_choice(ProductType, to_product_type, "to_product_type"),
        )
        await self._request("POST", "/positions/convert", _raw, json=body)

    async def exit_positions(self) -> ExitAllResponse:
        """Exit every position and cancel every pending order (``DELETE /positions``)."""
        return await self._request("DELETE", "/positions", ExitAllResponse.from_dhan)

    # -- funds ---------------------------------------------------------------------------------

    async def fund_limits(self) -> FundLimits:
        """Balances and margins in use (``GET /fundlimit``). Cancellation: abandoned."""
        return await self._request("GET", "/fundlimit", FundLimits.from_dhan)

    async def margin_calculator(
        self,
        security_id: str | int,
        exchange_segment: str,
        transaction_type: str,
        quantity: int,
        product_type: str,
        price: float,
        trigger_price: float = 0.0,
    ) -> MarginCalculation:
        """The margin one order needs (``POST /margincalculator``)."""
        body = _body(
            dhanClientId=self.client_id,
            securityId=_security(security_id),
            exchangeSegment=_segment(exchange_segment),
            transactionType=_choice(TransactionType, transaction_type, "transaction_type"),
            quantity=_positive_int(quantity, "quantity"),
            productType=_choice(ProductType, product_type, "product_type"),
            price=_number(price, "price"),
            triggerPrice=_number(trigger_price, "trigger_price"),
        )
        return await self._request(
            "POST", "/margincalculator", MarginCalculation.from_dhan, json=body, idempotent=True
        )

    async def margin_calculator_multi(
        self,
        scrip_list: Sequence[Mapping[str, Any]],
        include_position: bool = False,
        include_order: bool = False,
    ) -> MultiMargin:
        """The margin of several orders together, with hedge benefit (``POST
        /margincalculator/multi``); ``scrip_list`` entries in Dhan's JSON."""
        given: Any = scrip_list
        if isinstance(given, str | bytes) or not given:
            raise ValueError("scrip_list must be a non-empty list of orders")
        body = {
            "dhanClientId": self.client_id,
            "includePosition": bool(include_position),
            "includeOrder": bool(include_order),
            "scripList": [dict(item) for item in scrip_list],
        }
        return await self._request(
            "POST", "/margincalculator/multi", MultiMargin.from_dhan, json=body, idempotent=True
        )

    # -- trader's controls, profile, static IP, EDIS ----------------------------------------

    async def kill_switch(self, action: str) -> KillSwitch:
        """``ACTIVATE`` (no orders for the rest of the day) or ``DEACTIVATE`` the kill switch."""
        status = _choice(KillSwitchStatus, action, "action")
        return await self._request(
            "POST", "/killswitch", KillSwitch.from_dhan, params={"killSwitchStatus": status}
        )

    async def kill_switch_status(self) -> KillSwitch:
        """The kill switch's state. Cancellation: abandoned."""
        return await self._request("GET", "/killswitch", KillSwitch.from_dhan)

    async def set_pnl_exit(
        self,
        profit_value: float,
        loss_value: float,
        product_type: Sequence[str],
        enable_kill_switch: bool = False,
    ) -> PnlExit:
        """Exit every position once the day's P&L reaches ``profit_value`` or
        ``-loss_value`` (``POST /pnlExit``)."""
        if isinstance(product_type, str):
            product_type = [product_type]
        body = {
            "profitValue": _number(profit_value, "profit_value"),
            "lossValue": _number(loss_value, "loss_value"),
            "productType": [_choice(ProductType, p, "product_type") for p in product_type],
            "enableKillSwitch": bool(enable_kill_switch),
        }
        return await self._request("POST", "/pnlExit", PnlExit.from_dhan, json=body)

    async def pnl_exit(self) -> PnlExit:
        """The P&L based exit in force. Cancellation: abandoned."""
        return await self._request("GET", "/pnlExit", PnlExit.from_dhan)

    async def stop_pnl_exit(self) -> PnlExit:
        """Stop the P&L based exit (``DELETE /pnlExit``)."""
        return await self._request("DELETE", "/pnlExit", PnlExit.from_dhan)

    async def profile(self) -> Profile:
        """The account's profile and token validity (``GET /profile``)."""
        return await self._request("GET", "/profile", Profile.from_dhan)

    async def set_ip(self, ip: str, ip_flag: str = "PRIMARY") -> IpResponse:
        """Register a static IP (``PRIMARY`` or ``SECONDARY``) for order requests."""
        return await self._ip("POST", "/ip/setIP", ip, ip_flag)

    async def modify_ip(self, ip: str, ip_flag: str = "PRIMARY") -> IpResponse:
        """Change a registered static IP (Dhan allows it once every 7 days)."""
        return await self._ip("PUT", "/ip/modifyIP", ip, ip_flag)

    async def _ip(self, method: str, path: str, ip: str, ip_flag: str) -> IpResponse:
        import ipaddress

        _str_arg(ip, "ip", optional=False)
        ipaddress.ip_address(ip)  # ValueError for anything else
        if ip_flag not in ("PRIMARY", "SECONDARY"):
            raise ValueError(f"ip_flag must be PRIMARY or SECONDARY, got {ip_flag!r}")
        body = {"dhanClientId": self.client_id, "ip": ip, "ipFlag": ip_flag}
        return await self._request(method, path, IpResponse.from_dhan, json=body)

    async def get_ip(self) -> IpInfo:
        """The registered static IPs. Cancellation: abandoned."""
        return await self._request("GET", "/ip/getIP", IpInfo.from_dhan)

    async def generate_tpin(self) -> None:
        """Ask Dhan to send an EDIS T-PIN to the registered phone (``GET /edis/tpin``)."""
        await self._request("GET", "/edis/tpin", _raw)

    async def edis_form(
        self, isin: str, qty: int, exchange: str, segment: str = "EQ", bulk: bool = False
    ) -> EdisForm:
        """The EDIS authorisation form (HTML) to open in a browser (``POST /edis/form``)."""
        _str_arg(isin, "isin", optional=False)
        body = {
            "isin": isin,
            "qty": _positive_int(qty, "qty"),
            "exchange": exchange,
            "segment": segment,
            "bulk": bool(bulk),
        }
        return await self._request("POST", "/edis/form", EdisForm.from_dhan, json=body)

    async def edis_inquiry(self, isin: str) -> EdisStatus:
        """The EDIS authorisation of one ISIN (``ALL``: every holding)."""
        isin = _segment_id(isin, "isin")
        return await self._request("GET", f"/edis/inquire/{isin}", EdisStatus.from_dhan)

    # -- market quotes -------------------------------------------------------------------------

    async def _quotes(self, path: str, cls: type[R], instruments: InstrumentsArg) -> Quotes[Any, R]:
        asked = _instrument_pairs(instruments)
        pair_of: dict[tuple[str, str] | str, tuple[str, str]] = {}
        if any(isinstance(item, str) for item in asked):
            index = await self.instrument_index()
            for item in asked:
                if isinstance(item, str):
                    key = index.get(item).key
                    assert isinstance(key, tuple)
                    pair_of[item] = key
        for item in asked:
            if not isinstance(item, str):
                pair_of[item] = item
        pairs = list(dict.fromkeys(pair_of.values()))
        got: dict[tuple[str, str], R] = {}
        for start in range(0, len(pairs), QUOTE_MAX_INSTRUMENTS):
            body: dict[str, list[int]] = {}
            for segment, sid in pairs[start : start + QUOTE_MAX_INSTRUMENTS]:
                body.setdefault(segment, []).append(int(sid))
            got.update(
                await self._request(
                    "POST",
                    path,
                    lambda data: parse_quotes(cls, data),
                    json=body,
                    idempotent=True,
                )
            )
        answer = {item: got[pair_of[item]] for item in asked if pair_of[item] in got}
        return answered(answer, asked, "dhan")

    @overload
    async def ltp(self, instruments: _Pairs) -> Quotes[tuple[str, str], LtpQuote]: ...
    @overload
    async def ltp(self, instruments: _Symbols) -> Quotes[str, LtpQuote]: ...
    @overload
    async def ltp(self, instruments: InstrumentsArg) -> Quotes[Any, LtpQuote]: ...
    async def ltp(self, instruments: InstrumentsArg) -> Quotes[Any, LtpQuote]:
        """Last prices keyed like the request: ``{segment: [ids]}`` and ``[(segment, id),
        ...]`` give ``(segment, security_id)`` keys (ids as strs); symbols
        (``"NSE:INFY"``, ``"NFO:NIFTY-Dec2026-FUT"``, one or a list, mixed with pairs) are
        resolved through :meth:`instrument_index` (downloaded first if need be) and keyed
        by the symbol. More than 1000 instruments go in several calls (1 a second: Dhan's
        quote limit), merged.

        Instruments Dhan leaves out of its answer (unknown to it) are named in the
        result's ``missing`` (a :class:`~aio_trader.toolkit.Quotes`, a dict); when none is
        answered the call raises ``UnknownInstrument`` naming them, never returns ``{}``.
        Before any quote request: ``UnknownInstrument`` for a symbol without its exchange
        (before any request at all) or unknown to the index, ``ValueError`` /
        ``TypeError`` for bad instruments. Cancellation: abandoned."""
        return await self._quotes("/marketfeed/ltp", LtpQuote, instruments)

    @overload
    async def ohlc(self, instruments: _Pairs) -> Quotes[tuple[str, str], OhlcQuote]: ...
    @overload
    async def ohlc(self, instruments: _Symbols) -> Quotes[str, OhlcQuote]: ...
    @overload
    async def ohlc(self, instruments: InstrumentsArg) -> Quotes[Any, OhlcQuote]: ...
    async def ohlc(self, instruments: InstrumentsArg) -> Quotes[Any, OhlcQuote]:
        """Last price and the day's OHLC (as :meth:`ltp`)."""
        return await self._quotes("/marketfeed/ohlc", OhlcQuote, instruments)

    @overload
    async def quote(self, instruments: _Pairs) -> Quotes[tuple[str, str], Quote]: ...
    @overload
    async def quote(self, instruments: _Symbols) -> Quotes[str, Quote]: ...
    @overload
    async def quote(self, instruments: InstrumentsArg) -> Quotes[Any, Quote]: ...
    async def quote(self, instruments: InstrumentsArg) -> Quotes[Any, Quote]:
        """Full quotes with 5 levels of depth (as :meth:`ltp`)."""
        return await self._quotes("/marketfeed/quote", Quote, instruments)

    # -- candles --------------------------------------------------------------------------------

    async def daily_candles(
        self,
        security_id: str | int,
        exchange_segment: str,
        instrument_type: str,
        from_date: DateLike,
        to_date: DateLike,
        expiry_code: int = 0,
        oi: bool = False,
    ) -> list[Candle]:
        """Daily candles (``POST /charts/historical``; ``to_date`` not included, as Dhan
        counts). Dates: dates, datetimes (naive = IST) or ``YYYY-MM-DD`` strings.
        Cancellation: abandoned."""
        body = _body(
            securityId=_security(security_id),
            exchangeSegment=_segment(exchange_segment),
            instrument=_choice(InstrumentType, instrument_type, "instrument_type"),
            expiryCode=_int_arg(expiry_code, "expiry_code"),
            oi=bool(oi),
            fromDate=_wire_date(from_date, "from_date", with_time=False),
            toDate=_wire_date(to_date, "to_date", with_time=False),
        )
        return await self._request(
            "POST", "/charts/historical", parse_candles, json=body, idempotent=True
        )

    async def intraday_candles(
        self,
        security_id: str | int,
        exchange_segment: str,
        instrument_type: str,
        from_date: DateLike,
        to_date: DateLike,
        interval: int = 1,
        oi: bool = False,
    ) -> list[Candle]:
        """Minute candles (``POST /charts/intraday``; ``interval`` 1, 5, 15, 25 or 60).
        Ranges longer than Dhan's 90 days are split (:func:`intraday_chunks`) and the
        answers joined in time order. Cancellation: abandoned."""
        if _int_arg(interval, "interval") not in _INTERVALS:
            raise ValueError(f"interval must be one of {_INTERVALS}, got {interval!r}")
        security = _security(security_id)
        segment = _segment(exchange_segment)
        kind = _choice(InstrumentType, instrument_type, "instrument_type")
        dated = _dated(from_date, to_date)
        candles: list[Candle] = []
        for start, stop in intraday_chunks(from_date, to_date):
            body = _body(
                securityId=security,
                exchangeSegment=segment,
                instrument=kind,
                interval=str(interval),
                oi=bool(oi),
                fromDate=start.strftime("%Y-%m-%d" if dated else "%Y-%m-%d %H:%M:%S"),
                toDate=stop.strftime("%Y-%m-%d" if dated else "%Y-%m-%d %H:%M:%S"),
            )
            part = await self._request(
                "POST", "/charts/intraday", parse_candles, json=body, idempotent=True
            )
            last = candles[-1].date if candles else None
            candles.extend(c for c in part if last is None or c.date > last)
        return candles

    async def intraday_bulk(
        self,
        instruments: Iterable[tuple[str, str | int, str]],
        from_date: DateLike,
        to_date: DateLike,
        interval: int = 1,
        *,
        oi: bool = False,
        on_progress: Callable[[int, int], object] | None = None,
        concurrency: int | None = None,
    ) -> dict[tuple[str, str], list[Candle]]:
        """Minute candles of many instruments at Dhan's data limit:
        ``{(segment, security_id): [Candle...]}`` for ``(segment, security_id,
        instrument_type)`` triples. Every (instrument, 90-day chunk) request runs
        concurrently (at most ``concurrency``; default twice the data limit per second,
        at most ``max_connections``), paced by the data limiter: no 429s.
        ``on_progress(done, total)`` after each request. Raises the first failure (the
        others are cancelled). Cancellation: every request in flight is cancelled."""
        triples = list(
            dict.fromkeys(
                (_segment(seg), _security(sid), _choice(InstrumentType, kind, "instrument_type"))
                for seg, sid, kind in instruments
            )
        )
        chunks = intraday_chunks(from_date, to_date)
        total = len(triples) * len(chunks)
        if concurrency is None:
            rates = self._limiters[DhanEndpointGroup.DATA].rates
            per_second = min(rate.count / rate.period for rate in rates)
            concurrency = min(max(4, math.ceil(2 * per_second)), self._http.max_connections)
        dated = _dated(from_date, to_date)
        jobs = {
            (seg, sid, index): self.intraday_candles(
                sid,
                seg,
                kind,
                start.date() if dated else start,
                stop.date() if dated else stop,
                interval,
                oi,
            )
            for seg, sid, kind in triples
            for index, (start, stop) in enumerate(chunks)
        }
        parts: dict[tuple[str, str, int], list[Candle]] = {}
        async with as_completed(jobs, limit=concurrency) as finished:
            async for key, candles in finished:
                parts[key] = candles
                if on_progress is not None:
                    await maybe_await(on_progress(len(parts), total))
        out: dict[tuple[str, str], list[Candle]] = {}
        for seg, sid, _ in triples:
            joined: list[Candle] = []
            for index in range(len(chunks)):
                last = joined[-1].date if joined else None
                joined.extend(c for c in parts[seg, sid, index] if last is None or c.date > last)
            out[(seg, sid)] = joined
        return out

    # -- option chain ------------------------------------------------------------------------

    async def option_chain(
        self, under_security_id: str | int, under_exchange_segment: str, expiry: DateLike
    ) -> OptionChain:
        """The option chain of an underlying for one expiry (``POST /optionchain``)."""
        body = {
            "UnderlyingScrip": int(_security(under_security_id, "under_security_id")),
            "UnderlyingSeg": _segment(under_exchange_segment),
            "Expiry": _wire_date(expiry, "expiry", with_time=False),
        }
        return await self._request(
            "POST", "/optionchain", OptionChain.from_dhan, json=body, idempotent=True
        )

    async def expiry_list(
        self, under_security_id: str | int, under_exchange_segment: str
    ) -> list[datetime.date]:
        """The expiries of an underlying's options (``POST /optionchain/expirylist``)."""
        body = {
            "UnderlyingScrip": int(_security(under_security_id, "under_security_id")),
            "UnderlyingSeg": _segment(under_exchange_segment),
        }
        return await self._request(
            "POST", "/optionchain/expirylist", _expiries, json=body, idempotent=True
        )

    # -- instruments ---------------------------------------------------------------------------

    async def instruments(self, exchange_segment: str | None = None) -> list[Instrument]:
        """The instrument list: one segment (``GET /instrument/{segment}``) or, without a
        segment, the compact scrip master (every segment). Cancellation: abandoned."""
        if exchange_segment is None:
            return await self.scrip_master()
        segment = _segment(exchange_segment)
        return await self._request("GET", f"/instrument/{segment}", _csv_rows)

    async def scrip_master(self, detailed: bool = False) -> list[Instrument]:
        """The compact (or detailed) scrip master CSV of every segment."""
        name = "api-scrip-master-detailed.csv" if detailed else _SCRIP_MASTER
        return await self._request("GET", f"{self.scrip_root}/{name}", _csv_rows)

    # -- instruments by symbol (issue 19, §1) ---------------------------------------------

    async def instrument_index(self, refresh: bool = False) -> InstrumentIndex:
        """Every instrument by symbol, key and underlying: an
        :class:`~aio_trader.toolkit.InstrumentIndex` of today's compact scrip master
        (:meth:`scrip_master`), with Kite's exchange names (``NSE``, ``NFO``, ``BSE``,
        ``BFO``, ``CDS``, ``BCD``, ``MCX``; indices ``NSE``/``BSE`` with type ``INDEX``)
        and Dhan's trading symbols (``"NFO:NIFTY-Dec2026-FUT"``); keys are
        ``(exchange_segment, security_id)``.

        Downloaded at most once a day (a day's dump is out by 08:30 IST: one fetched
        earlier counts for the day before, and is fetched again after 08:30; one fetched
        later serves until 08:30 the next morning): kept on the client, and in a file under
        ``instrument_cache`` (one per broker and scrip-master URL, so a sandbox's never
        stands in for Dhan's; replaced atomically; a corrupt file is logged, removed and
        downloaded again), so the next client (or program) the same day reads the file.
        ``refresh=True`` downloads again. Concurrent callers share one download.

        Raises what :meth:`scrip_master` raises (``ClientClosedError`` before :meth:`open`
        or once closed, even when the index is cached). Cancellation: propagates; a
        cancelled download changes nothing (no half-written file, no half-built index: the
        next call downloads again).
        """

        async def download() -> list[NeutralInstrument]:
            text = await self._request("GET", f"{self.scrip_root}/{_SCRIP_MASTER}", _csv_text)
            return await anyio.to_thread.run_sync(_neutral_rows, text)

        self._check_open()  # nothing works before ``async with`` or after it, cached or not
        return await self._index_cache.get(download, refresh)

    # -- neutral operations: AbstractBroker's, through this mapping --------------------------
    _neutral: ClassVar[_Mapping | None] = (
        _trading  # dhan/_trading.py: the neutral enums and records <-> Dhan's
    )


# -- parsers ---------------------------------------------------------------------------------------


def _one(cls: type[R]) -> Callable[[Any], R]:
    """A record from an object, or from the first item of a one-item list."""

    def parse(data: Any) -> R:
        if isinstance(data, list) and data:
            data = data[0]
        return cls.from_dhan(data)

    return parse


def _listed(cls: type[R]) -> Callable[[Any], list[R]]:
    """Records from a list (an object alone counts as one)."""

    def parse(data: Any) -> list[R]:
        if isinstance(data, Mapping) and data:
            return [cls.from_dhan(data)]
        return cls.from_dhan_list(data)

    return parse


def _expiries(data: Any) -> list[datetime.date]:
    if isinstance(data, Mapping):
        data = data.get("data")
    if not isinstance(data, list):
        raise InvalidInput("expected a list of expiries", status_code=200, broker="dhan")
    try:
        return [datetime.date.fromisoformat(str(item)[:10]) for item in data]
    except ValueError:
        raise InvalidInput(
            "malformed expiry in Dhan's answer", status_code=200, broker="dhan"
        ) from None


#: The compact scrip master's file name under ``scrip_root``.
_SCRIP_MASTER: Final = "api-scrip-master.csv"


def _csv_text(data: Any) -> str:
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    if not isinstance(data, str):
        raise InvalidInput("expected a CSV instrument list", status_code=200, broker="dhan")
    return data


def _neutral_rows(text: str) -> list[NeutralInstrument]:
    return neutral_instruments(parse_instruments(text))


def _csv_rows(data: Any) -> list[Instrument]:
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    if not isinstance(data, str):
        raise InvalidInput("expected a CSV instrument list", status_code=200, broker="dhan")
    return parse_instruments(data)


def _trigger_body(
    client_id: str,
    condition: Mapping[str, Any],
    orders: Sequence[Mapping[str, Any]] | None,
    *,
    optional_orders: bool = False,
) -> dict[str, Any]:
    if not isinstance(condition, Mapping):
        raise TypeError("condition must be a mapping (Dhan's JSON object)")
    body: dict[str, Any] = {"dhanClientId": client_id, "condition": dict(condition)}
    if orders is None and optional_orders:
        return body
    if orders is None or isinstance(orders, str | bytes | Mapping) or not orders:
        raise ValueError("orders must be a non-empty list of Dhan order objects")
    body["orders"] = [dict(order) for order in orders]
    return body
