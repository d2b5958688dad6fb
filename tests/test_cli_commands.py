"""The ``aio-trader`` commands against the sandbox: an embedded one (``--sandbox``) or a running
one (``--root``); login and the stored session; secrets never in the output."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import pyotp
import pytest
from click.testing import CliRunner, Result

from aio_trader._cli.group import main
from aio_trader._cli.market import INSTRUMENT_COLUMNS
from aio_trader.kite import Kite
from aio_trader.sandbox import Sandbox, SandboxConfig

BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])
CONFIG = SandboxConfig()
SECRETS = (
    CONFIG.access_token,
    CONFIG.api_secret,
    CONFIG.refresh_token,
    CONFIG.enctoken,
    CONFIG.password,
    CONFIG.totp_secret,
)
KITE_VARIABLES = (
    "KITE_API_KEY",
    "KITE_ACCESS_TOKEN",
    "KITE_USER_ID",
    "KITE_ENCTOKEN",
    "KITE_ROOT",
    "KITE_TICKER_URL",
    "KITE_API_SECRET",
    "KITE_PASSWORD",
    "KITE_TOTP_SECRET",
    "KITE_TWOFA",
    "AIO_TRADER_BACKEND",
)


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config directory and no Kite variables from the environment."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    for name in KITE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "aio-trader"


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the command in-process; no sandbox secret may appear in what it prints."""
    result = CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)
    for secret in SECRETS:
        assert secret not in result.output, "a secret was printed"
    return result


async def invoke_in_thread(
    *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> Result:
    """``invoke`` from a worker thread (its own event loop), while the test's sandbox runs."""
    return await anyio.to_thread.run_sync(functools.partial(invoke, *args, input=input, env=env))


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


async def request_token(sb: Sandbox) -> str:
    """What Kite's login page redirects with, once the user has signed in."""
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{sb.root_url}/connect/login", params={"api_key": sb.api_key})
    return str(answer.headers["location"])  # the whole redirect URL is accepted


@pytest.mark.parametrize(
    "command",
    [
        "login",
        "stream",
        "quote",
        "ltp",
        "instruments",
        "historical",
        "orders",
        "positions",
        "holdings",
    ],
)
def test_every_command_can_use_the_sandbox_or_another_server(command: str) -> None:
    listed = invoke("--help")
    assert command in listed.output
    result = invoke(command, "--help")
    assert result.exit_code == 0
    for option in ("--sandbox", "--root", "--ticker-url", "--api-key", "--backend"):
        assert option in result.output


# -- login ----------------------------------------------------------------------------------------


@BACKENDS
def test_login_on_the_embedded_sandbox_stores_the_access_token_privately(
    backend: str, config_home: Path
) -> None:
    result = invoke("login", "--sandbox", "--backend", backend)
    assert result.exit_code == 0, result.output
    assert "Log in at: http://127.0.0.1:" in result.output
    assert "Logged in to Kite Connect as AB1234 (Sandbox User)" in result.output
    stored = config_home / "cli-login.json"
    assert private(stored)
    assert stat.S_IMODE(config_home.stat().st_mode) == 0o700
    record = json.loads(stored.read_text())
    assert record["kind"] == "connect"
    assert record["access_token"] == CONFIG.access_token
    assert record["api_key"] == CONFIG.api_key


async def test_login_with_the_request_token_then_commands_use_the_stored_token(
    anyio_backend: str, config_home: Path
) -> None:
    """The Kite Connect flow against a running server: the login URL is shown, the redirect
    URL and the api_secret are typed at hidden prompts, the token is stored, and a later
    command without credentials uses it."""
    async with Sandbox() as sb:
        redirect = await request_token(sb)
        login = await invoke_in_thread(
            "login",
            "--root",
            sb.root_url,
            "--api-key",
            sb.api_key,
            "--backend",
            anyio_backend,
            input=f"{redirect}\n{sb.api_secret}\n",
        )
        assert login.exit_code == 0, login.output
        assert f"Log in at: {sb.root_url}/connect/login?api_key={sb.api_key}&v=3" in login.output
        assert "request_token=" not in login.output  # the hidden prompt did not echo it
        assert private(config_home / "cli-login.json")
        async with Kite(sb.api_key, sb.access_token, root=sb.root_url, token_cache=False) as kite:
            order_id = await kite.place_order(
                "regular", "NSE", "INFY", "BUY", 2, "CNC", "LIMIT", price=1000.0
            )
        orders = await invoke_in_thread("orders", "--root", sb.root_url, "--backend", anyio_backend)
        assert orders.exit_code == 0, orders.output
        assert order_id in orders.output
        assert "NSE:INFY" in orders.output
        # A request token is single use: Kite's refusal is a clean error, no traceback.
        again = await invoke_in_thread(
            "login",
            "--root",
            sb.root_url,
            "--api-key",
            sb.api_key,
            "--request-token",
            redirect,
            env={"KITE_API_SECRET": sb.api_secret},
        )
    assert again.exit_code == 1
    assert "TokenException" in again.output
    assert "Traceback" not in again.output


async def test_kite_web_login_with_a_prompted_2fa_code(
    anyio_backend: str, config_home: Path
) -> None:
    async with Sandbox() as sb:
        code = pyotp.TOTP(sb.config.totp_secret).now()
        login = await invoke_in_thread(
            "login",
            "--web",
            "--root",
            sb.root_url,
            "--user-id",
            sb.user_id,
            "--backend",
            anyio_backend,
            input=f"{sb.password}\n{code}\n",
        )
        assert login.exit_code == 0, login.output
        assert "Logged in to Kite Web as AB1234" in login.output
        assert code not in login.output
        assert private(config_home / f"kite-web-{sb.user_id}.json")
        holdings = await invoke_in_thread("holdings", "--root", sb.root_url, "--json")
        # The feed logs in the Kite Web way too (user id + enctoken), at an explicit ticker URL.
        stream = await invoke_in_thread(
            "stream",
            *("--root", "http://127.0.0.1:9", "--ticker-url", sb.ticker_url),
            *("--json", "--count", "2", "408065"),
        )
    assert holdings.exit_code == 0, holdings.output
    symbols = {json.loads(line)["tradingsymbol"] for line in holdings.output.splitlines()}
    assert "INFY" in symbols
    assert stream.exit_code == 0, stream.output
    ticks = [json.loads(line) for line in stream.stdout.splitlines()]
    assert [tick["instrument_token"] for tick in ticks] == [408065, 408065]


def test_kite_web_login_on_the_embedded_sandbox(config_home: Path) -> None:
    result = invoke("login", "--web", "--sandbox")
    assert result.exit_code == 0, result.output
    assert json.loads((config_home / "cli-login.json").read_text())["kind"] == "web"


def test_a_stored_login_readable_by_others_is_ignored(config_home: Path) -> None:
    assert invoke("login", "--sandbox").exit_code == 0
    (config_home / "cli-login.json").chmod(0o644)
    result = invoke("orders", "--root", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "no credentials" in result.output


def test_commands_without_credentials_say_how_to_get_them() -> None:
    result = invoke("orders", "--root", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "no credentials" in result.output
    assert "aio-trader login" in result.output


# -- orders, positions, holdings ----------------------------------------------------------------


async def test_account_tables_from_a_running_server_with_credentials_from_the_environment(
    anyio_backend: str,
) -> None:
    async with Sandbox() as sb:
        async with Kite(sb.api_key, sb.access_token, root=sb.root_url, token_cache=False) as kite:
            order_id = await kite.place_order(
                "regular", "NSE", "INFY", "BUY", 3, "CNC", "MARKET", market_protection=-1
            )
        sb.step_market()  # a market step fills it (the clock would, a moment later)
        env = {"KITE_API_KEY": sb.api_key, "KITE_ACCESS_TOKEN": sb.access_token}
        common = ("--root", sb.root_url, "--backend", anyio_backend)
        orders = await invoke_in_thread("orders", *common, "--json", env=env)
        positions = await invoke_in_thread("positions", *common, env=env)
        holdings = await invoke_in_thread("holdings", *common, env=env)
    assert orders.exit_code == positions.exit_code == holdings.exit_code == 0
    [order] = [json.loads(line) for line in orders.output.splitlines()]
    assert order["order_id"] == order_id
    assert order["status"] == "COMPLETE"
    assert "positions (1)" in positions.output
    assert "NSE:INFY" in positions.output
    assert "holdings (4)" in holdings.output


@BACKENDS
def test_account_tables_on_the_embedded_sandbox(backend: str) -> None:
    for command in ("orders", "positions", "holdings"):
        result = invoke(command, "--sandbox", "--backend", backend)
        assert result.exit_code == 0, result.output
        assert f"{command} (" in result.output


# -- quote, ltp, instruments ----------------------------------------------------------------------


@BACKENDS
def test_quote_table_and_json(backend: str) -> None:
    table = invoke("quote", "--sandbox", "--backend", backend, "NSE:INFY", "NSE:NIFTY 50")
    assert table.exit_code == 0, table.output
    assert "quotes (2)" in table.output
    assert "NSE:NIFTY 50" in table.output
    lines = invoke("quote", "--sandbox", "--json", "NSE:INFY", "256265").output.splitlines()
    quotes = {line["instrument"]: line for line in map(json.loads, lines)}
    assert set(quotes) == {"NSE:INFY", "256265"}
    assert quotes["NSE:INFY"]["instrument_token"] == 408065
    assert quotes["NSE:INFY"]["last_price"] > 0
    assert quotes["NSE:INFY"]["depth"]["buy"][0]["price"] > 0


@BACKENDS
def test_ltp(backend: str) -> None:
    result = invoke("ltp", "--sandbox", "--backend", backend, "--json", "NSE:INFY", "NSE:TCS")
    assert result.exit_code == 0, result.output
    prices = [json.loads(line) for line in result.output.splitlines()]
    assert [p["instrument"] for p in prices] == ["NSE:INFY", "NSE:TCS"]
    assert all(p["last_price"] > 0 for p in prices)


def test_quote_of_an_unknown_instrument_is_an_error() -> None:
    result = invoke("ltp", "--sandbox", "NSE:INFY", "NSE:NOSUCH")
    assert result.exit_code == 1
    assert "no quote for: NSE:NOSUCH" in result.output


@BACKENDS
def test_instruments_csv_to_a_file_and_to_stdout(backend: str, tmp_path: Path) -> None:
    target = tmp_path / "nfo.csv"
    result = invoke("instruments", "--sandbox", "--backend", backend, "nfo", "-o", str(target))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(target.open()))
    assert tuple(rows[0]) == INSTRUMENT_COLUMNS
    assert rows
    assert all(row["exchange"] == "NFO" for row in rows)
    assert f"{len(rows)} instruments written to {target}" in result.output
    everything = invoke("instruments", "--sandbox").stdout
    assert len(list(csv.DictReader(io.StringIO(everything)))) > len(rows)


# -- stream ---------------------------------------------------------------------------------------


@BACKENDS
def test_stream_json_lines_for_symbols_and_tokens(backend: str) -> None:
    result = invoke(
        "stream",
        "--sandbox",
        "--backend",
        backend,
        "--json",
        "--mode",
        "full",
        "--count",
        "12",
        "NSE:INFY",
        "NSE:NIFTY 50",
        "8960258",
    )
    assert result.exit_code == 0, result.output
    ticks = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(ticks) == 12
    assert {tick["type"] for tick in ticks} == {"tick"}
    seen = {tick["instrument"]: tick for tick in ticks}
    assert set(seen) == {"NSE:INFY", "NSE:NIFTY 50", "8960258"}
    assert seen["NSE:NIFTY 50"]["tradable"] is False
    assert any(t["mode"] == "full" and t["depth"]["buy"] for t in ticks if t["tradable"])


@BACKENDS
def test_stream_plain_lines_until_the_duration(backend: str) -> None:
    result = invoke("stream", "--sandbox", "--backend", backend, "--duration", "1", "NSE:TCS")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "streaming NSE:TCS (quote mode)"
    assert any(line.startswith("tick NSE:TCS last=") for line in lines)
    assert lines[-1].startswith("stream finished: ")


def test_stream_refuses_unknown_instruments() -> None:
    unknown = invoke("stream", "--sandbox", "--count", "1", "NSE:NOSUCH")
    assert unknown.exit_code == 2
    assert "'NSE:NOSUCH' is not in the NSE instruments dump" in unknown.output
    malformed = invoke("stream", "--sandbox", "--count", "1", "INFY")
    assert malformed.exit_code == 2
    assert "EXCHANGE:SYMBOL" in malformed.output


# -- historical -----------------------------------------------------------------------------------


@BACKENDS
def test_historical_many_symbols_over_several_requests_to_csv(backend: str, tmp_path: Path) -> None:
    """450 days of hourly candles: two requests per instrument (Kite allows 400 days)."""
    target = tmp_path / "candles.csv"
    result = invoke(
        "historical",
        "--sandbox",
        "--backend",
        backend,
        "NSE:INFY",
        "NSE:TCS",
        "--from",
        "2024-01-01",
        "--to",
        "2025-03-26",
        "--interval",
        "60minute",
        "-o",
        str(target),
    )
    assert result.exit_code == 0, result.output
    assert "2 instrument(s), 4 request(s)" in result.output
    rows = list(csv.DictReader(target.open()))
    assert set(rows[0]) == {"instrument", "instrument_token", "date"} | {
        "open",
        "high",
        "low",
        "close",
        "volume",
    }
    for symbol in ("NSE:INFY", "NSE:TCS"):
        dates = [row["date"] for row in rows if row["instrument"] == symbol]
        assert dates == sorted(dates)
        assert dates[0].startswith("2024-01-01T")
        assert dates[-1].startswith("2025-03-2")
        assert dates[0].endswith("+05:30")


@BACKENDS
def test_historical_to_parquet(backend: str, tmp_path: Path) -> None:
    parquet = pytest.importorskip("pyarrow.parquet")
    target = tmp_path / "candles.parquet"
    result = invoke(
        "historical",
        "--sandbox",
        "--backend",
        backend,
        "NSE:INFY",
        "256265",
        "--from",
        "2024-01-01",
        "--to",
        "2024-03-31",
        "--oi",
        "-o",
        str(target),
    )
    assert result.exit_code == 0, result.output
    assert "(Parquet, pyarrow)" in result.output
    table = parquet.read_table(target)
    assert table.column_names[-1] == "oi"
    assert set(table.column("instrument").to_pylist()) == {"NSE:INFY", "256265"}


def test_historical_parquet_without_any_parquet_library_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("pyarrow", "pyarrow.parquet", "polars", "pandas"):
        monkeypatch.setitem(sys.modules, name, None)
    target = tmp_path / "candles.parquet"
    args = ("NSE:INFY", "--from", "2024-01-01", "--to", "2024-01-31", "-o", str(target))
    result = invoke("historical", "--sandbox", *args)
    assert result.exit_code == 1
    assert "Parquet output needs pyarrow, polars or pandas" in result.output
    assert not os.path.exists(target)


def test_historical_refuses_bad_ranges_before_connecting() -> None:
    result = invoke("historical", "NSE:INFY", "--from", "2024-02-01", "--to", "2024-01-01")
    assert result.exit_code == 2
    assert "from_date is after to_date" in result.output


# -- stream as a real process: Ctrl-C and pipes ---------------------------------------------------


STREAM = [sys.executable, "-m", "aio_trader._cli", "stream", "--sandbox", "--json", "NSE:INFY"]


async def test_stream_stops_cleanly_on_sigint(anyio_backend: str) -> None:
    async with await anyio.open_process([*STREAM, "--backend", anyio_backend]) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        with anyio.fail_after(60):  # a hang guard, not a speed assertion
            first = b""
            while b"\n" not in first:
                first += await process.stdout.receive()
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
        errors = b"".join([chunk async for chunk in process.stderr]).decode()
    assert json.loads(first.split(b"\n")[0])["instrument"] == "NSE:INFY"
    assert "stream finished: " in errors
    assert "Traceback" not in errors


def test_stream_into_a_closed_pipe_ends_quietly() -> None:
    """``aio-trader stream --json ... | head -n 1``: the reader goes away, exit status 0."""
    with subprocess.Popen(STREAM, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["type"] == "tick"
        process.stdout.close()
        _, errors = process.communicate(timeout=60)  # a hang guard
    assert process.returncode == 0
    assert b"Traceback" not in errors
    assert b"BrokenPipeError" not in errors
