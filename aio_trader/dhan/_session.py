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
import json
import logging
import os
import re
from pathlib import Path
from urllib.parse import urlencode

import anyio.to_thread
import attrs
import platformdirs

from aio_trader._time import IST

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


def _default_directory() -> Path:
    return Path(platformdirs.user_config_dir("aio-trader", appauthor=False, roaming=False))


_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def _write_private_json(path: Path, record: dict[str, str]) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(record, file)
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path


@attrs.frozen
class TokenStore:
    """Dhan access tokens on disk, one JSON file per client id, used until they expire.

    ``directory`` defaults to the user's config directory (platformdirs); it is created
    0700 and each file written 0600 (replaced atomically). A file that is unreadable,
    malformed, expired, or readable by others is ignored (and logged, never its content).
    """

    directory: Path = attrs.field(factory=_default_directory, converter=Path)

    def path(self, client_id: str) -> Path:
        """The file of ``client_id``."""
        return self.directory / f"dhan-{_SAFE_NAME.sub('_', client_id)}.json"

    def load(self, client_id: str, now: datetime.datetime | None = None) -> str | None:
        """The stored token of ``client_id``, or None when absent, expired or unusable."""
        path = self.path(client_id)
        try:
            if os.name == "posix" and path.stat().st_mode & 0o077:
                log.warning("ignoring Dhan token store %s: readable by others", path)
                return None
            record = json.loads(path.read_text(encoding="utf-8"))
            expires = datetime.datetime.fromisoformat(record["expires_at"])
            token = record["access_token"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring Dhan token store %s: %s", path, type(exc).__name__)
            return None
        if expires.tzinfo is None:
            log.warning("ignoring Dhan token store %s: expires_at has no UTC offset", path)
            return None
        now = datetime.datetime.now(IST) if now is None else now
        if record.get("client_id") != client_id or not isinstance(token, str) or now >= expires:
            return None
        return token

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
        record = {
            "client_id": client_id,
            "access_token": access_token,
            "expires_at": expires_at.isoformat(),
        }
        return _write_private_json(self.path(client_id), record)

    def clear(self, client_id: str) -> None:
        """Remove the file of ``client_id`` (no error when absent)."""
        self.path(client_id).unlink(missing_ok=True)

    async def aload(self, client_id: str) -> str | None:
        """:meth:`load` in a worker thread."""
        return await anyio.to_thread.run_sync(self.load, client_id)

    async def asave(
        self, client_id: str, access_token: str, expires_at: datetime.datetime | None = None
    ) -> None:
        """:meth:`save` in a worker thread (the rename is atomic: cancellation leaves the
        old file or the new one)."""
        await anyio.to_thread.run_sync(self.save, client_id, access_token, expires_at)
