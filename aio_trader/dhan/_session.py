"""Dhan sessions: the hosts, the consent-flow URL, the token store, the TOTP helper, and
:class:`DhanSession` (a login that renews itself, shared by ``Dhan`` and ``DhanFeed``).

Ways to hold a Dhan access token (valid 24 h), all on :class:`aio_trader.dhan.Dhan`:

- give it (``Dhan(client_id=..., access_token=...)``: from Dhan's web app);
- ``renew_token()``: ``GET /v2/RenewToken`` trades a live token for a new one (24 h more;
  the old one stops working);
- ``generate_access_token(pin, totp)``: ``POST auth.dhan.co/app/generateAccessToken`` with
  the account's PIN and a TOTP code (``totp_secret=`` makes the code with ``pyotp``: the
  ``totp`` extra); ``Dhan(..., pin=..., totp_secret=...)`` does it on entry when no token
  is given or stored;
- the API-key consent flow: ``generate_consent(api_key, api_secret)`` -> a
  ``consent_app_id``; the user opens :func:`consent_login_url` in a browser and is
  redirected with a ``tokenId``; ``consume_consent(token_id, api_key, api_secret)`` -> the
  token.

:class:`TokenStore` keeps tokens between runs: one JSON file per client id in the user's
config directory (``platformdirs.user_config_dir("aio-trader")``), mode 0600 in a 0700
directory, used until its expiry (24 h after it was issued unless Dhan said otherwise).

Secrets (access tokens, PIN, TOTP codes and secrets, API secrets) never reach a log: a
client registers them with the shared redaction (:mod:`aio_trader._redact`) while open, and
aio_trader's own loggers never format them.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import anyio.to_thread
import attrs

from aio_trader._session import Session
from aio_trader._time import IST
from aio_trader._tokens import TokenFiles
from aio_trader.errors import SessionExpired

if TYPE_CHECKING:
    from aio_trader.backoff import Backoff
    from aio_trader.dhan._broker import Dhan

__all__ = [
    "DHAN_AUTH_ROOT",
    "DHAN_ROOT",
    "SCRIP_MASTER_ROOT",
    "DhanSession",
    "TokenStore",
    "consent_login_url",
    "totp_now",
]

log = logging.getLogger(__name__)

#: Dhan's REST root (API v2).
DHAN_ROOT = "https://api.dhan.co/v2"
#: Dhan's auth host (token from PIN + TOTP, the API-key consent flow).
DHAN_AUTH_ROOT = "https://auth.dhan.co"
#: Where Dhan publishes the scrip masters (compact and detailed CSV).
SCRIP_MASTER_ROOT = "https://images.dhan.co/api-data"
#: How long a token lives when Dhan does not say.
TOKEN_LIFETIME = datetime.timedelta(hours=24)


def consent_login_url(consent_app_id: str, auth_root: str = DHAN_AUTH_ROOT) -> str:
    """The page the user opens to log in for the API-key flow (step 2); Dhan then
    redirects to the app's redirect URL with ``?tokenId=...``."""
    if not isinstance(consent_app_id, str) or not consent_app_id:
        raise ValueError("consent_app_id must be a non-empty str")
    query = urlencode({"consentAppId": consent_app_id})
    return f"{auth_root.rstrip('/')}/login/consentApp-login?{query}"


def totp_now(totp_secret: str) -> str:
    """The current TOTP code of ``totp_secret`` (needs ``pyotp``: the ``totp`` extra)."""
    try:
        import pyotp
    except ImportError:
        raise ImportError("a TOTP secret needs pyotp: pip install 'aio-trader[totp]'") from None
    return str(pyotp.TOTP(totp_secret).now())


@attrs.frozen
class TokenStore(TokenFiles):
    """Dhan access tokens on disk, one JSON file per client id, used until they expire.

    ``directory`` defaults to the user's config directory (platformdirs); it is created
    0700 and each file written 0600 (replaced atomically). A file that is unreadable,
    malformed, expired, or readable by others is ignored (and logged, never its content).
    (The file mechanics are the core's, ``aio_trader._tokens``, shared with Kite's cache.)
    """

    prefix = "dhan"
    account_field = "client_id"
    value_field = "access_token"
    label = "Dhan token store"

    def save(
        self,
        client_id: str,
        access_token: str,
        expires_at: datetime.datetime | None = None,
    ) -> Path:
        """Store ``access_token`` until ``expires_at`` (aware; default: 24 h from now)."""
        if expires_at is None:
            expires_at = datetime.datetime.now(IST) + TOKEN_LIFETIME
        elif expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=IST)
        return self.store(client_id, access_token, expires_at)

    async def asave(
        self, client_id: str, access_token: str, expires_at: datetime.datetime | None = None
    ) -> None:
        """:meth:`save` in a worker thread (the rename is atomic: cancellation leaves the
        old file or the new one)."""
        await anyio.to_thread.run_sync(self.save, client_id, access_token, expires_at)


class DhanSession(Session):
    """One Dhan login, shared by :class:`~aio_trader.dhan.Dhan` and
    :class:`~aio_trader.dhan.DhanFeed` (``session=``), that renews its access token.

    ``DhanSession(client_id, access_token, pin=..., totp_secret=...)``. A renewal tries,
    in order:

    - **RenewToken** (``renew_token=True``, the default, with a token in hand):
      ``GET /v2/RenewToken`` trades the live token for a new one, valid 24 h more (the old
      one stops working). It needs the token still live, so it is the way to renew
      *before* the expiry: call :meth:`~aio_trader._session.Session.renew` on a timer
      (see the docs' daily recipe);
    - **PIN + TOTP** (``pin`` and ``totp_secret``, needs the ``totp`` extra):
      ``generateAccessToken`` makes a new token from nothing, so it also heals a token
      that has already expired (Dhan's DH-901 answer, the feed's disconnect codes 807-810).

    ``access_token=None`` with a PIN and TOTP secret: the first use logs in.
    ``token_store`` (a :class:`TokenStore`; ``True``: the user's config directory) seeds the
    first token from an earlier run and keeps each new one. ``root`` / ``auth_root``: as
    for :class:`~aio_trader.dhan.Dhan` (a sandbox's ``root_url``). Each renewal opens a
    short-lived ``Dhan`` client of its own (``timeout``, ``backoff``) and closes it.

    A renewal runs once for every request and connection refused with the same token (see
    :meth:`Session.renew`); cancelled part-way, it stores nothing and the old token stays
    (a RenewToken whose answer was lost may have retired the old token at Dhan: the next
    refusal then renews by PIN + TOTP, when given).

    Raises ``ValueError``/``TypeError`` for missing or wrong credentials, before any I/O.
    The repr shows the client id, never a secret; no log or error carries one.
    """

    def __init__(
        self,
        client_id: str,
        access_token: str | None = None,
        *,
        pin: str | None = None,
        totp_secret: str | None = None,
        renew_token: bool = True,
        root: str = DHAN_ROOT,
        auth_root: str | None = None,
        token_store: TokenStore | bool | None = None,
        timeout: float = 7.0,
        backoff: Backoff | None = None,
    ) -> None:
        for name, value in (
            ("client_id", client_id),
            ("access_token", access_token),
            ("pin", pin),
            ("totp_secret", totp_secret),
            ("root", root),
            ("auth_root", auth_root),
        ):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        if not client_id:
            raise ValueError("a Dhan session needs the client_id (your dhanClientId)")
        if bool(pin) != bool(totp_secret):
            raise ValueError("a PIN + TOTP login needs both pin and totp_secret")
        super().__init__(access_token)
        self.client_id = client_id
        self.root = root.rstrip("/")
        self.auth_root = None if auth_root is None else auth_root.rstrip("/")
        self._pin = pin
        self._totp_secret = totp_secret
        self._renew_token = bool(renew_token)
        self._timeout = timeout
        self._backoff = backoff
        if token_store is True:
            token_store = TokenStore()
        self._store: TokenStore | None = token_store or None
        self._store_read = self._store is None

    def _who(self) -> str:
        return f"client_id={self.client_id!r}"

    @property
    def can_renew(self) -> bool:
        """With PIN + TOTP, or RenewToken (which needs a token in hand)."""
        return bool(self._pin and self._totp_secret) or (
            self._renew_token and (self.has_credential or not self._store_read)
        )

    async def _login(self) -> str:
        # Imported here: the client module imports this one.
        from aio_trader.dhan._broker import Dhan

        if not self._store_read:  # a token from an earlier run, tried once
            assert self._store is not None
            self._store_read = True
            stored = await self._store.aload(self.client_id)
            if stored and stored != self.current():
                return stored
        token = self.current()
        if self._renew_token and token is not None:
            try:
                async with self._client(Dhan, token) as dhan:
                    info = await dhan.renew_token()
                return await self._keep(info.access_token, info.expiry_time)
            except SessionExpired:
                if not (self._pin and self._totp_secret):
                    raise
                log.info("Dhan refused RenewToken; logging in with PIN and TOTP")
        if not (self._pin and self._totp_secret):
            raise ValueError("this DhanSession has no token to renew and no PIN + TOTP")
        async with self._client(Dhan, None) as dhan:
            info = await dhan.generate_access_token(self._pin, totp_now(self._totp_secret))
        return await self._keep(info.access_token, info.expiry_time)

    def _client(self, cls: type[Dhan], token: str | None) -> Dhan:
        """A short-lived client for one renewal (no store: the session keeps the token)."""
        return cls(
            self.client_id,
            token,
            root=self.root,
            auth_root=self.auth_root,
            timeout=self._timeout,
            backoff=self._backoff,
        )

    async def _keep(self, token: str | None, expires_at: datetime.datetime | None) -> str:
        if not token:
            raise SessionExpired("Dhan answered without an accessToken", broker="dhan")
        if self._store is not None:
            await self._store.asave(self.client_id, token, expires_at)
        return token
