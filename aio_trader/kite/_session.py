"""Kite logins: checksums, the login URL, the Kite Web login, its token cache, log redaction,
and :class:`KiteSession` (a login that renews itself, shared by ``Kite`` and ``KiteFeed``).

Two ways to be logged in to Kite:

- **Kite Connect** (an app's ``api_key``): the user logs in at :func:`login_url`, Kite
  redirects with a ``request_token``, ``Kite.generate_session(request_token, api_secret)``
  trades it for an ``access_token`` (sent as ``Authorization: token api_key:access_token``).
- **Kite Web** (the browser session): ``POST /api/login`` (user id, password) then
  ``POST /api/twofa`` (a TOTP or app code) sets an ``enctoken`` cookie; REST then lives
  under ``/oms`` with ``Authorization: enctoken <enctoken>`` (:func:`web_login`).

:class:`TokenCache` keeps Kite Web enctokens between runs: one JSON file per user in the
user's config directory (``platformdirs.user_config_dir("aio-trader")``: e.g.
``~/.config/aio-trader`` on Linux, ``~/Library/Application Support/aio-trader`` on macOS,
``%LOCALAPPDATA%\aio-trader`` on Windows), mode 0600 in a 0700 directory, valid until the
end of the day in IST. Never pickle.

Secrets never reach a log (the redaction lives in :mod:`aio_trader._redact`, shared by
every broker; its names are re-exported here). aio_trader's own loggers never format
them. The HTTP stack's do: ``httpx`` logs every request's full URL at INFO (Kite's logout, ``DELETE
/session/token``, carries ``access_token``/``refresh_token`` in its query string), and
``httpcore`` logs response headers at DEBUG (Kite Web's ``Set-Cookie: enctoken=...``, a
login redirect's ``request_token``). So while at least one client is open
(:data:`redaction`: ``Kite.open`` attaches it, ``Kite.aclose`` detaches it, counted),
one filter sits on the ``httpx`` and ``httpcore.*`` loggers (those loggers only; other
records are untouched): it masks any ``access_token=``/``enctoken=``/... value and every
secret registered with :func:`protect` (``Kite`` registers its own while open) as
``***``. Importing this module installs nothing; once the last client closes, nothing is
left behind. The filter runs only for records those loggers actually emit (at their
default WARNING level: none), so it costs nothing unless their logging is switched on.
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import anyio
import anyio.to_thread
import attrs

from aio_trader._redact import forget, protect, redaction
from aio_trader._session import Session
from aio_trader._time import IST
from aio_trader._tokens import TokenFiles
from aio_trader.errors import DataException

if TYPE_CHECKING:
    from aio_trader.backoff import Backoff
    from aio_trader.http import AsyncRequest

__all__ = [
    "KITE_CONNECT_ROOT",
    "KITE_LOGIN_URL",
    "KITE_WEB_ROOT",
    "KiteSession",
    "TokenCache",
    "TwoFactor",
    "checksum",
    "end_of_day_ist",
    "forget",
    "login_url",
    "protect",
    "redaction",
    "web_login",
]

log = logging.getLogger(__name__)

#: Kite Connect's REST root.
KITE_CONNECT_ROOT = "https://api.kite.trade"
#: Kite Web's root (login under ``/api``, REST under ``/oms``).
KITE_WEB_ROOT = "https://kite.zerodha.com"
#: Kite Connect's login page.
KITE_LOGIN_URL = "https://kite.zerodha.com/connect/login"

#: A two-factor value: the code itself, or a (sync or async) function returning it.
TwoFactor = str | Callable[[], str] | Callable[[], Awaitable[str]]
#: A Kite Connect renewal: a (sync or async) function returning a new access token.
TokenCallback = Callable[[], str] | Callable[[], Awaitable[str]]


def checksum(api_key: str, token: str, api_secret: str) -> str:
    """Kite's checksum: hex SHA-256 of ``api_key + token + api_secret``."""
    return hashlib.sha256(f"{api_key}{token}{api_secret}".encode()).hexdigest()


def login_url(api_key: str, base: str = KITE_LOGIN_URL) -> str:
    """The Kite Connect login page for ``api_key`` (``...?api_key=..&v=3``)."""
    return f"{base}?{urlencode({'api_key': api_key, 'v': '3'})}"


# -- Kite Web login ---------------------------------------------------------------------


async def _twofa_value(twofa: TwoFactor | None, totp_secret: str | None) -> str:
    if twofa is None and totp_secret is not None:
        try:
            import pyotp
        except ImportError:
            raise ImportError("a TOTP secret needs pyotp: pip install 'aio-trader[totp]'") from None
        return str(pyotp.TOTP(totp_secret).now())
    if twofa is None:
        raise ValueError("Kite Web login needs `twofa` (a code or a function) or `totp_secret`")
    if isinstance(twofa, str):
        return twofa
    value = twofa()
    if inspect.isawaitable(value):
        value = await value
    if not isinstance(value, str) or not value:
        raise ValueError("the `twofa` function must return the code as a non-empty str")
    return value


async def web_login(
    http: AsyncRequest,
    user_id: str,
    password: str,
    *,
    twofa: TwoFactor | None = None,
    totp_secret: str | None = None,
) -> str:
    """Log in to Kite Web through ``http`` (rooted at Kite Web's root); return the enctoken.

    ``POST /api/login`` (user id, password) then ``POST /api/twofa`` with the value of
    ``twofa`` (a code, or a sync/async function called once, after the password step)
    or, failing that, a TOTP code from ``totp_secret`` (needs ``pyotp``).

    Raises ``InputException``/``TokenException`` when Kite refuses a step,
    ``DataException`` when no enctoken comes back, ``ValueError`` without a two-factor
    source, ``OutcomeUnknownError`` after an ambiguous transport failure (nothing is
    sent twice). Cancellation: propagates; no session is kept from a half-done login.
    """
    redaction.attach()
    protect(password, totp_secret)
    try:
        form = {"user_id": user_id, "password": password}
        # A repeated password step only opens another login request: safe to retry.
        data = _data(await http.post("/api/login", data=form, idempotent=True))
        request_id = data.get("request_id") if isinstance(data, dict) else None
        if not isinstance(request_id, str):
            raise DataException("Kite Web login answered without a request_id", status_code=200)
        value = await _twofa_value(twofa, totp_secret)
        protect(value)
        try:
            twofa_type = data.get("twofa_type") or "totp"
            form = {
                "user_id": user_id,
                "request_id": request_id,
                "twofa_value": value,
                "twofa_type": twofa_type,
            }
            _data(await http.post("/api/twofa", data=form))
        finally:
            forget(value)
        enctoken = _unquote_cookie(http.client.cookies.get("enctoken"))
        http.client.cookies.clear()  # the header carries it from now on, not a cookie
        if not enctoken:
            raise DataException("Kite Web two-factor step set no enctoken cookie", status_code=200)
    finally:
        forget(password, totp_secret)
        redaction.detach()
    log.info("Kite Web login succeeded for user %s", user_id)
    return enctoken


_COOKIE_ESCAPE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))")


def _unquote_cookie(value: str | None) -> str | None:
    """A cookie value as the server meant it: a value sent quoted (``"a/b+c=="``: what
    Python's and many servers' cookie writers do with ``/``, ``=``, ...) loses its quotes
    and backslash escapes; the jar keeps them, and a quoted enctoken answers 403."""
    if value is None or len(value) < 2 or not (value[0] == value[-1] == '"'):
        return value
    return _COOKIE_ESCAPE.sub(
        lambda m: chr(int(m.group(1), 8)) if m.group(1) else m.group(2), value[1:-1]
    )


def _data(body: Any) -> Any:
    """The ``data`` of a success envelope; a body without one is a ``DataException``."""
    if isinstance(body, dict) and body.get("status") == "success" and "data" in body:
        return body["data"]
    raise DataException("expected Kite's {'status': 'success', 'data': ...}", status_code=200)


# -- token cache ------------------------------------------------------------------------


def end_of_day_ist(now: datetime.datetime | None = None) -> datetime.datetime:
    """The next midnight in IST after ``now`` (default: the current time)."""
    now = datetime.datetime.now(IST) if now is None else now.astimezone(IST)
    return datetime.datetime.combine(now.date() + datetime.timedelta(days=1), datetime.time(), IST)


@attrs.frozen
class TokenCache(TokenFiles):
    """Kite Web enctokens on disk, one JSON file per user, valid until the end of the day (IST).

    ``directory`` defaults to the user's config directory,
    ``platformdirs.user_config_dir("aio-trader")`` (on Linux ``$XDG_CONFIG_HOME/aio-trader``
    or ``~/.config/aio-trader``); it is created with mode 0700 and each file is written
    with mode 0600 (replaced atomically). A file that is unreadable, malformed, expired
    (or whose ``expires_at`` has no UTC offset), or readable by others is ignored (and
    logged, never its content). Files hold JSON, never pickles. (The file mechanics are the
    core's, ``aio_trader._tokens``, shared with Dhan's token store.)
    """

    prefix = "kite-web"
    account_field = "user_id"
    value_field = "enctoken"
    label = "token cache"

    def save(self, user_id: str, enctoken: str, now: datetime.datetime | None = None) -> Path:
        """Store ``enctoken`` for ``user_id`` until the end of today (IST); returns the file."""
        return self.store(user_id, enctoken, end_of_day_ist(now))

    async def asave(self, user_id: str, enctoken: str) -> None:
        """:meth:`save` in a worker thread. Cancellation: the file is written or left as it was
        (the thread finishes; the rename is atomic)."""
        await anyio.to_thread.run_sync(self.save, user_id, enctoken)


# -- a login that renews itself ------------------------------------------------------------


class KiteSession(Session):
    """One Kite login, shared by :class:`~aio_trader.kite.Kite` and
    :class:`~aio_trader.kite.KiteFeed` (``session=``), that logs in again when Kite refuses
    it (the daily expiry, around 06:00 IST).

    - **Kite Web by TOTP**: ``KiteSession(user_id=..., password=..., totp_secret=...)``
      (needs the ``totp`` extra) or ``twofa=`` (a function returning the code, sync or
      async); ``enctoken=`` starts from a token you have; ``token_cache=`` (a
      :class:`TokenCache`; ``True``: the user's config directory) reuses the day's
      enctoken across runs and keeps each new one. ``root``: Kite Web's root (a
      sandbox's ``root_url``). The login is :func:`web_login` over a connection of its
      own (``timeout``, ``backoff``), closed once done.
    - **Kite Connect by a callback**: ``KiteSession(api_key, access_token,
      renew=get_token)``: Kite's request-token flow needs a browser, so ``get_token()``
      (sync or async) returns a new access token however you obtain one (a login you
      automate, a token another process wrote...). Without ``renew`` the session cannot
      renew: a refusal comes out as before.

    A renewal runs once for every request and connection refused with the same token
    (see :meth:`Session.renew`); cancelled part-way, it stores nothing and the old token
    stays. Before the first use without a token, the first use logs in.

    Raises ``ValueError``/``TypeError`` for missing or mixed credentials, before any I/O.
    The repr shows the account, never a secret; no log or error carries one.
    """

    def __init__(
        self,
        api_key: str | None = None,
        access_token: str | None = None,
        *,
        renew: TokenCallback | None = None,
        user_id: str | None = None,
        password: str | None = None,
        twofa: TwoFactor | None = None,
        totp_secret: str | None = None,
        enctoken: str | None = None,
        root: str = KITE_WEB_ROOT,
        token_cache: TokenCache | bool | None = None,
        timeout: float = 7.0,
        backoff: Backoff | None = None,
    ) -> None:
        for name, value in (
            ("api_key", api_key),
            ("access_token", access_token),
            ("user_id", user_id),
            ("password", password),
            ("totp_secret", totp_secret),
            ("enctoken", enctoken),
            ("root", root),
        ):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        if renew is not None and not callable(renew):
            raise TypeError("renew must be a function returning a new access token")
        if twofa is not None and not isinstance(twofa, str) and not callable(twofa):
            raise TypeError("twofa must be a code (str) or a function returning one")
        self.web = bool(user_id or password or enctoken or totp_secret or twofa)
        if self.web and (api_key or access_token or renew is not None):
            raise ValueError(
                "give api_key (Kite Connect) or user_id (Kite Web) credentials, not both"
            )
        if self.web and not user_id:
            raise ValueError("a Kite Web session needs the user_id")
        if not self.web and not api_key:
            raise ValueError(
                "a Kite session needs an api_key (Kite Connect) or a user_id (Kite Web)"
            )
        super().__init__(enctoken if self.web else access_token)
        self.api_key = api_key
        self.user_id = user_id
        self.root = root.rstrip("/")
        self._renew = renew
        self._password = password
        self._twofa = twofa
        self._totp_secret = totp_secret
        self._timeout = timeout
        self._backoff = backoff
        if token_cache is True:
            token_cache = TokenCache()
        self._cache: TokenCache | None = token_cache or None
        self._cache_read = self._cache is None

    def _who(self) -> str:
        if self.web:
            return f"(web) user_id={self.user_id!r}"
        return f"(connect) api_key={self.api_key!r}"

    @property
    def can_renew(self) -> bool:
        """Kite Web: with a password and a two-factor source (or a token cache not read
        yet); Kite Connect: with ``renew``."""
        if self.web:
            login = bool(self._password and (self._twofa is not None or self._totp_secret))
            return login or not self._cache_read
        return self._renew is not None

    async def _login(self) -> str:
        if not self.web:
            if self._renew is None:
                raise ValueError("this KiteSession has no renew callback")
            token = self._renew()
            if inspect.isawaitable(token):
                token = await token
            if not isinstance(token, str) or not token:
                raise TypeError("the renew callback must return the access token as a str")
            return token
        assert self.user_id is not None
        if not self._cache_read:  # the day's enctoken from an earlier run, tried once
            assert self._cache is not None
            self._cache_read = True
            cached = await self._cache.aload(self.user_id)
            if cached and cached != self.current():
                return cached
        if not self._password:
            raise ValueError("a Kite Web session needs the password to log in")
        # Imported here: the module stays free of the HTTP stack until a login runs.
        from aio_trader.http import AsyncRequest
        from aio_trader.kite._errors import kite_error_from_response

        http = AsyncRequest(
            self.root,
            headers={"X-Kite-Version": "3"},
            timeout=self._timeout,
            backoff=self._backoff,
            error_mapper=kite_error_from_response,
        )
        async with http:
            enctoken = await web_login(
                http,
                self.user_id,
                self._password,
                twofa=self._twofa,
                totp_secret=self._totp_secret,
            )
        if self._cache is not None:
            await self._cache.asave(self.user_id, enctoken)
        return enctoken
