"""Logins against the sandbox (Kite Connect and Kite Web), the token cache, and secrets
that never reach logs, reprs or errors."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import re
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pyotp
import pytest

from aio_trader._time import IST
from aio_trader.backoff import Backoff
from aio_trader.errors import AioTraderError, InputException, TokenException
from aio_trader.kite import Kite, Session, TokenCache
from aio_trader.kite._session import checksum, end_of_day_ist
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.sandbox._kite._state import kite_state

FAST = Backoff(base=0.01, cap=0.05, max_attempts=3)


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(seed=3, market_interval=None, rate_limit_scale=20)) as sb:
        yield sb


async def request_token(sb: Sandbox, kite: Kite) -> str:
    """Walk the login page like a browser would (the sandbox logs the user in at once)."""
    url = kite.login_url().replace("https://kite.zerodha.com", sb.root_url)
    async with httpx.AsyncClient() as browser:
        redirect = await browser.get(url)
    assert redirect.status_code == 302
    query = parse_qs(urlsplit(redirect.headers["location"]).query)
    assert query["status"] == ["success"]
    return query["request_token"][0]


def totp(sb: Sandbox) -> str:
    return str(pyotp.TOTP(sb.config.totp_secret).now())


def web(sb: Sandbox, cache: Path | None, **credentials: object) -> Kite:
    return Kite(
        root=sb.root_url,
        backoff=FAST,
        rate_limit_scale=20,
        token_cache=TokenCache(cache) if cache else None,
        **credentials,  # type: ignore[arg-type]
    )


# -- Kite Connect ---------------------------------------------------------------------------


async def test_connect_login_flow(sb: Sandbox) -> None:
    async with Kite(
        sb.api_key,
        root=sb.root_url,
        backoff=FAST,
        login_root=f"{sb.root_url}/connect/login",
    ) as kite:
        assert kite.login_url() == f"{sb.root_url}/connect/login?api_key={sb.api_key}&v=3"
        with pytest.raises(ValueError, match="generate_session"):
            await kite.authorise()
        with pytest.raises(TokenException):  # no session yet
            await kite.profile()
        token = await request_token(sb, kite)
        session = await kite.generate_session(token, sb.api_secret)
        assert isinstance(session, Session)
        assert session.user_id == sb.user_id
        assert session.access_token == kite.access_token == sb.access_token
        assert session.login_time is not None
        assert (await kite.profile()).user_id == sb.user_id
        assert (await kite.authorise()).user_id == sb.user_id
        # A request token is single use.
        with pytest.raises(TokenException):
            await kite.generate_session(token, sb.api_secret)
        with pytest.raises(InputException):
            await kite.generate_session(await request_token(sb, kite), "wrong secret")

        refresh = session.refresh_token
        assert refresh
        renewed = await kite.renew_access_token(refresh, sb.api_secret)
        assert renewed.access_token == kite.access_token
        assert await kite.invalidate_refresh_token(refresh) is True
        with pytest.raises(TokenException):
            await kite.renew_access_token(refresh, sb.api_secret)
        assert await kite.invalidate_access_token() is True
        with pytest.raises(TokenException):
            await kite.profile()


def test_checksum_is_kites() -> None:
    assert checksum("key", "token", "secret") == hashlib.sha256(b"keytokensecret").hexdigest()


# -- Kite Web -------------------------------------------------------------------------------


async def test_web_enctoken(sb: Sandbox) -> None:
    async with web(sb, None, enctoken=sb.enctoken) as kite:
        assert kite.web
        assert (await kite.profile()).user_id == sb.user_id
        assert await kite.holdings()
        before = sb.state.stats.requests
        assert (await kite.ltp("NSE:INFY"))["NSE:INFY"].last_price
        assert sb.state.stats.requests == before + 1


@pytest.mark.parametrize("how", ["string", "sync", "async", "totp_secret"])
async def test_web_password_login(sb: Sandbox, tmp_path: Path, how: str) -> None:
    async def code() -> str:
        return totp(sb)

    twofa: dict[str, object] = {
        "string": {"twofa": totp(sb)},
        "sync": {"twofa": lambda: totp(sb)},
        "async": {"twofa": code},
        "totp_secret": {"totp_secret": sb.config.totp_secret},
    }[how]
    async with web(sb, tmp_path, user_id=sb.user_id, password=sb.password, **twofa) as kite:
        assert (await kite.profile()).user_id == sb.user_id
        assert await kite.orders() == []
    cached = tmp_path / f"kite-web-{sb.user_id}.json"
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    record = json.loads(cached.read_text())
    assert record["enctoken"] == sb.enctoken
    assert datetime.datetime.fromisoformat(record["expires_at"]) == end_of_day_ist()


async def test_web_login_uses_the_cache_then_logs_in_again_when_refused(
    sb: Sandbox, tmp_path: Path
) -> None:
    credentials = {"user_id": sb.user_id, "password": sb.password, "twofa": lambda: totp(sb)}
    async with web(sb, tmp_path, **credentials) as kite:
        await kite.profile()
    logins = len(kite_state(sb.state).web_requests)
    before = sb.state.stats.requests
    async with web(sb, tmp_path, **credentials) as kite:
        assert (await kite.profile()).user_id == sb.user_id
    # cached: one profile check on entering + one call, no login
    assert sb.state.stats.requests - before == 2
    assert len(kite_state(sb.state).web_requests) == logins

    sb.expire_session()
    hooked: list[int] = []
    async with web(
        sb, tmp_path, **credentials, session_expiry_hook=lambda: hooked.append(1)
    ) as kite:
        assert (await kite.profile()).user_id == sb.user_id  # logged in again
    assert hooked == []  # a stale cache is not a session expiry


async def test_web_login_refusals(sb: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(InputException):
        async with web(sb, tmp_path, user_id=sb.user_id, password="wrong", twofa="123456"):
            pass
    with pytest.raises(InputException):
        async with web(sb, tmp_path, user_id=sb.user_id, password=sb.password, twofa="000000"):
            pass
    with pytest.raises(ValueError, match="twofa"):
        async with web(sb, tmp_path, user_id=sb.user_id, password=sb.password):
            pass
    assert [path async for path in anyio.Path(tmp_path).iterdir()] == []


def test_token_cache_ignores_expired_foreign_malformed_and_open_files(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "dir")
    assert cache.load("AB1234") is None
    now = datetime.datetime(2026, 1, 5, 15, 0, tzinfo=IST)
    path = cache.save("AB1234", "tok123456", now=now)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert cache.load("AB1234", now=now) == "tok123456"
    assert cache.load("AB1234", now=now + datetime.timedelta(hours=8, minutes=59)) == "tok123456"
    assert cache.load("AB1234", now=now + datetime.timedelta(hours=9)) is None  # past midnight
    assert cache.load("ZZ9999", now=now) is None
    os.chmod(path, 0o644)
    assert cache.load("AB1234", now=now) is None
    os.chmod(path, 0o600)
    path.write_text("not json")
    assert cache.load("AB1234", now=now) is None
    cache.clear("AB1234")
    cache.clear("AB1234")
    assert not path.exists()


def test_token_cache_default_directory_is_the_platforms_config_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import platformdirs

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert TokenCache().directory == Path(platformdirs.user_config_dir("aio-trader"))
    if sys.platform.startswith("linux"):
        assert TokenCache().directory == tmp_path / "aio-trader"
        monkeypatch.delenv("XDG_CONFIG_HOME")
        assert TokenCache().directory == Path.home() / ".config" / "aio-trader"


# -- secrets ----------------------------------------------------------------------------------


async def test_secrets_never_reach_logs_reprs_or_errors(
    sb: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    reprs: list[str] = []
    code = totp(sb)
    async with Kite(
        sb.api_key, root=sb.root_url, backoff=FAST, login_root=f"{sb.root_url}/connect/login"
    ) as kite:
        token = await request_token(sb, kite)
        session = await kite.generate_session(token, sb.api_secret)
        reprs += [repr(kite), repr(session), str(session)]
        await kite.profile()
        await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "MARKET", market_protection=-1
        )
        sb.faults.lose_order_reply = True
        await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "MARKET", market_protection=-1
        )
        sb.faults.lose_order_reply = False
        sb.faults.http_5xx_burst = 1
        await kite.holdings()
        assert session.refresh_token
        await kite.renew_access_token(session.refresh_token, sb.api_secret)
        sb.expire_session()
        try:
            await kite.profile()
        except AioTraderError as error:
            errors.append(error)
        sb.state.start_session()
        await kite.invalidate_refresh_token(session.refresh_token)
        await kite.invalidate_access_token()
    async with web(sb, tmp_path, user_id=sb.user_id, password=sb.password, twofa=code) as kite:
        reprs.append(repr(kite))
        await kite.margins()
    try:
        async with web(sb, None, user_id=sb.user_id, password=sb.password + "x", twofa=code):
            pass
    except AioTraderError as error:
        errors.append(error)

    secrets = {
        "api_secret": sb.api_secret,
        "access_token": sb.access_token,
        "refresh_token": sb.config.refresh_token,
        "enctoken": sb.enctoken,
        "password": sb.password,
        "totp_secret": sb.config.totp_secret,
        "request_token": token,
    }
    assert caplog.records, "the session should have logged something"
    text = "\n".join(
        [caplog.text, *(r.getMessage() for r in caplog.records), *reprs]
        + [f"{e!s} {e!r} {e.__cause__!s}" for e in errors]
    )
    for name, secret in secrets.items():
        assert secret not in text, f"{name} leaked"
    assert not re.search(rf"\b{code}\b", text), "the two-factor code leaked"
    assert "***" in caplog.text  # httpx's URL log of the logout had the token masked
