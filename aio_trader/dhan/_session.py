"""Dhan sessions: the hosts, the consent-flow URL, the token store, the TOTP helper.

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
from urllib.parse import urlencode

import anyio.to_thread
import attrs

from aio_trader._time import IST
from aio_trader._tokens import TokenFiles

__all__ = [
    "DHAN_AUTH_ROOT",
    "DHAN_ROOT",
    "SCRIP_MASTER_ROOT",
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
