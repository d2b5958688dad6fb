"""Session renewal across REST and feed (issue 19 §3), Kite and Dhan, against the sandbox.

A session (``KiteSession``, ``DhanSession``: the core's ``aio_trader._session.Session``)
owns one login's token and renews it once for every request or connection refused with
it; the REST pipeline sends a refused request once more after a renewal, the feed
reconnects instead of ending. The sandbox expires sessions on demand
(``sandbox.expire_session()``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pyotp
import pytest
from _helpers import python_blocks

from aio_trader._session import Session
from aio_trader.backoff import Backoff
from aio_trader.dhan import Dhan, DhanFeed, DhanSession, TokenStore
from aio_trader.dhan.ticks import TickerTick
from aio_trader.errors import InvalidInput, SessionExpired, TokenException
from aio_trader.feed import FeedConnected, FeedDisconnected
from aio_trader.kite import Kite, KiteFeed, KiteSession, LtpTick, TokenCache
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.sandbox._dhan._feed import _OPEN

FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)
#: A guard against a hang only (the feed tests wait for events, never for time).
HANG = 60
SCALE = 50
CONCURRENT = 6


@pytest.fixture
async def kite_sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(seed=5, market_interval=None, rate_limit_scale=SCALE, tick_interval=0.02)
    async with Sandbox(config) as sb:
        yield sb


@pytest.fixture
async def dhan_sb() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(
        broker="dhan",
        seed=5,
        market_interval=None,
        rate_limit_scale=SCALE,
        opening_cash=1e8,
        tick_interval=0.02,
    )
    async with Sandbox(config) as sb:
        yield sb


class Callback:
    """A Kite Connect renewal: "logs in again" by making a new token the only live one on
    the sandbox (the old one is refused from then on), and counts its calls."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.calls = 0
        self.tokens: list[str] = []

    async def __call__(self) -> str:
        self.calls += 1
        await anyio.lowlevel.checkpoint()
        token = secrets.token_hex(16)
        state = self.sb.state
        state.access_tokens.clear()
        state.access_tokens.add(token)
        state.faults.session_expired = False
        self.tokens.append(token)
        return token


def web_session(sb: Sandbox, twofa: Callable[[], str] | None = None) -> KiteSession:
    return KiteSession(
        user_id=sb.user_id,
        password=sb.password,
        totp_secret=None if twofa else sb.config.totp_secret,
        twofa=twofa,
        root=sb.root_url,
        backoff=FAST,
    )


def kite_client(sb: Sandbox, session: KiteSession, **options: Any) -> Kite:
    return Kite(session=session, root=sb.root_url, rate_limit_scale=SCALE, backoff=FAST, **options)


def dhan_session(sb: Sandbox, **options: Any) -> DhanSession:
    options.setdefault("pin", sb.config.pin)
    options.setdefault("totp_secret", sb.config.totp_secret)
    return DhanSession(
        sb.client_id,
        options.pop("access_token", sb.access_token),
        root=sb.root_url,
        backoff=FAST,
        **options,
    )


def dhan_client(session: DhanSession) -> Dhan:
    return Dhan(session=session, rate_limit_scale=SCALE, backoff=FAST, reconcile_delay=0.01)


async def all_at_once(*calls: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    async def run(index: int, call: Callable[[], Any]) -> None:
        results[index] = await call()

    async with anyio.create_task_group() as tg:
        for index, call in enumerate(calls):
            tg.start_soon(run, index, call)
    return results


# -- Kite: REST -----------------------------------------------------------------------------


async def test_kite_web_calls_after_expiry_succeed_with_one_totp_login(kite_sb: Sandbox) -> None:
    sb = kite_sb
    codes: list[str] = []

    def twofa() -> str:
        codes.append(pyotp.TOTP(sb.config.totp_secret).now())
        return codes[-1]

    session = web_session(sb, twofa)
    async with kite_client(sb, session) as kite:
        assert len(codes) == 1  # the first use logged in
        assert kite.web
        assert kite.user_id == sb.user_id
        generation = session.generation
        sb.expire_session()
        results = await all_at_once(*[kite.orders] * CONCURRENT, kite.profile)
        assert results[-1].user_id == sb.user_id
        assert len(codes) == 2, "N calls refused at once make one login"
        assert session.generation == generation + 1
        assert session.renewals == 2
        await kite.margins()  # the renewed session goes on working
        assert len(codes) == 2


async def test_kite_connect_call_after_expiry_uses_the_callbacks_token(kite_sb: Sandbox) -> None:
    sb = kite_sb
    renew = Callback(sb)
    session = KiteSession(sb.api_key, sb.access_token, renew=renew)
    async with kite_client(sb, session) as kite:
        await kite.profile()
        assert renew.calls == 0
        sb.expire_session()
        await all_at_once(*[kite.profile] * CONCURRENT)
        assert renew.calls == 1
        assert kite.access_token == session.current() == renew.tokens[0] != sb.access_token


async def test_kite_place_order_after_expiry_places_exactly_one_order(kite_sb: Sandbox) -> None:
    sb = kite_sb
    renew = Callback(sb)
    session = KiteSession(sb.api_key, sb.access_token, renew=renew)
    async with kite_client(sb, session) as kite:
        last = (await kite.ltp("NSE:INFY"))["NSE:INFY"].last_price
        tag = Kite.new_tag()
        sb.expire_session()
        order_id = await kite.place_order(
            "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=round(last * 0.8, 1), tag=tag
        )
        assert renew.calls == 1
        placed = await kite.find_order(tag)
        assert [order.order_id for order in placed] == [order_id]
        assert len([o for o in await kite.orders() if o.tag == tag]) == 1


async def test_kite_failed_renewal_raises_the_session_expired(kite_sb: Sandbox) -> None:
    sb = kite_sb
    hooked: list[str] = []

    def no_token() -> str:
        raise LookupError("no new token today")

    session = KiteSession(sb.api_key, sb.access_token, renew=no_token)
    async with kite_client(
        sb, session, session_expiry_hook=lambda: hooked.append("expired")
    ) as kite:
        sb.expire_session()
        with pytest.raises(TokenException) as refused:
            await kite.profile()
        assert isinstance(refused.value.__cause__, LookupError)
        assert hooked == ["expired"]  # the hook runs when the refusal comes out
        assert session.generation == 0
        assert session.current() == sb.access_token


async def test_kite_web_wrong_password_renewal_fails_with_the_refusal(kite_sb: Sandbox) -> None:
    sb = kite_sb
    session = KiteSession(
        user_id=sb.user_id,
        password="not-the-password",
        totp_secret=sb.config.totp_secret,
        enctoken=sb.enctoken,
        root=sb.root_url,
        backoff=FAST,
    )
    async with kite_client(sb, session) as kite:
        await kite.profile()  # the enctoken given works
        sb.expire_session()
        results = await all_at_once(*[lambda: _refusal(kite.profile)] * CONCURRENT)
        again = await _refusal(kite.profile)  # later: no new login with that password
    assert all(isinstance(error, TokenException) for error in results)
    causes = {type(error.__cause__).__name__ for error in results}
    assert causes == {"InputException"}, causes  # Kite refused the password
    assert again.__cause__ is results[0].__cause__
    assert session.renewals == 0


async def _refusal(call: Callable[[], Any]) -> BaseException:
    try:
        await call()
    except SessionExpired as error:
        return error
    raise AssertionError("the call should have been refused")


async def test_kite_cancelled_renewal_keeps_the_old_token(kite_sb: Sandbox) -> None:
    sb = kite_sb
    entered, release = anyio.Event(), anyio.Event()
    renew = Callback(sb)
    blocked = True

    async def slow() -> str:
        if blocked:
            entered.set()
            await release.wait()  # never set: the renewal is cancelled here
        return await renew()

    session = KiteSession(sb.api_key, sb.access_token, renew=slow)
    async with kite_client(sb, session) as kite:
        sb.expire_session()
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(kite.profile)
                await entered.wait()
                scope.cancel()
        assert scope.cancelled_caught
        assert (session.generation, session.current()) == (0, sb.access_token)
        assert kite.access_token == sb.access_token
        blocked = False  # the next refusal renews for real
        await kite.profile()
        assert session.generation == 1
        assert kite.access_token == renew.tokens[0]


# -- Kite: feed -----------------------------------------------------------------------------


async def test_kite_feed_streams_across_an_expiry_with_a_new_token(kite_sb: Sandbox) -> None:
    """Two connections and the REST client refused together: one renewal for all."""
    sb = kite_sb
    renew = Callback(sb)
    session = KiteSession(sb.api_key, sb.access_token, renew=renew)
    tokens = [t for t, i in sb.state.market.instruments.items() if i.segment == "NSE"][:2]
    feed = KiteFeed(
        session=session,
        root=sb.ticker_url,
        backoff=FAST,
        max_instruments=1,  # one connection per instrument
        subscriptions=dict.fromkeys(tokens, "ltp"),
    )
    events = feed.connection_events()
    with anyio.fail_after(HANG):
        async with feed, kite_client(sb, session) as kite:
            async for item in feed:
                if isinstance(item, LtpTick):
                    break
            sb.expire_session()
            reconnected: set[int] = set()
            async for event in events:
                if isinstance(event, FeedConnected) and session.generation == 1:
                    reconnected.add(event.connection)
                    if reconnected == {0, 1}:
                        break
            ticks = feed.statistics().ticks
            async for item in feed:  # ticks received over the new connections
                if isinstance(item, LtpTick) and feed.statistics().ticks > ticks:
                    break
            # the REST client shares the renewed session: no second login
            await kite.profile()
    assert renew.calls == 1
    assert renew.tokens == [session.current()]
    assert session.current() != sb.access_token
    assert sb.state.access_tokens == {renew.tokens[0]}  # the old token is refused now


async def test_kite_feed_ends_with_the_refusal_when_the_renewal_fails(kite_sb: Sandbox) -> None:
    sb = kite_sb

    def no_token() -> str:
        raise LookupError("no new token today")

    session = KiteSession(sb.api_key, sb.access_token, renew=no_token)
    feed = KiteFeed(session=session, root=sb.ticker_url, backoff=FAST)
    sb.expire_session()
    with anyio.fail_after(HANG), pytest.raises(TokenException) as refused:
        async with feed:
            pass
    assert isinstance(refused.value.__cause__, LookupError)


async def test_kite_feed_a_new_token_refused_at_once_is_final(kite_sb: Sandbox) -> None:
    sb = kite_sb
    calls: list[str] = []

    def unknown_token() -> str:  # a token the sandbox never issued
        calls.append(secrets.token_hex(16))
        return calls[-1]

    session = KiteSession(sb.api_key, sb.access_token, renew=unknown_token)
    feed = KiteFeed(session=session, root=sb.ticker_url, backoff=FAST)
    sb.expire_session()
    with anyio.fail_after(HANG), pytest.raises(TokenException):
        async with feed:
            pass
    assert len(calls) == 1, "no renewal loop"
    assert session.current() == calls[0]


async def test_kite_feed_without_a_renewing_session_ends_as_before(kite_sb: Sandbox) -> None:
    sb = kite_sb
    session = KiteSession(sb.api_key, sb.access_token)  # no renew callback
    assert not session.can_renew
    feed = KiteFeed(session=session, root=sb.ticker_url, backoff=FAST)
    sb.expire_session()
    with anyio.fail_after(HANG), pytest.raises(TokenException):
        async with feed:
            pass


# -- Dhan: REST -----------------------------------------------------------------------------


async def test_dhan_calls_after_expiry_renew_once_by_totp(dhan_sb: Sandbox) -> None:
    sb = dhan_sb
    session = dhan_session(sb)
    async with dhan_client(session) as dhan:
        await dhan.profile()
        sb.expire_session()
        results = await all_at_once(*[dhan.orders] * CONCURRENT, dhan.fund_limits)
        assert results[-1] is not None
        assert session.renewals == 1, "N calls refused at once make one login"
        assert dhan.access_token == session.current() != sb.access_token


async def test_dhan_place_order_after_expiry_places_exactly_one(dhan_sb: Sandbox) -> None:
    sb = dhan_sb
    session = dhan_session(sb)
    async with dhan_client(session) as dhan:
        quote = await dhan.ltp([("NSE_EQ", "1333")])
        last = next(iter(quote.values())).last_price
        assert last is not None
        tag = Dhan.new_correlation_id()
        sb.expire_session()
        order_id = await dhan.place_order(
            "1333", "NSE_EQ", "BUY", 1, "LIMIT", "CNC", price=round(last * 0.5, 1), tag=tag
        )
        assert session.renewals == 1
        assert [order.order_id for order in await dhan.find_order(tag)] == [order_id]


async def test_dhan_renew_token_before_the_expiry(dhan_sb: Sandbox) -> None:
    sb = dhan_sb
    session = dhan_session(sb, pin=None, totp_secret=None)  # RenewToken only
    assert session.can_renew
    async with dhan_client(session) as dhan:
        await session.renew()  # the daily timer's call, while the token is live
        assert session.current() != sb.access_token
        assert sb.access_token not in sb.state.access_tokens  # Dhan retired the old one
        await dhan.profile()  # the client took the new token
        assert dhan.access_token == session.current()


async def test_dhan_renew_token_after_the_expiry_raises_the_session_expired(
    dhan_sb: Sandbox,
) -> None:
    sb = dhan_sb
    session = dhan_session(sb, pin=None, totp_secret=None)  # RenewToken needs a live token
    async with dhan_client(session) as dhan:
        sb.expire_session()
        with pytest.raises(SessionExpired) as refused:
            await dhan.profile()
        assert refused.value.code == "DH-901"
        assert isinstance(refused.value.__cause__, SessionExpired)  # RenewToken's refusal
        assert session.generation == 0


# -- Dhan: feed -----------------------------------------------------------------------------


async def test_dhan_feed_streams_across_an_expiry_with_a_new_token(dhan_sb: Sandbox) -> None:
    sb = dhan_sb
    session = dhan_session(sb)
    feed = DhanFeed(
        session=session,
        root=sb.feed_url,
        order_root=None,  # the order socket's reconnects would race the renewal's backoff
        backoff=FAST,
        subscriptions={("NSE_EQ", 1333): "ticker"},
    )
    events = feed.connection_events()
    renewed: list[FeedDisconnected] = []
    with anyio.fail_after(HANG):
        async with feed, dhan_client(session) as dhan:
            async for item in feed:
                if isinstance(item, TickerTick):
                    break
            sb.expire_session()
            async for event in events:
                if isinstance(event, FeedDisconnected) and "renewed" in event.reason:
                    renewed.append(event)
                if isinstance(event, FeedConnected) and session.generation == 1:
                    break
            ticks = feed.statistics().ticks
            async for item in feed:
                if isinstance(item, TickerTick) and feed.statistics().ticks > ticks:
                    break
            assert session.current() in [c.token for c in _OPEN[sb.state]]
            await dhan.profile()  # shares the renewed token: no second login
    assert session.renewals == 1
    assert session.current() != sb.access_token
    assert len(renewed) == 1
    assert renewed[0].reconnect_in == 0.0


# -- the core: one flight, shared failures, cancellation --------------------------------------


class Counted(Session):
    """A session whose login hands out numbered tokens (or fails), for the core's rules."""

    def __init__(self) -> None:
        super().__init__("token-0")
        self.logins = 0
        self.fail: Exception | None = None
        self.gate: anyio.Event | None = None

    async def _login(self) -> str:
        self.logins += 1
        if self.gate is not None:
            await self.gate.wait()
        await anyio.lowlevel.checkpoint()
        if self.fail is not None:
            raise self.fail
        return f"token-{self.logins}"


async def test_concurrent_renewals_of_one_generation_log_in_once() -> None:
    session = Counted()
    session.gate = anyio.Event()
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(session.renew, 0)
        await anyio.wait_all_tasks_blocked()
        session.gate.set()
    assert (session.logins, session.generation, session.current()) == (1, 1, "token-1")
    await session.renew(0)  # a caller that saw the old token: no new login
    assert session.logins == 1
    await session.renew()  # renew now
    assert (session.logins, session.current()) == (2, "token-2")


async def test_a_failed_renewal_is_shared_with_its_waiters_then_tried_again() -> None:
    session = Counted()
    session.gate = anyio.Event()
    session.fail = LookupError("refused")
    errors: list[BaseException] = []

    async def renew() -> None:
        try:
            await session.renew(0)
        except LookupError as error:
            errors.append(error)

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(renew)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(renew)  # one more, arriving while the login runs
        await anyio.wait_all_tasks_blocked()
        session.gate.set()
    assert (session.logins, len(errors), session.generation) == (1, 5, 0)
    session.fail = None
    await session.renew(0)  # a later caller tries again
    assert (session.logins, session.generation) == (2, 1)


async def test_a_login_the_broker_refused_is_not_tried_again_by_itself() -> None:
    session = Counted()
    session.fail = InvalidInput("wrong PIN", broker="sandbox")
    for _ in range(3):  # refusals of token-0 (a request, a reconnect...)
        with pytest.raises(InvalidInput):
            await session.renew(0)
    assert session.logins == 1, "a refused password is not sent again and again"
    session.fail = LookupError("the network, say")  # a failure that may heal
    with pytest.raises(InvalidInput):
        await session.renew(0)
    with pytest.raises(LookupError):
        await session.renew()  # without a generation: always tries
    with pytest.raises(LookupError):
        await session.renew(0)  # ... and a failure that may heal is tried again
    assert session.logins == 3
    session.fail = None
    await session.renew(0)
    assert (session.generation, session.logins) == (1, 4)


async def test_a_cancelled_renewal_stores_nothing_and_a_waiter_tries_itself() -> None:
    session = Counted()
    session.gate = anyio.Event()
    first, waiter = anyio.CancelScope(), anyio.CancelScope()

    async def renew_in(scope: anyio.CancelScope) -> None:
        with scope:
            await session.renew(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(renew_in, first)  # logs in (held at the gate)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(renew_in, waiter)  # waits for that login
        await anyio.wait_all_tasks_blocked()
        first.cancel()  # the login is cut short
        await anyio.wait_all_tasks_blocked()
        assert (session.generation, session.current()) == (0, "token-0")  # nothing stored
        session.gate.set()  # the waiter's own login goes through
    assert first.cancelled_caught
    assert not waiter.cancelled_caught
    assert (session.generation, session.current(), session.logins) == (1, "token-2", 2)


# -- secrets ---------------------------------------------------------------------------------


async def test_no_secret_in_reprs_logs_or_errors(
    kite_sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    sb = kite_sb
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    session = web_session(sb)
    seen.append(repr(session))
    async with kite_client(sb, session) as kite:
        feed = KiteFeed(session=session, root=sb.ticker_url, backoff=FAST)
        seen += [repr(session), repr(kite), repr(feed)]
        sb.expire_session()
        await kite.profile()
        seen.append(repr(session))
        wrong = KiteSession(
            user_id=sb.user_id,
            password="wrong-password-1",
            totp_secret=sb.config.totp_secret,
            root=sb.root_url,
            backoff=FAST,
        )
        try:
            await wrong.renew()
        except Exception as error:
            seen.append(f"{error!r} {error} {error.__cause__}")
    text = "\n".join([*seen, *(record.getMessage() for record in caplog.records)])
    assert "KiteSession" in text
    assert sb.user_id in text
    for secret in (sb.password, sb.enctoken, sb.config.totp_secret, "wrong-password-1"):
        assert secret not in text


async def test_no_dhan_secret_in_reprs_logs_or_errors(
    dhan_sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    sb = dhan_sb
    caplog.set_level(logging.DEBUG)
    session = dhan_session(sb)
    seen = [repr(session)]
    async with dhan_client(session) as dhan:
        sb.expire_session()
        await dhan.profile()
        seen += [repr(session), repr(dhan)]
    text = "\n".join([*seen, *(record.getMessage() for record in caplog.records)])
    assert "DhanSession" in text
    for secret in (sb.access_token, session.current() or "", sb.config.pin, sb.config.totp_secret):
        assert secret not in text


# -- bad input, before any I/O -----------------------------------------------------------------


def test_bad_sessions_and_mixed_credentials_raise_before_any_io() -> None:
    with pytest.raises(ValueError, match="user_id"):
        KiteSession(password="x", totp_secret="y")
    with pytest.raises(ValueError, match="not both"):
        KiteSession("key", "token", user_id="AB1234", password="x")
    with pytest.raises(TypeError, match="renew"):
        KiteSession("key", "token", renew="not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pin and totp_secret"):
        DhanSession("1000000001", pin="123456")
    with pytest.raises(ValueError, match="not both"):
        Kite(access_token="token", session=KiteSession("key", "token"))
    with pytest.raises(TypeError, match="KiteSession"):
        KiteFeed(session=DhanSession("1000000001", "token"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        DhanFeed(access_token="token", session=DhanSession("1000000001", "token"))
    with pytest.raises(ValueError, match="client_id"):
        Dhan("1000000002", session=DhanSession("1000000001", "token"))
    assert not KiteSession("key", "token").can_renew
    assert KiteSession("key", renew=lambda: "token").can_renew


# -- the docs' recipes run (docs/sessions.md) -----------------------------------------------


def recipe(marker: str) -> dict[str, Any]:
    """The namespace of the docs page's Python block that contains ``marker``, executed."""
    (block,) = [b for b in python_blocks("docs/sessions.md") if marker in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/sessions.md", "exec"), namespace)
    return namespace


def test_every_recipe_of_the_page_is_run_here() -> None:
    blocks = python_blocks("docs/sessions.md")
    markers = (
        "def kite_web_session",
        "async def run(",
        "def kite_connect_session",
        "def dhan_session",
        "async def renew_daily",
    )
    assert len(blocks) == len(markers)
    assert all(any(marker in block for block in blocks) for marker in markers)


async def test_docs_kite_web_recipe_runs_across_an_expiry(
    kite_sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = kite_sb
    monkeypatch.setenv("KITE_USER_ID", sb.user_id)
    monkeypatch.setenv("KITE_PASSWORD", sb.password)
    monkeypatch.setenv("KITE_TOTP_SECRET", sb.config.totp_secret)
    session = recipe("def kite_web_session")["kite_web_session"](root=sb.root_url)
    run = recipe("async def run(")["run"]
    token = next(t for t, i in sb.state.market.instruments.items() if i.segment == "NSE")
    seen: list[LtpTick] = []

    with anyio.fail_after(HANG), anyio.CancelScope() as scope:

        async def on_tick(kite: Kite, tick: LtpTick) -> None:
            seen.append(tick)
            if len(seen) == 1:
                assert session.renewals == 1  # the first use logged in
                sb.expire_session()
            elif session.renewals == 2:  # a tick after the morning's login
                assert (await kite.profile()).user_id == sb.user_id
                scope.cancel()

        await run(session, [token], on_tick, root=sb.root_url, ticker_root=sb.ticker_url)
    assert scope.cancelled_caught
    assert session.renewals == 2


async def test_docs_kite_connect_recipe_renews_from_the_token_file(
    kite_sb: Sandbox, tmp_path: Path
) -> None:
    sb = kite_sb
    token_file = tmp_path / "kite-token"
    token_file.write_text(sb.access_token + "\n")
    session = recipe("def kite_connect_session")["kite_connect_session"](sb.api_key, token_file)
    async with kite_client(sb, session) as kite:
        await kite.profile()
        sb.expire_session()
        new = secrets.token_hex(16)  # the morning job logs in and writes the new token
        sb.state.access_tokens.clear()
        sb.state.access_tokens.add(new)
        sb.state.faults.session_expired = False
        token_file.write_text(new + "\n")
        await all_at_once(*[kite.profile] * CONCURRENT)
        assert (session.current(), session.generation) == (new, 1)


async def test_docs_dhan_recipes_log_in_renew_and_heal_an_expiry(
    dhan_sb: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = dhan_sb
    monkeypatch.setenv("DHAN_CLIENT_ID", sb.client_id)
    monkeypatch.delenv("DHAN_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("DHAN_PIN", sb.config.pin)
    monkeypatch.setenv("DHAN_TOTP_SECRET", sb.config.totp_secret)
    namespace = recipe("def dhan_session")
    session = namespace["dhan_session"](root=sb.root_url)
    funds_every_day = namespace["funds_every_day"]
    assert not session.has_credential
    assert await funds_every_day(session) > 0  # the first use logged in by PIN + TOTP
    assert session.renewals == 1
    sb.expire_session()
    assert await funds_every_day(session) > 0  # RenewToken refused, PIN + TOTP healed it
    assert session.renewals == 2
    first = session.current()
    renew_daily = recipe("async def renew_daily")["renew_daily"]
    renewed, renew = anyio.Event(), session.renew

    async def renew_once(generation: int | None = None) -> None:
        await renew(generation)
        renewed.set()
        await anyio.sleep_forever()  # one renewal is enough here

    monkeypatch.setattr(session, "renew", renew_once)
    with anyio.fail_after(HANG):
        async with anyio.create_task_group() as tg:
            tg.start_soon(renew_daily, session, 0)
            await renewed.wait()
            tg.cancel_scope.cancel()
    assert session.generation == 3
    assert session.current() != first
    assert first not in sb.state.access_tokens  # RenewToken retired the old token
    assert await funds_every_day(session) > 0


# -- tokens kept between runs ----------------------------------------------------------------


async def test_kite_web_session_starts_from_the_days_cached_enctoken(
    kite_sb: Sandbox, tmp_path: Path
) -> None:
    sb = kite_sb
    codes: list[str] = []

    def twofa() -> str:
        codes.append(pyotp.TOTP(sb.config.totp_secret).now())
        return codes[-1]

    def run() -> KiteSession:  # a new run of the program: a new session, the same cache
        return KiteSession(
            user_id=sb.user_id,
            password=sb.password,
            twofa=twofa,
            root=sb.root_url,
            token_cache=TokenCache(tmp_path),
            backoff=FAST,
        )

    async with kite_client(sb, run()) as kite:
        await kite.profile()
    assert len(codes) == 1  # logged in, and kept the enctoken
    session = run()
    async with kite_client(sb, session) as kite:
        await kite.profile()
        assert len(codes) == 1  # the cached enctoken, no login
        sb.expire_session()
        await kite.profile()
    assert len(codes) == 2  # the expiry: one login
    assert session.renewals == 2


async def test_dhan_session_starts_from_the_stored_token(dhan_sb: Sandbox, tmp_path: Path) -> None:
    sb = dhan_sb

    def run() -> DhanSession:
        return dhan_session(sb, access_token=None, token_store=TokenStore(tmp_path))

    first = run()
    async with dhan_client(first) as dhan:
        await dhan.profile()
    second = run()
    async with dhan_client(second) as dhan:
        await dhan.profile()
        assert second.current() == first.current()  # read from the store, no login
        sb.expire_session()
        await dhan.profile()
    assert second.current() != first.current()
    assert TokenStore(tmp_path).load(sb.client_id) == second.current()
