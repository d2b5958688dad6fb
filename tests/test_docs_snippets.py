"""Every ```python block of README.md and docs/*.md runs in the suite.

``COVERAGE`` lists, per page, one entry per block in the page's order, saying where the
block runs: ``HERE`` (a test of this module), another test module (which reads that page),
``INCLUDED`` (a ``--8<--`` include of ``examples/``, run as the example itself by
tests/test_examples.py), or ``compiled: <reason>`` (the short allow-list of blocks that
cannot run offline; tests/test_examples.py compiles every block and checks its imports).
A block added to a page fails :func:`test_every_block_of_every_page_is_covered` until it
is given an entry.

A block here runs as a reader runs it, on the embedded sandbox of its broker over
loopback, on both anyio backends; what it takes from the reader is given the way the
reader has it:

- a block that opens a client without ``root=`` (as against the real broker) reaches the
  sandbox: :func:`production_is_the_sandbox` points the clients' default addresses at it,
  and the sandbox's credentials are the block's (``api_key="..."``, ...);
- the names the page's text says are open already (``kite``, ``feed``, ``api_key``...):
  each page's namespace, built by a function below that says what it holds;
- a last line ``anyio.run(main)``: ``main()`` is awaited on the test's backend instead;
- the Redis server of docs/gateway.md (``redis://localhost:6379``): a ``redis-server`` of
  the test's own (tests/_redis.py), on a free port, whose URL replaces that address;
- ``print``: the namespace's :class:`Printed` keeps the lines; a block that loops forever
  is ended after a number of printed lines (or a condition) the test states, under a hang
  guard, and the test checks what those lines say.
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import anyio
import httpx
import pytest
from _helpers import ROOT, python_blocks
from _redis import RedisServer, redis_server

pytest.importorskip("starlette", reason="the docs' sandbox needs the sandbox extra")

from aio_trader.dhan import Dhan, DhanFeed, RawDhanFeed
from aio_trader.errors import ClientClosedError
from aio_trader.kite import Kite, KiteFeed, RawKiteFeed, Tick
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.sandbox._dhan._instruments import token_of

HERE = "here"
INCLUDED = "included"
#: A generous hang guard: only a hang (a block that never ends) should reach it.
HANG_GUARD = 60.0

COVERAGE: dict[str, tuple[str, ...]] = {
    "README.md": (HERE, HERE),
    "docs/concepts.md": (HERE,) * 12
    + ("compiled: `place_order(...)` stands for any order (errors' mapping: test_errors.py)",)
    + (HERE,),
    "docs/dhan.md": (HERE, HERE, HERE),
    "docs/examples.md": (INCLUDED,) * 6,
    "docs/index.md": (HERE,),  # and as a script by tests/test_examples.py
    "docs/migration.md": (
        HERE,
        HERE,
        HERE,
        HERE,
        "compiled: KiteTicker.connect() runs Twisted's reactor: it blocks, cannot restart",
        HERE,
        HERE,
        "compiled: kiteconnect's threaded ticker under `while True: time.sleep(60)`",
        HERE,
    ),
    "docs/paper.md": ("tests/test_paper.py", HERE, "tests/test_paper.py", "tests/test_paper.py"),
    "docs/sandbox.md": (HERE,) * 9,
    "docs/sessions.md": ("tests/test_session.py",) * 5,
    "docs/strategies.md": ("tests/test_trading.py", "tests/test_trading.py", INCLUDED),
    "docs/toolkit.md": ("tests/test_toolkit.py",) * 4 + ("tests/test_symbols.py",) * 3,
    "docs/troubleshooting.md": (HERE,),
    "docs/gateway.md": (
        HERE,
        HERE,
        HERE,
        HERE,
        "compiled: needs Redis Sentinel servers (sentinel-1, sentinel-2), a deployment",
        HERE,
        HERE,
        HERE,
    ),
}


def pages() -> list[str]:
    return ["README.md"] + [f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md"))]


# -- the guard: every block has its entry --------------------------------------------------


@pytest.mark.parametrize("page", pages())
def test_every_block_of_every_page_is_covered(page: str) -> None:
    blocks = python_blocks(page)
    entries = COVERAGE.get(page, ())
    assert len(blocks) == len(entries), (
        f"{page} has {len(blocks)} python blocks, COVERAGE lists {len(entries)}: run the new "
        "block in tests/test_docs_snippets.py (or allow-list it there, with its reason)"
    )
    for index, (code, entry) in enumerate(zip(blocks, entries, strict=True)):
        where = f"{page}[{index}]"
        if entry == INCLUDED:
            assert code.startswith('--8<-- "examples/'), where
        elif entry.startswith("tests/"):
            assert page in (ROOT / entry).read_text(), f"{where}: {entry} does not read {page}"
        elif entry.startswith("compiled: "):
            compile(code, where, "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        else:
            assert entry == HERE, where


def test_every_block_marked_here_is_run_by_a_test_here() -> None:
    """Each ``HERE`` entry is run by a ``run("page", index)`` of this module (or by hand,
    from ``python_blocks("page")[index]``), and only those are."""
    source = Path(__file__).read_text()
    runs = re.findall(r'\brun\(\s*"([\w/.]+)",\s*(\d+)', source)
    by_hand = re.findall(r'python_blocks\("([\w/.]+)"\)\[(\d+)\]', source)
    called = {(page, int(index)) for page, index in runs + by_hand}
    here = {(p, i) for p, entries in COVERAGE.items() for i, e in enumerate(entries) if e == HERE}
    assert called == here


def test_the_allow_list_is_short() -> None:
    allowed = [e for entries in COVERAGE.values() for e in entries if e.startswith("compiled")]
    assert len(allowed) == 4, allowed


# -- how a block runs --------------------------------------------------------------------


class Printed:
    """Stands in for ``print`` in a block's namespace: keeps each printed line; after
    ``stop_after`` lines it cancels the block's scope (how a test ends a block that loops
    forever)."""

    def __init__(self, stop_after: int | None) -> None:
        self.lines: list[str] = []
        self.stop_after = stop_after
        self.scope = anyio.CancelScope()

    def __call__(self, *values: object, sep: str = " ", **_: object) -> None:
        self.lines.append(sep.join(str(value) for value in values))
        if self.stop_after is not None and len(self.lines) >= self.stop_after:
            self.scope.cancel()


MAIN = re.compile(r"^anyio\.run\(main\)[^\n]*\n\Z", re.MULTILINE)


async def run(
    page: str,
    index: int,
    names: dict[str, Any] | None = None,
    *,
    stop_after: int | None = None,
    until: Callable[[dict[str, Any]], bool] | None = None,
    in_a_thread: bool = False,
    redis: str | None = None,
) -> dict[str, Any]:
    """Run block ``index`` of ``page`` in a namespace holding ``names``; return the
    namespace (``namespace["print"].lines``: what it printed). A block that ends with
    ``anyio.run(main)`` has ``main()`` awaited on the running backend. The block is
    cancelled after ``stop_after`` printed lines, or once ``until(namespace)`` holds
    (checked every 10 ms), else it must end by itself. ``in_a_thread``: a blocking
    (kiteconnect) block runs in a worker thread, the sandbox serving it meanwhile.
    ``redis``: the URL of the test's own Redis, in place of the page's
    ``redis://localhost:6379``."""
    assert COVERAGE[page][index] == HERE
    code = python_blocks(page)[index]
    if redis is not None:
        code = code.replace("redis://localhost:6379", redis)
    main = MAIN.search(code)
    if main:
        code = code[: main.start()]
    printed = Printed(stop_after)
    namespace: dict[str, Any] = {"__name__": "snippet", **(names or {}), "print": printed}
    compiled = compile(code, f"{page}[{index}]", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

    async def watch() -> None:
        assert until is not None
        while not until(namespace):  # noqa: ASYNC110 - polling the block's namespace
            await anyio.sleep(0.01)
        printed.scope.cancel()

    with anyio.fail_after(HANG_GUARD), printed.scope:
        async with anyio.create_task_group() as tg:
            if until is not None:
                tg.start_soon(watch)
            if in_a_thread:
                result = await anyio.to_thread.run_sync(eval, compiled, namespace)
            else:
                result = eval(compiled, namespace)
            if inspect.iscoroutine(result):
                await result
            if main:
                await namespace["main"]()
            tg.cancel_scope.cancel()
    return namespace


def lines(namespace: dict[str, Any]) -> list[str]:
    printed: Printed = namespace["print"]
    return printed.lines


def production_is_the_sandbox(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """The clients' default addresses (the broker's production servers) become the
    sandbox's, for the blocks that open a client without ``root=`` as a reader does."""
    if sb.config.broker == "kite":
        from aio_trader.gateway import Gateway

        defaults = {
            Kite: sb.root_url,
            KiteFeed: sb.ticker_url,
            RawKiteFeed: sb.ticker_url,
            Gateway: sb.ticker_url,
        }
        for cls, url in defaults.items():
            monkeypatch.setitem(cls.__init__.__kwdefaults__, "root", url)
    else:
        monkeypatch.setitem(Dhan.__init__.__kwdefaults__, "root", sb.root_url)
        for feed in (DhanFeed, RawDhanFeed):
            monkeypatch.setitem(feed.__init__.__kwdefaults__, "root", sb.feed_url)
            monkeypatch.setitem(feed.__init__.__kwdefaults__, "order_root", sb.order_feed_url)


#: The credentials the blocks write (``api_key="..."``): the sandbox's.
DOTS = {"api_key": "...", "api_secret": "...", "access_token": "..."}


@pytest.fixture
async def kite_sb(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sandbox]:
    """A Kite sandbox with the blocks' credentials, ticking every 20 ms, at Kite's
    production address."""
    async with Sandbox(SandboxConfig(tick_interval=0.02, **DOTS)) as sb:
        production_is_the_sandbox(sb, monkeypatch)
        yield sb


@pytest.fixture
async def dhan_sb(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sandbox]:
    """A Dhan sandbox ticking every 20 ms, at Dhan's production address."""
    async with Sandbox(SandboxConfig(broker="dhan", tick_interval=0.02)) as sb:
        production_is_the_sandbox(sb, monkeypatch)
        yield sb


def is_tick_line(line: str) -> bool:
    return re.fullmatch(r"\d+ [\d.]+", line) is not None


# -- README.md -------------------------------------------------------------------------------


async def test_readme_quick_look(kite_sb: Sandbox) -> None:
    # the feed's loop runs until three ticks are printed
    out = lines(await run("README.md", 0, stop_after=4))
    assert out[0].startswith("Quotes({'NSE:INFY': LtpQuote(")
    assert "'NSE:TCS': " in out[0]
    assert any(is_tick_line(line) for line in out[1:]), out
    (order,) = kite_sb.state.book.orders.values()
    assert (order.instrument.tradingsymbol, order.transaction_type) == ("INFY", "BUY")


async def test_readme_sandbox_at_a_glance() -> None:
    namespace = await run("README.md", 1)
    sb: Sandbox = namespace["sb"]
    assert sb.faults.lose_order_reply
    assert sb.faults.session_expired


# -- docs/index.md, docs/troubleshooting.md ----------------------------------------------------


async def test_index_first_program() -> None:
    out = lines(await run("docs/index.md", 0))
    assert out[0] == "hello Sandbox User"
    assert re.fullmatch(r"placed \d+", out[3]), out
    assert sum(line.startswith("tick 408065 ") for line in out) == 5
    assert out[-1].startswith("Positions(net=(Position(tradingsymbol='INFY'")


async def test_troubleshooting_quiets_the_loggers() -> None:
    loggers = [logging.getLogger("aio_trader"), logging.getLogger("aio_trader.kite.ticks")]
    levels = [logger.level for logger in loggers]
    try:
        await run("docs/troubleshooting.md", 0)
        assert [logger.level for logger in loggers] == [logging.ERROR, logging.ERROR]
    finally:  # the block changes the process's loggers: as they were for the next test
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# -- docs/dhan.md ----------------------------------------------------------------------------


async def test_dhan_first_program() -> None:
    out = lines(await run("docs/dhan.md", 0))
    assert out[0].startswith("FundLimits(")
    assert re.fullmatch(r"[\d.]+", out[1]), out
    assert out[2].startswith("Order("), out
    assert "security_id='1333'" in out[2], out


async def test_dhan_feed(dhan_sb: Sandbox) -> None:
    # ``token``: the reader's access token; the loop runs until three lines are printed
    out = lines(await run("docs/dhan.md", 1, {"token": dhan_sb.access_token}, stop_after=3))
    full = r"\(<ExchangeSegment.NSE_EQ: 'NSE_EQ'>, 1333\) [\d.]+ DepthLevel\(.*\)"
    assert any(re.fullmatch(full, line) for line in out), out


async def test_dhan_feed_on_the_sandbox() -> None:
    # the names the page's earlier blocks imported
    names = {"Sandbox": Sandbox, "SandboxConfig": SandboxConfig, "DhanFeed": DhanFeed}
    namespace = await run("docs/dhan.md", 2, names)
    assert namespace["sb"].state.stats.ws_connections == 2  # the feed's and the orders'


# -- docs/paper.md (the Dhan block; the Kite ones run in tests/test_paper.py) --------------


async def test_paper_dhan(dhan_sb: Sandbox) -> None:
    dhan_sb.state.market.set_quote(token_of("NSE_EQ", 1333), 1600.0)
    namespace = await run("docs/paper.md", 1)
    await namespace["dhan_paper"](dhan_sb.client_id, dhan_sb.access_token)
    (out,) = lines(namespace)
    assert "TRADED" in out, out


# -- docs/sandbox.md -------------------------------------------------------------------------


async def test_sandbox_first_program() -> None:
    out = lines(await run("docs/sandbox.md", 0))
    assert out[0].startswith("Quotes({'NSE:INFY': LtpQuote(instrument_token=408065")
    # the first tick may come before the switch to "full": Kite subscribes in "quote"
    assert re.match(r"(Full|Quote)Tick\(instrument_token=408065, ", out[1]), out


async def test_sandbox_pytest_test(kite_sb: Sandbox) -> None:
    # the block is a test: it is called with a sandbox as the fixture would give it
    namespace = await run("docs/sandbox.md", 1)
    await namespace["test_my_strategy"](kite_sb)
    assert kite_sb.state.stats.orders_booked == 1


async def test_sandbox_fixture_overrides() -> None:
    namespace = await run("docs/sandbox.md", 2)
    for name in ("anyio_backend", "kite_sandbox_config"):
        assert "fixture" in type(namespace[name]).__name__.lower() or hasattr(
            namespace[name], "_pytestfixturefunction"
        ), name


async def test_sandbox_expired_session() -> None:
    namespace = await run("docs/sandbox.md", 3)
    await namespace["expired"]()
    assert lines(namespace) == ["log in again"]


async def test_sandbox_connect_login(kite_sb: Sandbox) -> None:
    namespace = await run("docs/sandbox.md", 4)
    await namespace["connect_login"](kite_sb)
    (out,) = lines(namespace)
    assert out.startswith("AB1234 Profile(user_id='AB1234'"), out


async def test_sandbox_web_login(kite_sb: Sandbox) -> None:
    pytest.importorskip("pyotp")
    namespace = await run("docs/sandbox.md", 5)
    await namespace["web_login"](kite_sb)
    (out,) = lines(namespace)
    assert out.startswith("Profile(user_id='AB1234'"), out


async def test_sandbox_faults_at_runtime(kite_sb: Sandbox) -> None:
    await run("docs/sandbox.md", 6, {"sb": kite_sb})  # ``sb``: the page's open sandbox
    faults = kite_sb.faults
    assert (faults.latency, faults.http_5xx_burst, faults.ws_silence) == (0.2, 3, True)
    assert (faults.ws_drop_every, faults.session_expired) == (2.0, True)


async def test_sandbox_registered_address() -> None:
    namespace = await run("docs/sandbox.md", 7)
    assert isinstance(namespace["transport"], httpx.AsyncHTTPTransport)


async def test_sandbox_deterministic_market() -> None:
    namespace = await run("docs/sandbox.md", 8)
    await namespace["deterministic"]()  # ten steps of a market that moves only when told


# -- docs/concepts.md ------------------------------------------------------------------------


@pytest.fixture
async def concepts(kite_sb: Sandbox) -> AsyncIterator[dict[str, Any]]:
    """What docs/concepts.md's text takes as at hand: ``api_key`` and ``access_token``
    (the sandbox's), an open ``kite``, an open ``feed`` subscribed to INFY (408065) in
    "full", the classes and ``anyio``; and for the blocks' free names: ``tokens``,
    ``start``, ``end`` of a history request (two tokens, a week of days)."""
    async with (
        Kite("...", "...") as kite,
        KiteFeed("...", "...", subscriptions={408065: "full"}) as feed,
    ):
        yield {
            "api_key": "...",
            "access_token": "...",
            "kite": kite,
            "feed": feed,
            "Kite": Kite,
            "KiteFeed": KiteFeed,
            "anyio": anyio,
            "tokens": [408065, 884737],
            "start": "2026-03-02 00:00:00",
            "end": "2026-03-06 00:00:00",
        }


async def test_concepts_clients_open_and_close(kite_sb: Sandbox) -> None:
    namespace = await run("docs/concepts.md", 0, {"Kite": Kite, "KiteFeed": KiteFeed, **DOTS})
    assert kite_sb.state.stats.ws_connections == 1
    assert "closed" in repr(namespace["feed"])
    with pytest.raises(ClientClosedError):
        await namespace["kite"].profile()


async def test_concepts_gather_and_as_completed(concepts: dict[str, Any]) -> None:
    namespace = await run("docs/concepts.md", 1, concepts)
    infy, tcs = namespace["quotes"]
    assert (list(infy), list(tcs)) == (["NSE:INFY"], ["NSE:TCS"])
    assert namespace["token"] in (408065, 884737)  # the last one finished
    assert len(namespace["candles"]) == 4  # a day candle each trading day (3 March: Holi)


def with_a_token_exception(concepts: dict[str, Any], sb: Sandbox) -> dict[str, Any]:
    """docs/concepts.md's names, and the three functions the ``run`` blocks call: a
    ``strategy`` under which the session expires, a ``watch`` reading the feed, a
    ``log_in_again`` that notes its call in ``namespace["logins"]``."""
    logins: list[str] = []

    async def strategy(kite: Kite) -> None:
        sb.expire_session()
        await kite.profile()

    async def watch(feed: KiteFeed) -> None:
        async for _ in feed:
            pass

    async def log_in_again() -> None:
        logins.append("again")

    return {
        **concepts,
        "strategy": strategy,
        "watch": watch,
        "log_in_again": log_in_again,
        "logins": logins,
    }


@pytest.mark.skipif(sys.version_info < (3, 11), reason="except* (the page says 3.11+)")
async def test_concepts_except_star(concepts: dict[str, Any], kite_sb: Sandbox) -> None:
    namespace = await run("docs/concepts.md", 2, with_a_token_exception(concepts, kite_sb))
    with anyio.fail_after(HANG_GUARD):
        await namespace["run"](concepts["kite"], concepts["feed"])
    assert namespace["logins"] == ["again"]


async def test_concepts_single_errors(concepts: dict[str, Any], kite_sb: Sandbox) -> None:
    namespace = await run("docs/concepts.md", 3, with_a_token_exception(concepts, kite_sb))
    with anyio.fail_after(HANG_GUARD):
        await namespace["run"](concepts["kite"], concepts["feed"])
    assert namespace["logins"] == ["again"]


def test_concepts_both_backends() -> None:
    """A sync test: the block calls ``anyio.run`` itself, on asyncio then trio."""
    import sniffio

    ran: list[str] = []

    async def main() -> None:
        ran.append(sniffio.current_async_library())

    code = python_blocks("docs/concepts.md")[4]
    assert COVERAGE["docs/concepts.md"][4] == HERE
    exec(compile(code, "docs/concepts.md[4]", "exec"), {"main": main})
    assert ran == ["asyncio", "trio"]


async def test_concepts_move_on_after(concepts: dict[str, Any]) -> None:
    namespace = await run("docs/concepts.md", 5, concepts)
    assert list(namespace["quote"]) == ["NSE:INFY"]


async def test_concepts_graceful_shutdown() -> None:
    ran: list[str] = []

    async def run_strategy() -> None:
        ran.append("strategy")

    namespace = await run("docs/concepts.md", 6, {"run_strategy": run_strategy})
    assert ran == ["strategy"]
    assert namespace["shutdown"].signal is None
    assert lines(namespace) == []


async def test_concepts_feed_options(concepts: dict[str, Any], kite_sb: Sandbox) -> None:
    await run("docs/concepts.md", 7, concepts)  # builds a feed: no I/O before it is entered
    assert kite_sb.state.stats.ws_connections == 1  # the page's open ``feed`` alone


async def test_concepts_batches(concepts: dict[str, Any]) -> None:
    # the loop runs until a record was read from a batch
    namespace = await run("docs/concepts.md", 8, concepts, until=lambda ns: "item" in ns)
    assert getattr(namespace["item"], "instrument_token", None) == 408065


async def test_concepts_connection_events(concepts: dict[str, Any]) -> None:
    # the loop runs until ``watch`` printed the first event
    out = lines(await run("docs/concepts.md", 9, concepts, stop_after=1))
    assert out == ["FeedConnected(connection=0, reconnect=False, subscriptions=2)"]


async def test_concepts_token_asked_on_each_connect(concepts: dict[str, Any]) -> None:
    asked: list[str] = []

    class TokenStore:  # the reader's: where the current access token is kept
        def current(self) -> str:
            asked.append("current")
            return "..."

    class NewSession:
        access_token = "..."

    names = {**concepts, "token_store": TokenStore(), "new_session": NewSession()}
    await run("docs/concepts.md", 10, names)
    assert asked == ["current"]


async def test_concepts_tag_up_front(concepts: dict[str, Any], kite_sb: Sandbox) -> None:
    namespace = await run("docs/concepts.md", 11, concepts)
    (order,) = kite_sb.state.book.orders.values()
    assert namespace["order_id"] == order.order_id
    assert lines(namespace) == [f"placing INFY with tag {order.tag}"]


async def test_concepts_open_and_close_by_hand(concepts: dict[str, Any]) -> None:
    namespace = await run("docs/concepts.md", 13, concepts)
    assert namespace["kite"] is not concepts["kite"]
    with pytest.raises(ClientClosedError):
        await namespace["kite"].profile()


# -- docs/migration.md -----------------------------------------------------------------------


@pytest.fixture
def kiteconnect_sb(kite_sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The Kite sandbox at kiteconnect's default addresses too (its class attributes)."""
    kiteconnect = pytest.importorskip("kiteconnect")
    monkeypatch.setattr(kiteconnect.KiteConnect, "_default_root_uri", kite_sb.root_url)
    login = kite_sb.root_url + "/connect/login"
    monkeypatch.setattr(kiteconnect.KiteConnect, "_default_login_uri", login)
    return kite_sb


async def request_token(sb: Sandbox) -> str:
    """The ``request_token`` a reader's browser brings back from Kite's login page."""
    params = {"api_key": sb.api_key, "v": "3"}
    async with httpx.AsyncClient() as http:
        redirect = await http.get(sb.root_url + "/connect/login", params=params)
    return parse_qs(urlparse(redirect.headers["location"]).query)["request_token"][0]


async def test_migration_kiteconnect_rest(kiteconnect_sb: Sandbox) -> None:
    out = lines(await run("docs/migration.md", 0, in_a_thread=True))
    assert re.fullmatch(r"[\d.]+", out[0]), out
    assert out[1:] == ["COMPLETE"]
    assert kiteconnect_sb.state.stats.orders_booked == 1


async def test_migration_aio_trader_rest(kite_sb: Sandbox) -> None:
    out = lines(await run("docs/migration.md", 1))
    assert re.fullmatch(r"[\d.]+", out[0]), out
    assert out[1:] == ["COMPLETE"]


async def test_migration_kiteconnect_login(kiteconnect_sb: Sandbox) -> None:
    from kiteconnect import KiteConnect  # imported by the page's first block

    names = {"request_token": await request_token(kiteconnect_sb), "KiteConnect": KiteConnect}
    namespace = await run("docs/migration.md", 2, names, in_a_thread=True)
    assert lines(namespace) == [f"{kiteconnect_sb.root_url}/connect/login?api_key=...&v=3"]
    assert namespace["data"]["access_token"] == "..."


async def test_migration_aio_trader_login(kite_sb: Sandbox) -> None:
    names = {"request_token": await request_token(kite_sb), "api_secret": "...", "Kite": Kite}
    namespace = await run("docs/migration.md", 3, names)
    assert lines(namespace) == ["https://kite.zerodha.com/connect/login?api_key=...&v=3"]
    assert namespace["session"].user_id == "AB1234"


async def test_migration_aio_trader_feed(kite_sb: Sandbox) -> None:
    # the loop runs until three ticks are printed
    out = lines(await run("docs/migration.md", 5, stop_after=3))
    assert all(re.fullmatch(r"(738561|5633) [\d.]+", line) for line in out), out


async def test_migration_legacy_dicts(concepts: dict[str, Any]) -> None:
    seen: list[dict[str, Any]] = []  # ``legacy_on_tick``: the reader's old tick handler
    names = {"feed": concepts["feed"], "Tick": Tick, "legacy_on_tick": seen.append}
    await run("docs/migration.md", 6, names, until=lambda _: len(seen) >= 2)
    assert [tick["instrument_token"] for tick in seen] == [408065, 408065]


async def test_migration_tasks_instead_of_threads(kite_sb: Sandbox) -> None:
    # ``Kite(...)``, ``KiteFeed(...)``: the reader's arguments, as in the blocks above; the
    # program runs until ``stream`` kept a tick (``report`` prints every 60 s: not waited)
    names = {
        "Kite": lambda *_: Kite(api_key="...", access_token="..."),
        "KiteFeed": lambda *_: KiteFeed(api_key="...", access_token="..."),
        "Tick": Tick,
    }
    namespace = await run("docs/migration.md", 8, names)
    with anyio.fail_after(HANG_GUARD), anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(namespace["main"])
            while 738561 not in namespace["latest"]:  # noqa: ASYNC110 - the block's dict
                await anyio.sleep(0.01)
            scope.cancel()
    assert isinstance(namespace["latest"][738561], Tick)


# -- docs/gateway.md -------------------------------------------------------------------------


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own: the blocks use the gateway's default key prefix."""
    with redis_server() as server:
        yield server


async def test_gateway_kite(
    own_redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway (block 1), a strategy behind it (0), a recording of its stream (5)
    and of a raw feed (6), that recording replayed (7): in a folder of the test's own
    (the blocks' ``session.parquet``), on a sandbox ticking every 2 ms (1,000 frames)."""
    from aio_trader._recording import RecordingReader
    from aio_trader.gateway import record  # the page's import, in block 5
    from aio_trader.kite import FullTick

    monkeypatch.chdir(tmp_path)
    url = own_redis.url
    async with Sandbox(SandboxConfig(tick_interval=0.002, **DOTS)) as sb:
        production_is_the_sandbox(sb, monkeypatch)

        async def gateway() -> None:
            await run("docs/gateway.md", 1, {"anyio": anyio}, redis=url)

        async def recorder() -> None:
            await run("docs/gateway.md", 5, redis=url)

        async with anyio.create_task_group() as tg:
            tg.start_soon(gateway)
            tg.start_soon(recorder)
            # the strategy's loop runs until it read a FullTick through Redis
            strategy = await run(
                "docs/gateway.md",
                0,
                redis=url,
                until=lambda ns: isinstance(ns.get("item"), FullTick),
            )
            tg.cancel_scope.cancel()  # the gateway and the recording: Ctrl-C
        assert strategy["item"].instrument_token in (408065, 884737)
        with RecordingReader("session.parquet") as reader:
            assert reader.total > 0

        raw = RawKiteFeed(api_key="...", access_token="...", subscriptions={408065: "full"})
        async with raw:  # ``raw_feed``: an entered RawKiteFeed, as the page says
            await run("docs/gateway.md", 6, {"raw_feed": raw, "record": record})
        with RecordingReader("session.parquet") as reader:
            assert reader.total == 1_000

    replay = await run("docs/gateway.md", 7)  # ends with the recording
    assert replay["tick"].instrument_token == 408065


async def test_gateway_dhan(own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from aio_trader.dhan import TickerTick

    url = own_redis.url
    config = SandboxConfig(broker="dhan", tick_interval=0.02, client_id="...", access_token="...")
    async with Sandbox(config) as sb:
        production_is_the_sandbox(sb, monkeypatch)

        async def gateway() -> None:
            await run("docs/gateway.md", 2, {"anyio": anyio}, redis=url)

        async with anyio.create_task_group() as tg:
            tg.start_soon(gateway)
            # the strategy's loop runs until it read a ticker tick through Redis
            strategy = await run(
                "docs/gateway.md",
                3,
                redis=url,
                until=lambda ns: isinstance(ns.get("item"), TickerTick),
            )
            tg.cancel_scope.cancel()
    assert strategy["item"].key[1] in (1333, 13)
