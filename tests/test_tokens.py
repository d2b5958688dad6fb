"""One token store on disk for every broker (aio_trader._tokens): the same contract for
Kite Web's enctoken cache and Dhan's access-token store."""

from __future__ import annotations

import datetime
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from aio_trader._time import IST
from aio_trader._tokens import TokenFiles
from aio_trader.dhan import TokenStore
from aio_trader.kite import TokenCache

NOW = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=IST)

#: A store and the function that saves a secret in it.
Store = tuple[TokenFiles, Callable[..., Path]]


def save_kite(store: TokenFiles, account: str, secret: str) -> Path:
    assert isinstance(store, TokenCache)
    return store.save(account, secret, now=NOW)  # until the end of the day (IST)


def save_dhan(store: TokenFiles, account: str, secret: str) -> Path:
    assert isinstance(store, TokenStore)
    return store.save(account, secret, NOW + datetime.timedelta(hours=24))


STORES: list[tuple[type[TokenFiles], Callable[[TokenFiles, str, str], Path]]] = [
    (TokenCache, save_kite),
    (TokenStore, save_dhan),
]


@pytest.fixture(params=STORES, ids=lambda store: store[0].__name__)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    kind, save = request.param
    return kind(tmp_path / "config"), save


def test_a_saved_secret_is_owner_only_and_read_back(
    store: Store,
) -> None:
    files, save = store
    path = save(files, "AB1234", "s3cret")
    assert path == files.path("AB1234")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert files.load("AB1234", now=NOW) == "s3cret"
    assert files.load("OTHER", now=NOW) is None
    assert not list(path.parent.glob("*.tmp"))


def test_what_cannot_be_trusted_is_ignored(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    files, save = store
    path = save(files, "AB1234", "s3cret")
    assert files.load("AB1234", now=NOW + datetime.timedelta(days=2)) is None  # expired
    os.chmod(path, 0o644)
    assert files.load("AB1234", now=NOW) is None  # readable by others
    record = {files.account_field: "AB1234", files.value_field: "s3cret"}
    for broken in ("{not json", json.dumps(record | {"expires_at": "2026-12-08T00:00:00"})):
        path.write_text(broken)
        os.chmod(path, 0o600)
        assert files.load("AB1234", now=NOW) is None  # malformed, naive expiry
    path.write_text(
        json.dumps(
            record | {files.account_field: "OTHER", "expires_at": "2099-01-01T00:00:00+05:30"}
        )
    )
    assert files.load("AB1234", now=NOW) is None  # another account's file
    assert "s3cret" not in caplog.text


def test_clear_removes_the_file_and_tolerates_none(
    store: Store,
) -> None:
    files, save = store
    path = save(files, "AB1234", "s3cret")
    files.clear("AB1234")
    files.clear("AB1234")
    assert not path.exists()
    assert files.load("AB1234", now=NOW) is None
