"""Secrets on disk: one JSON file per account in the user's config directory, owner-only.

One mechanism for every broker's token store (Kite Web's enctokens, Dhan's access tokens):

- the directory is ``platformdirs.user_config_dir("aio-trader")`` unless given, made 0700;
- each file is written 0600 and replaced atomically (a reader sees the old file or the new
  one, never half of one);
- a file that is missing, unreadable, malformed, for another account, expired, whose
  ``expires_at`` has no UTC offset, or readable by others is ignored (and logged, never its
  content). Files hold JSON, never pickles.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
from pathlib import Path
from typing import ClassVar

import anyio.to_thread
import attrs
import platformdirs

from aio_trader._time import IST

__all__ = ["TokenFiles", "default_directory", "write_private_json"]

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def default_directory() -> Path:
    """The user's config directory for aio-trader, as the OS defines it (platformdirs)."""
    return Path(platformdirs.user_config_dir("aio-trader", appauthor=False, roaming=False))


def write_private_json(path: Path, record: dict[str, str]) -> Path:
    """Write ``record`` as JSON to ``path``, readable by its owner only: the directory is
    made 0700 (if missing), the file written 0600 and replaced atomically. Returns ``path``.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(record, file)
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path


@attrs.frozen
class TokenFiles:
    """A broker's store of one secret per account, each until an aware ``expires_at``.

    A broker's store subclasses it and names its files and fields: ``prefix`` (the file is
    ``{prefix}-{account}.json``), ``account_field``, ``value_field`` and ``label`` (for
    the log lines), then adds its own ``save`` (which knows when its secret expires).
    """

    prefix: ClassVar[str]
    account_field: ClassVar[str]
    value_field: ClassVar[str]
    label: ClassVar[str]

    directory: Path = attrs.field(factory=default_directory, converter=Path)

    def path(self, account: str) -> Path:
        """The file of ``account``."""
        return self.directory / f"{self.prefix}-{_SAFE_NAME.sub('_', account)}.json"

    def load(self, account: str, now: datetime.datetime | None = None) -> str | None:
        """The stored secret of ``account``, or None when absent, expired or unusable."""
        path = self.path(account)
        try:
            if os.name == "posix" and path.stat().st_mode & 0o077:
                log.warning("ignoring %s %s: readable by others", self.label, path)
                return None
            record = json.loads(path.read_text(encoding="utf-8"))
            expires = datetime.datetime.fromisoformat(record["expires_at"])
            secret = record[self.value_field]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring %s %s: %s", self.label, path, type(exc).__name__)
            return None
        if expires.tzinfo is None or expires.utcoffset() is None:
            log.warning("ignoring %s %s: expires_at has no UTC offset", self.label, path)
            return None
        now = datetime.datetime.now(IST) if now is None else now
        if now.tzinfo is None:
            now = now.replace(tzinfo=IST)
        if record.get(self.account_field) != account or not isinstance(secret, str):
            return None
        return None if now >= expires else secret

    def store(self, account: str, secret: str, expires_at: datetime.datetime) -> Path:
        """Write ``secret`` for ``account`` until ``expires_at`` (aware); returns the file."""
        record = {
            self.account_field: account,
            self.value_field: secret,
            "expires_at": expires_at.isoformat(),
        }
        return write_private_json(self.path(account), record)

    def clear(self, account: str) -> None:
        """Remove the file of ``account`` (no error when absent)."""
        self.path(account).unlink(missing_ok=True)

    async def aload(self, account: str) -> str | None:
        """:meth:`load` in a worker thread. Cancellation: propagates, nothing changes."""
        return await anyio.to_thread.run_sync(self.load, account)
