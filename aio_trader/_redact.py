"""Log redaction for every client: secrets never reach the HTTP stack's log records.

aio_trader's own loggers never format secrets. The HTTP stack's do: ``httpx`` logs every
request's full URL at INFO (a logout carries ``access_token`` in its query string), and
``httpcore`` logs response headers at DEBUG (a ``Set-Cookie`` with a session token). So
while at least one client is open (:data:`redaction`: a client's ``open`` attaches it,
its ``aclose`` detaches it, counted), one filter sits on the ``httpx`` and ``httpcore.*``
loggers (those loggers only; other records are untouched): it masks any
``access_token=``/``enctoken=``/... value and every secret registered with
:func:`protect` (a client registers its own while open) as ``***``. Importing this
module installs nothing; once the last client closes, nothing is left behind. The filter
runs only for records those loggers actually emit (at their default WARNING level:
none), so it costs nothing unless their logging is switched on.
"""

from __future__ import annotations

import collections
import logging
import re

__all__ = ["forget", "protect", "redaction"]


#: ``name=value`` pairs (query strings, cookies) whose value is a secret, whoever's it is.
_SECRET_PAIRS = re.compile(
    r"((?:access_token|refresh_token|request_token|public_token|enctoken|api_secret|password"
    r"|twofa_value|checksum)=)[^&;,'\"\s]+"
)


class _Redactor(logging.Filter):
    """Masks secrets (registered ones, and any ``token=value`` pair) as ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: collections.Counter[str] = collections.Counter()
        self._pattern: re.Pattern[str] | None = None

    def update(self) -> None:
        live = sorted((s for s, n in self.secrets.items() if n > 0), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, live))) if live else None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_PAIRS.sub(r"\1***", message)
        if self._pattern is not None:
            redacted = self._pattern.sub("***", redacted)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACTOR = _Redactor()
#: Loggers of the HTTP stack that print URLs (query strings) and response headers (cookies).
_GUARDED = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


class _Redaction:
    """The redacting filter on the HTTP stack's loggers, there while anyone uses it."""

    def __init__(self) -> None:
        self.users = 0

    def attach(self) -> None:
        """One more user: the first one adds the filter to every guarded logger."""
        self.users += 1
        if self.users == 1:
            for name in _GUARDED:
                logging.getLogger(name).addFilter(_REDACTOR)

    def detach(self) -> None:
        """One user fewer: the last one removes the filter again."""
        if self.users <= 0:
            return
        self.users -= 1
        if self.users == 0:
            for name in _GUARDED:
                logging.getLogger(name).removeFilter(_REDACTOR)

    @property
    def attached(self) -> bool:
        return self.users > 0


#: The log redaction of httpx/httpcore records (refcounted: see the module docstring).
redaction = _Redaction()

#: Secrets shorter than this are not registered (they would mask ordinary words).
_MIN_SECRET = 6


def protect(*secrets: str | None) -> None:
    """Mask these secrets in httpx/httpcore log records until :func:`forget` (counted)."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET:
            _REDACTOR.secrets[secret] += 1
    _REDACTOR.update()


def forget(*secrets: str | None) -> None:
    """Undo one :func:`protect` of each secret."""
    for secret in secrets:
        if secret and _REDACTOR.secrets[secret] > 0:
            _REDACTOR.secrets[secret] -= 1
            if not _REDACTOR.secrets[secret]:
                del _REDACTOR.secrets[secret]
    _REDACTOR.update()
