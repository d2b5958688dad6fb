"""What every ``aio-trader`` command shares: where to connect, with which credentials, how to run.

Credentials come, first match wins, from the flags, the environment (``KITE_API_KEY``,
``KITE_ACCESS_TOKEN``, ``KITE_USER_ID``, ``KITE_ENCTOKEN``), or what ``aio-trader login``
stored: a Kite Connect access token in ``cli-login.json`` (mode 0600, in the user's config
directory, the one :class:`~aio_trader.kite._session.TokenCache` uses), or a Kite Web
enctoken in the ``TokenCache`` itself. ``--sandbox`` starts an embedded sandbox and uses its
credentials instead. Secrets are never printed.

``--broker dhan`` (``Connection.broker``) hands a command to :mod:`aio_trader._cli.dhan`:
Dhan's credentials are ``--client-id``/``--access-token`` or ``DHAN_CLIENT_ID``/
``DHAN_ACCESS_TOKEN`` (Kite's variables are ignored, Kite's own flags refused), else
Dhan's token store.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import anyio.to_thread
import attrs
import click
import httpx

from aio_trader._time import IST
from aio_trader._tokens import write_private_json
from aio_trader.errors import AioTraderError, KiteError, RateLimitError
from aio_trader.kite import Kite, KiteFeed
from aio_trader.kite._session import TokenCache, end_of_day_ist
from aio_trader.utils import _unwrapped, gather, graceful_shutdown

if TYPE_CHECKING:
    from aio_trader.sandbox import Sandbox

__all__ = [
    "Client",
    "Connection",
    "LoginStore",
    "backend_option",
    "check_instruments",
    "check_url",
    "connection_options",
    "describe",
    "follow_login_page",
    "login_options",
    "open_client",
    "open_target",
    "parse_request_token",
    "resolve_instruments",
    "run",
    "shutdown_on_signals",
]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

BACKENDS = ("asyncio", "trio")
#: ``--broker`` choices (Kite is the default; Dhan's commands live in ``_cli.dhan``).
BROKERS = ("kite", "dhan")
#: The Kite options a ``--broker dhan`` command refuses (a value from Kite's environment
#: variables is ignored: it is Kite's, not Dhan's).
_KITE_ONLY = ("api_key", "user_id", "enctoken")
#: The two-factor code the embedded sandbox accepts (besides its TOTP codes).
SANDBOX_TWOFA = "424242"


def backend_option(function: F) -> F:
    """``--backend asyncio|trio`` (env ``AIO_TRADER_BACKEND``)."""
    return click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default="asyncio",
        show_default=True,
        envvar="AIO_TRADER_BACKEND",
        show_envvar=True,
        help="Event loop to run on.",
    )(function)


# -- where to connect, with what ---------------------------------------------------------------


@attrs.frozen
class Connection:
    """The connection options of one command (secrets hidden from the repr)."""

    sandbox: bool = False
    root: str | None = None
    ticker_url: str | None = None
    api_key: str | None = None
    access_token: str | None = attrs.field(default=None, repr=False)
    user_id: str | None = None
    enctoken: str | None = attrs.field(default=None, repr=False)
    backend: str = "asyncio"
    broker: str = "kite"
    client_id: str | None = None


_CONNECTION_OPTIONS = (
    (
        "sandbox",
        click.option(
            "--sandbox",
            is_flag=True,
            help="Start an embedded sandbox and use it (offline, no Kite account needed).",
        ),
    ),
    (
        "root",
        click.option(
            "--root",
            metavar="URL",
            envvar="KITE_ROOT",
            show_envvar=True,
            help="REST root of another Kite-compatible server (e.g. `aio-trader sandbox`).",
        ),
    ),
    (
        "ticker_url",
        click.option(
            "--ticker-url",
            metavar="URL",
            envvar="KITE_TICKER_URL",
            show_envvar=True,
            help="Ticker WebSocket URL of that server (default with --root: ROOT/ws).",
        ),
    ),
    (
        "api_key",
        click.option(
            "--api-key", envvar="KITE_API_KEY", show_envvar=True, help="Kite Connect api_key."
        ),
    ),
    (
        "access_token",
        click.option(
            "--access-token",
            envvar="KITE_ACCESS_TOKEN",
            show_envvar=True,
            help="Kite Connect access token (default: the one `aio-trader login` stored); "
            "with --broker dhan, Dhan's (env DHAN_ACCESS_TOKEN).",
        ),
    ),
    (
        "user_id",
        click.option(
            "--user-id", envvar="KITE_USER_ID", show_envvar=True, help="Kite Web user id."
        ),
    ),
    (
        "enctoken",
        click.option(
            "--enctoken",
            envvar="KITE_ENCTOKEN",
            show_envvar=True,
            help="Kite Web enctoken (default: the one `aio-trader login --web` stored).",
        ),
    ),
    ("backend", backend_option),
    (
        "broker",
        click.option(
            "--broker",
            type=click.Choice(BROKERS),
            default="kite",
            show_default=True,
            help="The broker: Kite Connect, or DhanHQ v2 (credentials: --client-id and "
            "--access-token, DHAN_CLIENT_ID/DHAN_ACCESS_TOKEN, or the token store).",
        ),
    ),
    (
        "client_id",
        click.option(
            "--client-id",
            envvar="DHAN_CLIENT_ID",
            show_envvar=True,
            help="Dhan client id (--broker dhan).",
        ),
    ),
)


_TOKEN_OPTIONS = frozenset({"access_token", "enctoken"})


def check_url(value: str | None, option: str, envvar: str, schemes: Sequence[str]) -> None:
    """A usage error (exit code 2) unless ``value`` is None or a URL in one of ``schemes``
    with a host: ``localhost:8765`` would otherwise fail deep in the transport."""
    if value is None:
        return
    scheme, separator, rest = value.partition("://")
    if separator and scheme.lower() in schemes and rest.strip("/"):
        return
    example = "http://127.0.0.1:8765" if "http" in schemes else "ws://127.0.0.1:8765/ws"
    raise click.BadParameter(
        f"{value!r} is not a URL starting with {' or '.join(s + '://' for s in schemes)} "
        f"(e.g. {example})",
        param_hint=f"{option} (or {envvar})",
    )


def _add_options(function: Callable[..., Any], tokens: bool) -> Any:
    @functools.wraps(function)
    def wrapper(**kwargs: Any) -> Any:
        names = [field.name for field in attrs.fields(Connection)]
        values = {name: kwargs.pop(name) for name in names if name in kwargs}
        if values.get("broker") == "dhan":
            _dhan_values(values)
        elif values.get("client_id") is not None:
            if _from_command_line("client_id"):
                raise click.UsageError("--client-id is Dhan's: add --broker dhan")
            values["client_id"] = None  # DHAN_CLIENT_ID, for Dhan's commands only
        check_url(values.get("root"), "--root", "KITE_ROOT", ("http", "https"))
        check_url(values.get("ticker_url"), "--ticker-url", "KITE_TICKER_URL", ("ws", "wss"))
        return function(conn=Connection(**values), **kwargs)

    for name, option in reversed(_CONNECTION_OPTIONS):
        if tokens or name not in _TOKEN_OPTIONS:
            wrapper = option(wrapper)
    return wrapper


def _from_command_line(name: str) -> bool:
    source = click.get_current_context().get_parameter_source(name)
    return source is click.core.ParameterSource.COMMANDLINE


def _dhan_values(values: dict[str, Any]) -> None:
    """The connection values of a ``--broker dhan`` command: Kite's own options refused
    when given on the command line, and dropped when they came from Kite's environment
    variables; the access token from ``--access-token`` or ``DHAN_ACCESS_TOKEN``, the root
    from ``--root`` or ``DHAN_ROOT``."""
    for name in _KITE_ONLY:
        if values.get(name) is None:
            continue
        if _from_command_line(name):
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(f"{flag} is Kite's; with --broker dhan give --client-id")
        values[name] = None
    for name, envvar in (("access_token", "DHAN_ACCESS_TOKEN"), ("root", "DHAN_ROOT")):
        if values.get(name) is None or not _from_command_line(name):
            values[name] = os.environ.get(envvar) or None
    if values.get("ticker_url") is not None and not _from_command_line("ticker_url"):
        values["ticker_url"] = None  # KITE_TICKER_URL
    check_url(values.get("root"), "--root", "DHAN_ROOT", ("http", "https"))


def connection_options(function: F) -> F:
    """Add the connection options; the command receives them as one ``conn: Connection``."""
    return cast(F, _add_options(function, tokens=True))


def login_options(function: F) -> F:
    """The connection options without ``--access-token``/``--enctoken`` (for ``login``)."""
    return cast(F, _add_options(function, tokens=False))


# -- the stored login ------------------------------------------------------------------------


@attrs.frozen
class LoginStore:
    """The last ``aio-trader login``: ``cli-login.json`` in the token cache's directory.

    Kite Connect: the api_key, the access token and the user id, valid until the end of the
    day in IST. Kite Web: the user id only (its enctoken lives in the ``TokenCache``). The
    directory is made 0700, the file written 0600 and replaced atomically; a file readable
    by others, malformed or expired is ignored. JSON, never pickle.
    """

    cache: TokenCache = attrs.field(factory=TokenCache)

    @property
    def path(self) -> Path:
        return self.cache.directory / "cli-login.json"

    def save(self, record: dict[str, str]) -> Path:
        """Store ``record`` (with an ``expires_at`` added); returns the file."""
        return write_private_json(self.path, {**record, "expires_at": end_of_day_ist().isoformat()})

    def load(self) -> dict[str, str] | None:
        """The stored record, or None when absent, expired, malformed or readable by others."""
        try:
            if os.name == "posix" and self.path.stat().st_mode & 0o077:
                log.warning("ignoring %s: readable by others", self.path)
                return None
            record = json.loads(self.path.read_text(encoding="utf-8"))
            expires = datetime.datetime.fromisoformat(record["expires_at"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring %s: %s", self.path, type(exc).__name__)
            return None
        if not isinstance(record, dict) or datetime.datetime.now(IST) >= expires:
            return None
        return {str(k): str(v) for k, v in record.items()}


async def _resolve(conn: Connection) -> Connection:
    """Fill in the credentials the flags and environment left out, from the stored login
    (files read in a worker thread)."""
    if conn.enctoken or (conn.api_key and conn.access_token):
        return conn
    stored = await anyio.to_thread.run_sync(LoginStore().load) or {}
    kind = stored.get("kind")
    if kind == "connect" and not conn.user_id:
        api_key = conn.api_key or stored.get("api_key")
        if api_key == stored.get("api_key"):
            token = conn.access_token or stored.get("access_token")
            return attrs.evolve(conn, api_key=api_key, access_token=token)
    user_id = conn.user_id
    if user_id is None and kind == "web" and not conn.api_key:
        user_id = stored.get("user_id")
    enctoken = await TokenCache().aload(user_id) if user_id else None
    if enctoken:
        return attrs.evolve(conn, user_id=user_id, enctoken=enctoken)
    raise click.UsageError(
        "no credentials: log in with `aio-trader login` (or `login --web`), give "
        "--api-key/--access-token (KITE_API_KEY/KITE_ACCESS_TOKEN) or "
        "--user-id/--enctoken (KITE_USER_ID/KITE_ENCTOKEN), or try it offline with --sandbox"
    )


@attrs.frozen
class Target:
    """The server a command talks to: its REST root, its ticker URL, the Kite Connect login
    page, and the embedded ``sandbox`` when there is one."""

    root: str | None
    ticker_url: str | None
    login_root: str | None
    sandbox: Sandbox | None = None


@contextlib.asynccontextmanager
async def open_target(conn: Connection) -> AsyncIterator[Target]:
    """The server of ``conn``: an embedded sandbox (started here, stopped on exit), the
    ``--root`` server, or Kite itself."""
    if conn.sandbox:
        try:
            from aio_trader.sandbox import Sandbox
        except ImportError as error:  # pragma: no cover - depends on the installed extras
            raise click.ClickException(
                f"--sandbox needs the `sandbox` extra: pip install 'aio-trader[sandbox]' ({error})"
            ) from None
        # A fixed two-factor code as well as TOTP, so that a Kite Web login works without pyotp.
        async with Sandbox(twofa_value=SANDBOX_TWOFA) as sb:
            yield Target(sb.root_url, sb.ticker_url, f"{sb.root_url}/connect/login", sb)
        return
    root = conn.root.rstrip("/") if conn.root else None
    ticker = conn.ticker_url
    if ticker is None and root is not None:
        ticker = root.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/ws"
    yield Target(root, ticker, f"{root}/connect/login" if root else None)


@attrs.frozen
class Client:
    """A logged-in ``kite`` and what it takes to open a feed on the same account."""

    kite: Kite
    conn: Connection
    ticker_url: str | None

    def feed(self, **options: Any) -> KiteFeed:
        """A ``KiteFeed`` for the same account and server (``options``: KiteFeed's)."""
        conn = self.conn
        if conn.enctoken:
            if not conn.user_id:
                raise click.UsageError("the Kite Web feed needs --user-id (KITE_USER_ID)")
            return KiteFeed(
                user_id=conn.user_id, enctoken=conn.enctoken, root=self.ticker_url, **options
            )
        return KiteFeed(conn.api_key, conn.access_token, root=self.ticker_url, **options)


@contextlib.asynccontextmanager
async def open_client(conn: Connection) -> AsyncIterator[Client]:
    """A ``Kite`` client on the target of ``conn`` with its resolved credentials."""
    async with open_target(conn) as target:
        if target.sandbox is not None:
            sb = target.sandbox
            conn = attrs.evolve(conn, api_key=sb.api_key, access_token=sb.access_token)
        else:
            conn = await _resolve(conn)
        if conn.enctoken:
            kite = Kite(enctoken=conn.enctoken, user_id=conn.user_id, root=target.root)
        else:
            kite = Kite(conn.api_key, conn.access_token, root=target.root, token_cache=False)
        async with kite:
            yield Client(kite, conn, target.ticker_url)


# -- running a command -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def shutdown_on_signals() -> AsyncIterator[None]:
    """SIGINT/SIGTERM stop the body cleanly (``graceful_shutdown``) in the main thread;
    elsewhere (e.g. a test calling the command from a worker thread) nothing is installed."""
    if threading.current_thread() is threading.main_thread():
        async with graceful_shutdown():
            yield
    else:
        yield


#: Seconds the CLI waits after a 429 on a read-only call before its one retry (Kite's
#: tightest limit, quotes, allows one request a second per api_key, across processes).
RATE_LIMIT_WAIT = 1.0


def describe(error: BaseException) -> str:
    """One line for a library error (its message never holds secrets)."""
    if isinstance(error, RateLimitError):
        return (
            f"Kite refused the request: too many requests (HTTP 429, {error.message}). Kite "
            "allows 1 quote request a second, 3 historical and 10 others, per api_key, shared "
            "by every program using it"
        )
    name, message = type(error).__name__, str(error)
    if isinstance(error, KiteError) or message.startswith(name):
        return message  # Kite's errors read "InputException (HTTP 400): ..."
    return f"{name}: {message}"


def run(
    backend: str, function: Callable[..., Awaitable[T]], *args: Any, read_only: bool = False
) -> T:
    """``anyio.run(function, *args)`` on ``backend``.

    Library errors become click errors (their messages never hold secrets); a single error
    out of task groups (the embedded sandbox's, the feed's) is raised as itself; a closed
    pipe (``aio-trader stream --json | head``) ends the command quietly. ``read_only``: a
    429 answer (another program used the same api_key's quota) is waited out and the whole
    ``function`` run once more, saying so on stderr; never for what places or changes orders.
    """
    if backend == "trio":
        try:
            import trio  # noqa: F401
        except ImportError:
            raise click.ClickException(
                "--backend trio needs trio: pip install 'aio-trader[trio]'"
            ) from None
    retries = 1 if read_only else 0
    while True:
        try:
            return anyio.run(_unwrapping, function, *args, backend=backend)
        except RateLimitError as error:
            if not retries:
                raise click.ClickException(describe(error)) from None
            retries -= 1
            click.echo(
                f"Kite answered 429 (too many requests): waiting {RATE_LIMIT_WAIT:g} s, "
                "then trying once more",
                err=True,
            )
            time.sleep(RATE_LIMIT_WAIT)
        except AioTraderError as error:
            raise click.ClickException(describe(error)) from None
        except ImportError as error:  # an optional extra is missing; the message names it
            raise click.ClickException(str(error)) from None
        except BrokenPipeError:
            # The reader went away: point stdout at devnull so the final flush stays quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None
        except OSError as error:  # a file that cannot be written, an address in use, ...
            where = f": {error.filename}" if error.filename else ""
            raise click.ClickException(f"{error.strerror or error}{where}") from None


async def _unwrapping(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    async with _unwrapped():
        return await function(*args)


# -- login pages and instruments ----------------------------------------------------------------


def parse_request_token(text: str) -> str:
    """The ``request_token`` in ``text``: the token itself, or the whole redirect URL."""
    text = text.strip()
    if "request_token=" in text:
        text = httpx.URL(text).params.get("request_token") or ""
    if not text or any(c.isspace() for c in text):
        raise click.BadParameter("no request_token found", param_hint="request_token")
    return text


async def follow_login_page(url: str) -> str:
    """Open a login page that redirects at once (the sandbox's does, as Kite does once the
    user has signed in) and return the ``request_token`` of the redirect."""
    async with httpx.AsyncClient() as browser:  # stands in for the user's browser
        answer = await browser.get(url)
    location = answer.headers.get("location", "")
    if answer.status_code not in (302, 303) or "request_token=" not in location:
        raise click.ClickException(f"the login page answered {answer.status_code}, no redirect")
    return parse_request_token(location)


def check_instruments(specs: Sequence[str]) -> None:
    """A usage error unless every spec is ``EXCHANGE:SYMBOL`` or an instrument token."""
    for spec in specs:
        exchange, colon, symbol = spec.partition(":")
        if not (colon and exchange and symbol) and not spec.isdigit():
            raise click.BadParameter(
                f"{spec!r}: give EXCHANGE:SYMBOL (e.g. NSE:{spec or 'INFY'}) or an instrument "
                "token",
                param_hint="INSTRUMENTS",
            )


async def resolve_instruments(kite: Kite, specs: Sequence[str]) -> dict[int, str]:
    """``{instrument_token: label}`` for ``EXCHANGE:SYMBOL`` specs (looked up in each
    exchange's instruments dump, fetched once per exchange) and bare tokens, in order; an
    instrument given twice (by name and by token) keeps its first label."""
    check_instruments(specs)
    wanted: dict[str, list[str]] = {}
    for spec in specs:
        exchange, colon, symbol = spec.partition(":")
        if colon:
            wanted.setdefault(exchange.upper(), []).append(symbol)
    dumps = await gather(*(kite.instruments(exchange) for exchange in wanted))
    found = {
        f"{exchange}:{instrument.tradingsymbol}": instrument.instrument_token
        for exchange, dump in zip(wanted, dumps, strict=True)
        for instrument in dump
    }
    labels: dict[int, str] = {}
    for spec in specs:
        if spec.isdigit():
            labels.setdefault(int(spec), spec)
            continue
        exchange, _, symbol = spec.partition(":")
        key = f"{exchange.upper()}:{symbol}"
        token = found.get(key, found.get(key.upper()))
        if token is None:
            raise click.BadParameter(
                f"{spec!r} is not in the {exchange.upper()} instruments dump",
                param_hint="INSTRUMENTS",
            )
        labels.setdefault(token, key if key in found else key.upper())
    return labels
